package rules

import (
	"testing"
	"time"
)

// benchSnapshot is a realistic student in the middle of a live class in
// the autumn term: four courses with weekly history and click counts,
// last term's grades, class statistics and live state. The student is
// behind in two courses and dropped off in Law, so the study, trend and
// peer rules fire and their reasons are formatted.
func benchSnapshot(p *Policy) *Snapshot {
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, cst)
	last, prev := p.WeekKey(now.AddDate(0, 0, -7)), p.WeekKey(now.AddDate(0, 0, -14))
	s := &Snapshot{
		Student: "student-0042", Class: "class-7", Now: now,
		Profile: Profile{WantsDegree: true, GraduationYear: 2027, Unit: "centre-3"},
		Live: &Live{Session: "sess-1", Course: "law", Captured: true, Attention1m: 0.55, Attention2m: 0.5, Attention5m: 0.6,
			Face1m: 1, Face2m: 1, Face5m: 0.98, Confused1m: 0.3, Confused2m: 0.35, Confused5m: 0.2,
			Samples1m: 60, Samples2m: 120, Samples5m: 300},
		Peers: map[string]PeerStats{},
	}
	for id, h := range map[string]float64{"calculus": 20, "law": 10, "english": 30, "politics": 20} {
		weeks := map[string]float64{prev: 3 * 3600, last: 3 * 3600}
		if id == "law" {
			weeks[last] = 1 * 3600
		}
		s.Courses = append(s.Courses, CourseState{
			Course: id, Term: "2026-autumn",
			StudySecondsByPeriod: map[string]float64{"2026-autumn-1": h * 1800, "2026-autumn-2": h * 1200, "2026-autumn-3": h * 600},
			StudySecondsTotal:    h * 3600,
			WeekStudySeconds:     weeks,
			Clicks:               map[string]int64{"study": 120, "quiz": 14, "homework": 9, "off_task": 30, "resource": 22},
		})
		s.Peers[id] = PeerStats{N: 32, Mean: 20 * 3600, Median: 18 * 3600, Percentile: 35}
	}
	s.Grades = []GradeRecord{
		{Course: "calculus", Term: "2026-spring", Score: 55},
		{Course: "law", Term: "2026-spring", Score: 78, Passed: true},
		{Course: "english", Term: "2026-spring", Score: 81, Passed: true},
		{Course: "politics", Term: "2026-spring", Score: 40, Elective: true},
	}
	return s
}

// BenchmarkEvaluateDefaultPolicy measures one student's evaluation against
// the default policy, every family. Target: under 5 µs per snapshot.
func BenchmarkEvaluateDefaultPolicy(b *testing.B) {
	p := DefaultPolicy()
	s := benchSnapshot(p)
	if n := len(Evaluate(p, s)); n != 3 {
		b.Fatalf("the benchmark snapshot trips %d rules, want 3", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(p, s)
	}
}

// BenchmarkEvaluateLive measures the per-score-event path: live rules only.
func BenchmarkEvaluateLive(b *testing.B) {
	p := DefaultPolicy()
	s := benchSnapshot(p)
	s.Live.Attention2m = 0.2
	b.ReportAllocs()
	for b.Loop() {
		EvaluateFamilies(p, s, FamilyLive)
	}
}

// BenchmarkEvaluateCustomRule measures the default policy plus the CEL
// rule of testdata/custom_example.yaml, firing.
func BenchmarkEvaluateCustomRule(b *testing.B) {
	p := customPolicy(b)
	s := benchSnapshot(p)
	s.Courses[0].Clicks["off_task"] = 400
	if n := len(Evaluate(p, s)); n != 4 {
		b.Fatalf("the benchmark snapshot trips %d rules, want 4", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(p, s)
	}
}

// BenchmarkReconcile measures the steady state: open warnings, no change.
func BenchmarkReconcile(b *testing.B) {
	p := DefaultPolicy()
	s := benchSnapshot(p)
	fs := Evaluate(p, s)
	open, _ := Reconcile(p, s.Student, "sess-1", nil, fs, FamilyAll, s.Now)
	b.ReportAllocs()
	for b.Loop() {
		Reconcile(p, s.Student, "sess-1", open, fs, FamilyAll, s.Now)
	}
}
