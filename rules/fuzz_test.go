package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoadPolicy feeds arbitrary bytes to the loader: it must return a
// policy or an error, never panic, and every policy it accepts must be
// usable by the evaluator.
func FuzzLoadPolicy(f *testing.F) {
	f.Add(DefaultPolicyYAML())
	f.Add([]byte(minimalPolicy))
	seeds, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "seed", "*.yaml"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadPolicy(data, "fuzz.yaml")
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPolicy) || len(pe.Problems) == 0 {
				t.Fatalf("error %v is not a PolicyError with problems", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, term := range p.Calendar.Terms {
			for _, at := range []time.Time{term.start, term.end.Add(-time.Second)} {
				s := &Snapshot{Student: "s", Now: at,
					Live:    &Live{Course: "c", Captured: true, Samples2m: 120},
					Courses: []CourseState{{Course: "c1", Term: term.ID}},
					Grades:  []GradeRecord{{Course: "c1", Term: term.ID, Score: 1}},
				}
				for _, c := range p.Courses {
					s.Courses = append(s.Courses, CourseState{Course: c.ID, Term: term.ID})
				}
				_ = Evaluate(p, s)
				_ = EvaluateClass(p, &ClassSnapshot{Session: "x", Course: "c1", Now: at, Captured: 10, Confused: 10})
			}
		}
	})
}
