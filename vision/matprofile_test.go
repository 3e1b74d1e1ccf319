//go:build matprofile

package vision

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/vision/consent"
)

// TestScoringLeaksNoMats runs the scorer (default and mtcnn chains) over
// real photos and bad input, and a worker (capture queue, tracking
// detector) over a clip, and requires gocv's Mat count back where it
// started (go test -tags matprofile ./vision).
func TestScoringLeaksNoMats(t *testing.T) {
	clip := writeTestClip(t, 15) // its frames are freed at cleanup, after the count
	cpath := filepath.Join(t.TempDir(), "consent.json")
	if err := consent.Save(cpath, consent.Record{Student: "s1", PolicyVersion: consent.PolicyVersion, Camera: true, Emotion: true, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	before := gocv.MatProfile.Count()
	func() {
		m, err := LoadModels(modelDir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		for _, chain := range []string{DefaultChain, ChainMTCNN} {
			s := NewScorer(m, ScoreConfig{Detect: DetectConfig{Chain: chain}})
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
			s.Close()
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
		summaries := 0
		w, err := NewWorker(WorkerConfig{Student: "s1", Session: "l", Course: "c", ConsentPath: cpath, Source: clip},
			m, func(stream.Event) error { summaries++; return nil }, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if summaries == 0 {
			t.Fatal("the worker emitted no summary for a 1 s clip")
		}
	}()
	if after := gocv.MatProfile.Count(); after != before {
		t.Fatalf("Mat count %d → %d: leaked Mats", before, after)
	}
}
