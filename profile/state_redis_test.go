package profile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// cohortEvents is a small seeded class: clicks of every kind over six
// weeks in two courses, a grade per course (two terms for one), and one
// live session of scores per student in the last hour.
func cohortEvents(seed uint64, students int, now time.Time) []stream.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []stream.Event
	start := now.Add(-42 * 24 * time.Hour)
	for s := range students {
		id := fmt.Sprintf("st%02d", s)
		for _, course := range []string{"math", "law"} {
			for range 20 + rng.IntN(40) {
				kind := stream.ClickKinds[rng.IntN(len(stream.ClickKinds))]
				c := &stream.Click{Header: stream.NewHeader(id, start.Add(time.Duration(rng.Int64N(int64(41*24*time.Hour))))), Course: course, Kind: kind}
				if kind == stream.KindStudy || kind == stream.KindPlayer {
					c.DurationS = float64(30 + rng.IntN(900))
				}
				out = append(out, c)
			}
			out = append(out, &stream.Grade{Header: stream.NewHeader(id, now.Add(-2*time.Hour)), Course: course, Term: "2026S", Score: float64(40 + rng.IntN(60))})
		}
		out = append(out, &stream.Grade{Header: stream.NewHeader(id, now.Add(-3*time.Hour)), Course: "law", Term: "2025F", Score: 50})
		t0 := now.Add(-time.Hour).Truncate(time.Second)
		for sec := range 90 {
			a := rng.Float64()
			sc := &stream.Score{Header: stream.NewHeader(id, t0.Add(time.Duration(sec)*time.Second)), Session: "L-" + id, Course: "math",
				WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: a, Model: "m1"}
			if sec%3 != 0 {
				sc.Learning = &stream.Learning{Engaged: a, Confused: rng.Float64(), Bored: rng.Float64() / 2, Frustrated: rng.Float64() / 4}
			}
			out = append(out, sc)
		}
	}
	return out
}

// eventLine wraps a valid event as one line of an events file.
func eventLine(t testing.TB, e stream.Event) string {
	t.Helper()
	b, err := stream.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{"topic": e.Topic(), "event": json.RawMessage(b)})
	return string(env)
}

