package helploop

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// BenchmarkTickPlansInForce measures one follow-up pass over 1000 plans in
// force with no checkpoint due: the steady cost every --every of a replica
// (reading the queue, the steps and the plan state of each warning).
func BenchmarkTickPlansInForce(b *testing.B) {
	const plans = 1000
	ctx := context.Background()
	rdb := testenv.StartRedis(b).Client(b)
	br := testenv.StartBroker(b, 1)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{br.Addr()}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	proj, err := queue.NewProjector(queue.ProjectorConfig{Brokers: []string{br.Addr()}}, rdb, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 15, 0, 0, 0, rules.DefaultPolicy().Location())
	apply := func(e stream.Event) {
		v, err := stream.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proj.ApplyEvent(ctx, e.Topic(), v); err != nil {
			b.Fatal(err)
		}
	}
	for i := range plans {
		s := fmt.Sprintf("s%04d", i)
		w := &stream.Warning{Header: stream.NewHeader(s, t0), Category: stream.CategoryStudy, Level: stream.LevelYellow, Rule: rules.RuleStudy,
			Reason: "short", Evidence: map[string]float64{}, State: stream.StateRaised}
		w.Ref = w.ID
		due := stream.At(t0.AddDate(0, 0, 28))
		apply(w)
		apply(&stream.Intervention{Header: stream.NewHeader(s, t0.Add(time.Minute)), Warning: w.Ref, Action: stream.ActionPlan, By: "c1", Due: &due})
	}
	reader, err := state.NewReader(rdb, state.Config{})
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Hour)
	l, err := New(Config{}, rdb, reader, rules.NewHolder(rules.DefaultPolicy()), prod, nil, nil, WithClock(func() time.Time { return now }))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.Tick(ctx); err != nil { // pins every plan
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if n, err := l.Tick(ctx); err != nil || n != 0 {
			b.Fatalf("tick: %d %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/plans, "µs/plan")
}
