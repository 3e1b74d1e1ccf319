package profile

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Learner is what `classpulse profile assign` writes back to a student's
// state for one course: the learner profile and, given a model, the
// predicted grade and probability of D, with when and by which model. It
// is stored as JSON in the field LearnerField(course) of the student's
// roster hash ({s:<id>}:profile, stream/state.ProfileKey), so it lands on
// the student's Redis Cluster shard and reaches the rules with the rest of
// the academic state the processor reads after each click or grade.
type Learner struct {
	// Course is the course the row was profiled in ("" for a table
	// without a course column); it is the field name, not in the JSON.
	Course string `json:"-"`
	// Profile is the profile name (marginal, balanced, diligent, …) and
	// Cluster its index in the profiling run; K is that run's k.
	Profile string `json:"profile"`
	Cluster int    `json:"cluster"`
	K       int    `json:"k"`
	// Grade is the predicted grade class and PD the predicted probability
	// of D; both empty/nil without a model.
	Grade string   `json:"grade,omitempty"`
	PD    *float64 `json:"p_d,omitempty"`
	// Model identifies the model file (ModelVersion) the prediction came
	// from; Seed is the profiling run's seed.
	Model string `json:"model,omitempty"`
	Seed  uint64 `json:"seed"`
	// At is when the values were computed. Rewriting the same values keeps
	// the earlier At (WriteLearners), so a repeated run changes nothing.
	At time.Time `json:"at"`
}

// learnerPrefix starts every learner field of the roster hash.
const learnerPrefix = "learner"

// LearnerField names the roster-hash field of a course's learner record:
// "learner|math", or "learner" for a row without a course.
func LearnerField(course string) string {
	if course == "" {
		return learnerPrefix
	}
	return learnerPrefix + "|" + course
}

// Marshal returns the stored JSON of l.
func (l *Learner) Marshal() (string, error) {
	if l.PD != nil && (math.IsNaN(*l.PD) || *l.PD < 0 || *l.PD > 1) {
		return "", fmt.Errorf("%w: P(D) %v out of 0..1", ErrBadInput, *l.PD)
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// sameValues reports whether a and b say the same, whenever computed.
func (l *Learner) sameValues(o *Learner) bool {
	pd := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return math.Round(*p*1e6) / 1e6
	}
	return l.Profile == o.Profile && l.Cluster == o.Cluster && l.K == o.K && l.Grade == o.Grade &&
		pd(l.PD) == pd(o.PD) && l.Model == o.Model && l.Seed == o.Seed
}

// ParseLearners returns the learner records of a student's roster hash,
// sorted by course. Fields that do not parse are skipped: the hash is
// also written by roster imports, and one bad field must not hide the
// rest of the page.
func ParseLearners(roster map[string]string) []Learner {
	var out []Learner
	for f, v := range roster {
		course, ok := strings.CutPrefix(f, learnerPrefix)
		if !ok || course != "" && course[0] != '|' {
			continue
		}
		course = strings.TrimPrefix(course, "|")
		var l Learner
		if err := json.Unmarshal([]byte(v), &l); err != nil || l.Profile == "" {
			continue
		}
		if l.PD != nil && (math.IsNaN(*l.PD) || *l.PD < 0 || *l.PD > 1) {
			l.PD = nil
		}
		l.Course = course
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Learner) int { return strings.Compare(a.Course, b.Course) })
	return out
}

// StudentLearner is one student's learner record, to be written back.
type StudentLearner struct {
	Student string
	Learner
}

// Learners turns a profiling run over t (res = Run(t, …)) into one record
// per row: the row's profile and, when m is not nil, the grade m predicts
// from the row's features and its probability of D (nil when m has no
// class D). Course comes from t's course text column, if any.
func Learners(t *Table, res *Result, m *Model, seed uint64, at time.Time) ([]StudentLearner, error) {
	if len(res.Assign) != t.Len() {
		return nil, fmt.Errorf("profiling result has %d rows, table %d", len(res.Assign), t.Len())
	}
	var x [][]float64
	dIdx := -1
	if m != nil {
		var err error
		if x, err = t.Select(m.Features); err != nil {
			return nil, fmt.Errorf("the table does not fit model %s: %w", m.ID(), err)
		}
		dIdx = slices.Index(m.Classes, GradeD)
	}
	courses := t.Text["course"]
	out := make([]StudentLearner, t.Len())
	for i, id := range t.IDs {
		c := res.Assign[i]
		l := Learner{Profile: res.Profiles[c].Name, Cluster: c, K: res.K, Seed: seed, At: at.UTC().Truncate(time.Second)}
		if i < len(courses) {
			l.Course = courses[i]
		}
		if m != nil {
			p, err := m.Proba(x[i])
			if err != nil {
				return nil, err
			}
			l.Grade, l.Model = m.Classes[argmax(p)], m.ID()
			if dIdx >= 0 {
				pd := math.Round(p[dIdx]*1e4) / 1e4
				l.PD = &pd
			}
		}
		out[i] = StudentLearner{Student: id, Learner: l}
	}
	return out, nil
}
