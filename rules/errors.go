package rules

import (
	"errors"
	"strconv"
	"strings"
)

// ErrPolicy is wrapped by every error about a policy's content, so callers
// can tell a bad policy file from an I/O failure with errors.Is.
var ErrPolicy = errors.New("invalid policy")

// Problem is one thing wrong with a policy file.
type Problem struct {
	// Line is the 1-based line in the file, 0 when unknown.
	Line int
	// Field is the path of the field at fault, "courses[2].required_hours",
	// or empty for a syntax error.
	Field string
	// Message says what is wrong.
	Message string
}

// PolicyError lists the problems found in a policy file, each in the form
// "policy.yaml:17: courses[2].required_hours: must be > 0".
type PolicyError struct {
	Source   string
	Problems []Problem
}

// maxProblems bounds the problems one error lists.
const maxProblems = 20

func (e *PolicyError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Source)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrPolicy) hold.
func (e *PolicyError) Unwrap() error { return ErrPolicy }
