package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/profile"
)

const exportSummary = "export data for other systems: classpulse export features --events FILE.jsonl"

func init() {
	register("export", exportSummary, func(ctx context.Context, args []string) error {
		if len(args) == 0 || args[0] != "features" {
			fmt.Fprintln(os.Stderr, "Usage: classpulse export features --events FILE.jsonl [--out FILE.csv] [--windows N]")
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				return nil
			}
			return fmt.Errorf("unknown export %q", args[0])
		}
		return runExportFeatures(ctx, args[1:])
	})
}

func runExportFeatures(ctx context.Context, args []string) error {
	fs := newFlagSet("export features", "Compute the profile features per student and course from a file of v1 events, one {\"topic\": \"classpulse.clicks.v1\", \"event\": {…}} object per line, and write them as CSV. Bad lines are reported and skipped (or fatal with --strict).")
	var lf logFlags
	lf.register(fs)
	events := fs.String("events", "", "events file, JSON lines (required)")
	out := fs.String("out", "-", "output CSV file, - for stdout")
	windows := fs.Int("windows", profile.DefaultWindows, "time windows each course's click counts are cut into")
	strict := fs.Bool("strict", false, "fail on the first bad line instead of skipping bad lines")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *events == "" {
		return errors.New("--events is required")
	}
	logger, err := lf.logger()
	if err != nil {
		return err
	}
	acc, err := profile.NewAccumulator(*windows)
	if err != nil {
		return err
	}
	f, err := os.Open(*events)
	if err != nil {
		return err
	}
	defer f.Close()
	bad, err := acc.ReadJSONL(bufio.NewReaderSize(f, 1<<20), *events)
	if err != nil {
		return err
	}
	if bad != nil {
		if *strict {
			return bad
		}
		logger.Warn("skipped bad lines", "count", bad.Total, "err", bad)
	}
	t, err := profile.FeaturesFromAggregates(acc.Aggregates(), *windows)
	if err != nil {
		return err
	}
	if err := writeFile(*out, func(w io.Writer) error { return t.WriteCSV(w, "") }); err != nil {
		return err
	}
	logger.Info("features exported", "rows", t.Len(), "events", acc.Events, "ignored", acc.Ignored)
	return ctx.Err()
}
