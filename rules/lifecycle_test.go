package rules

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

func finding(rule, level string, fam Family) Finding {
	cat := stream.CategoryStudy
	switch fam {
	case FamilyLive:
		cat = stream.CategoryEngagement
	case FamilyClass:
		cat = stream.CategoryClass
	}
	return Finding{Rule: rule, Family: fam, Category: cat, Level: level, Reason: rule + " at " + level,
		Evidence: map[string]float64{"x": 1}}
}

// step is one Reconcile call and the transitions it must produce.
type step struct {
	at       time.Duration // after t0
	findings []Finding
	fam      Family
	want     []string // "state:level"
}

func runSteps(t *testing.T, student, session string, steps []step) Open {
	t.Helper()
	t0 := day(2026, 11, 23).Add(10 * time.Hour)
	p := DefaultPolicy()
	var open Open
	refs := map[string]string{}
	for i, st := range steps {
		var evs []*stream.Warning
		open, evs = Reconcile(p, student, session, open, st.findings, st.fam, t0.Add(st.at))
		var got []string
		for _, e := range evs {
			got = append(got, e.State+":"+e.Level)
			if err := e.Validate(); err != nil {
				t.Fatalf("step %d: invalid event %+v: %v", i, e, err)
			}
			if !e.TS.Equal(t0.Add(st.at)) {
				t.Fatalf("step %d: event time %v", i, e.TS)
			}
			k := Key(e.Rule, e.Course)
			switch e.State {
			case stream.StateRaised:
				if e.Ref != e.ID {
					t.Fatalf("step %d: raised ref %q != id %q", i, e.Ref, e.ID)
				}
				refs[k] = e.Ref
			default:
				if e.Ref != refs[k] {
					t.Fatalf("step %d: %s ref %q, raised as %q", i, e.State, e.Ref, refs[k])
				}
			}
			if e.State == stream.StateCleared && !strings.HasPrefix(e.Reason, "No longer holds: ") {
				t.Fatalf("step %d: cleared reason %q", i, e.Reason)
			}
		}
		if strings.Join(got, ",") != strings.Join(st.want, ",") {
			t.Fatalf("step %d at %v: transitions %v, want %v", i, st.at, got, st.want)
		}
	}
	return open
}

