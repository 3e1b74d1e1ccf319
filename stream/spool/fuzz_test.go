package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegmentFile opens a spool whose only segment holds arbitrary bytes.
// Open must never fail or panic on content, every record it yields must have
// passed its checksum, and an append afterwards must be read back last.
func FuzzSegmentFile(f *testing.F) {
	good, _ := appendRecord([]byte(segmentMagic), &Message{Topic: "t", Key: []byte("k"), Value: []byte("v")})
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte(segmentMagic))
	f.Add([]byte("CPSPOOL1\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Dir: dir, NoSync: true}, nil, nil)
		if err != nil {
			t.Fatalf("Open on bad content: %v", err)
		}
		defer s.Close()
		before, err := s.Next(1 << 20)
		if err != nil {
			t.Fatalf("Next after Open's scan: %v", err)
		}
		last := Message{Topic: "x", Key: []byte("k"), Value: []byte("last")}
		if err := s.Append(last); err != nil {
			t.Fatalf("Append: %v", err)
		}
		after, err := s.Next(1 << 20)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(after.Messages) != len(before.Messages)+1 {
			t.Fatalf("append lost or duplicated records: %d then %d", len(before.Messages), len(after.Messages))
		}
		got := after.Messages[len(after.Messages)-1]
		if got.Topic != "x" || !bytes.Equal(got.Value, []byte("last")) {
			t.Fatalf("last record = %+v", got)
		}
	})
}

// FuzzCursor decodes arbitrary cursor bytes: an error or a position with
// non-negative fields, never a panic.
func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(position{seg: 3, off: 100, idx: 2}))
	f.Add([]byte("CPCURS01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeCursor(data)
		if err == nil && (p.off < 0 || p.idx < 0) {
			t.Fatalf("accepted negative cursor %+v", p)
		}
	})
}
