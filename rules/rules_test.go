package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// cst is the default policy's zone.
var cst = DefaultPolicy().Location()

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, cst) }

// withPolicy returns a copy of the default policy changed by edit.
func withPolicy(edit func(p *Policy)) *Policy {
	p := *DefaultPolicy()
	p.custom = nil
	edit(&p)
	return &p
}

// autumn builds course states in the 2026 autumn term with study hours.
func autumn(hours map[string]float64) []CourseState {
	var cs []CourseState
	for _, id := range []string{"calculus", "law", "english", "politics"} {
		h, ok := hours[id]
		if !ok {
			continue
		}
		cs = append(cs, CourseState{Course: id, Term: "2026-autumn", StudySecondsTotal: h * 3600})
	}
	return cs
}

// only returns the findings of rule.
func only(fs []Finding, rule string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// levelOf returns the level of rule's single finding, "" if none.
func levelOf(t *testing.T, fs []Finding, rule, course string) string {
	t.Helper()
	level := ""
	for _, f := range only(fs, rule) {
		if f.Course != course {
			continue
		}
		if level != "" {
			t.Fatalf("rule %s fired twice for %q", rule, course)
		}
		level = f.Level
	}
	return level
}

func TestStudyRuleThresholds(t *testing.T) {
	completed := withPolicy(func(p *Policy) { p.Study.Basis = BasisCompleted })
	through := withPolicy(func(p *Policy) { p.Study.Basis = BasisThrough })
	flat := withPolicy(func(p *Policy) { p.Study.Basis = BasisCompleted; p.Dynamic.RequiredTime = false })
	def := DefaultPolicy()
	nov23 := day(2026, 11, 23)  // period 3: periods 1 and 2 are complete
	redStart := day(2027, 1, 4) // first instant of the last 14 days
	beforeRed := redStart.Add(-time.Second)
	const eps = 1.0 / 3600 // one second
	cases := []struct {
		name  string
		p     *Policy
		now   time.Time
		hours map[string]float64
		want  string
	}{
		// Completed periods 1+2: calculus 16 h × 1.25 = 20 h, law 16 h.
		{"yellow when two courses just below", completed, nov23, map[string]float64{"calculus": 20 - eps, "law": 16 - eps}, stream.LevelYellow},
		{"none at exactly the required time", completed, nov23, map[string]float64{"calculus": 20, "law": 16 - eps}, ""},
		{"none just above", completed, nov23, map[string]float64{"calculus": 20 + eps, "law": 16 + eps}, ""},
		{"none with one short course", completed, nov23, map[string]float64{"calculus": 0, "law": 16, "english": 12}, ""},
		{"difficulty scales required time", flat, nov23, map[string]float64{"calculus": 16, "law": 16 - eps}, ""},
		{"elective counts for study time", completed, nov23, map[string]float64{"politics": 6.4 - eps, "law": 16 - eps}, stream.LevelYellow},
		// Prorated: period 3 is 21/28 done: calculus (16 + 0.75×8) × 1.25 = 27.5 h, law 22 h.
		{"prorated yellow just below", def, nov23, map[string]float64{"calculus": 27.5 - eps, "law": 22 - eps}, stream.LevelYellow},
		{"prorated none at threshold", def, nov23, map[string]float64{"calculus": 27.5, "law": 22}, ""},
		// Through: periods 1-3, calculus 30 h, law 24 h.
		{"through counts the current period", through, nov23, map[string]float64{"calculus": 30 - eps, "law": 24 - eps}, stream.LevelYellow},
		{"through none at threshold", through, nov23, map[string]float64{"calculus": 30, "law": 24}, ""},
		// Red: total 36 h; calculus 45 h × 2/3 = 30 h, law 24 h.
		{"red in the last two weeks", completed, redStart, map[string]float64{"calculus": 30 - eps, "law": 24 - eps}, stream.LevelRed},
		{"not red one second before the window", completed, beforeRed, map[string]float64{"calculus": 30 - eps, "law": 24 - eps}, stream.LevelYellow},
		{"not red at two thirds", completed, redStart, map[string]float64{"calculus": 30, "law": 24}, stream.LevelYellow},
		{"red on the term's last second", completed, day(2027, 1, 18).Add(-time.Second), map[string]float64{"calculus": 30 - eps, "law": 24 - eps}, stream.LevelRed},
		{"none after term end", completed, day(2027, 1, 18), map[string]float64{"calculus": 0, "law": 0}, ""},
		{"none in the first instant of a term (prorated)", def, day(2026, 9, 7), map[string]float64{"calculus": 0, "law": 0}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Snapshot{Student: "s1", Now: c.now, Courses: autumn(c.hours)}
			fs := Evaluate(c.p, s)
			if got := levelOf(t, fs, RuleStudy, ""); got != c.want {
				t.Fatalf("level %q, want %q; findings %+v", got, c.want, fs)
			}
		})
	}
}

