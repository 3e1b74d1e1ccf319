package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// seedState applies a small class's clicks and grades with the
// processor's state store, as the processor would.
func seedState(t *testing.T, rdb *redis.Client, students int) {
	t.Helper()
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var ops []state.Op
	now := time.Now().Add(-time.Hour)
	for s := range students {
		id := fmt.Sprintf("s%02d", s)
		for i := range 10 + s {
			kind := stream.ClickKinds[(s+i)%len(stream.ClickKinds)]
			c := &stream.Click{Header: stream.NewHeader(id, now.Add(-time.Duration(i*37)*time.Hour)), Course: "math", Kind: kind}
			if kind == stream.KindStudy {
				c.DurationS = float64(60 * (s + 1))
			}
			ops = append(ops, state.Op{Event: c, Topic: stream.TopicClicks, Offset: int64(len(ops))})
		}
		g := &stream.Grade{Header: stream.NewHeader(id, now), Course: "math", Term: "2026S", Score: float64(30 + 4*s)}
		ops = append(ops, state.Op{Event: g, Topic: stream.TopicGrades, Offset: int64(len(ops))})
	}
	if _, err := store.Apply(context.Background(), rules.DefaultPolicy(), ops); err != nil {
		t.Fatal(err)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestProfileAssignWritesProfilesAndPredictionsBackIdempotently(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	seedState(t, rdb, 15)
	dir := t.TempDir()
	file := func(n string) string { return filepath.Join(dir, n) }
	steps := [][]string{
		{"export", "features", "--redis", r.Addr, "--out", file("live.csv"), "--log-level", "warn"},
		{"profile", "cohort", "--students", "500", "--seed", "2", "--out", file("cohort.csv")},
		{"profile", "train", "--csv", file("cohort.csv"), "--label", "final_score", "--out", file("model.json"), "--rounds", "20", "--log-level", "warn"},
		{"profile", "assign", "--redis", r.Addr, "--model", file("model.json"), "--k", "2", "--log-level", "warn"},
	}
	for _, args := range steps {
		if code := run(context.Background(), args); code != 0 {
			t.Fatalf("classpulse %v exited %d", args, code)
		}
	}
	live := readCSV(t, file("live.csv"))
	if len(live) != 16 || !slices.Contains(live[0], profile.ColStudySeconds) || !slices.Contains(live[0], "quiz_w4") {
		t.Fatalf("export from Redis: %d lines, header %v", len(live), live[0])
	}
	ctx := context.Background()
	snapshot := func() map[string]string {
		out := map[string]string{}
		for s := range 15 {
			id := fmt.Sprintf("s%02d", s)
			out[id] = rdb.HGet(ctx, state.ProfileKey(id), learner.Field("math")).Val()
		}
		return out
	}
	first := snapshot()
	grades := map[string]int{}
	for id, v := range first {
		ls := learner.Parse(map[string]string{learner.Field("math"): v})
		if len(ls) != 1 || ls[0].Profile == "" || ls[0].Grade == "" || ls[0].PD == nil || ls[0].Model == "" || ls[0].At.IsZero() || ls[0].K != 2 {
			t.Fatalf("%s: learner record %q", id, v)
		}
		grades[ls[0].Grade]++
	}
	if code := run(context.Background(), steps[3]); code != 0 {
		t.Fatalf("second assign exited %d", code)
	}
	if again := snapshot(); !mapsEqual(first, again) {
		t.Fatalf("a second run with the same state and model changed the records:\n%v\n%v", first, again)
	}
	// Refusals leave the state alone.
	for _, args := range [][]string{
		{"profile", "assign", "--redis", r.Addr, "--model", file("missing.json")},
		{"profile", "assign", "--redis", r.Addr, "--model", file("cohort.csv")},
		{"export", "features", "--redis", r.Addr, "--events", file("live.csv")},
		{"export", "features"},
	} {
		if code := run(context.Background(), args); code == 0 {
			t.Fatalf("classpulse %v succeeded", args)
		}
	}
	if again := snapshot(); !mapsEqual(first, again) {
		t.Fatal("a refused run changed the records")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
