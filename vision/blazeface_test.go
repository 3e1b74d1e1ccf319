package vision

import (
	"errors"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/classpulse/classpulse/vision/models"
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

func TestDecodeBlazePlacesAnchorsOnTheirGrid(t *testing.T) {
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
			dets, err := decodeBlaze(s1, s2, b1, b2, size, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			if len(dets) != 1 {
				t.Fatalf("%d detections, want 1", len(dets))
			}
			d := dets[0]
			wantX := (float64(tc.x)+0.5)/float64(g.cells) + float64(tc.dx)/size
			wantY := (float64(tc.y)+0.5)/float64(g.cells) + float64(tc.dy)/size
			if !near(d.cx, wantX) || !near(d.cy, wantY) || !near(d.w, float64(tc.w)/size) || !near(d.h, float64(tc.h)/size) {
				t.Errorf("decoded %+v, want centre (%.4f, %.4f) size %.4f×%.4f", d, wantX, wantY, float64(tc.w)/size, float64(tc.h)/size)
			}
			if !near(d.score, 1/(1+math.Exp(-float64(tc.logit)))) {
				t.Errorf("score %v for logit %v", d.score, tc.logit)
			}
			if !near(d.keys[2][0], wantX) || !near(d.keys[2][1], wantY) {
				t.Errorf("nose key point %v, want (%.4f, %.4f)", d.keys[2], wantX, wantY)
			}
		})
	}
}

func TestDecodeBlazeBlendsOverlapsAndKeepsSeparateFaces(t *testing.T) {
	s1, s2, b1, b2 := blazeRaw()
	// Two anchors of the same cell on one face (offset 2 px, same size),
	// one on another face far away.
	setAnchor(s1, b1, (4*16+4)*2, 3, 0, 0, 20, 20)
	setAnchor(s1, b1, (4*16+4)*2+1, 1, 2, 0, 20, 20)
	setAnchor(s2, b2, (6*8+6)*6, 2, 0, 0, 30, 30)
	dets, err := decodeBlaze(s1, s2, b1, b2, 128, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 {
		t.Fatalf("%d detections, want 2 (one blended)", len(dets))
	}
	p3, p1 := 1/(1+math.Exp(-3)), 1/(1+math.Exp(-1))
	wantX := (4.5/16*p3 + (4.5/16+2.0/128)*p1) / (p3 + p1)
	if d := dets[0]; !near(d.cx, wantX) || !near(d.score, p3) {
		t.Errorf("blended %+v, want cx %.5f score %.4f (weighted mean, best score)", d, wantX, p3)
	}
	if d := dets[1]; !near(d.cx, 6.5/8) || !near(d.w, 30.0/128) {
		t.Errorf("separate face %+v", d)
	}
}

func TestDecodeBlazeRefusesWrongShapesAndSkipsNonFinite(t *testing.T) {
	s1, s2, b1, b2 := blazeRaw()
	if _, err := decodeBlaze(s1[:100], s2, b1, b2, 128, 0.5); err == nil {
		t.Error("short score output accepted")
	}
	if _, err := decodeBlaze(s1, s2, b1, b2[:16], 128, 0.5); err == nil {
		t.Error("short regressor output accepted")
	}
	if _, err := decodeBlaze(s1, s2, b1, b2, 0, 0.5); err == nil {
		t.Error("size 0 accepted")
	}
	setAnchor(s1, b1, 0, float32(math.NaN()), 0, 0, 10, 10)
	setAnchor(s1, b1, 1, 5, float32(math.Inf(1)), 0, 10, 10)
	setAnchor(s1, b1, 2, 5, 0, 0, -3, 10)
	dets, err := decodeBlaze(s1, s2, b1, b2, 128, 0.5)
	if err != nil || len(dets) != 0 {
		t.Fatalf("non-finite or negative boxes: %v %+v", err, dets)
	}
}

func TestMatchFacesPairsBestOverlapsOnce(t *testing.T) {
	truth := []image.Rectangle{image.Rect(0, 0, 100, 100), image.Rect(200, 0, 300, 100)}
	tests := []struct {
		name       string
		found      []image.Rectangle
		tp, fp, fn int
	}{
		{"both found", []image.Rectangle{image.Rect(10, 10, 110, 110), image.Rect(200, 0, 300, 100)}, 2, 0, 0},
		{"one twice", []image.Rectangle{image.Rect(0, 0, 100, 100), image.Rect(5, 5, 105, 105)}, 1, 1, 1},
		{"off target", []image.Rectangle{image.Rect(500, 500, 600, 600)}, 0, 1, 2},
		{"too small an overlap", []image.Rectangle{image.Rect(70, 70, 170, 170)}, 0, 1, 2},
		{"nothing", nil, 0, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, fp, fn, _ := MatchFaces(truth, tc.found, MatchIoU)
			if tp != tc.tp || fp != tc.fp || fn != tc.fn {
				t.Errorf("tp/fp/fn %d/%d/%d, want %d/%d/%d", tp, fp, fn, tc.tp, tc.fp, tc.fn)
			}
		})
	}
}