func TestStudyRuleReasonAndEvidence(t *testing.T) {
	p := withPolicy(func(p *Policy) { p.Study.Basis = BasisCompleted })
	s := &Snapshot{Student: "s1", Now: day(2026, 11, 23), Courses: autumn(map[string]float64{"calculus": 8.2, "law": 4.8})}
	fs := only(Evaluate(p, s), RuleStudy)
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	f := fs[0]
	want := "2 courses below required study time for period 2026-autumn-3: Calculus 41 % of 20 h, Law 30 % of 16 h"
	if f.Reason != want {
		t.Errorf("reason %q\nwant   %q", f.Reason, want)
	}
	if f.Evidence["calculus_studied_h"] != 8.2 || f.Evidence["calculus_required_h"] != 20 || f.Evidence["courses_short"] != 2 {
		t.Errorf("evidence %v", f.Evidence)
	}
	if f.Category != stream.CategoryStudy || f.Family != FamilyAcademic {
		t.Errorf("finding %+v", f)
	}
}

func TestStudyRuleIgnoresOtherTermsAndUnknownCourses(t *testing.T) {
	p := withPolicy(func(p *Policy) { p.Study.Basis = BasisCompleted })
	s := &Snapshot{Now: day(2026, 11, 23), Courses: []CourseState{
		{Course: "calculus", Term: "2026-spring"},
		{Course: "law", Term: "2026-spring"},
		{Course: "chemistry", Term: "2026-autumn"},
		{Course: "physics", Term: "2026-autumn"},
	}}
	if fs := only(Evaluate(p, s), RuleStudy); len(fs) != 0 {
		t.Fatalf("findings %+v", fs)
	}
}

func grades(term string, failed, passed []string) []GradeRecord {
	var gs []GradeRecord
	for _, c := range failed {
		gs = append(gs, GradeRecord{Course: c, Term: term, Score: 30})
	}
	for _, c := range passed {
		gs = append(gs, GradeRecord{Course: c, Term: term, Score: 80, Passed: true})
	}
	return gs
}

func TestGradeRuleThresholds(t *testing.T) {
	cases := []struct {
		name string
		gs   []GradeRecord
		want string
	}{
		{"one failed", grades("2026-spring", []string{"calculus"}, []string{"law"}), ""},
		{"two failed is yellow", grades("2026-spring", []string{"calculus", "law"}, nil), stream.LevelYellow},
		{"three failed is yellow", grades("2026-spring", []string{"calculus", "law", "c3"}, nil), stream.LevelYellow},
		{"four failed is red", grades("2026-spring", []string{"calculus", "law", "c3", "c4"}, nil), stream.LevelRed},
		{"five failed is red", grades("2026-spring", []string{"calculus", "law", "c3", "c4", "c5"}, nil), stream.LevelRed},
		{"policy elective excluded", grades("2026-spring", []string{"calculus", "politics"}, nil), ""},
		{"elective flag on the record excluded", append(grades("2026-spring", []string{"calculus"}, nil),
			GradeRecord{Course: "art", Term: "2026-spring", Score: 10, Elective: true}), ""},
		{"passed retake in the term clears the failure", append(grades("2026-spring", []string{"calculus", "law"}, nil),
			GradeRecord{Course: "law", Term: "2026-spring", Score: 65, Passed: true}), ""},
		{"duplicate failure counts once", grades("2026-spring", []string{"calculus", "calculus"}, nil), ""},
		{"latest term decides", append(grades("2026-spring", []string{"c1", "c2", "c3", "c4"}, nil),
			grades("2026-autumn", []string{"calculus"}, []string{"law"})...), ""},
		{"latest term by calendar, not by input order", append(grades("2026-autumn", []string{"calculus", "law"}, nil),
			grades("2026-spring", nil, []string{"english"})...), stream.LevelYellow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := Evaluate(DefaultPolicy(), &Snapshot{Now: day(2026, 11, 23), Grades: c.gs})
			if got := levelOf(t, fs, RuleGrade, ""); got != c.want {
				t.Fatalf("level %q, want %q; findings %+v", got, c.want, fs)
			}
		})
	}
	t.Run("electives counted when configured", func(t *testing.T) {
		p := withPolicy(func(p *Policy) { p.Grade.CountElectives = true })
		fs := Evaluate(p, &Snapshot{Now: day(2026, 11, 23), Grades: grades("2026-spring", []string{"calculus", "politics"}, nil)})
		if got := levelOf(t, fs, RuleGrade, ""); got != stream.LevelYellow {
			t.Fatalf("level %q", got)
		}
	})
}

