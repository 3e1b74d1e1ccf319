package vision

import (
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/vision/models"
)

// The model set and photos come from `make models` (build/npm, models/).
var (
	modelDir = "../models"
	demoDir  = "../build/npm/node_modules/@vladmandic/face-api/demo"
)

func loadTestModels(t *testing.T) *Models {
	t.Helper()
	m, err := LoadModels(modelDir)
	if err != nil {
		t.Fatalf("%v (run `make models` first)", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func readDemo(t *testing.T, name string) gocv.Mat {
	t.Helper()
	img, err := ReadImage(filepath.Join(demoDir, name))
	if err != nil {
		t.Fatalf("%v (run `make models` first)", err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// TestFacesFoundWhereThePeopleAre checks counts against the photos as a
// person sees them and that every box holds a face-sized square.
func TestFacesFoundWhereThePeopleAre(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	tests := []struct {
		file     string
		min, max int
	}{
		{"sample1.jpg", 1, 1}, {"sample2.jpg", 1, 1}, {"sample3.jpg", 2, 4},
		{"sample4.jpg", 1, 2}, {"sample5.jpg", 2, 3}, {"sample6.jpg", 3, 5},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			img := readDemo(t, tc.file)
			faces, err := s.ScoreFrame(img, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) < tc.min || len(faces) > tc.max {
				t.Fatalf("%d faces, want %d..%d", len(faces), tc.min, tc.max)
			}
			for _, f := range faces {
				if f.Box.Dx() < 80 || f.Box.Dx() > 600 {
					t.Errorf("box %v is not face-sized in a 1920-wide photo", f.Box)
				}
				if f.Emotions == nil || f.Learning == nil {
					t.Errorf("unmasked face without emotions/learning: %+v", f)
				}
				if f.Attention < 0 || f.Attention > 1 || f.Novelty > 5 {
					t.Errorf("attention %v novelty %v out of range for a real face", f.Attention, f.Novelty)
				}
			}
		})
	}
}

func TestNoFacesOnBlankOrFaceFreeImages(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 200, 200, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer blank.Close()
	noise := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer noise.Close()
	gocv.RandU(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
	stripes := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(30, 60, 90, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer stripes.Close()
	for x := 0; x < 640; x += 40 {
		gocv.Rectangle(&stripes, image.Rect(x, 0, x+20, 480), color.RGBA{240, 240, 240, 0}, -1)
	}
	for name, m := range map[string]gocv.Mat{"blank": blank, "noise": noise, "stripes": stripes} {
		faces, err := s.ScoreFrame(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) != 0 {
			t.Errorf("%s: %d faces found, want none", name, len(faces))
		}
	}
}

// TestScoresStableUnderSmallShifts moves the frame a few pixels: the same
// face, the same dominant signals.
func TestScoresStableUnderSmallShifts(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	img := readDemo(t, "sample6.jpg")
	base, err := s.ScoreFrame(img, 1)
	if err != nil || len(base) != 1 {
		t.Fatalf("base: %v %d", err, len(base))
	}
	for _, d := range []image.Point{{4, 0}, {0, 4}, {-4, -4}} {
		r := image.Rect(8, 8, img.Cols()-8, img.Rows()-8).Add(d)
		region := img.Region(r)
		shifted := region.Clone()
		region.Close()
		got, err := s.ScoreFrame(shifted, 1)
		shifted.Close()
		if err != nil || len(got) != 1 {
			t.Fatalf("shift %v: %v, %d faces", d, err, len(got))
		}
		a, b := base[0], got[0]
		if abs(a.Box.Dx()-b.Box.Dx()) > a.Box.Dx()/8 {
			t.Errorf("shift %v: box %v vs %v", d, a.Box, b.Box)
		}
		if diff := a.Attention - b.Attention; diff > 0.15 || diff < -0.15 {
			t.Errorf("shift %v: attention %.2f vs %.2f", d, a.Attention, b.Attention)
		}
		if a.Masked != b.Masked {
			t.Errorf("shift %v: masked flips", d)
		}
	}
}

// TestMaskedFaceScoredFromEyeRegion occludes the lower face of a real
// photo with a mask-coloured polygon.
func TestMaskedFaceScoredFromEyeRegion(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	img := readDemo(t, "sample6.jpg")
	faces, err := s.ScoreFrame(img, 1)
	if err != nil || len(faces) != 1 || faces[0].Masked {
		t.Fatalf("unmasked face: %v %+v", err, faces)
	}
	lm := faces[0].Landmarks
	masked := img.Clone()
	defer masked.Close()
	var pts []image.Point
	for _, i := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 29} {
		pts = append(pts, image.Pt(int(lm[i][0]), int(lm[i][1])))
	}
	pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
	defer pv.Close()
	gocv.FillPoly(&masked, pv, color.RGBA{R: 150, G: 200, B: 235})
	got, err := s.ScoreFrame(masked, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("masked photo: %v, %d faces", err, len(got))
	}
	f := got[0]
	if !f.Masked {
		t.Fatalf("mask not flagged (score %.2f)", f.MaskScore)
	}
	if f.Emotions != nil || f.Learning == nil {
		t.Fatalf("masked face must score from the eye region: emotions %v learning %v", f.Emotions, f.Learning)
	}
}

func TestEmotionOffComputesNoEmotions(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{EmotionOff: true})
	defer s.Close()
	faces, err := s.ScoreFrame(readDemo(t, "sample1.jpg"), 0)
	if err != nil || len(faces) == 0 {
		t.Fatal(err)
	}
	for _, f := range faces {
		if f.Emotions != nil || f.Learning != nil {
			t.Fatalf("emotion off, yet %+v", f)
		}
	}
}

func TestBadImagesAreClearErrors(t *testing.T) {
	dir := t.TempDir()
	photo, _ := os.ReadFile(filepath.Join(demoDir, "sample1.jpg"))
	files := map[string][]byte{
		"empty.jpg":     {},
		"text.jpg":      []byte("this is not an image at all"),
		"truncated.jpg": photo[:200],
		"tiny.png":      pngOf(t, 8, 8),
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			os.WriteFile(p, data, 0o644)
			m, err := ReadImage(p)
			if err == nil {
				m.Close()
				t.Fatal("bad image accepted")
			}
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("err = %v, want ErrBadImage", err)
			}
		})
	}
	if _, err := ReadImage(filepath.Join(dir, "missing.jpg")); !errors.Is(err, ErrBadImage) {
		t.Fatalf("missing file: %v", err)
	}
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := s.ScoreFrame(empty, 0); !errors.Is(err, ErrBadImage) {
		t.Fatalf("empty Mat: %v", err)
	}
	gray := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8U)
	defer gray.Close()
	if _, err := s.ScoreFrame(gray, 0); !errors.Is(err, ErrBadImage) {
		t.Fatalf("gray Mat: %v", err)
	}
}