func TestLifecycleTransitions(t *testing.T) {
	y := func(rule string, f Family) []Finding { return []Finding{finding(rule, stream.LevelYellow, f)} }
	r := func(rule string, f Family) []Finding { return []Finding{finding(rule, stream.LevelRed, f)} }
	const A, L = FamilyAcademic, FamilyLive
	cases := []struct {
		name  string
		steps []step
	}{
		{"raise once, then escalate, then clear", []step{
			{0, y(RuleStudy, A), A, []string{"raised:yellow"}},
			{time.Hour, y(RuleStudy, A), A, nil},
			{2 * time.Hour, r(RuleStudy, A), A, []string{"escalated:red"}},
			{3 * time.Hour, r(RuleStudy, A), A, nil},
			{25 * time.Hour, nil, A, []string{"cleared:red"}},
			{26 * time.Hour, nil, A, nil},
		}},
		{"academic warning held for a day", []step{
			{0, y(RuleStudy, A), A, []string{"raised:yellow"}},
			{time.Hour, nil, A, nil},
			{24*time.Hour - time.Second, nil, A, nil},
			{24 * time.Hour, nil, A, []string{"cleared:yellow"}},
		}},
		{"raised directly at red", []step{
			{0, r(RuleGrade, A), A, []string{"raised:red"}},
		}},
		{"never steps down while open", []step{
			{0, r(RuleStudy, A), A, []string{"raised:red"}},
			{time.Hour, y(RuleStudy, A), A, nil},
			{24 * time.Hour, nil, A, []string{"cleared:red"}},
		}},
		{"academic raises again at once after clearing", []step{
			{0, y(RuleStudy, A), A, []string{"raised:yellow"}},
			{24 * time.Hour, nil, A, []string{"cleared:yellow"}},
			{25 * time.Hour, y(RuleStudy, A), A, []string{"raised:yellow"}},
		}},
		{"a live evaluation does not clear academic warnings", []step{
			{0, y(RuleStudy, A), A, []string{"raised:yellow"}},
			{time.Hour, nil, L, nil},
			{2 * time.Hour, y(RuleStudy, A), L, nil},
			{25 * time.Hour, nil, A, []string{"cleared:yellow"}},
		}},
		{"an academic evaluation neither raises nor clears live warnings", []step{
			{0, y(RuleAttentionLow, L), L, []string{"raised:yellow"}},
			{5 * time.Minute, nil, A, nil},
			{6 * time.Minute, r(RuleAttentionLow, L), A, nil},
			{7 * time.Minute, nil, L, []string{"cleared:yellow"}},
		}},
		{"live warning held for min_hold", []step{
			{0, y(RuleAttentionLow, L), L, []string{"raised:yellow"}},
			{10 * time.Second, nil, L, nil},
			{20 * time.Second, y(RuleAttentionLow, L), L, nil},
			{59 * time.Second, nil, L, nil},
			{60 * time.Second, nil, L, []string{"cleared:yellow"}},
		}},
		{"live cool-down suppresses a quick re-raise", []step{
			{0, y(RuleFaceAbsent, L), L, []string{"raised:yellow"}},
			{2 * time.Minute, nil, L, []string{"cleared:yellow"}},
			{3 * time.Minute, y(RuleFaceAbsent, L), L, nil},
			{7*time.Minute - time.Second, r(RuleFaceAbsent, L), L, nil},
			{7 * time.Minute, y(RuleFaceAbsent, L), L, []string{"raised:yellow"}},
		}},
		{"cool-down of one rule does not hold back another", []step{
			{0, y(RuleFaceAbsent, L), L, []string{"raised:yellow"}},
			{2 * time.Minute, nil, L, []string{"cleared:yellow"}},
			{3 * time.Minute, append(y(RuleFaceAbsent, L), y(RuleConfused, L)...), L, []string{"raised:yellow"}},
		}},
		{"two rules at once in key order", []step{
			{0, append(y(RuleStudy, A), r(RuleGrade, A)...), A, []string{"raised:red", "raised:yellow"}},
			{24 * time.Hour, r(RuleGrade, A), A, []string{"cleared:yellow"}},
		}},
		{"duplicate findings raise once at the higher level", []step{
			{0, append(y(RuleStudy, A), r(RuleStudy, A)...), A, []string{"raised:red"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, "s1", "sess1", c.steps) })
	}
}

func TestLifecycleClassWarningsKeyedBySession(t *testing.T) {
	p := DefaultPolicy()
	now := day(2026, 11, 23).Add(10 * time.Hour)
	fs := EvaluateClass(p, &ClassSnapshot{Session: "sess1", Course: "law", Now: now, Students: 10, Captured: 10, Confused: 5})
	open, evs := Reconcile(p, "", "sess1", nil, fs, FamilyClass, now)
	if len(evs) != 1 || evs[0].Session != "sess1" || evs[0].Student != "" || evs[0].Key() != "sess1" || evs[0].Course != "law" {
		t.Fatalf("events %+v", evs)
	}
	if err := evs[0].Validate(); err != nil {
		t.Fatal(err)
	}
	if open.Level() != stream.LevelYellow {
		t.Fatalf("open level %q", open.Level())
	}
	_, evs = Reconcile(p, "", "sess1", open, nil, FamilyClass, now.Add(30*time.Second))
	if len(evs) != 0 {
		t.Fatalf("cleared inside min_hold: %+v", evs)
	}
	_, evs = Reconcile(p, "", "sess1", open, nil, FamilyClass, now.Add(time.Minute))
	if len(evs) != 1 || evs[0].State != stream.StateCleared {
		t.Fatalf("events %+v", evs)
	}
}

func TestLifecycleOpenSurvivesJSON(t *testing.T) {
	p := DefaultPolicy()
	now := day(2026, 11, 23).Add(10 * time.Hour)
	live := finding(RuleFaceAbsent, stream.LevelYellow, FamilyLive)
	live.Course = "law"
	open, evs := Reconcile(p, "s1", "sess1", nil, []Finding{live}, FamilyLive, now)
	if len(evs) != 1 || evs[0].Session != "sess1" {
		t.Fatalf("events %+v", evs)
	}
	raw, err := json.Marshal(open)
	if err != nil {
		t.Fatal(err)
	}
	var back Open
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	w := back[Key(RuleFaceAbsent, "law")]
	if w == nil || w.Ref != evs[0].ID || w.Family != FamilyLive || !w.RaisedAt.Equal(now) || w.Evidence["x"] != 1 {
		t.Fatalf("round trip lost data: %s", raw)
	}
	// The stored state behaves as the original: still open, no re-raise.
	if _, evs := Reconcile(p, "s1", "sess1", back, []Finding{live}, FamilyLive, now.Add(time.Second)); len(evs) != 0 {
		t.Fatalf("re-raised after a round trip: %+v", evs)
	}
}

func TestReconcileDoesNotModifyItsInput(t *testing.T) {
	p := DefaultPolicy()
	now := day(2026, 11, 23)
	open, _ := Reconcile(p, "s1", "", nil, []Finding{finding(RuleStudy, stream.LevelYellow, FamilyAcademic)}, FamilyAcademic, now)
	before, _ := json.Marshal(open)
	Reconcile(p, "s1", "", open, []Finding{finding(RuleStudy, stream.LevelRed, FamilyAcademic)}, FamilyAcademic, now.Add(time.Hour))
	Reconcile(p, "s1", "", open, nil, FamilyAcademic, now.Add(48*time.Hour))
	after, _ := json.Marshal(open)
	if string(before) != string(after) {
		t.Fatalf("Open changed:\n%s\n%s", before, after)
	}
}

func TestEvaluateThenReconcileEndToEnd(t *testing.T) {
	// A student falls behind in two courses, catches up in one, and the
	// study warning clears; all events are valid warnings.
	p := withPolicy(func(p *Policy) { p.Study.Basis = BasisCompleted })
	now := day(2026, 11, 23)
	s := &Snapshot{Student: "s1", Now: now, Courses: autumn(map[string]float64{"calculus": 5, "law": 5})}
	open, evs := Reconcile(p, "s1", "", nil, EvaluateFamilies(p, s, FamilyAcademic), FamilyAcademic, now)
	if len(evs) != 1 || evs[0].Rule != RuleStudy || evs[0].State != stream.StateRaised {
		t.Fatalf("events %+v", evs)
	}
	if _, err := stream.Encode(evs[0]); err != nil {
		t.Fatal(err)
	}
	s.Courses = autumn(map[string]float64{"calculus": 25, "law": 5})
	_, evs = Reconcile(p, "s1", "", open, EvaluateFamilies(p, s, FamilyAcademic), FamilyAcademic, now.Add(time.Hour))
	if len(evs) != 0 {
		t.Fatalf("cleared within the academic hold: %+v", evs)
	}
	_, evs = Reconcile(p, "s1", "", open, EvaluateFamilies(p, s, FamilyAcademic), FamilyAcademic, now.Add(24*time.Hour))
	if len(evs) != 1 || evs[0].State != stream.StateCleared || evs[0].Ref != open[RuleStudy].Ref {
		t.Fatalf("events %+v", evs)
	}
}