func TestDegreeRule(t *testing.T) {
	spring := day(2027, 3, 1)
	good := []GradeRecord{
		{Course: "calculus", Term: "2026-spring", Score: 80, Passed: true},
		{Course: "law", Term: "2026-spring", Score: 80, Passed: true},
		{Course: "english", Term: "2026-autumn", Score: 70, Passed: true},
	}
	// Average 76.7, core average 80.
	grad := Profile{WantsDegree: true, GraduationYear: 2027, ForeignLanguagePassed: true}
	score := func(course string, v float64) []GradeRecord {
		gs := append([]GradeRecord(nil), good...)
		for i := range gs {
			if gs[i].Course == course {
				gs[i].Score = v
			}
		}
		return gs
	}
	cases := []struct {
		name    string
		now     time.Time
		profile Profile
		gs      []GradeRecord
		want    string
	}{
		{"all met", spring, grad, good, ""},
		{"active from the first instant of the spring term", spring, grad, append(grades("2026-autumn", []string{"english"}, nil), good[:2]...), stream.LevelRed},
		{"not before the spring term", spring.Add(-time.Second), grad, grades("2026-autumn", []string{"english"}, nil), ""},
		{"not in the autumn before", day(2026, 11, 23), grad, grades("2026-autumn", []string{"english"}, nil), ""},
		{"not for a later graduation year", spring, Profile{WantsDegree: true, GraduationYear: 2028}, grades("2026-autumn", []string{"english"}, nil), ""},
		{"failed elective is red", spring, grad, append(score("law", 80), GradeRecord{Course: "politics", Term: "2026-autumn", Score: 30}), stream.LevelRed},
		{"failure passed later is not red", spring, grad, append(score("law", 80), GradeRecord{Course: "english", Term: "2026-spring", Score: 30}), ""},
		{"red without wanting a degree", spring, Profile{GraduationYear: 2027}, grades("2026-autumn", []string{"law"}, nil), stream.LevelRed},
		// english 60 → average (80+80+60)/3 = 73.3; english 50 → 70; 49.7 → 69.9.
		{"average at the minimum", spring, grad, score("english", 50), ""},
		{"average just below", spring, grad, score("english", 49.7), stream.LevelYellow},
		// core courses calculus and law: 80 and 70 → 75; 69.8 → 74.9.
		{"core average at the minimum", spring, grad, score("law", 70), ""},
		{"core average just below", spring, grad, score("law", 69.8), stream.LevelYellow},
		{"foreign language missing", spring, Profile{WantsDegree: true, GraduationYear: 2027}, good, stream.LevelYellow},
		{"no yellow without a degree wish", spring, Profile{GraduationYear: 2027}, score("law", 45), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.gs {
				c.gs[i].Passed = c.gs[i].Score >= 40 // a school whose pass mark is 40
			}
			fs := Evaluate(DefaultPolicy(), &Snapshot{Now: c.now, Profile: c.profile, Grades: c.gs})
			if got := levelOf(t, fs, RuleDegree, ""); got != c.want {
				t.Fatalf("level %q, want %q; findings %+v", got, c.want, fs)
			}
		})
	}
	t.Run("required course missing is red", func(t *testing.T) {
		p := withPolicy(func(p *Policy) { p.Degree.RequiredCourses = []string{"english", "politics"} })
		fs := Evaluate(p, &Snapshot{Now: spring, Profile: grad, Grades: good})
		f := only(fs, RuleDegree)
		if len(f) != 1 || f[0].Level != stream.LevelRed || !strings.Contains(f[0].Reason, "required courses not passed (Politics)") {
			t.Fatalf("findings %+v", fs)
		}
	})
}

