package vision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/vision/consent"
)

// WorkerConfig configures the capture worker. Student, Session, Course and
// ConsentPath are required; every other field documents its default.
type WorkerConfig struct {
	Student, Session, Course string
	// Source is a camera index ("0") or a video file. Default "0".
	Source string
	// FPS caps the frames read per second. Default 15. A video file plays
	// in real time whatever its own rate (frames skipped above FPS), so a
	// window is one second of video.
	FPS int
	// Queue is how many frames may wait for the scorer; older ones are
	// dropped. Default 2.
	Queue int
	// Window is the summary interval. Default 1s.
	Window time.Duration
	// ConsentPath is the local consent record, re-read every window so a
	// revocation stops capture within a second.
	ConsentPath string
	// EmotionOff switches emotion inference off (jurisdiction). Emotion is
	// also off when the consent record lacks the emotion scope.
	EmotionOff bool
	// Loop rewinds a video file at its end instead of stopping.
	Loop bool
	// Track is how many frames the faces of a full detection are only
	// followed (DetectConfig.Track). Default 5: at 15 fps a full detection
	// runs at least three times a second. Negative: a full detection on
	// every frame.
	Track int
	// Detector is the detector chain (DetectConfig.Chain). Default
	// DefaultChain.
	Detector string
}

func (c *WorkerConfig) applyDefaults() {
	if c.Source == "" {
		c.Source = "0"
	}
	if c.FPS <= 0 {
		c.FPS = 15
	}
	if c.Queue <= 0 {
		c.Queue = 2
	}
	if c.Window <= 0 {
		c.Window = time.Second
	}
	if c.Track == 0 {
		c.Track = 5
	}
}