func appliedEvents(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "classpulse_processor_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// applyThroughProcessor publishes events to the embedded broker and runs
// the real processor until it has applied all of them to redis-server.
func applyThroughProcessor(t *testing.T, events []stream.Event) *redis.Client {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker := testenv.StartBroker(t, 4)
	rdb := testenv.StartRedis(t).Client(t)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker.Addr()}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg := prometheus.NewRegistry()
	proc, err := processor.New(processor.Config{Brokers: []string{broker.Addr()}, NoClassStage: true}, store, rules.NewHolder(rules.DefaultPolicy()), prod, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	if err := prod.Publish(ctx, events...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "the processor applied every event", func() bool {
		return appliedEvents(t, reg) >= float64(len(events))
	})
	return rdb
}

func TestExportFromLiveStateEqualsExportFromEventsFile(t *testing.T) {
	const windows = 4
	now := time.Now().UTC()
	events := cohortEvents(3, 8, now)
	rdb := applyThroughProcessor(t, events)

	var file strings.Builder
	students := map[string]bool{}
	for _, e := range events {
		file.WriteString(eventLine(t, e) + "\n")
		students[e.EventHeader().Student] = true
	}
	acc, err := profile.NewAccumulator(windows)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.SetDTTW(7 * 24 * time.Hour); err != nil { // the processor's default DTTW window
		t.Fatal(err)
	}
	if bad, err := acc.ReadJSONL(strings.NewReader(file.String()), "events.jsonl"); err != nil || bad != nil {
		t.Fatalf("events file: %v %v", bad, err)
	}
	fromFile, err := profile.FeaturesFromAggregates(acc.Aggregates(), windows)
	if err != nil {
		t.Fatal(err)
	}

	ids := make([]string, 0, len(students))
	for s := range students {
		ids = append(ids, s)
	}
	slices.Sort(ids)
	aggs, err := profile.ReadState(context.Background(), rdb, state.Config{}, append(ids, "nobody"), windows, 3)
	if err != nil {
		t.Fatal(err)
	}
	fromState, err := profile.FeaturesFromAggregates(aggs, windows)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromState.Columns, fromFile.Columns) {
		t.Fatalf("columns differ:\nstate %v\nfile  %v", fromState.Columns, fromFile.Columns)
	}
	if fromState.Len() != fromFile.Len() || fromState.Len() != 16 {
		t.Fatalf("rows: state %d, file %d, want 16 (8 students × 2 courses)", fromState.Len(), fromFile.Len())
	}
	compared := 0
	for i := range fromFile.Rows {
		if fromState.IDs[i] != fromFile.IDs[i] || fromState.Text["course"][i] != fromFile.Text["course"][i] {
			t.Fatalf("row %d: state %s/%s, file %s/%s", i, fromState.IDs[i], fromState.Text["course"][i], fromFile.IDs[i], fromFile.Text["course"][i])
		}
		for j, col := range fromFile.Columns {
			st, fi := fromState.Rows[i][j], fromFile.Rows[i][j]
			if slices.Contains(profile.StateUnknown, col) {
				if !math.IsNaN(st) {
					t.Errorf("%s/%s %s: state export has %v for a column it cannot see", fromFile.IDs[i], fromFile.Text["course"][i], col, st)
				}
				continue
			}
			if math.IsNaN(st) != math.IsNaN(fi) || !math.IsNaN(fi) && math.Abs(st-fi) > 1e-5*math.Max(1, math.Abs(fi)) {
				t.Errorf("%s/%s %s: state %v, events file %v", fromFile.IDs[i], fromFile.Text["course"][i], col, st, fi)
			}
			if !math.IsNaN(fi) && fi != 0 {
				compared++
			}
		}
	}
	// Guard against an export of zeros agreeing with another.
	if compared < 16*20 {
		t.Fatalf("only %d non-zero cells compared", compared)
	}
	// The live session's course has attention; the other course has none.
	if i, j := 0, fromState.Column(profile.ColAttention); fromState.Text["course"][i] != "law" || !math.IsNaN(fromState.Rows[i][j]) || math.IsNaN(fromState.Rows[i+1][j]) {
		t.Fatalf("attention of st00: law %v, math %v", fromState.Rows[i][j], fromState.Rows[i+1][j])
	}

	// A release before the dttw hash kept the window counts in the clicks
	// hash: the export reads them there too. Every other student's move
	// back whole, the rest half of each count, and the export is the same.
	ctx := context.Background()
	for i, s := range ids {
		d, err := rdb.HGetAll(ctx, state.DTTWKey(s)).Result()
		if err != nil || len(d) == 0 {
			t.Fatalf("dttw hash of %s: %v %v", s, d, err)
		}
		pipe := rdb.TxPipeline()
		for f, v := range d {
			n, _ := strconv.ParseInt(v, 10, 64)
			moved := n
			if i%2 == 1 {
				moved = n / 2
			}
			pipe.HIncrBy(ctx, state.StudentTag(s)+":clicks", f, moved)
			pipe.HIncrBy(ctx, state.DTTWKey(s), f, -moved)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	aggs, err = profile.ReadState(ctx, rdb, state.Config{}, ids, windows, 3)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := profile.FeaturesFromAggregates(aggs, windows)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fromState.Rows {
		for j, col := range fromState.Columns {
			a, b := fromState.Rows[i][j], legacy.Rows[i][j]
			if a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
				t.Errorf("%s/%s %s: %v with the counts in the dttw hash, %v with them (partly) in the clicks hash", fromState.IDs[i], fromState.Text["course"][i], col, a, b)
			}
		}
	}
}
