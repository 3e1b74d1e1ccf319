package helploop

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

// history builds one warning's events as the processor and the help loop
// publish them, projected into the queue read model.
type history struct {
	t    *testing.T
	proj *queue.Projector
	ctx  context.Context
}

func (h *history) apply(events ...stream.Event) {
	h.t.Helper()
	for _, e := range events {
		b, err := stream.Encode(e)
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.proj.ApplyEvent(h.ctx, e.Topic(), b); err != nil {
			h.t.Fatal(err)
		}
	}
}

// raise raises a warning at t0 and returns it.
func (h *history) raise(student, category, level string, t0 time.Time) *stream.Warning {
	w := &stream.Warning{Header: stream.NewHeader(student, t0), Category: category, Level: level, Rule: category,
		Reason: "constructed", Evidence: map[string]float64{}, State: stream.StateRaised}
	w.Ref = w.ID
	h.apply(w)
	return w
}

func (h *history) clear(w *stream.Warning, at time.Time) {
	c := *w
	c.Header = stream.NewHeader(w.Student, at)
	c.State = stream.StateCleared
	h.apply(&c)
}

func (h *history) step(w *stream.Warning, action, result string, at time.Time) *stream.Intervention {
	iv := &stream.Intervention{Header: stream.NewHeader(w.Student, at), Warning: w.Ref, Action: action, By: "c1", Result: result}
	if action == stream.ActionPlan {
		due := stream.At(at.AddDate(0, 0, 28))
		iv.Due = &due
	}
	h.apply(iv)
	return iv
}

func TestEffectivenessReportByCategoryAndPlaybook(t *testing.T) {
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	proj, err := queue.NewProjector(queue.ProjectorConfig{Brokers: []string{"unused:9092"}}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &history{t: t, proj: proj, ctx: ctx}
	t0 := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// pin records what the loop pins when it first sees a plan.
	pin := func(w *stream.Warning, plan *stream.Intervention, playbook string, escalated bool) {
		rdb.HSet(ctx, planKey(w.Ref), fieldPlaybook(plan.ID), playbook)
		if escalated {
			b, _ := json.Marshal(map[string]any{"result": ResultEscalated})
			rdb.HSet(ctx, planKey(w.Ref), fieldDone(plan.ID, "deadline"), string(b))
		}
	}

	// s1: planned with the study playbook, cleared after 10 days.
	w1 := h.raise("s1", stream.CategoryStudy, stream.LevelYellow, t0)
	pin(w1, h.step(w1, stream.ActionPlan, "", t0.Add(time.Hour)), "study-yellow", false)
	h.clear(w1, t0.Add(10*day))
	// s2: same playbook, closed as helped after 20 days.
	w2 := h.raise("s2", stream.CategoryStudy, stream.LevelYellow, t0)
	pin(w2, h.step(w2, stream.ActionPlan, "", t0.Add(time.Hour)), "study-yellow", false)
	h.step(w2, stream.ActionClose, "helped", t0.Add(20*day))
	// s3: same playbook, unmet, escalated by the follow-up.
	w3 := h.raise("s3", stream.CategoryStudy, stream.LevelYellow, t0)
	pin(w3, h.step(w3, stream.ActionPlan, "", t0.Add(time.Hour)), "study-yellow", true)
	// s4: a grade warning nobody planned.
	h.raise("s4", stream.CategoryGrade, stream.LevelRed, t0)
	// s5: an early study warning that cleared, then a later one still open
	// without a plan: the latest decides, so s5 has not recovered.
	w5 := h.raise("s5", stream.CategoryStudy, stream.LevelYellow, t0)
	h.clear(w5, t0.Add(3*day))
	h.raise("s5", stream.CategoryStudy, stream.LevelYellow, t0.Add(5*day))
	// Left out: a live signal, and a warning of another term.
	h.raise("s6", stream.CategoryEngagement, stream.LevelYellow, t0)
	h.raise("s7", stream.CategoryStudy, stream.LevelYellow, time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC))

	rep, err := Report(ctx, rdb, "2026-autumn", queue.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		category, playbook           string
		warned, recovered, escalated int
		share                        float64
		median                       float64 // -1: none
	}
	wants := []want{
		{"grade", NoPlaybook, 1, 0, 0, 0, -1},
		{"study", NoPlaybook, 1, 0, 0, 0, -1},
		{"study", "study-yellow", 3, 2, 1, 0.667, 15},
		{"all", "all", 5, 2, 1, 0.4, 15},
	}
	rows := append(rep.Rows, rep.Total)
	if len(rows) != len(wants) {
		t.Fatalf("rows %+v", rows)
	}
	for i, w := range wants {
		r := rows[i]
		md := -1.0
		if r.MedianDays != nil {
			md = *r.MedianDays
		}
		if r.Category != w.category || r.Playbook != w.playbook || r.Warned != w.warned || r.Recovered != w.recovered ||
			r.Escalated != w.escalated || r.Share != w.share || md != w.median {
			t.Errorf("row %d = %+v (median %v), want %+v", i, r, md, w)
		}
	}
	csv := rep.CSV()
	if len(csv) != 5 || strings.Join(csv[3], ",") != "2026-autumn,study,study-yellow,3,2,0.667,15,1" || csv[4][6] != "15" || csv[1][6] != "" {
		t.Errorf("csv %q", csv)
	}

	// A counsellor's scope narrows the report to their students.
	scoped, err := Report(ctx, rdb, "2026-autumn", queue.Filter{ScopeStudents: []string{"s1"}, ScopeUnits: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if scoped.Total.Warned != 1 || scoped.Total.Recovered != 1 || *scoped.Total.MedianDays != 10 {
		t.Errorf("scoped total %+v", scoped.Total)
	}
	empty, err := Report(ctx, rdb, "2030-spring", queue.Filter{})
	if err != nil || len(empty.Rows) != 0 || empty.Total.MedianDays != nil || empty.Total.Share != 0 {
		t.Errorf("empty term: %+v %v", empty, err)
	}
}
