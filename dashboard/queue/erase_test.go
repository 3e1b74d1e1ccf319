package queue

import (
	"context"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
)

func TestEraseStudentRemovesOnlyThatStudentAndIsRepeatable(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	p, err := NewProjector(ProjectorConfig{Brokers: []string{"127.0.0.1:9092"}}, rdb, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(rdb)
	if err := s.SetRoster(ctx, []RosterEntry{{Student: "s1", Unit: "U1"}, {Student: "s2", Unit: "U1"}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	raise := func(student, rule string) string {
		w := &stream.Warning{Header: stream.NewHeader(student, t0), Category: stream.CategoryGrade, Level: stream.LevelYellow,
			Rule: rule, Course: "C1", Reason: "r", State: stream.StateRaised}
		w.Ref = w.ID
		b, err := stream.Encode(w)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.ApplyEvent(ctx, w.Topic(), b); err != nil {
			t.Fatal(err)
		}
		return w.Ref
	}
	a1, a2, b1 := raise("s1", "failed_courses"), raise("s1", "study_time"), raise("s2", "failed_courses")

	refs, roster, err := s.EraseStudent(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || !roster || !(refs[0] == a1 || refs[0] == a2) {
		t.Fatalf("erased refs %v roster %v, want %s and %s with the roster entry", refs, roster, a1, a2)
	}
	for _, ref := range []string{a1, a2} {
		if _, err := s.Get(ctx, ref); err == nil {
			t.Errorf("record %s still readable after erasure", ref)
		}
	}
	if recs, total, err := s.List(ctx, Filter{}); err != nil || total != 1 || recs[0].Ref != b1 {
		t.Fatalf("queue after erasure: %d records (%v), want only %s", total, err, b1)
	}
	if e, err := s.Roster(ctx, "s2"); err != nil || e.Unit != "U1" {
		t.Fatalf("other student's roster entry: %+v %v", e, err)
	}
	keys, _ := rdb.Keys(ctx, "{q}:i:*").Result()
	for _, k := range keys {
		for _, m := range rdb.SMembers(ctx, k).Val() {
			if m != b1 {
				t.Errorf("index %s still holds %s", k, m)
			}
		}
	}

	refs, roster, err = s.EraseStudent(ctx, "s1")
	if err != nil || len(refs) != 0 || roster {
		t.Fatalf("second erasure: refs %v roster %v err %v, want nothing and no error", refs, roster, err)
	}
}
