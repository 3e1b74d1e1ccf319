package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/stream/state"
)

const exportSummary = "export data for other systems: classpulse export features (--events FILE.jsonl | --redis ADDR)"

func init() {
	register("export", exportSummary, func(ctx context.Context, args []string) error {
		if len(args) == 0 || args[0] != "features" {
			fmt.Fprintln(os.Stderr, "Usage: classpulse export features (--events FILE.jsonl | --redis ADDR) [--out FILE.csv] [--windows N]")
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				return nil
			}
			return fmt.Errorf("unknown export %q", args[0])
		}
		return runExportFeatures(ctx, args[1:])
	})
}

func runExportFeatures(ctx context.Context, args []string) error {
	fs := newFlagSet("export features", "Compute the profile features per student and course and write them as CSV, either from a file of v1 events, one {\"topic\": \"classpulse.clicks.v1\", \"event\": {…}} object per line (bad lines are reported and skipped, or fatal with --strict), or from the state the stream processor keeps in Redis (--redis; video durations and live-session counts are not kept there and come out missing).")
	var lf logFlags
	lf.register(fs)
	events := fs.String("events", "", "events file, JSON lines")
	var in infra
	fs.StringVar(&in.redis, "redis", "", "read the processor's state in this Redis instead: host:port (several, comma-separated, for a cluster)")
	fs.BoolVar(&in.redisCluster, "redis-cluster", false, "treat --redis as Redis Cluster seed nodes even when only one is given")
	var scfg state.Config
	fs.DurationVar(&scfg.Horizon, "horizon", 0, "with --redis: the processor's --horizon (default 10m)")
	workers := fs.Int("workers", 4, "with --redis: students read concurrently")
	out := fs.String("out", "-", "output CSV file, - for stdout")
	windows := fs.Int("windows", profile.DefaultWindows, "time windows each course's click counts are cut into")
	dttw := fs.Duration("dttw", 0, "with --events: count clicks in fixed windows of this length first, as the processor does (168h, its default), so the export equals one from --redis; 0 cuts each course's click span itself")
	strict := fs.Bool("strict", false, "with --events: fail on the first bad line instead of skipping bad lines")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	// The two sources are alternatives: one given on the command line wins
	// over the other coming from the environment (a shell that exports
	// CLASSPULSE_REDIS for the other commands can still export a file).
	fromEnv := func(name, v string) bool { return v != "" && os.Getenv(config.EnvName(name)) == v }
	switch {
	case *events != "" && in.redis != "" && fromEnv("redis", in.redis) && !fromEnv("events", *events):
		in.redis = ""
	case *events != "" && in.redis != "" && fromEnv("events", *events) && !fromEnv("redis", in.redis):
		*events = ""
	}
	if (*events == "") == (in.redis == "") {
		return errors.New("give exactly one of --events and --redis")
	}
	logger, err := lf.logger()
	if err != nil {
		return err
	}
	var t *profile.Table
	if in.redis != "" {
		t, err = featuresFromRedis(ctx, &in, scfg, *windows, *workers, logger)
	} else {
		t, err = featuresFromEvents(*events, *windows, *dttw, *strict, logger)
	}
	if err != nil {
		return err
	}
	if err := writeFile(*out, func(w io.Writer) error { return t.WriteCSV(w, "") }); err != nil {
		return err
	}
	logger.Info("features exported", "rows", t.Len())
	return ctx.Err()
}

func featuresFromEvents(path string, windows int, dttw time.Duration, strict bool, logger *slog.Logger) (*profile.Table, error) {
	acc, err := profile.NewAccumulator(windows)
	if err != nil {
		return nil, err
	}
	if err := acc.SetDTTW(dttw); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bad, err := acc.ReadJSONL(bufio.NewReaderSize(f, 1<<20), path)
	if err != nil {
		return nil, err
	}
	if bad != nil {
		if strict {
			return nil, bad
		}
		logger.Warn("skipped bad lines", "count", bad.Total, "err", bad)
	}
	logger.Info("events read", "events", acc.Events, "ignored", acc.Ignored)
	return profile.FeaturesFromAggregates(acc.Aggregates(), windows)
}

// featuresFromRedis exports the features of every student with state in
// the Redis at in.redis.
func featuresFromRedis(ctx context.Context, in *infra, scfg state.Config, windows, workers int, logger *slog.Logger) (*profile.Table, error) {
	rdb := in.redisClient()
	defer rdb.Close()
	students, err := stateStudents(ctx, rdb)
	if err != nil {
		return nil, err
	}
	aggs, err := profile.ReadState(ctx, rdb, scfg, students, windows, workers)
	if err != nil {
		return nil, err
	}
	logger.Info("state read", "students", len(students), "rows", len(aggs))
	return profile.FeaturesFromAggregates(aggs, windows)
}

// stateStudents lists the students that have any key in Redis, sorted.
func stateStudents(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	keys, err := scanAll(ctx, rdb, "{s:*}:*")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		id, ok := strings.CutPrefix(k, "{s:")
		if i := strings.Index(id, "}:"); ok && i > 0 {
			if id = id[:i]; len(out) == 0 || out[len(out)-1] != id {
				out = append(out, id)
			}
		}
	}
	return out, nil
}