func TestTrendRuleWeekOverWeekDrop(t *testing.T) {
	p := DefaultPolicy()
	now := day(2026, 11, 25)
	last, prev := p.WeekKey(now.AddDate(0, 0, -7)), p.WeekKey(now.AddDate(0, 0, -14))
	if last != "2026-W47" || prev != "2026-W46" {
		t.Fatalf("week keys %s %s", last, prev)
	}
	cases := []struct {
		name       string
		prev, last float64 // hours
		want       string
	}{
		{"drop of exactly 10 %", 10, 9, stream.LevelInfo},
		{"drop just under 10 %", 10, 9.01, ""},
		{"drop above 10 %", 10, 2, stream.LevelInfo},
		{"no study last week", 10, 0, stream.LevelInfo},
		{"rise", 5, 8, ""},
		{"too little study before", 0.99, 0, ""},
		{"at the minimum study before", 1, 0, stream.LevelInfo},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Snapshot{Now: now, Courses: []CourseState{{Course: "law", Term: "2026-autumn", StudySecondsTotal: 1e6,
				WeekStudySeconds: map[string]float64{prev: c.prev * 3600, last: c.last * 3600}}}}
			fs := Evaluate(p, s)
			if got := levelOf(t, fs, RuleTrend, "law"); got != c.want {
				t.Fatalf("level %q, want %q; findings %+v", got, c.want, fs)
			}
			if f := only(fs, RuleTrend); len(f) == 1 && f[0].Category != stream.CategoryRisk {
				t.Fatalf("category %q", f[0].Category)
			}
		})
	}
}

func TestPeerRuleBelowClassMedian(t *testing.T) {
	cases := []struct {
		name    string
		studied float64 // hours
		peers   PeerStats
		basis   string
		want    string
	}{
		{"just below 80 % of the median", 8 - 1.0/3600, PeerStats{N: 5, Median: 10 * 3600, Mean: 5 * 3600, Percentile: 20}, "median", stream.LevelInfo},
		{"at 80 % of the median", 8, PeerStats{N: 5, Median: 10 * 3600}, "median", ""},
		{"above", 9, PeerStats{N: 30, Median: 10 * 3600}, "median", ""},
		{"class too small", 1, PeerStats{N: 4, Median: 10 * 3600}, "median", ""},
		{"mean basis", 7, PeerStats{N: 5, Median: 5 * 3600, Mean: 10 * 3600}, "mean", stream.LevelInfo},
		{"nobody studied", 0, PeerStats{N: 10}, "median", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := withPolicy(func(p *Policy) { p.Peer.Basis = c.basis })
			s := &Snapshot{Now: day(2026, 11, 23), Courses: autumn(map[string]float64{"english": c.studied}),
				Peers: map[string]PeerStats{"english": c.peers}}
			if got := levelOf(t, Evaluate(p, s), RulePeer, "english"); got != c.want {
				t.Fatalf("level %q, want %q", got, c.want)
			}
		})
	}
}

