package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/stream/state"
)

const profileSummary = "learner profiles and grade prediction: cohort, report, train, predict, assign"

var profileCommands = map[string]struct {
	summary string
	run     func(ctx context.Context, args []string) error
}{
	"cohort":  {"write a synthetic cohort's feature table as CSV", runProfileCohort},
	"report":  {"cluster learners, compare grade predictors, write an HTML report", runProfileReport},
	"train":   {"train a grade model on a feature CSV and save it as JSON", runProfileTrain},
	"predict": {"score a feature CSV with a saved model: id, class, probabilities", runProfilePredict},
	"assign":  {"profile every student in the live state and write profile (and predicted grade) back to it", runProfileAssign},
}

func init() {
	register("profile", profileSummary, func(ctx context.Context, args []string) error {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			profileUsage(os.Stderr)
			return nil
		}
		c, ok := profileCommands[args[0]]
		if !ok {
			profileUsage(os.Stderr)
			return fmt.Errorf("unknown profile command %q", args[0])
		}
		return c.run(ctx, args[1:])
	})
}

func profileUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: classpulse profile <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(profileCommands))
	for n := range profileCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, profileCommands[n].summary)
	}
}

// logFlags are the logging flags of the batch commands.
type logFlags struct{ level, format string }

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger() (*slog.Logger, error) {
	lg, err := config.NewLogger(os.Stderr, l.level, l.format)
	if err != nil {
		return nil, err
	}
	return lg.With("component", "profile"), nil
}

