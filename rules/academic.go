package rules

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// academic runs the study-state, grade, degree, trend and peer rules.
func (e *evaluator) academic() {
	term := e.p.TermAt(e.s.Now)
	if term != nil {
		if e.p.Study.Enabled {
			e.study(term)
		}
		if e.p.Trend.Enabled {
			e.trend(term)
		}
		if e.p.Peer.Enabled {
			e.peer(term)
		}
	}
	if e.p.Grade.Enabled {
		e.grade()
	}
	if e.p.Degree.Enabled && term != nil {
		e.degree(term)
	}
}

// WeekKey returns the ISO-week key ("2026-W47") of t in the calendar's
// zone, the key of CourseState.WeekStudySeconds.
func (p *Policy) WeekKey(t time.Time) string {
	y, w := t.In(p.loc).ISOWeek()
	return weekKey(y, w)
}

// LastWeeks returns the keys of the week before t's week and of the one
// before that, in the calendar's zone: the weeks of WeekStudySeconds the
// rules read (the trend notice, custom rules' last_week_hours and
// previous_week_hours). The stream processor's state returns only these
// weeks with a click or grade (stream/state).
func (p *Policy) LastWeeks(t time.Time) (last, prev string) {
	y, m, d := t.In(p.loc).Date()
	noon := time.Date(y, m, d, 12, 0, 0, 0, p.loc) // a DST shift cannot change the day
	ly, lw := noon.Add(-7 * 24 * time.Hour).ISOWeek()
	py, pw := noon.Add(-14 * 24 * time.Hour).ISOWeek()
	return weekKey(ly, lw), weekKey(py, pw)
}

func weekKey(y, w int) string {
	b := make([]byte, 0, 8)
	b = strconv.AppendInt(b, int64(y), 10)
	b = append(b, '-', 'W', byte('0'+w/10), byte('0'+w%10))
	return string(b)
}

// requiredScale is the factor on a course's required time.
func (e *evaluator) requiredScale(c *Course) float64 {
	if e.p.Dynamic.RequiredTime {
		return c.Difficulty
	}
	return 1
}

// shortCourse is one course behind its required study time.
type shortCourse struct {
	c                 *Course
	studied, required float64 // hours
}

// study is the study-state rule (学习状态预警).
func (e *evaluator) study(term *Term) {
	p, s := e.p, e.s
	k := term.periodIndex(s.Now)
	if k < 0 {
		return
	}
	red := !s.Now.Before(term.end.AddDate(0, 0, -p.Study.RedLastDays))
	var ybuf, rbuf [8]shortCourse // no allocation for up to 8 short courses
	yellowShort, redShort := ybuf[:0], rbuf[:0]
	for i := range s.Courses {
		cs := &s.Courses[i]
		c := p.Course(cs.Course)
		if cs.Term != term.ID || c == nil {
			continue
		}
		soFar, total, _ := c.requiredHours(term, s.Now, p.Study.Basis)
		d := e.requiredScale(c)
		soFar, total = soFar*d, total*d
		studied := cs.StudySecondsTotal / 3600
		if soFar > 0 && studied < soFar {
			yellowShort = append(yellowShort, shortCourse{c, studied, soFar})
		}
		if limit := float64(p.Study.RedShare) * total; red && total > 0 && studied < limit {
			redShort = append(redShort, shortCourse{c, studied, limit})
		}
	}
	period := term.Periods[k].Name
	switch {
	case red && len(redShort) >= p.Study.MinCourses:
		e.add(RuleStudy, FamilyAcademic, stream.CategoryStudy, stream.LevelRed, "",
			count(len(redShort), "course")+" below "+pct(float64(p.Study.RedShare))+" of the term's required study time in the last "+
				strconv.Itoa(p.Study.RedLastDays)+" days before term end: "+shortList(redShort),
			studyEvidence(redShort, p.Study.MinCourses, float64(p.Study.RedShare)))
	case len(yellowShort) >= p.Study.MinCourses:
		e.add(RuleStudy, FamilyAcademic, stream.CategoryStudy, stream.LevelYellow, "",
			count(len(yellowShort), "course")+" below required study time for period "+period+": "+shortList(yellowShort),
			studyEvidence(yellowShort, p.Study.MinCourses, 1))
	}
}

func shortList(cs []shortCourse) string {
	var b strings.Builder
	b.Grow(40 * len(cs))
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		share := 0.0
		if c.required > 0 {
			share = c.studied / c.required
		}
		b.WriteString(c.c.Name)
		b.WriteByte(' ')
		b.WriteString(pct(share))
		b.WriteString(" of ")
		b.WriteString(hours(c.required))
	}
	return b.String()
}

