package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/ops"
	"github.com/classpulse/classpulse/simulate"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/spool"
)

const simulateSummary = "publish a synthetic live class (scores, clicks, consent) to Kafka, spooled to disk while the broker is away"

func init() { register("simulate", simulateSummary, runSimulate) }

// defaultSimulateSpool is the spool folder of a session: one writer per
// folder, so two simulators of different sessions do not share one.
func defaultSimulateSpool(session string) string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = "."
	}
	return filepath.Join(d, "classpulse", "simulate-spool", session)
}

func runSimulate(ctx context.Context, args []string) error {
	fs := newFlagSet("simulate", simulateSummary)
	var in infra
	in.register(fs, true, false)
	var cfg simulate.Config
	fs.IntVar(&cfg.Students, "students", 40, "students in the class")
	fs.StringVar(&cfg.Session, "session", "demo-class", "live session id")
	fs.StringVar(&cfg.Course, "course", "calculus", "course id of the session")
	fs.DurationVar(&cfg.Tick, "tick", time.Second, "time between two score events of one student")
	fs.DurationVar(&cfg.ClickEvery, "click-every", 15*time.Second, "mean time between two clickstream events of one student")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "session history to back-fill at start, stamped in the past")
	dur := fs.Duration("for", 0, "stop after this long (default: until interrupted)")
	spoolDir := fs.String("spool-dir", "", "folder of the on-disk event spool: events wait here, in order, while the broker is away, and survive a restart (default: <user cache dir>/classpulse/simulate-spool/<session>)")
	spoolMax := fs.Int64("spool-max-bytes", 64<<20, "disk the spool may use; past it the oldest undelivered events are dropped and counted in classpulse_spool_dropped_records_total")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics (the spool's counters) here, host:port; empty: off")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	if *spoolDir == "" {
		*spoolDir = defaultSimulateSpool(cfg.Session)
	}
	kafkaTLS, err := in.kafkaClientTLS(ctx)
	if err != nil {
		return err
	}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, TLS: kafkaTLS, WriteTimeout: 5 * time.Second}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	// The class publishes into the spool; the spool delivers to the broker.
	// Events left from a previous run go out first, so the order holds
	// across restarts. The class is built first so a bad setting is refused
	// before the spool folder is created.
	var sp *spool.Spool
	class, err := simulate.New(cfg, spoolPublisher(func(ctx context.Context, es ...stream.Event) error { return sp.Publish(ctx, es...) }), logger)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	if sp, err = spool.Open(spool.Config{Dir: *spoolDir, MaxBytes: *spoolMax}, logger, reg); err != nil {
		return err
	}
	defer sp.Close()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	// The metrics server ends with the class: rctx is cancelled once the
	// class has stopped and the spool has had its chance to flush.
	rctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	g, gctx := errgroup.WithContext(rctx)
	dctx, stopDelivery := context.WithCancel(context.Background())
	defer stopDelivery()
	g.Go(func() error { return sp.Run(dctx, spool.Publisher(prod)) })
	if *metricsAddr != "" {
		g.Go(func() error {
			return ops.Serve(gctx, *metricsAddr, ops.Handler(reg, func(context.Context) error { return nil }), logger)
		})
	}
	g.Go(func() error {
		defer func() {
			// A few seconds to deliver the last events; the rest stays in
			// the spool for the next start.
			fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if !sp.Flush(fctx) {
				logger.Warn("broker unreachable at exit; events kept in the spool for the next start", "pending", sp.Pending(), "spool", *spoolDir)
			}
			cancel()
			stopDelivery()
			stopAll()
		}()
		if err := class.Run(gctx); err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		return nil
	})
	err = g.Wait()
	logger.Info("simulation finished", "events", class.Sent(), "pending_in_spool", sp.Pending())
	return err
}

// spoolPublisher adapts a function to simulate.Publisher.
type spoolPublisher func(ctx context.Context, events ...stream.Event) error

func (f spoolPublisher) Publish(ctx context.Context, events ...stream.Event) error {
	return f(ctx, events...)
}
