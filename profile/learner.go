package profile

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/classpulse/classpulse/profile/learner"
)

// StudentLearner is one student's learner record, to be written back.
type StudentLearner struct {
	Student string
	learner.Record
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
		l := learner.Record{Profile: res.Profiles[c].Name, Cluster: c, K: res.K, Seed: seed, At: at.UTC().Truncate(time.Second)}
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
		out[i] = StudentLearner{Student: id, Record: l}
	}
	return out, nil
}