func studyEvidence(cs []shortCourse, minCourses int, share float64) map[string]float64 {
	ev := make(map[string]float64, 3+2*min(len(cs), 25))
	ev["courses_short"], ev["min_courses"] = float64(len(cs)), float64(minCourses)
	if share != 1 {
		ev["share"] = share
	}
	for i, c := range cs {
		if i == 25 {
			break
		}
		ev[c.c.evStudied] = round2(c.studied)
		ev[c.c.evRequired] = round2(c.required)
	}
	return ev
}

// grade is the grade rule (学习成绩预警) over the latest graded term.
func (e *evaluator) grade() {
	term, failed := e.latestTermFailures()
	n := len(failed)
	level := ""
	switch {
	case n >= e.p.Grade.RedFailed:
		level = stream.LevelRed
	case n >= e.p.Grade.YellowFailed:
		level = stream.LevelYellow
	default:
		return
	}
	names := make([]string, len(failed))
	for i, id := range failed {
		names[i] = e.courseName(id)
	}
	e.add(RuleGrade, FamilyAcademic, stream.CategoryGrade, level, "",
		count(n, "failed course")+" in term "+term+": "+strings.Join(names, ", "),
		map[string]float64{"failed": float64(n), "yellow_failed": float64(e.p.Grade.YellowFailed), "red_failed": float64(e.p.Grade.RedFailed)})
}

// latestTermFailures returns the latest term with grades and the courses
// failed in it (no passing record in that term), sorted; public electives
// count only with grade.count_electives.
func (e *evaluator) latestTermFailures() (string, []string) {
	latest := ""
	var latestStart time.Time
	for i := range e.s.Grades {
		t := e.s.Grades[i].Term
		var st time.Time
		if pt := e.p.Term(t); pt != nil {
			st = pt.start
		}
		if latest == "" || st.After(latestStart) || (st.Equal(latestStart) && t > latest) {
			latest, latestStart = t, st
		}
	}
	if latest == "" {
		return "", nil
	}
	var failed, passed []string
	for i := range e.s.Grades {
		g := &e.s.Grades[i]
		if g.Term != latest || (!e.p.Grade.CountElectives && e.isElective(g)) {
			continue
		}
		if g.Passed {
			passed = append(passed, g.Course)
		} else {
			failed = append(failed, g.Course)
		}
	}
	return latest, without(failed, passed)
}

// without returns the sorted distinct members of a not in b.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func (e *evaluator) isElective(g *GradeRecord) bool {
	if g.Elective {
		return true
	}
	c := e.p.Course(g.Course)
	return c != nil && c.Elective
}

func (e *evaluator) isCore(g *GradeRecord) bool {
	if g.Core {
		return true
	}
	c := e.p.Course(g.Course)
	return c != nil && c.Core
}

func (e *evaluator) courseName(id string) string {
	if c := e.p.Course(id); c != nil {
		return c.Name
	}
	return id
}

// averages returns the mean best score per course and the same over core
// courses, 0 when there is nothing to average.
func (e *evaluator) averages() (avg, core float64) {
	a, c := e.averagesN()
	return a.mean(), c.mean()
}

type meanAcc struct {
	sum float64
	n   int
}

func (m meanAcc) mean() float64 {
	if m.n == 0 {
		return 0
	}
	return m.sum / float64(m.n)
}

func (e *evaluator) averagesN() (all, core meanAcc) {
	gs := e.s.Grades
	for i := range gs {
		g := &gs[i]
		best, first := g.Score, true
		for j := range gs {
			if gs[j].Course == g.Course {
				if j < i {
					first = false
					break
				}
				best = max(best, gs[j].Score)
			}
		}
		if !first {
			continue
		}
		all.sum += best
		all.n++
		if e.isCore(g) {
			core.sum += best
			core.n++
		}
	}
	return all, core
}

