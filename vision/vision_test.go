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

// TestFacesFoundWhereThePeopleAre scores the demo photos with the default
// detector against the hand-made ground truth (testdata/demo_faces.json):
// at most one face per photo and two in all may be missed (IoU ≥ MatchIoU
// counts as found; a woman looking down with hair over her face is the
// one BlazeFace misses), no detection may be off the labelled faces, and
// each found face gets the full set of scores.
func TestFacesFoundWhereThePeopleAre(t *testing.T) {
	m := loadTestModels(t)
	s := NewScorer(m, ScoreConfig{})
	defer s.Close()
	g, err := DemoGroundTruth()
	if err != nil {
		t.Fatal(err)
	}
	missed := 0
	for name, truth := range g.Images {
		t.Run(name, func(t *testing.T) {
			img := readDemo(t, name)
			faces, err := s.ScoreFrame(img, 0)
			if err != nil {
				t.Fatal(err)
			}
			var want, got []image.Rectangle
			for _, f := range truth.Faces {
				want = append(want, f.Rect())
			}
			for _, f := range faces {
				got = append(got, f.Box)
			}
			_, fp, fn, match := MatchFaces(want, got, MatchIoU)
			missed += fn
			for i, f := range truth.Faces {
				if match[i] < 0 {
					t.Logf("face %v (%s) not found; found %v", f.Box, f.Note, got)
				}
			}
			if fn > 1 {
				t.Errorf("%d of %d faces missed", fn, len(want))
			}
			if fp > 0 {
				t.Errorf("%d detections on no labelled face: found %v, labelled %v", fp, got, want)
			}
			for _, f := range faces {
				if f.Emotions == nil || f.Learning == nil {
					t.Errorf("unmasked face without emotions/learning: %+v", f)
				}
				if f.Attention < 0 || f.Attention > 1 || f.Novelty > 5 {
					t.Errorf("attention %v novelty %v out of range for a real face", f.Attention, f.Novelty)
				}
			}
		})
	}
	if missed > 2 {
		t.Errorf("%d labelled faces missed in all, want at most 2", missed)
	}
}

// TestEveryDetectorChainFindsFacesOnlyOnPeople runs each chain on the
// demo photos: whatever its recall, at least half the labelled faces are
// found and most detections are on people (bare Haar, and BlazeFace's
// short-range net on small faces, do fire on shirts: that is why they are
// not the default).
func TestEveryDetectorChainFindsFacesOnlyOnPeople(t *testing.T) {
	m := loadTestModels(t)
	imgs, err := DemoEvalImages(m, demoDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range imgs {
			e.Img.Close()
		}
	})
	res, err := EvaluateDetectors(m, imgs, Chains, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Recall() < 0.4 || r.Precision() < 0.6 {
			t.Errorf("%s: precision %.2f recall %.2f (tp %d fp %d fn %d)", r.Chain, r.Precision(), r.Recall(), r.TP, r.FP, r.FN)
		}
		if r.Chain == DefaultChain && (!r.MaskedFound || r.FP > 0) {
			t.Errorf("default chain %s: masked face found %v, %d false positives", r.Chain, r.MaskedFound, r.FP)
		}
	}
	if _, err := EvaluateDetectors(m, imgs, []string{"retinaface"}, 1); err == nil {
		t.Error("unknown chain accepted")
	}
}

// TestNoFacesOnBlankOrFaceFreeImages: synthetic images and face-free parts
// of the demo photos (a staircase railing, window blinds) give no face,
// with every detector chain.
func TestNoFacesOnBlankOrFaceFreeImages(t *testing.T) {
	m := loadTestModels(t)
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
	images := map[string]gocv.Mat{"blank": blank, "noise": noise, "stripes": stripes}
	for name, r := range map[string]struct {
		file string
		rect image.Rectangle
	}{
		"railing": {"sample5.jpg", image.Rect(0, 0, 560, 500)},
		"blinds":  {"sample6.jpg", image.Rect(0, 0, 640, 330)},
	} {
		photo := readDemo(t, r.file)
		region := photo.Region(r.rect)
		crop := region.Clone()
		region.Close()
		defer crop.Close()
		images[name] = crop
	}
	for _, chain := range Chains {
		s := NewScorer(m, ScoreConfig{Detect: DetectConfig{Chain: chain}})
		for name, img := range images {
			faces, err := s.ScoreFrame(img, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != 0 {
				t.Errorf("%s on %s: %d faces found, want none (%v)", chain, name, len(faces), faces[0].Box)
			}
		}
		s.Close()
	}
}

// TestScoresStableUnderSmallShifts moves the frame a few pixels: the same
// faces, in the same places, with the same dominant signals.
func TestScoresStableUnderSmallShifts(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	img := readDemo(t, "sample6.jpg")
	crop := func(d image.Point) ([]FaceScore, image.Point) {
		r := image.Rect(16, 16, img.Cols()-16, img.Rows()-16).Add(d)
		region := img.Region(r)
		shifted := region.Clone()
		region.Close()
		defer shifted.Close()
		got, err := s.ScoreFrame(shifted, 0)
		if err != nil {
			t.Fatal(err)
		}
		return got, r.Min
	}
	base, o := crop(image.Point{})
	if len(base) != 4 {
		t.Fatalf("base: %d faces, want the 4 people", len(base))
	}
	for _, d := range []image.Point{{4, 0}, {0, 4}, {-4, -4}, {12, 6}} {
		got, o2 := crop(d)
		if len(got) != len(base) {
			t.Fatalf("shift %v: %d faces, base %d", d, len(got), len(base))
		}
		for _, a := range base {
			ab := a.Box.Add(o)
			var b *FaceScore
			for i := range got {
				if IoU(ab, got[i].Box.Add(o2)) > 0.7 {
					b = &got[i]
				}
			}
			if b == nil {
				t.Errorf("shift %v: face at %v not found again in place", d, ab)
				continue
			}
			if abs(a.Box.Dx()-b.Box.Dx()) > a.Box.Dx()/8 {
				t.Errorf("shift %v: box %v vs %v", d, a.Box, b.Box)
			}
			if diff := a.Attention - b.Attention; diff > 0.15 || diff < -0.15 {
				t.Errorf("shift %v: face at %v attention %.2f vs %.2f", d, ab, a.Attention, b.Attention)
			}
			if a.Masked != b.Masked {
				t.Errorf("shift %v: masked flips", d)
			}
		}
	}
}

// TestMaskedFaceScoredFromEyeRegion occludes the lower face of a real
// photo with a mask-coloured polygon.
func TestMaskedFaceScoredFromEyeRegion(t *testing.T) {
	s := NewScorer(loadTestModels(t), ScoreConfig{})
	defer s.Close()
	img := readDemo(t, "sample6.jpg")
	faces, err := s.ScoreFrame(img, 0)
	if err != nil || len(faces) == 0 {
		t.Fatalf("unmasked photo: %v %+v", err, faces)
	}
	for _, f := range faces {
		if f.Masked {
			t.Fatalf("unmasked face at %v flagged masked (score %.2f)", f.Box, f.MaskScore)
		}
	}
	target := faces[0]
	masked := img.Clone()
	defer masked.Close()
	MaskLowerFace(&masked, &target.Landmarks)
	got, err := s.ScoreFrame(masked, 0)
	if err != nil {
		t.Fatal(err)
	}
	var f *FaceScore
	for i := range got {
		if IoU(got[i].Box, target.Box) >= MatchIoU {
			f = &got[i]
		}
	}
	if f == nil {
		t.Fatalf("masked face at %v not found (found %d faces)", target.Box, len(got))
	}
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
