//go:build matprofile

package vision

import (
	"testing"

	"gocv.io/x/gocv"
)

// TestScoringLeaksNoMats runs the scorer over real photos and bad input
// and requires gocv's Mat count back where it started
// (go test -tags matprofile ./vision).
func TestScoringLeaksNoMats(t *testing.T) {
	before := gocv.MatProfile.Count()
	func() {
		m, err := LoadModels(modelDir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		s := NewScorer(m, ScoreConfig{})
		defer s.Close()
		for _, f := range []string{"sample1.jpg", "sample6.jpg"} {
			img, err := ReadImage(demoDir + "/" + f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.ScoreFrame(img, 0); err != nil {
				t.Fatal(err)
			}
			img.Close()
		}
		if _, err := DecodeImage([]byte("not an image, just text")); err == nil {
			t.Fatal("garbage decoded")
		}
		fq := newFrameQueue(2, func() {})
		for i := 0; i < 5; i++ {
			mm := fq.get()
			fq.push(mm)
		}
		fq.close()
	}()
	if after := gocv.MatProfile.Count(); after != before {
		t.Fatalf("Mat count %d → %d: leaked Mats", before, after)
	}
}
