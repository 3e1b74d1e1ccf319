package processor_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLagSeriesOfPartitionsNoLongerServedExpire(t *testing.T) {
	in := startInfra(t)
	store, err := state.New(in.rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	reg := prometheus.NewRegistry()
	p, err := processor.New(processor.Config{Brokers: []string{in.broker.Addr()}}, store, rules.NewHolder(rules.DefaultPolicy()), in.prod, quietLogger(), reg,
		processor.WithClock(func() time.Time { return time.Unix(0, clock.Load()) }))
	if err != nil {
		t.Fatal(err)
	}
	batch := func(part int, off int64) []stream.Message {
		b, _ := stream.Encode(&stream.Click{Header: stream.NewHeader("lag-"+strconv.Itoa(part), time.Now().Add(-time.Hour)), Course: "law", Kind: "quiz"})
		return []stream.Message{{Topic: stream.TopicClicks, Partition: part, Offset: off, Value: b, HighWaterMark: off + 5}}
	}
	series := func() int { return testutil.CollectAndCount(reg, "classpulse_processor_consumer_lag") }
	ctx := context.Background()
	for _, step := range []struct {
		name    string
		advance time.Duration
		part    int
		want    int
	}{
		{"first partition exports its lag", 0, 0, 1},
		{"a second partition adds a series", 10 * time.Second, 1, 2},
		{"both still fresh at 29 s", 19 * time.Second, 1, 2},
		{"partition 0 silent for 31 s is dropped", 2 * time.Second, 1, 1},
		{"partition 0 comes back", 0, 0, 2},
	} {
		clock.Add(int64(step.advance))
		if err := p.HandleBatch(ctx, batch(step.part, clock.Load()%1000)); err != nil {
			t.Fatal(err)
		}
		if got := series(); got != step.want {
			t.Fatalf("%s: %d lag series, want %d", step.name, got, step.want)
		}
	}
}