func pngOf(t *testing.T, w, h int) []byte {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	defer m.Close()
	buf, err := gocv.IMEncode(gocv.PNGFileExt, m)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

func TestMissingOrCorruptModelFilesAreClearErrors(t *testing.T) {
	copyDir := func(t *testing.T) string {
		dst := t.TempDir()
		entries, _ := os.ReadDir(modelDir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(modelDir, e.Name()))
			os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
		return dst
	}
	tests := []struct {
		name    string
		breakIt func(dir string)
	}{
		{"no manifest", func(d string) { os.Remove(filepath.Join(d, models.ManifestName)) }},
		{"missing onnx", func(d string) { os.Remove(filepath.Join(d, "face_expression.onnx")) }},
		{"truncated onnx", func(d string) {
			p := filepath.Join(d, "face_landmark68.onnx")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/3], 0o644)
		}},
		{"garbage cascade", func(d string) {
			os.WriteFile(filepath.Join(d, "haarcascade_frontalface_default.xml"), []byte("<x>"), 0o644)
		}},
		{"garbage pigo", func(d string) { os.WriteFile(filepath.Join(d, "pigo_facefinder"), []byte{1, 2, 3}, 0o644) }},
		{"garbage manifest", func(d string) { os.WriteFile(filepath.Join(d, models.ManifestName), []byte("{"), 0o644) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t)
			tc.breakIt(dir)
			m, err := LoadModels(dir)
			if err == nil {
				m.Close()
				t.Fatal("broken model set loaded")
			}
			if !errors.Is(err, models.ErrModel) {
				t.Fatalf("err = %v, want ErrModel", err)
			}
		})
	}
}

func TestConvertedNetsMatchReferenceForwardPass(t *testing.T) {
	for _, n := range []struct{ kind, src, file string }{
		{models.RoleExpression, "face_expression_model", "face_expression.onnx"},
		{models.RoleLandmark, "face_landmark_68_model", "face_landmark68.onnx"},
	} {
		w, err := models.LoadTFJS(filepath.Join(demoDir, "..", "model", n.src+"-weights_manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		net, err := models.NewFaceNet(n.kind, w)
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range verifyInputs(demoDir)[:3] {
			d, err := VerifyConversion(filepath.Join(modelDir, n.file), net, in)
			if err != nil {
				t.Fatal(err)
			}
			if d > 1e-4 {
				t.Errorf("%s input %d: max abs diff %g", n.kind, i, d)
			}
		}
	}
}