// degree is the degree rule (毕业学位预警): active through the spring term
// of the graduation year.
func (e *evaluator) degree(term *Term) {
	p, s := e.p, e.s
	if !term.Spring || s.Profile.GraduationYear == 0 || term.start.Year() != s.Profile.GraduationYear {
		return
	}
	// Red: any course never passed, or a required course not passed.
	var failed, passed []string
	for i := range s.Grades {
		g := &s.Grades[i]
		if !p.Degree.RedCountElectives && e.isElective(g) {
			continue
		}
		if g.Passed {
			passed = append(passed, g.Course)
		} else {
			failed = append(failed, g.Course)
		}
	}
	failed = without(failed, passed)
	var missing []string
	for _, c := range p.Degree.RequiredCourses {
		if !slices.Contains(passed, c) && !slices.Contains(failed, c) {
			missing = append(missing, c)
		}
	}
	if len(failed)+len(missing) > 0 {
		var parts []string
		if len(failed) > 0 {
			parts = append(parts, count(len(failed), "failed course")+" ("+e.names(failed)+")")
		}
		if len(missing) > 0 {
			parts = append(parts, "required courses not passed ("+e.names(missing)+")")
		}
		e.add(RuleDegree, FamilyAcademic, stream.CategoryDegree, stream.LevelRed, "",
			"Graduation in "+strconv.Itoa(s.Profile.GraduationYear)+" at risk: "+strings.Join(parts, "; "),
			map[string]float64{"failed": float64(len(failed)), "required_missing": float64(len(missing)),
				"graduation_year": float64(s.Profile.GraduationYear)})
		return
	}
	if !s.Profile.WantsDegree {
		return
	}
	all, core := e.averagesN()
	var parts []string
	ev := map[string]float64{"graduation_year": float64(s.Profile.GraduationYear)}
	if all.n > 0 && all.mean() < p.Degree.MinAverage {
		parts = append(parts, "average score "+num(all.mean())+" below "+num(p.Degree.MinAverage))
		ev["average"], ev["min_average"] = round2(all.mean()), p.Degree.MinAverage
	}
	if core.n > 0 && core.mean() < p.Degree.MinCoreAverage {
		parts = append(parts, "core-course average "+num(core.mean())+" below "+num(p.Degree.MinCoreAverage))
		ev["core_average"], ev["min_core_average"] = round2(core.mean()), p.Degree.MinCoreAverage
	}
	if p.Degree.ForeignLanguage && !s.Profile.ForeignLanguagePassed {
		parts = append(parts, "foreign-language requirement not met")
		ev["foreign_language_passed"] = 0
	}
	if len(parts) > 0 {
		e.add(RuleDegree, FamilyAcademic, stream.CategoryDegree, stream.LevelYellow, "",
			"Degree requirement missed for graduation in "+strconv.Itoa(s.Profile.GraduationYear)+": "+strings.Join(parts, "; "), ev)
	}
}

func (e *evaluator) names(ids []string) string {
	n := make([]string, len(ids))
	for i, id := range ids {
		n[i] = e.courseName(id)
	}
	return strings.Join(n, ", ")
}

// trend is the week-over-week drop notice, per current-term course.
func (e *evaluator) trend(term *Term) {
	p, s := e.p, e.s
	lastKey, prevKey := "", ""
	for i := range s.Courses {
		cs := &s.Courses[i]
		if cs.Term != term.ID || len(cs.WeekStudySeconds) == 0 {
			continue
		}
		if lastKey == "" {
			lastKey, prevKey = p.LastWeeks(s.Now)
		}
		prev, last := cs.WeekStudySeconds[prevKey]/3600, cs.WeekStudySeconds[lastKey]/3600
		if prev <= 0 || prev < p.Trend.MinPreviousHours {
			continue
		}
		drop := (prev - last) / prev
		if drop+1e-9 < float64(p.Trend.Drop) {
			continue
		}
		e.add(RuleTrend, FamilyAcademic, stream.CategoryRisk, p.Trend.Level, cs.Course,
			"At risk: study time in "+e.courseName(cs.Course)+" fell "+pct(drop)+" week over week ("+
				hours(prev)+" in "+prevKey+", "+hours(last)+" in "+lastKey+")",
			map[string]float64{"previous_week_h": round2(prev), "last_week_h": round2(last), "drop": round2(drop), "limit": float64(p.Trend.Drop)})
	}
}

// peer is the peer-position notice, per current-term course.
func (e *evaluator) peer(term *Term) {
	p, s := e.p, e.s
	for i := range s.Courses {
		cs := &s.Courses[i]
		ps, ok := s.Peers[cs.Course]
		if cs.Term != term.ID || !ok || ps.N < p.Peer.MinClass {
			continue
		}
		basis := ps.Median
		if p.Peer.Basis == "mean" {
			basis = ps.Mean
		}
		limit := float64(p.Peer.Ratio) * basis
		if basis <= 0 || cs.StudySecondsTotal >= limit {
			continue
		}
		e.add(RulePeer, FamilyAcademic, stream.CategoryRisk, p.Peer.Level, cs.Course,
			"Study time in "+e.courseName(cs.Course)+" is "+hours(cs.StudySecondsTotal/3600)+", below "+pct(float64(p.Peer.Ratio))+
				" of the class "+p.Peer.Basis+" "+hours(basis/3600)+" (percentile "+num(ps.Percentile)+" of "+strconv.Itoa(ps.N)+")",
			map[string]float64{"student_h": round2(cs.StudySecondsTotal / 3600), p.Peer.evBasis(): round2(basis / 3600),
				"ratio": float64(p.Peer.Ratio), "percentile": round2(ps.Percentile), "class_n": float64(ps.N)})
	}
}

// evBasis is the evidence key of the class statistic.
func (r *PeerRule) evBasis() string {
	if r.Basis == "mean" {
		return "class_mean_h"
	}
	return "class_median_h"
}