// Validate reports a configuration that cannot work.
func (c *WorkerConfig) Validate() error {
	probe := stream.Score{Header: stream.NewHeader(c.Student, time.Now()), Session: c.Session, Course: c.Course,
		WindowMS: int(c.Window / time.Millisecond), Model: "x"}
	if err := probe.Validate(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if c.ConsentPath == "" {
		return errors.New("worker: no consent record path")
	}
	if c.FPS > 120 {
		return fmt.Errorf("worker: fps %d above 120", c.FPS)
	}
	if err := CheckChain(c.Detector); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// Sink receives the events the worker emits: only stream.Score here (the
// consent commands emit stream.Consent). It is the spool in production.
type Sink func(stream.Event) error

// Worker captures, scores and summarises. Run it once.
type Worker struct {
	cfg     WorkerConfig
	m       *Models
	sink    Sink
	logger  *slog.Logger
	now     func() time.Time
	running atomic.Bool
	// Counts of this run, logged when it ends ("capture ended"): frames
	// read, dropped by the queue, handed to the scorer, and the scorer's
	// total time.
	nFrames, nDropped, nScored, scoreNanos atomic.Int64

	frames, dropped, published prometheus.Counter
	scoreSec                   prometheus.Histogram
}

// NewWorker builds a worker over m (not owned). reg may be nil.
func NewWorker(cfg WorkerConfig, m *Models, sink Sink, logger *slog.Logger, reg prometheus.Registerer) (*Worker, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	f := promauto.With(reg)
	return &Worker{cfg: cfg, m: m, sink: sink, logger: logger.With("component", "edge"), now: time.Now,
		frames:    f.NewCounter(prometheus.CounterOpts{Name: "classpulse_edge_frames_total", Help: "Frames captured."}),
		dropped:   f.NewCounter(prometheus.CounterOpts{Name: "classpulse_edge_frames_dropped_total", Help: "Frames dropped because the scorer was behind."}),
		published: f.NewCounter(prometheus.CounterOpts{Name: "classpulse_edge_summaries_total", Help: "Per-window summaries emitted."}),
		scoreSec: f.NewHistogram(prometheus.HistogramOpts{Name: "classpulse_edge_frame_duration_seconds", Help: "Detect and score time per frame.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 10)}),
	}, nil
}

// Run captures until ctx ends, the source ends, or consent is revoked. It
// refuses to start without recorded camera consent.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	rec, err := consent.Load(w.cfg.ConsentPath)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoConsent, err)
	}
	if !rec.CaptureAllowed() {
		return fmt.Errorf("%w: camera consent is not granted", ErrNoConsent)
	}
	if rec.Student != w.cfg.Student {
		return fmt.Errorf("%w: the record is for %q, not %q", ErrNoConsent, rec.Student, w.cfg.Student)
	}
	emotionOff := w.cfg.EmotionOff || !rec.Emotion
	vc, file, err := openSource(w.cfg.Source)
	if err != nil {
		return err
	}
	defer vc.Close()
	scorer := NewScorer(w.m, ScoreConfig{EmotionOff: emotionOff, Detect: DetectConfig{Track: max(w.cfg.Track, 0), Chain: w.cfg.Detector, MaxFaces: 1}})
	defer scorer.Close()
	// Registered before the capture goroutine's clean-up, so it runs after
	// it: the counts are final.
	began := time.Now()
	defer func() {
		scored := w.nScored.Load()
		mean := 0.0
		if scored > 0 {
			mean = float64(w.scoreNanos.Load()) / float64(scored) / 1e6
		}
		w.logger.Info("capture ended", "seconds", time.Since(began).Seconds(), "frames", w.nFrames.Load(),
			"dropped", w.nDropped.Load(), "scored", scored, "score_ms_mean", mean)
	}()
	fq := newFrameQueue(w.cfg.Queue, func() { w.nDropped.Add(1); w.dropped.Inc() })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	capDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(capDone)
		if err := capture(ctx, vc, fq, w.cfg.FPS, file, w.cfg.Loop, func() { w.nFrames.Add(1); w.frames.Inc() }); err != nil {
			w.logger.Error("capture stopped", "err", err)
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
		fq.close()
	}()
	w.logger.Info("capture started", "source", w.cfg.Source, "emotion", !emotionOff, "model", w.m.Version())
	// Frames are scored in their own goroutine, so a slow frame (a loaded
	// machine, a full detection) never holds up a window's summary or the
	// consent check: each scored frame joins the window open when its
	// score arrives.
	results := make(chan []FaceScore, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(results)
		send := func(m *gocv.Mat) bool {
			faces, ok := w.score(scorer, m, fq)
			if !ok {
				return true
			}
			select {
			case results <- faces:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case m := <-fq.q:
				if !send(m) {
					return
				}
			case <-capDone:
				// Drain what was captured; closing results then ends the run.
				for {
					select {
					case m := <-fq.q:
						if !send(m) {
							return
						}
						continue
					default:
					}
					return
				}
			}
		}
	}()
	agg := newWindow()
	tick := time.NewTicker(w.cfg.Window)
	defer tick.Stop()
	// The record is re-read four times a window (and before every summary),
	// so a revocation stops capture within a quarter second; the window in
	// progress is discarded, not sent.
	check := time.NewTicker(w.cfg.Window / 4)
	defer check.Stop()
	revoked := func() bool {
		rec, err := consent.Load(w.cfg.ConsentPath)
		if err != nil || !rec.CaptureAllowed() {
			w.logger.Info("camera consent revoked; capture stopped")
			return true
		}
		return false
	}
	flush := func(end time.Time) error {
		ev := agg.summary(w.cfg, w.m.Version(), end)
		agg = newWindow()
		if err := w.sink(ev); err != nil {
			return fmt.Errorf("worker: emit summary: %w", err)
		}
		w.published.Inc()
		return nil
	}
	// Once the source has ended, the frames still being scored belong to
	// its last second: they join the final window instead of opening new
	// ones as the scorer works through them.
	capEnd, ended := capDone, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-capEnd:
			capEnd, ended = nil, true
		case faces, ok := <-results:
			if !ok {
				// The source ended and every captured frame is scored: emit
				// the last (partial) window.
				if ctx.Err() == nil && agg.frames > 0 {
					return flush(w.now())
				}
				return nil
			}
			agg.add(faces)
		case <-check.C:
			if revoked() {
				return nil
			}
		case <-tick.C:
			if revoked() {
				return nil
			}
			if ended {
				continue
			}
			if err := flush(w.now()); err != nil {
				return err
			}
		}
	}
}

// score scores one frame (the largest face only: one learner per camera)
// and hands the Mat back to the queue; ok is false when it could not be
// scored.
func (w *Worker) score(s *Scorer, m *gocv.Mat, fq *frameQueue) (faces []FaceScore, ok bool) {
	t := time.Now()
	faces, err := s.ScoreFrame(*m, 1)
	fq.release(m)
	d := time.Since(t)
	w.scoreSec.Observe(d.Seconds())
	w.nScored.Add(1)
	w.scoreNanos.Add(int64(d))
	if err != nil {
		w.logger.Warn("frame not scored", "err", err)
		return nil, false
	}
	return faces, true
}
