package vision

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// panFrames returns 640×480 views of a demo photo drifting dx, dy pixels
// per frame, as a hand-held camera would see it.
func panFrames(t *testing.T, name string, n, dx, dy int) []gocv.Mat {
	t.Helper()
	img := readDemo(t, name)
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(img, &big, image.Pt(720, 540), 0, 0, gocv.InterpolationArea)
	var out []gocv.Mat
	for i := 0; i < n; i++ {
		x, y := 40+i*dx, 30+i*dy
		r := big.Region(image.Rect(x, y, x+640, y+480))
		out = append(out, r.Clone())
		r.Close()
	}
	t.Cleanup(func() {
		for _, m := range out {
			m.Close()
		}
	})
	return out
}

// TestTrackingFollowsTheFaceBetweenDetections: with Track, only every
// (Track+1)th frame runs a full detection; the followed boxes stay on the
// faces a full detection finds in the same frame, and a face-free frame
// ends the track at once.
func TestTrackingFollowsTheFaceBetweenDetections(t *testing.T) {
	m := loadTestModels(t)
	tr := NewScorer(m, ScoreConfig{Detect: DetectConfig{Track: 5}})
	defer tr.Close()
	ref := NewScorer(m, ScoreConfig{})
	defer ref.Close()
	frames := panFrames(t, "sample2.jpg", 12, 3, -2)
	for i, f := range frames {
		got, err := tr.Detect(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Detect(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("frame %d: tracked %d faces, full detection %d; want the same, at least 1", i, len(got), len(want))
		}
		for _, w := range want {
			tol := w.Box.Dx() / 5
			ok := false
			for _, g := range got {
				g := g.Box
				ok = ok || abs(g.Min.X-w.Box.Min.X) <= tol && abs(g.Min.Y-w.Box.Min.Y) <= tol && abs(g.Dx()-w.Box.Dx()) <= tol
			}
			if !ok {
				t.Errorf("frame %d: no tracked box within %d px of the full detection's %v (tracked: %v)", i, tol, w.Box, got)
			}
		}
	}
	if n := tr.FullDetections(); n != 2 {
		t.Errorf("%d full detections over 12 frames with Track 5, want 2", n)
	}
	blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer blank.Close()
	got, err := tr.Detect(blank)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("face-free frame after a track: %d faces, want 0", len(got))
	}
	if n := tr.FullDetections(); n != 3 {
		t.Errorf("losing the face should force a full detection: %d, want 3", n)
	}
	// An empty seat: one full detection per Track+1 frames.
	for i := 0; i < 6; i++ {
		if got, _ := tr.Detect(blank); len(got) != 0 {
			t.Fatalf("blank frame %d: %d faces", i, len(got))
		}
	}
	if n := tr.FullDetections(); n != 4 {
		t.Errorf("%d full detections after 7 face-free frames with Track 5, want 4", n)
	}
	// The learner comes back: found within Track+1 frames.
	for i := 0; ; i++ {
		got, err := tr.Detect(frames[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			break
		}
		if i == 5 {
			t.Fatal("a returning face not found within Track+1 frames")
		}
	}
}

// TestMaxFacesFollowsOnlyTheLargest: the worker scores one face per frame
// and follows only that one.
func TestMaxFacesFollowsOnlyTheLargest(t *testing.T) {
	m := loadTestModels(t)
	all := NewScorer(m, ScoreConfig{Detect: DetectConfig{Track: 5}})
	defer all.Close()
	one := NewScorer(m, ScoreConfig{Detect: DetectConfig{Track: 5, MaxFaces: 1}})
	defer one.Close()
	for i, f := range panFrames(t, "sample4.jpg", 6, 2, 1) {
		a, err := all.Detect(f)
		if err != nil {
			t.Fatal(err)
		}
		o, err := one.Detect(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) < 2 || len(o) != 1 {
			t.Fatalf("frame %d: %d faces without a limit (want ≥ 2), %d with MaxFaces 1", i, len(a), len(o))
		}
		// At the full detection the largest face is kept; followed boxes
		// then resize a little, so later it is one of the faces.
		if i == 0 && IoU(a[0].Box, o[0].Box) < 0.8 {
			t.Errorf("frame %d: MaxFaces 1 kept %v, the largest is %v", i, o[0].Box, a[0].Box)
		}
		best := 0.0
		for _, f := range a {
			best = max(best, IoU(f.Box, o[0].Box))
		}
		if best < 0.7 {
			t.Errorf("frame %d: followed face %v is none of %v", i, o[0].Box, a)
		}
	}
}
