package vision

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/vision/consent"
)

// writeTestClip writes one second of a demo photo, drifting a pixel a
// frame, as a 640×480 MJPEG file at fps.
func writeTestClip(t *testing.T, fps int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.avi")
	vw, err := gocv.VideoWriterFile(path, "MJPG", float64(fps), 640, 480, true)
	if err != nil {
		t.Fatal(err)
	}
	defer vw.Close()
	for _, f := range panFrames(t, "sample1.jpg", fps, 1, 1) {
		if err := vw.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestRunRefusesWithoutConsent(t *testing.T) {
	m := loadTestModels(t)
	path := filepath.Join(t.TempDir(), "consent.json")
	w, err := NewWorker(WorkerConfig{Student: "s1", Session: "l", Course: "c", ConsentPath: path, Source: "missing.avi"},
		m, func(stream.Event) error { return nil }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("Run without a consent record: %v, want ErrNoConsent", err)
	}
}

// TestRevocationStopsCaptureWithinAWindow revokes while Run loops a clip:
// Run returns within a quarter window (plus one frame's scoring), no frame
// is read afterwards and no summary is emitted after the revocation.
func TestRevocationStopsCaptureWithinAWindow(t *testing.T) {
	m := loadTestModels(t)
	path := filepath.Join(t.TempDir(), "consent.json")
	rec := consent.Record{Student: "s1", PolicyVersion: consent.PolicyVersion, Camera: true, At: time.Now().UTC()}
	if err := consent.Save(path, rec); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []time.Time
	sink := func(e stream.Event) error {
		if _, ok := e.(*stream.Score); !ok {
			t.Errorf("the worker emitted %T; only Score may leave", e)
		}
		mu.Lock()
		got = append(got, time.Now())
		mu.Unlock()
		return nil
	}
	w, err := NewWorker(WorkerConfig{Student: "s1", Session: "l", Course: "c", ConsentPath: path,
		Source: writeTestClip(t, 15), Loop: true}, m, sink, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	testenv.WaitFor(t, 10*time.Second, "a first summary", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	rec.Camera, rec.At = false, time.Now().UTC()
	if err := consent.Save(path, rec); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("capture still running 5 s after the revocation")
	}
	took := time.Since(revoked)
	t.Logf("capture stopped %v after the revocation", took)
	// The record is checked every 250 ms; add the frame being scored and
	// scheduling slack on a loaded 2-core machine, and stay under a second.
	if took > 900*time.Millisecond {
		t.Errorf("capture stopped %v after the revocation, want within a second", took)
	}
	frames := testutil.ToFloat64(w.frames)
	time.Sleep(300 * time.Millisecond)
	if after := testutil.ToFloat64(w.frames); after != frames {
		t.Errorf("frames read after Run returned: %v → %v", frames, after)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, at := range got {
		if at.After(revoked) {
			t.Errorf("summary emitted %v after the revocation", at.Sub(revoked))
		}
	}
}
