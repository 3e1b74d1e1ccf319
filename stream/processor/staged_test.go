package processor_test

import (
	"context"
	"errors"
	"fmt"
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

// The consumer runs a batch's publishing stage (publishing, saving the
// open-warnings documents) while the next batch's apply stage evaluates
// the policy, and writes a batch's scripts before the batch before it
// evaluated. That evaluation must see the warnings the previous batch
// raised even though they were not saved when its scripts read the stored
// document, or every batch in a row would raise the same warning again.
func TestNextBatchSeesWarningsRaisedByABatchNotYetFlushed(t *testing.T) {
	p := startPipeline(t)
	p.stop() // drive the stages directly
	ctx := context.Background()
	now := time.Now()
	batches := func(student string) [2][]stream.Message {
		return [2][]stream.Message{scoreBatch(t, student, 0, 90, 0.1, now.Add(-30*time.Second)), scoreBatch(t, student, 90, 30, 0.1, now)}
	}
	raised := func() int64 {
		n, err := p.rdb.XLen(ctx, state.LiveWarnings).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The two batches handled one after the other, fully.
	for _, b := range batches("serial-stu") {
		if err := p.proc.HandleBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	serial := raised()
	if serial == 0 {
		t.Fatal("90 s of attention 0.1 raised no warning")
	}

	// Orders the consumer may run the later stages of two batches in
	// (write, apply, publish; each stage of the second after the same
	// stage of the first): {batch, stage}.
	type step struct{ batch, stage int }
	cases := []struct {
		name  string
		order []step
	}{
		{"both written and applied before the first publishes", []step{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {0, 2}, {1, 2}}},
		{"the first saves between the second's write and its evaluation", []step{{0, 0}, {1, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}}},
		{"the second written after the first evaluated", []step{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {1, 2}}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			student := fmt.Sprintf("staged-stu-%d", i)
			before := raised()
			var stages [2][]func(context.Context) error
			for b, batch := range batches(student) {
				var err error
				if stages[b], err = p.proc.StageBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				if len(stages[b]) != 3 {
					t.Fatalf("%d later stages, want write, apply and publish", len(stages[b]))
				}
			}
			published := false
			for _, s := range c.order {
				if err := stages[s.batch][s.stage](ctx); err != nil {
					t.Fatal(err)
				}
				published = published || s.stage == 2
				if doc, _ := p.rdb.Get(ctx, state.WarnKey(student)).Result(); !published && doc != "" {
					t.Fatalf("the open warnings %s were saved before any publishing stage", doc)
				}
			}
			if doc, _ := p.rdb.Get(ctx, state.WarnKey(student)).Result(); doc == "" {
				t.Fatal("90 s of attention 0.1 left no open warning")
			}
			if got := raised() - before; got != serial {
				t.Fatalf("overlapped stages raised %d warnings, serial handling %d", got, serial)
			}
		})
	}
}

// brokerAway is a Kafka that never takes anything.
type brokerAway struct{}

func (brokerAway) Publish(context.Context, ...stream.Event) error {
	return errors.New("broker away")
}

// A run that applied a batch and crashed before it published anything
// leaves the batch uncommitted. The next run gets it again: every event is
// a duplicate by then, and the warnings the rules raised from it must
// still be published, once.
func TestWarningsOfABatchAppliedButNeverPublishedAreRaisedOnRedelivery(t *testing.T) {
	p := startPipeline(t)
	p.stop() // drive the stages directly
	ctx := context.Background()
	now := time.Now()
	student := "crash-stu"
	batch := scoreBatch(t, student, 0, 90, 0.1, now)

	// The crashed run: it applies the batch in Redis, then cannot publish
	// until it stops.
	crashStore, err := state.New(p.rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crashStore.Close() })
	crashed, err := processor.New(processor.Config{Brokers: []string{p.broker.Addr()}, RetryMin: 10 * time.Millisecond},
		crashStore, rules.NewHolder(rules.DefaultPolicy()), brokerAway{}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	stopping, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := crashed.HandleBatch(stopping, batch); err == nil {
		t.Fatal("a run that could not publish reported its batch done")
	}
	if n, _ := p.rdb.XLen(ctx, state.LiveWarnings).Result(); n != 0 {
		t.Fatalf("%d warnings on the live feed before anything was published", n)
	}
	if doc, _ := p.rdb.Get(ctx, state.WarnKey(student)).Result(); doc != "" {
		t.Fatal("the crashed run saved an open-warnings document it never published")
	}

	// The next run: a fresh process over the same Redis.
	store, err := state.New(p.rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
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
