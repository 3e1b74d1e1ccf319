package models

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func TestParseManifestRejectsMalformedManifests(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not json", `{`},
		{"no groups", `[]`},
		{"no paths", `[{"paths":[],"weights":[]}]`},
		{"path escapes folder", `[{"paths":["../etc/passwd"],"weights":[]}]`},
		{"absolute path", `[{"paths":["/etc/passwd"],"weights":[]}]`},
		{"unknown dtype", `[{"paths":["a.bin"],"weights":[{"name":"w","shape":[2],"dtype":"complex64"}]}]`},
		{"unknown quantization", `[{"paths":["a.bin"],"weights":[{"name":"w","shape":[2],"dtype":"float32","quantization":{"dtype":"int4","scale":1,"min":0}}]}]`},
		{"zero dimension", `[{"paths":["a.bin"],"weights":[{"name":"w","shape":[0],"dtype":"float32"}]}]`},
		{"huge tensor", `[{"paths":["a.bin"],"weights":[{"name":"w","shape":[65536,65536],"dtype":"float32"}]}]`},
		{"repeated name", `[{"paths":["a.bin"],"weights":[{"name":"w","shape":[1],"dtype":"float32"},{"name":"w","shape":[1],"dtype":"float32"}]}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseManifest([]byte(tc.in)); !errors.Is(err, ErrManifest) {
				t.Fatalf("err = %v, want ErrManifest", err)
			}
		})
	}
}

func TestDecodeWeightsDequantisesAndChecksLength(t *testing.T) {
	groups, err := ParseManifest([]byte(`[{"paths":["a.bin"],"weights":[
		{"name":"q","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}},
		{"name":"f","shape":[1],"dtype":"float32"},
		{"name":"q16","shape":[1],"dtype":"float32","quantization":{"dtype":"uint16","scale":0.25,"min":0}}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	shards := []byte{0, 2, 255}
	shards = binary.LittleEndian.AppendUint32(shards, math.Float32bits(3.5))
	shards = binary.LittleEndian.AppendUint16(shards, 8)
	w, err := DecodeWeights(groups, shards)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"q": {-1, 0, 126.5}, "f": {3.5}, "q16": {2}}
	for name, vs := range want {
		for i, v := range vs {
			if got := w[name].Data[i]; got != v {
				t.Errorf("%s[%d] = %v, want %v", name, i, got, v)
			}
		}
	}
	tests := []struct {
		name   string
		shards []byte
	}{
		{"short", shards[:len(shards)-1]},
		{"left over", append(append([]byte(nil), shards...), 0)},
		{"NaN float", append(append([]byte{0, 0, 0}, binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.NaN())))...), 0, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeWeights(groups, tc.shards); !errors.Is(err, ErrManifest) {
				t.Fatalf("err = %v, want ErrManifest", err)
			}
		})
	}
}

func TestLoadTFJSReportsMissingFiles(t *testing.T) {
	if _, err := LoadTFJS(t.TempDir() + "/none.json"); err == nil {
		t.Fatal("missing manifest accepted")
	}
}

// FuzzParseManifest feeds arbitrary manifests and shard bytes: an error or
// tensors whose sizes match their shapes, never a panic or a huge allocation.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`[{"paths":["a.bin"],"weights":[{"name":"w","shape":[2,2],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.1,"min":-1}}]}]`), []byte{1, 2, 3, 4})
	f.Add([]byte(`[{"paths":["a.bin"],"weights":[{"name":"b","shape":[1],"dtype":"int32"}]}]`), []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, manifest, shards []byte) {
		groups, err := ParseManifest(manifest)
		if err != nil {
			return
		}
		w, err := DecodeWeights(groups, shards)
		if err != nil {
			return
		}
		for name, tensor := range w {
			n, _ := elements(tensor.Shape)
			if n != len(tensor.Data) {
				t.Fatalf("%s: %d values for shape %v", name, len(tensor.Data), tensor.Shape)
			}
		}
	})
}
