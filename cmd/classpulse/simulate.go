package main

import (
	"context"
	"time"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/simulate"
	"github.com/classpulse/classpulse/stream"
)

const simulateSummary = "publish a synthetic live class (scores, clicks, consent) to Kafka"

func init() { register("simulate", simulateSummary, runSimulate) }

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
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	class, err := simulate.New(cfg, prod, logger)
	if err != nil {
		return err
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	err = class.Run(ctx)
	logger.Info("simulation finished", "events", class.Sent())
	return err
}
