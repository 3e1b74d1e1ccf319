package queue

import (
	"context"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestProjectorIsIdempotentAndMovesIndexes(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	p, err := NewProjector(ProjectorConfig{Brokers: []string{"127.0.0.1:9092"}}, rdb, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(rdb)
	t0 := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	raised := &stream.Warning{Header: stream.NewHeader("s1", t0), Category: stream.CategoryGrade, Level: stream.LevelYellow,
		Rule: "failed_courses", Course: "C1", Reason: "2 failed courses", Evidence: map[string]float64{"failed": 2}, State: stream.StateRaised}
	raised.Ref = raised.ID
	escalated := *raised
	escalated.Header = stream.NewHeader("s1", t0.Add(time.Hour))
	escalated.Level, escalated.State, escalated.Reason = stream.LevelRed, stream.StateEscalated, "4 failed courses"
	assign := &stream.Intervention{Header: stream.NewHeader("s1", t0.Add(2*time.Hour)), Warning: raised.Ref, Action: stream.ActionAssign, By: "head", Owner: "c.wang"}
	apply := func(e stream.Event) string {
		b, err := stream.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.ApplyEvent(ctx, e.Topic(), b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		e    stream.Event
		want string
	}{
		{"raise", raised, "applied"},
		{"escalate", &escalated, "applied"},
		{"raise redelivered after escalation", raised, "duplicate"},
		{"assign", assign, "applied"},
		{"assign redelivered", assign, "duplicate"},
	} {
		if got := apply(tc.e); got != tc.want {
			t.Fatalf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	rec, err := s.Get(ctx, raised.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Level != "red" || rec.MaxLevel != "red" || rec.FirstLevel != "yellow" || rec.State != "escalated" || rec.Owner != "c.wang" || rec.Loop != "assigned" || rec.Term != "2025-spring" {
		t.Fatalf("record %+v", rec)
	}
	for _, tc := range []struct {
		f    Filter
		want int
	}{
		{Filter{Level: "red"}, 1}, {Filter{Level: "yellow"}, 0}, {Filter{State: "raised"}, 0},
		{Filter{Owner: "c.wang", Category: "grade"}, 1}, {Filter{Loop: "open"}, 0}, {Filter{Term: "2025-spring"}, 1},
		{Filter{ScopeStudents: []string{"s2"}}, 0},
	} {
		_, total, err := s.List(ctx, tc.f)
		if err != nil || total != tc.want {
			t.Errorf("List(%+v) = %d, %v; want %d", tc.f, total, err, tc.want)
		}
	}
	steps, _ := s.Steps(ctx, raised.Ref)
	if len(steps) != 1 {
		t.Fatalf("%d steps, want 1", len(steps))
	}
	if n, _ := rdb.XLen(ctx, LiveInterventions).Result(); n != 1 {
		t.Fatalf("live interventions stream has %d entries, want 1 (no duplicate on redelivery)", n)
	}
	if problems, err := testutil.CollectAndLint(p.events); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %v", problems, err)
	}
	if v := testutil.ToFloat64(p.events.WithLabelValues(stream.TopicWarnings, "duplicate")); v != 1 {
		t.Fatalf("duplicates counted %v", v)
	}
}

func TestTermOf(t *testing.T) {
	for in, want := range map[string]string{"2025-01-10": "2024-autumn", "2025-02-01": "2025-spring", "2025-07-31": "2025-spring", "2025-09-01": "2025-autumn"} {
		d, _ := time.Parse("2006-01-02", in)
		if got := TermOf(d); got != want {
			t.Errorf("TermOf(%s) = %s, want %s", in, got, want)
		}
	}
}
