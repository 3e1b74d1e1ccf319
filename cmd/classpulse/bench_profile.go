package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/profile"
)

func init() { registerBench("profile", benchProfile) }

// benchProfile generates a cohort and times profiling it: normalising,
// the elbow method, K-means, naming and PCA, and (unless --predict=false)
// the comparison of the three grade predictors on held-out students.
func benchProfile(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("bench profile", "Time profiling a synthetic cohort. Last line: profile students=N seconds=S k=K.")
	students := fs.Int("students", 100_000, "students in the cohort")
	seed := fs.Uint64("seed", 1, "random seed")
	predict := fs.Bool("predict", true, "also train and compare the grade predictors")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	start := time.Now()
	c, err := profile.GenerateCohort(profile.CohortConfig{Students: *students, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cohort students=%d columns=%d seconds=%.2f\n", c.Table.Len(), len(c.Table.Columns), time.Since(start).Seconds())
	label := profile.ColFinalScore
	if !*predict {
		label = "-" // no such column: prediction is skipped
	}
	start = time.Now()
	res, err := profile.Run(c.Table, profile.Options{Seed: *seed, Label: label})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	for _, st := range []string{"normalise", "elbow", "kmeans", "pca", "predict"} {
		if v, ok := res.Timings[st]; ok {
			fmt.Fprintf(out, "stage %s seconds=%.2f\n", st, v)
		}
	}
	for _, p := range res.Profiles {
		fmt.Fprintf(out, "profile name=%s students=%d\n", p.Name, p.Size)
	}
	if res.Prediction != nil {
		for _, r := range res.Prediction.Results {
			fmt.Fprintf(out, "model %q accuracy=%.3f macro_f1=%.3f train_seconds=%.2f\n", r.Name, r.Metrics.Accuracy, r.Metrics.MacroF1, r.Seconds)
		}
	}
	fmt.Fprintf(out, "profile students=%d seconds=%.2f k=%d\n", c.Table.Len(), secs, res.K)
	return ctx.Err()
}
