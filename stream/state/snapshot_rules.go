package state

import (
	"sort"
	"strconv"
	"time"

	"github.com/classpulse/classpulse/rules"
)

// Snapshot turns a student's academic state into the rules' snapshot at
// now: profile facts, study time and click counts per course and term,
// grades, and the grade predictions `classpulse profile assign` wrote into
// the profile hash. The processor evaluates it after a click or grade and
// the help-plan follow-up re-checks warnings with it, so both see a
// student alike. Campus signals are not part of the state; callers that
// run the campus rules add them (ingest.ReadCampus).
func (a *Academic) Snapshot(student string, now time.Time) *rules.Snapshot {
	s := &rules.Snapshot{Student: student, Now: now, Class: a.Profile["class"]}
	s.Profile = rules.Profile{
		Minor:                 a.Profile["minor"] == "1",
		WantsDegree:           a.Profile["wants_degree"] == "1",
		ForeignLanguagePassed: a.Profile["foreign_language_passed"] == "1",
		Unit:                  a.Profile["unit"],
	}
	s.Profile.GraduationYear, _ = strconv.Atoi(a.Profile["graduation_year"])
	courses := make([]string, 0, len(a.Study)+len(a.Clicks))
	seen := map[string]bool{}
	for c := range a.Study {
		courses, seen[c] = append(courses, c), true
	}
	for c := range a.Clicks {
		if !seen[c] {
			courses = append(courses, c)
		}
	}
	sort.Strings(courses)
	for _, c := range courses {
		terms := map[string]bool{}
		st := a.Study[c]
		if st != nil {
			for t := range st.ByTerm {
				terms[t] = true
			}
		}
		for t := range a.Clicks[c] {
			terms[t] = true
		}
		for t := range terms {
			cs := rules.CourseState{Course: c, Term: t, Clicks: a.Clicks[c][t]}
			if st != nil {
				cs.StudySecondsByPeriod = st.ByPeriod[t]
				cs.StudySecondsTotal = st.ByTerm[t]
				cs.WeekStudySeconds = st.ByWeek
			}
			s.Courses = append(s.Courses, cs)
		}
	}
	sort.Slice(s.Courses, func(i, j int) bool {
		if s.Courses[i].Course != s.Courses[j].Course {
			return s.Courses[i].Course < s.Courses[j].Course
		}
		return s.Courses[i].Term < s.Courses[j].Term
	})
	for _, g := range a.Grades {
		s.Grades = append(s.Grades, rules.GradeRecord{Course: g.Course, Term: g.Term, Score: g.Score, Passed: g.Passed, Elective: g.Elective, Core: g.Core})
	}
	s.Predictions = rules.PredictionsFromProfile(a.Profile)
	return s
}