func TestCustomRuleOffTask(t *testing.T) {
	p := customPolicy(t)
	cases := []struct {
		name         string
		offTask, all int64
		fires        bool
	}{
		{"more than half off-task", 21, 40, true},
		{"exactly half", 20, 40, false},
		{"too few clicks", 39, 39, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Snapshot{Student: "s1", Now: day(2026, 11, 23), Courses: []CourseState{{Course: "law", Term: "2026-autumn",
				StudySecondsTotal: 100 * 3600, Clicks: map[string]int64{"off_task": c.offTask, "study": c.all - c.offTask}}}}
			fs := only(Evaluate(p, s), "off_task_heavy")
			if (len(fs) == 1) != c.fires {
				t.Fatalf("findings %+v", fs)
			}
			if c.fires && (fs[0].Evidence["off_task_courses"] != 1 || fs[0].Category != stream.CategoryCustom || fs[0].Level != stream.LevelInfo) {
				t.Fatalf("finding %+v", fs[0])
			}
		})
	}
}

func TestCustomRuleSeesTheDocumentedStudentObject(t *testing.T) {
	text := minimalPolicy + `custom:
  - id: live_minor_low
    family: live
    level: red
    category: engagement
    when: student.minor && student.in_live && student.live.attention_1m < 0.5 && student.term == "t1" && student.period == "p2"
    reason: A minor is inattentive.
    evidence:
      attention: student.live.attention_1m
  - id: failed_any
    when: student.failed_courses >= 1 && student.grades.exists(g, !g.passed) && student.courses.all(c, c.known)
    reason: Failed a course.
  - id: behind
    when: student.courses.exists(c, c.current && c.study_hours < c.required_hours_so_far && c.required_hours_total == 5.0)
    reason: Behind in a course.
`
	p, err := LoadPolicy([]byte(text), "custom.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{Student: "s1", Now: time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC),
		Profile: Profile{Minor: true},
		Live:    &Live{Session: "x", Course: "c1", Captured: true, Attention1m: 0.2, Samples1m: 60},
		Courses: []CourseState{{Course: "c1", Term: "t1", StudySecondsTotal: 3600}},
		Grades:  []GradeRecord{{Course: "c1", Term: "t1", Score: 10}},
	}
	fs := Evaluate(p, s)
	for _, id := range []string{"live_minor_low", "failed_any", "behind"} {
		if len(only(fs, id)) != 1 {
			t.Errorf("rule %s did not fire: %+v", id, fs)
		}
	}
	if f := only(fs, "live_minor_low"); len(f) == 1 && (f[0].Family != FamilyLive || f[0].Evidence["attention"] != 0.2 || f[0].Level != stream.LevelRed) {
		t.Errorf("live rule finding %+v", f[0])
	}
	// Academic evaluation alone does not run live custom rules.
	if f := only(EvaluateFamilies(p, s, FamilyAcademic), "live_minor_low"); len(f) != 0 {
		t.Errorf("live custom rule ran in an academic evaluation")
	}
}

func TestDocumentedCustomExamplesLoadAndFire(t *testing.T) {
	text := minimalPolicy + `custom:
  - id: no_homework
    level: yellow
    when: student.courses.exists(c, c.current && c.study_hours > 5.0 && !("homework" in c.clicks))
    reason: Studies but hands in no homework.
  - id: minor_absent
    family: live
    category: engagement
    level: red
    when: student.minor && student.live.face_absent_seconds >= 120.0
    reason: A minor has been away from the camera for two minutes.
`
	p, err := LoadPolicy([]byte(text), "docs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{Student: "s1", Now: time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC), Profile: Profile{Minor: true},
		Live:    &Live{Captured: true, FaceAbsentSeconds: 120},
		Courses: []CourseState{{Course: "c1", Term: "t1", StudySecondsTotal: 6 * 3600, Clicks: map[string]int64{"study": 3}}}}
	fs := Evaluate(p, s)
	if len(only(fs, "no_homework")) != 1 || len(only(fs, "minor_absent")) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	s.Courses[0].Clicks["homework"] = 1
	s.Live.FaceAbsentSeconds = 119
	if fs := Evaluate(p, s); len(only(fs, "no_homework"))+len(only(fs, "minor_absent")) != 0 {
		t.Fatalf("findings %+v", fs)
	}
}

