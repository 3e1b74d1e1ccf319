package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

func init() { registerBench("profile-state", benchProfileState) }

const benchProfileStateSummary = "Time `profile assign` on the processor's state: seed N students (two courses, clicks and a grade each) " +
	"into an empty Redis with the processor's state store, then time reading the features back (export --redis), " +
	"profiling, predicting with a model trained on a synthetic cohort, writing the records back, and writing them again " +
	"(idempotent: nothing changes). Last line: profile-state students=N rows=R read_s=… profile_s=… predict_s=… write_s=… rewrite_s=…"

// benchProfileState measures the live-state half of issue 10: export from
// Redis and the write-back of profiles and predictions.
func benchProfileState(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("bench profile-state", benchProfileStateSummary)
	students := fs.Int("students", 20_000, "students to seed")
	clicks := fs.Int("clicks", 12, "clicks per student and course")
	workers := fs.Int("workers", 4, "students read concurrently")
	seed := fs.Uint64("seed", 1, "random seed")
	redisAddr := fs.String("redis", "", "redis-server host:port; it must be empty. Default: start a redis-server child on a free port")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *students < 3 || *students > 1_000_000 || *clicks < 1 || *clicks > 1000 {
		return fmt.Errorf("bench profile-state: --students must be in 3..1000000 and --clicks in 1..1000")
	}
	addr, stopRedis, err := benchRedis(*redisAddr, out)
	if err != nil {
		return err
	}
	defer stopRedis()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
	defer rdb.Close()
	if n, err := rdb.DBSize(ctx).Result(); err != nil {
		return fmt.Errorf("bench profile-state: redis %s: %w", addr, err)
	} else if n > 0 {
		return fmt.Errorf("bench profile-state: redis %s holds %d keys; give an empty one", addr, n)
	}

	start := time.Now()
	if err := seedProfileState(ctx, rdb, *students, *clicks, *seed); err != nil {
		return err
	}
	fmt.Fprintf(out, "seed students=%d seconds=%.2f\n", *students, time.Since(start).Seconds())

	c, err := profile.GenerateCohort(profile.CohortConfig{Students: 2000, Seed: *seed})
	if err != nil {
		return err
	}
	ds, err := profile.NewDataset(c.Table, nil, profile.ColFinalScore)
	if err != nil {
		return err
	}
	m, err := profile.Fit(ds, profile.TrainConfig{Seed: *seed})
	if err != nil {
		return err
	}

	start = time.Now()
	ids, err := stateStudents(ctx, rdb)
	if err != nil {
		return err
	}
	aggs, err := profile.ReadState(ctx, rdb, state.Config{}, ids, profile.DefaultWindows, *workers)
	if err != nil {
		return err
	}
	t, err := profile.FeaturesFromAggregates(aggs, profile.DefaultWindows)
	if err != nil {
		return err
	}
	readS := time.Since(start).Seconds()
	start = time.Now()
	res, err := profile.Run(t, profile.Options{Seed: *seed, Label: "-"})
	if err != nil {
		return err
	}
	profileS := time.Since(start).Seconds()
	start = time.Now()
	recs, err := profile.Learners(t, res, m, *seed, time.Now())
	if err != nil {
		return err
	}
	predictS := time.Since(start).Seconds()
	start = time.Now()
	w1, err := profile.WriteLearners(ctx, rdb, recs)
	if err != nil {
		return err
	}
	writeS := time.Since(start).Seconds()
	start = time.Now()
	w2, err := profile.WriteLearners(ctx, rdb, recs)
	if err != nil {
		return err
	}
	rewriteS := time.Since(start).Seconds()
	if w1.Written != len(recs) || w2.Unchanged != len(recs) {
		return fmt.Errorf("bench profile-state: first write %+v, second %+v for %d records", w1, w2, len(recs))
	}
	for _, st := range []string{"normalise", "elbow", "kmeans", "pca"} {
		if v, ok := res.Timings[st]; ok {
			fmt.Fprintf(out, "stage %s seconds=%.2f\n", st, v)
		}
	}
	for _, p := range res.Profiles {
		fmt.Fprintf(out, "profile name=%s rows=%d\n", p.Name, p.Size)
	}
	fmt.Fprintf(out, "profile-state students=%d rows=%d read_s=%.2f profile_s=%.2f predict_s=%.2f write_s=%.2f rewrite_s=%.2f k=%d\n",
		len(ids), t.Len(), readS, profileS, predictS, writeS, rewriteS, res.K)
	return ctx.Err()
}

// seedProfileState applies clicks and grades for students in two courses
// with the processor's state store; a student's activity and grade rise
// with a hidden diligence, so the profiles have something to find.
func seedProfileState(ctx context.Context, rdb redis.UniversalClient, students, clicks int, seed uint64) error {
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		return err
	}
	cal := rules.DefaultPolicy()
	rng := rand.New(rand.NewPCG(seed, 11))
	now := time.Now().Add(-time.Hour)
	var ops []state.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := store.Apply(ctx, cal, ops)
		ops = ops[:0]
		return err
	}
	off := int64(0)
	add := func(e stream.Event, topic string) {
		ops = append(ops, state.Op{Event: e, Topic: topic, Offset: off})
		off++
	}
	for s := range students {
		id := "b" + strconv.Itoa(s)
		diligence := rng.Float64()
		for _, course := range []string{"calculus", "law"} {
			n := 1 + int(float64(clicks)*(0.3+1.4*diligence))
			for range n {
				kind := stream.ClickKinds[rng.IntN(len(stream.ClickKinds))]
				c := &stream.Click{Header: stream.NewHeader(id, now.Add(-time.Duration(rng.Int64N(int64(60*24*time.Hour))))), Course: course, Kind: kind}
				if kind == stream.KindStudy || kind == stream.KindPlayer {
					c.DurationS = float64(60 + rng.IntN(int(1+3000*diligence)))
				}
				add(c, stream.TopicClicks)
			}
			score := min(100, max(0, 45+50*diligence+rng.NormFloat64()*8))
			add(&stream.Grade{Header: stream.NewHeader(id, now), Course: course, Term: "2026-autumn", Score: float64(int(score))}, stream.TopicGrades)
		}
		if len(ops) >= 2000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
