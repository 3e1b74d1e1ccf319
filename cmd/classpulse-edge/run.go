package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/spool"
	"github.com/classpulse/classpulse/vision"
	"github.com/classpulse/classpulse/vision/consent"
)

func init() {
	register("run", "capture with consent and publish one summary per second (spooled while the broker is away)", runCapture)
}

// common holds the flags shared by run and the consent commands.
type common struct {
	brokers  config.List
	kafkaTLS config.TLS
	stateDir string
	student  string
	logLevel string
	// birthDate and minor say how old the learner is, from the machine's
	// local configuration or roster (consent.Learner).
	birthDate string
	minor     bool
	spoolMax  int64
}

func (c *common) flags(fs *flag.FlagSet) {
	c.brokers = config.List{"127.0.0.1:9092"}
	fs.Var(&c.brokers, "brokers", "Kafka bootstrap brokers host:port,…")
	c.kafkaTLS.Register(fs, "kafka", "Kafka")
	fs.StringVar(&c.stateDir, "state-dir", defaultStateDir(), "local folder for the consent record and the event spool")
	fs.StringVar(&c.student, "student", "", "student id (required)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn, error")
	fs.Int64Var(&c.spoolMax, "spool-max-bytes", 64<<20, "disk the event spool may use while the broker is away; past it the oldest events are dropped (counted in classpulse_spool_dropped_records_total)")
	fs.StringVar(&c.birthDate, "birth-date", "", "the student's birth date YYYY-MM-DD; under 14, only a guardian's consent allows capture")
	fs.BoolVar(&c.minor, "minor-under-14", false, "the student is under 14 (when no birth date is known): only a guardian's consent allows capture")
}

// learner is what the flags say about the student's age.
func (c *common) learner(now time.Time) (consent.Learner, error) {
	d, err := consent.ParseBirthDate(c.birthDate, now)
	if err != nil {
		return consent.Learner{}, err
	}
	return consent.Learner{BirthDate: d, MinorUnder14: c.minor}, nil
}

// checkConsent refuses capture before any camera or model is opened: no
// camera consent for this student and notice, or a minor's consent not
// given by a guardian. The worker re-reads the record every quarter window
// for revocations.
func (c *common) checkConsent(now time.Time) error {
	l, err := c.learner(now)
	if err != nil {
		return err
	}
	rec, err := consent.Load(c.consentPath())
	if err != nil {
		return fmt.Errorf("%w: %v", vision.ErrNoConsent, err)
	}
	if rec.Student != c.student {
		return fmt.Errorf("%w: the record is for %q, not %q", vision.ErrNoConsent, rec.Student, c.student)
	}
	if err := rec.CheckCapture(l, now); err != nil {
		return fmt.Errorf("%w: %v", vision.ErrNoConsent, err)
	}
	return nil
}

func defaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "classpulse-edge")
	}
	return ".classpulse-edge"
}

func (c *common) consentPath() string { return filepath.Join(c.stateDir, "consent.json") }

// outbox opens the spool in <state-dir>/<name> and a producer and returns a
// function that runs delivery until ctx ends. `run` and the consent
// commands use different spools: a spool has one writer, and `consent
// revoke` is meant to be run while `run` is capturing.
func (c *common) outbox(name string, logger *slog.Logger, reg prometheus.Registerer) (*spool.Spool, func(context.Context) error, func(), error) {
	tc, err := c.kafkaTLS.Client()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("kafka %w (--kafka-tls*)", err)
	}
	sp, err := spool.Open(spool.Config{Dir: filepath.Join(c.stateDir, name), MaxBytes: c.spoolMax}, logger, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: c.brokers, TLS: tc, WriteTimeout: 5 * time.Second}, logger)
	if err != nil {
		sp.Close()
		return nil, nil, nil, err
	}
	run := func(ctx context.Context) error { return sp.Run(ctx, spool.Publisher(p)) }
	return sp, run, func() { p.Close(); sp.Close() }, nil
}

func runCapture(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c common
	c.flags(fs)
	var wc vision.WorkerConfig
	fs.StringVar(&wc.Source, "source", "0", "camera index or video file")
	fs.StringVar(&wc.Session, "session", "", "live session id (required)")
	fs.StringVar(&wc.Course, "course", "", "course id (required)")
	fs.IntVar(&wc.FPS, "fps", 15, "frames per second to read")
	fs.BoolVar(&wc.Loop, "loop", false, "rewind a video file at its end")
	fs.IntVar(&wc.Track, "track", 5, "frames a full detection's faces are only followed before the next (negative: full detection every frame)")
	fs.StringVar(&wc.Detector, "detector", vision.DefaultChain, "face detector chain, one of "+fmt.Sprint(vision.Chains))
	dir := fs.String("model-dir", "models", "model folder")
	jur := fs.String("jurisdiction", "", "where the learner is; eu switches emotion inference off entirely")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics here (host:port); empty: off")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := config.NewLogger(os.Stderr, c.logLevel, "text")
	if err != nil {
		return err
	}
	// A broker that is away is fine (the spool keeps the events), but one
	// whose certificate --kafka-tls-ca does not sign is a mistake to stop on.
	if _, err := c.kafkaTLS.ClientChecked(ctx, c.brokers); err != nil {
		return fmt.Errorf("kafka %w (--kafka-tls*)", err)
	}
	if wc.EmotionOff, err = vision.EmotionForbidden(*jur); err != nil {
		return err
	}
	wc.Student, wc.ConsentPath = c.student, c.consentPath()
	if err := c.checkConsent(time.Now()); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	m, err := vision.LoadModels(*dir)
	if err != nil {
		return err
	}
	defer m.Close()
	sp, deliver, closeOut, err := c.outbox("spool", logger, reg)
	if err != nil {
		return err
	}
	defer closeOut()
	w, err := vision.NewWorker(wc, m, func(e stream.Event) error { return sp.Publish(ctx, e) }, logger, reg)
	if err != nil {
		return err
	}
	// rctx ends the metrics server once capture has stopped (the video
	// ended, consent was revoked) and the spool had its chance to flush.
	rctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	g, gctx := errgroup.WithContext(rctx)
	dctx, stopDelivery := context.WithCancel(context.Background())
	g.Go(func() error { return deliver(dctx) })
	if *metricsAddr != "" {
		srv := &http.Server{Addr: *metricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			go func() { <-gctx.Done(); srv.Close() }()
			if err := srv.ListenAndServe(); err != http.ErrServerClosed {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		defer func() {
			// Give the spool a moment to deliver the last summaries; what is
			// left stays on disk for the next start.
			fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			sp.Flush(fctx)
			cancel()
			stopDelivery()
			stopAll()
		}()
		if err := w.Run(gctx); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		return nil
	})
	return g.Wait()
}
