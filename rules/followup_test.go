package rules

import (
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

func TestGapMeasuresDistanceFromTarget(t *testing.T) {
	tests := []struct {
		name string
		f    *Finding
		want float64
	}{
		{"condition gone", nil, 0},
		{"study hours missing over short courses", &Finding{Evidence: map[string]float64{
			"courses_short": 2, "calculus_studied_h": 4, "calculus_required_h": 10, "law_studied_h": 7.5, "law_required_h": 8}}, 6.5},
		{"failed courses", &Finding{Evidence: map[string]float64{"failed": 3, "yellow_failed": 2}}, 3},
		{"no countable evidence", &Finding{Evidence: map[string]float64{"attention": 0.2}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Gap(tc.f); got != tc.want {
				t.Errorf("Gap = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHoldingFindsTheWarningsCondition(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, p.Location())
	short := &Snapshot{Student: "s1", Now: now, Courses: []CourseState{
		{Course: "calculus", Term: "2026-autumn", StudySecondsTotal: 3600},
		{Course: "law", Term: "2026-autumn", StudySecondsTotal: 3600},
	}}
	caught := &Snapshot{Student: "s1", Now: now, Courses: []CourseState{
		{Course: "calculus", Term: "2026-autumn", StudySecondsTotal: 200 * 3600},
		{Course: "law", Term: "2026-autumn", StudySecondsTotal: 200 * 3600},
	}}
	f := Holding(p, short, RuleStudy, "", FamilyAcademic)
	if f == nil || f.Level != stream.LevelYellow || Gap(f) <= 0 {
		t.Fatalf("short student: %+v", f)
	}
	if f := Holding(p, caught, RuleStudy, "", FamilyAcademic); f != nil {
		t.Errorf("caught-up student still holds: %+v", f)
	}
	if f := Holding(p, short, RuleGrade, "", FamilyAcademic); f != nil {
		t.Errorf("another rule's condition: %+v", f)
	}
}

func TestEscalateIsTheLifecycleTransitionWithAGivenID(t *testing.T) {
	raised := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	at := raised.Add(28 * 24 * time.Hour)
	w := &OpenWarning{Ref: "r1", Rule: RuleStudy, Category: stream.CategoryStudy, Level: stream.LevelYellow, Family: FamilyAcademic,
		Reason: "2 courses short", Evidence: map[string]float64{"courses_short": 2}, RaisedAt: raised, ChangedAt: raised}
	next, ev := Escalate(w, "s1", stream.LevelRed, "Help plan deadline passed", "01KAAAAAAAAAAAAAAAAAAAAAAA", at)
	if w.Level != stream.LevelYellow {
		t.Error("Escalate modified the open warning")
	}
	if next.Level != stream.LevelRed || !next.ChangedAt.Equal(at) || next.Reason != "Help plan deadline passed" {
		t.Errorf("next %+v", next)
	}
	if ev.ID != "01KAAAAAAAAAAAAAAAAAAAAAAA" || ev.Ref != "r1" || ev.State != stream.StateEscalated || ev.Level != stream.LevelRed ||
		ev.Student != "s1" || ev.Evidence["courses_short"] != 2 {
		t.Errorf("event %+v", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("event invalid: %v", err)
	}
}