// TestBrokenBlazeFaceFileIsAClearError: LoadModels checks the BlazeFace
// files against the manifest before OpenCV parses them.
func TestBrokenBlazeFaceFileIsAClearError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(p string)
	}{
		{"missing", func(p string) { os.Remove(p) }},
		{"truncated", func(p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}},
		{"one byte altered", func(p string) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}},
		{"empty", func(p string) { os.WriteFile(p, nil, 0o644) }},
	} {
		for _, file := range []string{"blazeface_front128.onnx", "blazeface_back256.onnx"} {
			t.Run(tc.name+" "+file, func(t *testing.T) {
				dir := t.TempDir()
				entries, _ := os.ReadDir(modelDir)
				for _, e := range entries {
					b, _ := os.ReadFile(filepath.Join(modelDir, e.Name()))
					os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
				}
				tc.breakIt(filepath.Join(dir, file))
				m, err := LoadModels(dir)
				if err == nil {
					m.Close()
					t.Fatal("broken BlazeFace file loaded")
				}
				if !errors.Is(err, models.ErrModel) {
					t.Fatalf("err = %v, want ErrModel", err)
				}
			})
		}
	}
}

// TestModelsBuildRefusesAnUnpinnedBlazeFaceFile: `models build` copies the
// BlazeFace nets only when they are the pinned npm files.
func TestModelsBuildRefusesAnUnpinnedBlazeFaceFile(t *testing.T) {
	pkg := t.TempDir()
	os.MkdirAll(filepath.Join(pkg, "ONNX"), 0o755)
	for _, f := range blazeFaceFiles {
		b, err := os.ReadFile(filepath.Join(modelDir, f.out))
		if err != nil {
			t.Fatalf("%v (run `make models` first)", err)
		}
		if f.role == models.RoleBlazeFace {
			b[100] ^= 1
		}
		os.WriteFile(filepath.Join(pkg, "ONNX", f.src), b, 0o644)
	}
	man := &models.Manifest{Files: map[string]models.FileEntry{}}
	err := copyBlazeFace(man, pkg, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || len(man.Files) != 0 {
		t.Fatalf("altered BlazeFace file accepted: %v %v", err, man.Files)
	}
}

func TestUnknownDetectorChainIsAnError(t *testing.T) {
	for _, c := range append([]string{""}, Chains...) {
		if err := CheckChain(c); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
	for _, c := range []string{"mtcnn", "BlazeFace", "haar+"} {
		if err := CheckChain(c); err == nil {
			t.Errorf("%q accepted", c)
		}
		wc := WorkerConfig{Student: "s1", Session: "x", Course: "c", ConsentPath: "/tmp/c.json", Detector: c}
		wc.applyDefaults()
		if err := wc.Validate(); err == nil {
			t.Errorf("worker with detector %q validated", c)
		}
	}
}
