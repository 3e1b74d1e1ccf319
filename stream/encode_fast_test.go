package stream

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// plainByJSON is the test's own notion of a string the fast encoder may
// take: printable ASCII that encoding/json writes back unchanged.
func plainByJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	b, _ := json.Marshal(s)
	return string(b) == `"`+s+`"`
}

// sameTileEncoding fails t when appendTile takes t's tile and writes other
// bytes than encoding/json, or refuses one it should take (every string
// plain, attention finite). It reports whether appendTile took it.
func sameTileEncoding(t *testing.T, tile *Tile) bool {
	t.Helper()
	want, werr := json.Marshal(tile)
	got, ok := appendTile(nil, tile)
	plain := true
	for _, s := range []string{tile.ID, tile.Student, tile.Session, tile.Course, tile.Dominant, tile.WarningLevel} {
		plain = plain && plainByJSON(s)
	}
	finite := !math.IsNaN(tile.Attention) && !math.IsInf(tile.Attention, 0)
	if ok != (plain && finite) {
		t.Fatalf("appendTile ok=%v for a tile with plain strings %v and a finite attention %v: %+v", ok, plain, finite, tile)
	}
	if !ok {
		return false
	}
	if werr != nil {
		t.Fatalf("appendTile wrote %s where encoding/json fails: %v", got, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendTile and encoding/json differ:\n got %s\nwant %s", got, want)
	}
	return true
}

func TestTileEncodingIsEncodingJSONsByteForByte(t *testing.T) {
	ts := time.Date(2026, 12, 7, 9, 30, 15, 123_000_000, time.UTC)
	base := func() *Tile {
		return &Tile{Header: NewHeader("stu-1", ts), Session: "law-101-a", Course: "law-101", Captured: true,
			Attention: 0.8125, FacePresent: true, Masked: false, Dominant: "engaged", WarningLevel: "yellow"}
	}
	cases := []struct {
		name   string
		fast   bool // appendTile takes it
		modify func(*Tile)
	}{
		{"every field", true, func(*Tile) {}},
		{"optional fields empty", true, func(x *Tile) { x.Dominant, x.WarningLevel = "", "" }},
		{"attention zero", true, func(x *Tile) { x.Attention = 0 }},
		{"attention one", true, func(x *Tile) { x.Attention = 1 }},
		{"attention one third", true, func(x *Tile) { x.Attention = 1.0 / 3 }},
		{"attention below 1e-6 takes the exponent form", true, func(x *Tile) { x.Attention = 1.5e-7 }},
		{"attention just at 1e-6", true, func(x *Tile) { x.Attention = 1e-6 }},
		{"attention with a two-digit exponent", true, func(x *Tile) { x.Attention = 2.5e-12 }},
		{"attention negative zero", true, func(x *Tile) { x.Attention = math.Copysign(0, -1) }},
		{"time in another zone is written in UTC", true, func(x *Tile) { x.TS = Time{ts.In(time.FixedZone("X", 3600))} }},
		{"time with whole seconds", true, func(x *Tile) { x.TS = At(ts.Truncate(time.Second)) }},
		{"flags false", true, func(x *Tile) { x.Captured, x.FacePresent, x.Masked = false, false, true }},
		{"a string encoding/json escapes (<) takes encoding/json", false, func(x *Tile) { x.Session = "a<b" }},
		{"a string with a quote takes encoding/json", false, func(x *Tile) { x.Student = `st"u` }},
		{"non-ASCII takes encoding/json", false, func(x *Tile) { x.Course = "lógica" }},
		{"NaN is refused by both", false, func(x *Tile) { x.Attention = math.NaN() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tile := base()
			c.modify(tile)
			if took := sameTileEncoding(t, tile); took != c.fast {
				t.Fatalf("appendTile took the tile: %v, want %v", took, c.fast)
			}
		})
	}
}

func TestEncodeOfATileIsTheReferenceEncoding(t *testing.T) {
	tile := &Tile{Header: NewHeader("stu-2", time.Now()), Session: "s1", Course: "c1", Captured: true, Attention: 0.25, FacePresent: true}
	got, err := Encode(tile)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(tile)
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode %s, encoding/json %s", got, want)
	}
	// Encode takes the fast encoder: fewer allocations than encoding/json.
	encAllocs := testing.AllocsPerRun(100, func() { _, _ = Encode(tile) })
	jsonAllocs := testing.AllocsPerRun(100, func() { _, _ = json.Marshal(tile) })
	if encAllocs >= jsonAllocs {
		t.Errorf("Encode made %v allocations a tile, encoding/json %v: Encode did not take appendTile", encAllocs, jsonAllocs)
	}
	back, err := Decode(TopicTiles, got)
	if err != nil {
		t.Fatalf("Decode of an encoded tile: %v", err)
	}
	if *back.(*Tile) != *tile {
		t.Fatalf("round trip: %+v, want %+v", back, tile)
	}
}

func FuzzTileEncodingMatchesReference(f *testing.F) {
	f.Add("01JEXAMPLE", "stu-1", "law-101-a", "law-101", "engaged", "yellow", 0.8125, int64(1765099815123), true, true, false)
	f.Add("id", "s", "x<y", "c", "", "", 1.5e-7, int64(0), false, false, true)
	f.Fuzz(func(t *testing.T, id, student, session, course, dominant, level string, attention float64, ms int64, captured, face, masked bool) {
		tile := &Tile{Header: Header{V: Version, ID: id, TS: Time{time.UnixMilli(ms).UTC()}, Student: student},
			Session: session, Course: course, Captured: captured, Attention: attention, FacePresent: face, Masked: masked,
			Dominant: dominant, WarningLevel: level}
		if y := tile.TS.Year(); y < 0 || y > 9999 {
			t.Skip() // encoding/json refuses such years; tiles are stamped now
		}
		sameTileEncoding(t, tile)
	})
}

func BenchmarkEncodeTile(b *testing.B) {
	tile := &Tile{Header: NewHeader("stu-1", time.Now()), Session: "law-101-a", Course: "law-101", Captured: true,
		Attention: 0.8125, FacePresent: true, Dominant: "engaged", WarningLevel: "yellow"}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(tile); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := Encode(tile); err != nil {
				b.Fatal(err)
			}
		}
	})
}
