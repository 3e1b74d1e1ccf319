package models

import (
	"encoding/binary"
	"math"
	"testing"
)

// blazeRaw builds empty BlazeFace outputs (every logit -10).
func blazeRaw() (s1, s2, b1, b2 []float32) {
	s1, s2 = make([]float32, 512), make([]float32, 384)
	for i := range s1 {
		s1[i] = -10
	}
	for i := range s2 {
		s2[i] = -10
	}
	return s1, s2, make([]float32, 512*16), make([]float32, 384*16)
}

// setAnchor writes one anchor's logit and regressors: centre offset
// (dx, dy), size (w, h) and key points all at the centre, in input pixels.
func setAnchor(scores, boxes []float32, i int, logit, dx, dy, w, h float32) {
	scores[i] = logit
	r := boxes[i*16 : i*16+16]
	r[0], r[1], r[2], r[3] = dx, dy, w, h
	for k := 0; k < 6; k++ {
		r[4+2*k], r[5+2*k] = dx, dy
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestDecodeBlazeFacePlacesAnchorsOnTheirGrid(t *testing.T) {
	const size = 128
	tests := []struct {
		name          string
		grid          int // 0: 16×16×2, 1: 8×8×6
		x, y, anchor  int
		logit, dx, dy float32
		w, h          float32
	}{
		{"grid 1 cell (3,5) anchor 1", 0, 3, 5, 1, 2, 4, -2, 32, 40},
		{"grid 1 corner cell", 0, 15, 15, 0, 0.5, 0, 0, 10, 10},
		{"grid 2 cell (6,1) anchor 5", 1, 6, 1, 5, 3, -8, 6, 64, 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s1, s2, b1, b2 := blazeRaw()
			g := blazeGrids[tc.grid]
			i := (tc.y*g.cells+tc.x)*g.anchors + tc.anchor
			if tc.grid == 0 {
				setAnchor(s1, b1, i, tc.logit, tc.dx, tc.dy, tc.w, tc.h)
			} else {
				setAnchor(s2, b2, i, tc.logit, tc.dx, tc.dy, tc.w, tc.h)
			}
			dets, err := DecodeBlazeFace(s1, s2, b1, b2, size, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			if len(dets) != 1 {
				t.Fatalf("%d detections, want 1", len(dets))
			}
			d := dets[0]
			wantX := (float64(tc.x)+0.5)/float64(g.cells) + float64(tc.dx)/size
			wantY := (float64(tc.y)+0.5)/float64(g.cells) + float64(tc.dy)/size
			if !near(d.CX, wantX) || !near(d.CY, wantY) || !near(d.W, float64(tc.w)/size) || !near(d.H, float64(tc.h)/size) {
				t.Errorf("decoded %+v, want centre (%.4f, %.4f) size %.4f×%.4f", d, wantX, wantY, float64(tc.w)/size, float64(tc.h)/size)
			}
			if !near(d.Score, 1/(1+math.Exp(-float64(tc.logit)))) {
				t.Errorf("score %v for logit %v", d.Score, tc.logit)
			}
			if !near(d.Keys[2][0], wantX) || !near(d.Keys[2][1], wantY) {
				t.Errorf("nose key point %v, want (%.4f, %.4f)", d.Keys[2], wantX, wantY)
			}
		})
	}
}

func TestDecodeBlazeFaceBlendsOverlapsAndKeepsSeparateFaces(t *testing.T) {
	s1, s2, b1, b2 := blazeRaw()
	// Two anchors of the same cell on one face (offset 2 px, same size),
	// one on another face far away.
	setAnchor(s1, b1, (4*16+4)*2, 3, 0, 0, 20, 20)
	setAnchor(s1, b1, (4*16+4)*2+1, 1, 2, 0, 20, 20)
	setAnchor(s2, b2, (6*8+6)*6, 2, 0, 0, 30, 30)
	dets, err := DecodeBlazeFace(s1, s2, b1, b2, 128, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 {
		t.Fatalf("%d detections, want 2 (one blended)", len(dets))
	}
	p3, p1 := 1/(1+math.Exp(-3)), 1/(1+math.Exp(-1))
	wantX := (4.5/16*p3 + (4.5/16+2.0/128)*p1) / (p3 + p1)
	if d := dets[0]; !near(d.CX, wantX) || !near(d.Score, p3) {
		t.Errorf("blended %+v, want cx %.5f score %.4f (weighted mean, best score)", d, wantX, p3)
	}
	if d := dets[1]; !near(d.CX, 6.5/8) || !near(d.W, 30.0/128) {
		t.Errorf("separate face %+v", d)
	}
}

func TestDecodeBlazeFaceRefusesWrongShapesAndSkipsNonFinite(t *testing.T) {
	s1, s2, b1, b2 := blazeRaw()
	if _, err := DecodeBlazeFace(s1[:100], s2, b1, b2, 128, 0.5); err == nil {
		t.Error("short score output accepted")
	}
	if _, err := DecodeBlazeFace(s1, s2, b1, b2[:16], 128, 0.5); err == nil {
		t.Error("short regressor output accepted")
	}
	if _, err := DecodeBlazeFace(s1, s2, b1, b2, 0, 0.5); err == nil {
		t.Error("size 0 accepted")
	}
	setAnchor(s1, b1, 0, float32(math.NaN()), 0, 0, 10, 10)
	setAnchor(s1, b1, 1, 5, float32(math.Inf(1)), 0, 10, 10)
	setAnchor(s1, b1, 2, 5, 0, 0, -3, 10)
	dets, err := DecodeBlazeFace(s1, s2, b1, b2, 128, 0.5)
	if err != nil || len(dets) != 0 {
		t.Fatalf("non-finite or negative boxes: %v %+v", err, dets)
	}
}

// FuzzDecodeBlazeFace feeds arbitrary net outputs (any length, any float bits)
// to the decoder: an error or detections with finite, positive boxes, and
// never a panic.
func FuzzDecodeBlazeFace(f *testing.F) {
	s1, s2, b1, b2 := blazeRaw()
	setAnchor(s1, b1, 7, 4, 1, 2, 20, 20)
	f.Add(floatBytes(s1), floatBytes(s2), floatBytes(b1), floatBytes(b2), 128)
	f.Add([]byte{1, 2, 3}, []byte{}, []byte{0xff, 0xff, 0xff, 0x7f}, []byte{}, 0)
	f.Fuzz(func(t *testing.T, a, b, c, d []byte, size int) {
		dets, err := DecodeBlazeFace(bytesFloat(a), bytesFloat(b), bytesFloat(c), bytesFloat(d), size, 0.5)
		if err != nil {
			return
		}
		for _, x := range dets {
			if !(x.W > 0 && x.H > 0) || math.IsNaN(x.CX+x.CY) || math.IsInf(x.CX+x.CY, 0) || x.Score < 0.5 || x.Score > 1 {
				t.Fatalf("bad detection %+v", x)
			}
		}
	})
}

func floatBytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

func bytesFloat(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
