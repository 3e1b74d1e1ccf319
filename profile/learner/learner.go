// Package learner is the stored form of a student's learner profile and
// grade prediction: what `classpulse profile assign` writes into the
// student's roster hash, and what the rules and the dashboard read back.
// It depends on nothing but the standard library, so every reader can
// import it without pulling in the profiling code.
package learner

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Record is what `classpulse profile assign` writes back to a student's
// state for one course: the learner profile and, given a model, the
// predicted grade and probability of D, with when and by which model. It
// is stored as JSON in the field Field(course) of the student's
// roster hash ({s:<id>}:profile, stream/state.ProfileKey), so it lands on
// the student's Redis Cluster shard and reaches the rules with the rest of
// the academic state the processor reads after each click or grade.
type Record struct {
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
	// Model identifies the model file (profile.Model.ID) the prediction came
	// from; Seed is the profiling run's seed.
	Model string `json:"model,omitempty"`
	Seed  uint64 `json:"seed"`
	// At is when the values were computed. Rewriting the same values keeps
	// the earlier At (profile.WriteLearners), so a repeated run changes nothing.
	At time.Time `json:"at"`
}

// prefix starts every learner field of the roster hash.
const prefix = "learner"

// Field names the roster-hash field of a course's learner record:
// "learner|math", or "learner" for a row without a course.
func Field(course string) string {
	if course == "" {
		return prefix
	}
	return prefix + "|" + course
}

// Marshal returns the stored JSON of l.
func (l *Record) Marshal() (string, error) {
	if l.PD != nil && (math.IsNaN(*l.PD) || *l.PD < 0 || *l.PD > 1) {
		return "", fmt.Errorf("learner record: P(D) %v out of 0..1", *l.PD)
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// SameValues reports whether l and o say the same, whenever computed.
func (l *Record) SameValues(o *Record) bool {
	pd := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return math.Round(*p*1e6) / 1e6
	}
	return l.Profile == o.Profile && l.Cluster == o.Cluster && l.K == o.K && l.Grade == o.Grade &&
		pd(l.PD) == pd(o.PD) && l.Model == o.Model && l.Seed == o.Seed
}

// Parse returns the learner records of a student's roster hash,
// sorted by course. Fields that do not parse are skipped: the hash is
// also written by roster imports, and one bad field must not hide the
// rest of the page.
func Parse(roster map[string]string) []Record {
	var out []Record
	for f, v := range roster {
		course, ok := strings.CutPrefix(f, prefix)
		if !ok || course != "" && course[0] != '|' {
			continue
		}
		course = strings.TrimPrefix(course, "|")
		var l Record
		if err := json.Unmarshal([]byte(v), &l); err != nil || l.Profile == "" {
			continue
		}
		if l.PD != nil && (math.IsNaN(*l.PD) || *l.PD < 0 || *l.PD > 1) {
			l.PD = nil
		}
		l.Course = course
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Course, b.Course) })
	return out
}