func TestFindingsFromHostileSnapshotsMakeValidWarnings(t *testing.T) {
	p := withPolicy(func(p *Policy) { p.Study.Basis = BasisCompleted; p.Study.MinCourses = 1 })
	long := strings.Repeat("課", 40) // 120 bytes, within the 200-byte name limit
	q := *p
	q.courses = map[string]*Course{}
	for i := range p.Courses {
		c := p.Courses[i]
		c.Name = long
		q.courses[c.ID] = &c
	}
	var cs []CourseState
	for i := 0; i < 40; i++ {
		id := []string{"calculus", "law", "english", "politics"}[i%4]
		cs = append(cs, CourseState{Course: id, Term: "2026-autumn", StudySecondsTotal: -1e300})
	}
	s := &Snapshot{Student: "s1", Now: day(2026, 11, 23), Courses: cs,
		Peers: map[string]PeerStats{"law": {N: 10, Median: 1e300, Percentile: 1e300}}}
	fs := Evaluate(&q, s)
	if len(only(fs, RuleStudy)) != 1 || len(only(fs, RulePeer)) == 0 {
		t.Fatalf("findings %+v", fs)
	}
	_, evs := Reconcile(&q, "s1", "", nil, fs, FamilyAcademic, s.Now)
	for _, e := range evs {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v (reason %d bytes)", e.Rule, err, len(e.Reason))
		}
	}
}

func TestNumberFormatting(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{num(10), "10"}, {num(8.25), "8.3"}, {num(0.04), "0"}, {num(-2.5), "-2.5"}, {num(0.96), "1"},
		{hours(27.5), "27.5 h"}, {pct(0.41), "41 %"}, {pct(0.999), "99 %"}, {pct(1), "100 %"}, {pct(2.0 / 3), "67 %"},
		{num(1e300), "1e+300"},
		// A share under its limit never reads as the limit.
		{pctBelow(0.2496, 0.25), "24.9 %"}, {pctBelow(0.2, 0.25), "20 %"}, {pctBelow(0.2499999, 0.25), "24.9 %"},
		{pctBelow(0.154, 0.155), "15 %"}, {pctBelow(0.1549, 0.155), "15 %"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestLastWeeksAcrossTheYearAndZone(t *testing.T) {
	p := DefaultPolicy()
	cases := []struct {
		at         time.Time
		last, prev string
	}{
		{day(2026, 11, 25), "2026-W47", "2026-W46"},
		{day(2026, 11, 23), "2026-W47", "2026-W46"}, // Monday 00:00 in Shanghai
		{time.Date(2026, 11, 22, 16, 30, 0, 0, time.UTC), "2026-W47", "2026-W46"},
		{day(2027, 1, 6), "2026-W53", "2026-W52"},
		{day(2027, 1, 13), "2027-W01", "2026-W53"},
	}
	for _, c := range cases {
		last, prev := p.LastWeeks(c.at)
		if last != c.last || prev != c.prev {
			t.Errorf("LastWeeks(%v) = %s %s, want %s %s", c.at, last, prev, c.last, c.prev)
		}
		if got := p.WeekKey(c.at.AddDate(0, 0, -7)); got != c.last {
			t.Errorf("WeekKey(%v - 7 days) = %s, want %s", c.at, got, c.last)
		}
	}
}

func TestCustomRuleOverCostLimitDoesNotFire(t *testing.T) {
	text := minimalPolicy + `custom:
  - id: runaway
    when: student.courses.all(a, student.courses.all(b, student.courses.all(c, a.study_hours + b.study_hours + c.study_hours >= 0.0)))
    reason: Always true, if it ever finished.
`
	p, err := LoadPolicy([]byte(text), "runaway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{Now: time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)}
	for i := 0; i < 3; i++ {
		s.Courses = append(s.Courses, CourseState{Course: "c1", Term: "t1"})
	}
	if len(only(Evaluate(p, s), "runaway")) != 1 {
		t.Fatal("the rule does not fire on a small snapshot")
	}
	for i := 0; i < 200; i++ { // 200³ iterations: far beyond the cost limit
		s.Courses = append(s.Courses, CourseState{Course: "c1", Term: "t1"})
	}
	if fs := only(Evaluate(p, s), "runaway"); len(fs) != 0 {
		t.Fatalf("a rule over the cost limit fired: %+v", fs)
	}
}