// createOut opens path for writing, "-" meaning stdout. The caller closes
// the returned closer after flushing, and checks its error.
func createOut(path string) (io.WriteCloser, error) {
	if path == "-" || path == "" {
		return nopCloser{os.Stdout}, nil
	}
	return os.Create(path)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// writeFile writes through fn into path, buffered, and reports the first
// error of writing, flushing or closing.
func writeFile(path string, fn func(w io.Writer) error) error {
	f, err := createOut(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = fn(bw)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readTable(path string, opt profile.CSVOptions) (*profile.Table, error) {
	if path == "" {
		return nil, errors.New("--csv is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opt.Source = path
	return profile.ReadCSV(bufio.NewReaderSize(f, 1<<20), opt)
}

func runProfileCohort(_ context.Context, args []string) error {
	fs := newFlagSet("profile cohort", "Write a synthetic cohort (profile mix 10 % marginal, 68 % balanced, 22 % diligent; correlated behaviour and grades) as a feature CSV.")
	var cfg profile.CohortConfig
	fs.IntVar(&cfg.Students, "students", 2000, "students in the cohort")
	fs.IntVar(&cfg.Windows, "windows", profile.DefaultWindows, "time windows of the click counts")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	out := fs.String("out", "-", "output CSV file, - for stdout")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	c, err := profile.GenerateCohort(cfg)
	if err != nil {
		return err
	}
	return writeFile(*out, func(w io.Writer) error { return c.Table.WriteCSV(w, "") })
}

func runProfileReport(ctx context.Context, args []string) error {
	fs := newFlagSet("profile report", "Cluster the learners of a feature CSV into profiles (K-means, k by the elbow method), compare grade predictors on held-out students, and write a self-contained HTML report.")
	var lf logFlags
	lf.register(fs)
	in := fs.String("csv", "", "feature CSV (required)")
	id := fs.String("id", "id", "id column")
	label := fs.String("label", profile.ColFinalScore, "score or class column the grade comes from (prediction is skipped when absent)")
	out := fs.String("out", "profiles.html", "HTML report file")
	assign := fs.String("assignments", "", "also write id,cluster,profile as CSV to this file")
	var opt profile.Options
	fs.Uint64Var(&opt.Seed, "seed", 1, "random seed")
	fs.IntVar(&opt.K, "k", 0, "number of profiles, 0 for the elbow method")
	fs.IntVar(&opt.MaxK, "max-k", 8, "largest k the elbow method tries")
	var exclude config.List
	fs.Var(&exclude, "exclude", "columns to ignore, comma-separated")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := lf.logger()
	if err != nil {
		return err
	}
	t, err := readTable(*in, profile.CSVOptions{ID: *id, Exclude: exclude})
	if err != nil {
		return err
	}
	opt.Label, opt.Logger = *label, logger
	res, err := profile.Run(t, opt)
	if err != nil {
		return err
	}
	if err := writeFile(*out, func(w io.Writer) error {
		return profile.WriteReport(w, res, profile.ReportInfo{Source: *in, Seed: opt.Seed})
	}); err != nil {
		return err
	}
	if *assign != "" {
		if err := writeFile(*assign, func(w io.Writer) error { return writeAssignments(w, res.Assignments()) }); err != nil {
			return err
		}
	}
	for _, p := range res.Profiles {
		logger.Info("profile", "name", p.Name, "students", p.Size, "behaviour", p.Groups[profile.GroupBehaviour], "outcome", p.Groups[profile.GroupOutcome], "emotion", p.Groups[profile.GroupEmotion])
	}
	if res.Prediction != nil {
		for _, r := range res.Prediction.Results {
			logger.Info("grade model", "model", r.Name, "accuracy", r.Metrics.Accuracy, "macro_f1", r.Metrics.MacroF1)
		}
	}
	logger.Info("report written", "file", *out, "students", t.Len(), "k", res.K)
	return ctx.Err()
}

func writeAssignments(w io.Writer, as []profile.Assignment) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "cluster", "profile"}); err != nil {
		return err
	}
	for _, a := range as {
		if err := cw.Write([]string{a.ID, strconv.Itoa(a.Cluster), a.Profile}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func runProfileTrain(ctx context.Context, args []string) error {
	fs := newFlagSet("profile train", "Train a gradient-boosted grade model on a numeric feature CSV, compare it with logistic regression, a random forest and the majority class on held-out students, and save it (trained on every row) as a versioned JSON model file.")
	var lf logFlags
	lf.register(fs)
	in := fs.String("csv", "", "feature CSV (required)")
	label := fs.String("label", "", "label column: a 0–100 score (graded A–D) or a class name (required)")
	id := fs.String("id", "id", "id column")
	out := fs.String("out", "", "model file to write (required)")
	var exclude config.List
	fs.Var(&exclude, "exclude", "columns to ignore, comma-separated")
	var cfg profile.TrainConfig
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.Float64Var(&cfg.Holdout, "holdout", 0.2, "share of students held out for the comparison")
	fs.IntVar(&cfg.GBT.Rounds, "rounds", 120, "boosting rounds")
	fs.IntVar(&cfg.GBT.MaxDepth, "depth", 3, "tree depth")
	fs.Float64Var(&cfg.GBT.LearningRate, "learning-rate", 0.1, "learning rate")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *label == "" || *out == "" {
		return errors.New("--label and --out are required")
	}
	logger, err := lf.logger()
	if err != nil {
		return err
	}
	cfg.Logger = logger
	t, err := readTable(*in, profile.CSVOptions{ID: *id, Label: *label, Exclude: exclude})
	if err != nil {
		return err
	}
	ds, err := profile.NewDataset(t, nil, *label)
	if err != nil {
		return err
	}
	cmp, err := profile.Compare(ds, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d students, %d features, classes %s; %d held out\n", t.Len(), len(ds.Features), strings.Join(ds.Classes, " "), len(cmp.Test))
	fmt.Fprintf(os.Stderr, "%-24s %8s %8s\n", "model", "accuracy", "macro-F1")
	for _, r := range cmp.Results {
		fmt.Fprintf(os.Stderr, "%-24s %7.1f%% %8.3f\n", r.Name, 100*r.Metrics.Accuracy, r.Metrics.MacroF1)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := profile.Fit(ds, cfg)
	if err != nil {
		return err
	}
	if err := writeFile(*out, m.Save); err != nil {
		return err
	}
	logger.Info("model written", "file", *out, "rows", m.Rows, "features", len(m.Features), "rounds", len(m.GBT.Trees))
	return nil
}

func runProfilePredict(_ context.Context, args []string) error {
	fs := newFlagSet("profile predict", "Score a feature CSV with a saved model. Writes id, the predicted class and one probability column per class (p_A, p_B, …) as CSV. Missing cells are imputed with the training medians.")
	in := fs.String("csv", "", "feature CSV (required); must have every feature column of the model")
	modelPath := fs.String("model", "", "model file (required)")
	id := fs.String("id", "id", "id column")
	out := fs.String("out", "-", "output CSV file, - for stdout")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return errors.New("--model is required")
	}
	mf, err := os.Open(*modelPath)
	if err != nil {
		return err
	}
	m, err := profile.LoadModel(mf)
	mf.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	t, err := readTable(*in, profile.CSVOptions{ID: *id})
	if err != nil {
		return err
	}
	x, err := t.Select(m.Features)
	if err != nil {
		return fmt.Errorf("%s does not fit the model: %w", *in, err)
	}
	return writeFile(*out, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		header := []string{"id", "predicted"}
		for _, c := range m.Classes {
			header = append(header, "p_"+c)
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		rec := make([]string, len(header))
		for i, r := range x {
			p, err := m.Proba(r)
			if err != nil {
				return err
			}
			best := 0
			for c := range p {
				if p[c] > p[best] {
					best = c
				}
			}
			rec[0], rec[1] = t.IDs[i], m.Classes[best]
			for c, v := range p {
				rec[2+c] = strconv.FormatFloat(v, 'f', 4, 64)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}

func runProfileAssign(ctx context.Context, args []string) error {
	fs := newFlagSet("profile assign", "Profile every student and course in the processor's state in Redis (the features of `export features --redis`), and write each one's profile and, with --model, the predicted grade and probability of D back to the student's roster hash ({s:<id>}:profile, field learner|<course>, JSON) with the time and the model version. Idempotent: a record whose values did not change is not rewritten.")
	var lf logFlags
	lf.register(fs)
	var in infra
	fs.StringVar(&in.redis, "redis", "127.0.0.1:6379", "Redis address host:port (several, comma-separated, for a cluster)")
	fs.BoolVar(&in.redisCluster, "redis-cluster", false, "treat --redis as Redis Cluster seed nodes even when only one is given")
	var scfg state.Config
	fs.DurationVar(&scfg.Horizon, "horizon", 0, "the processor's --horizon (default 10m)")
	workers := fs.Int("workers", 4, "students read concurrently")
	windows := fs.Int("windows", profile.DefaultWindows, "time windows each course's click counts are cut into (as the model was trained with)")
	modelPath := fs.String("model", "", "grade model file (profile train); without it only profiles are written")
	dry := fs.Bool("dry-run", false, "compute and print id,course,profile,grade,p_d as CSV, write nothing to Redis")
	var opt profile.Options
	fs.Uint64Var(&opt.Seed, "seed", 1, "random seed")
	fs.IntVar(&opt.K, "k", 0, "number of profiles, 0 for the elbow method")
	fs.IntVar(&opt.MaxK, "max-k", 8, "largest k the elbow method tries")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := lf.logger()
	if err != nil {
		return err
	}
	var m *profile.Model
	if *modelPath != "" {
		mf, err := os.Open(*modelPath)
		if err != nil {
			return err
		}
		m, err = profile.LoadModel(mf)
		mf.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *modelPath, err)
		}
	}
	t, err := featuresFromRedis(ctx, &in, scfg, *windows, *workers, logger)
	if err != nil {
		return err
	}
	opt.Label, opt.Logger = "-", logger // no such column: no model comparison here
	res, err := profile.Run(t, opt)
	if err != nil {
		return err
	}
	recs, err := profile.Learners(t, res, m, opt.Seed, time.Now())
	if err != nil {
		return err
	}
	if *dry {
		return writeFile("-", func(w io.Writer) error { return writeLearners(w, recs) })
	}
	rdb := in.redisClient()
	defer rdb.Close()
	wr, err := profile.WriteLearners(ctx, rdb, recs)
	if err != nil {
		return err
	}
	model := ""
	if m != nil {
		model = m.ID()
	}
	logger.Info("profiles written back", "rows", len(recs), "written", wr.Written, "unchanged", wr.Unchanged, "k", res.K, "model", model)
	return ctx.Err()
}

func writeLearners(w io.Writer, recs []profile.StudentLearner) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "course", "cluster", "profile", "grade", "p_d"}); err != nil {
		return err
	}
	for _, r := range recs {
		pd := ""
		if r.PD != nil {
			pd = strconv.FormatFloat(*r.PD, 'f', 4, 64)
		}
		if err := cw.Write([]string{r.Student, r.Course, strconv.Itoa(r.Cluster), r.Profile, r.Grade, pd}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
