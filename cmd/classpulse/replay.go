package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/stream/replay"
)

const replaySummary = "backtest a policy: run a file of v1 events through the processor offline and write the warnings it would have raised"

func init() { register("replay", replaySummary, runReplay) }

// runReplay wires stream/replay to files: events in (--in, "-" for stdin),
// warning events out as JSON lines (--out, "-" for stdout); skipped lines
// and the summary go to stderr. See docs/policy.md, "Backtesting with
// replay".
func runReplay(ctx context.Context, args []string) error {
	fs := newFlagSet("replay", replaySummary)
	var in infra
	in.register(fs, false, false)
	policyPath := fs.String("policy", "", "policy file to backtest (default: the embedded default policy)")
	inPath := fs.String("in", "", "events file, one v1 event per line (\"-\" reads stdin); required")
	outPath := fs.String("out", "-", "where the warning events go, one JSON object per line (\"-\" writes stdout)")
	scratch := fs.String("redis", "", "an EMPTY scratch Redis host:port to keep the replay's state in, faster than the embedded server for large files (default: embedded)")
	var cfg replay.Config
	fs.DurationVar(&cfg.Tick, "tick", time.Second, "event time handed to the processor as one batch (shorter is closer to a live run)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *inPath == "" {
		fs.Usage()
		return errors.New("replay: --in is required")
	}
	logger, err := in.logger()
	if err != nil {
		return err
	}
	policy, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	src, name := io.Reader(os.Stdin), "stdin"
	if *inPath != "-" {
		f, err := os.Open(*inPath)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer f.Close()
		src, name = f, *inPath
	}
	dst := io.Writer(os.Stdout)
	var outFile *os.File
	if *outPath != "-" {
		outFile, err = os.Create(*outPath)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer outFile.Close()
		dst = outFile
	}
	opts := []replay.Option{}
	if *scratch != "" {
		rdb := redis.NewClient(&redis.Options{Addr: *scratch})
		defer rdb.Close()
		opts = append(opts, replay.WithRedis(rdb))
	}
	r, err := replay.New(cfg, policy, logger, append(opts, replay.WithInvalid(func(line int, err error) {
		fmt.Fprintf(os.Stderr, "%s:%d: skipped: %v\n", name, line, err)
	}))...)
	if err != nil {
		return err
	}
	rep, err := r.Run(ctx, src, dst)
	fmt.Fprintln(os.Stderr, rep)
	if err != nil {
		return err
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	return nil
}
