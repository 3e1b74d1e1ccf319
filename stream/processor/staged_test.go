package processor_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// scoreBatch is n per-second scores of one student at the given attention,
// from offset first on, ending at end.
func scoreBatch(t *testing.T, student string, first, n int, attention float64, end time.Time) []stream.Message {
	t.Helper()
	var batch []stream.Message
	for i := 0; i < n; i++ {
		sc := &stream.Score{Header: stream.NewHeader(student, end.Add(time.Duration(i-n)*time.Second)), Session: "S", Course: "calculus",
			WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: attention, Model: "t"}
		b, err := stream.Encode(sc)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, stream.Message{Topic: stream.TopicScores, Partition: 0, Offset: int64(first + i), Value: b, HighWaterMark: int64(first + n)})
	}
	return batch
}

// The consumer runs a batch's second stage (publishing, saving the
// open-warnings documents) while the next batch's first stage evaluates
// the policy. That evaluation must see the warnings the previous batch
// raised even though they are not saved yet, or every batch in a row
// would raise the same warning again.
func TestNextBatchSeesWarningsRaisedByABatchNotYetFlushed(t *testing.T) {
	p := startPipeline(t)
	p.stop() // drive the stages directly
	ctx := context.Background()
	now := time.Now()
	student := "staged-stu"

	finish1, err := p.proc.StageBatch(ctx, scoreBatch(t, student, 0, 90, 0.1, now.Add(-30*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if finish1 == nil {
		t.Fatal("a batch of scores left nothing to publish")
	}
	if doc, _ := p.rdb.Get(ctx, state.WarnKey(student)).Result(); doc != "" {
		t.Fatalf("the first stage saved the open warnings %s; only the second may", doc)
	}
	// The next batch's first stage runs before the first batch's second.
	finish2, err := p.proc.StageBatch(ctx, scoreBatch(t, student, 90, 30, 0.1, now))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(context.Context) error{finish1, finish2} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if doc, _ := p.rdb.Get(ctx, state.WarnKey(student)).Result(); doc == "" {
		t.Fatal("90 s of attention 0.1 left no open warning")
	}
	raised, err := p.rdb.XLen(ctx, state.LiveWarnings).Result()
	if err != nil {
		t.Fatal(err)
	}
	if raised == 0 {
		t.Fatal("no warning reached the live feed")
	}

	// The same two batches handled one after the other, fully, by a
	// fresh student raise exactly as many warnings.
	other := "serial-stu"
	for _, b := range [][]stream.Message{scoreBatch(t, other, 0, 90, 0.1, now.Add(-30*time.Second)), scoreBatch(t, other, 90, 30, 0.1, now)} {
		if err := p.proc.HandleBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	total, err := p.rdb.XLen(ctx, state.LiveWarnings).Result()
	if err != nil {
		t.Fatal(err)
	}
	if total-raised != raised {
		t.Fatalf("overlapped stages raised %d warnings, serial handling %d", raised, total-raised)
	}
}

// A run that applied a batch and crashed before its second stage published
// anything leaves the batch uncommitted. The next run gets it again: every
// event is a duplicate by then, and the warnings the rules raised from it
// must still be published, once.
func TestWarningsOfABatchAppliedButNeverPublishedAreRaisedOnRedelivery(t *testing.T) {
	p := startPipeline(t)
	p.stop() // drive the stages directly
	ctx := context.Background()
	now := time.Now()
	student := "crash-stu"
	batch := scoreBatch(t, student, 0, 90, 0.1, now)

	// The crashed run: first stage only.
	if _, err := p.proc.StageBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.rdb.XLen(ctx, state.LiveWarnings).Result(); n != 0 {
		t.Fatalf("%d warnings on the live feed before any second stage", n)
	}

	// The next run: a fresh process over the same Redis.
	store, err := state.New(p.rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	next, err := processor.New(processor.Config{Brokers: []string{p.broker.Addr()}}, store, rules.NewHolder(rules.DefaultPolicy()), p.prod, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if dup := testutil.ToFloat64(counterWith(t, reg, "classpulse_processor_events_total", "duplicate")); dup != 90 {
		t.Fatalf("redelivered events counted duplicate: %v, want 90 (nothing applied twice)", dup)
	}
	raised, _ := p.rdb.XLen(ctx, state.LiveWarnings).Result()
	if raised == 0 {
		t.Fatal("the warnings of the crashed run's batch were never raised")
	}
	if doc, _ := p.rdb.Get(ctx, state.WarnKey(student)).Result(); doc == "" {
		t.Fatal("no open-warnings document saved on redelivery")
	}
	// Redelivered once more, it raises nothing new.
	if err := next.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if again, _ := p.rdb.XLen(ctx, state.LiveWarnings).Result(); again != raised {
		t.Fatalf("a third delivery raised %d more warnings", again-raised)
	}
}
