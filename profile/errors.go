package profile

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadInput is wrapped by every error about the content of a feature
// table, an events file or a model file, so callers can tell bad input
// (exit 1 with the message) from a failure of the machine.
var ErrBadInput = errors.New("bad input")

// ErrTooFewRows is returned when a table has too few usable rows for the
// requested clustering or training.
var ErrTooFewRows = errors.New("too few rows")

// RowError names the row, the column and the reason of one bad cell or
// record. Row counts data rows from 1 (the header is not a row); Line is the
// line of the input where the record starts.
type RowError struct {
	Row    int
	Line   int
	Column string
	Reason string
}

func (e *RowError) Error() string {
	var b strings.Builder
	switch {
	case e.Row == e.Line:
		fmt.Fprintf(&b, "line %d", e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, "row %d (line %d)", e.Row, e.Line)
	default:
		fmt.Fprintf(&b, "row %d", e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %q", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes every RowError an ErrBadInput.
func (e *RowError) Unwrap() error { return ErrBadInput }

// maxListedErrors bounds how many row errors one InputError spells out.
const maxListedErrors = 20

// InputError gathers the row errors of one input so a user fixes them all
// in one pass instead of one per run.
type InputError struct {
	Source string
	Unit   string      // what a bad item is called: "row" (default) or "line"
	Rows   []*RowError // the first maxListedErrors
	Total  int         // how many rows were bad in all
}

func (e *InputError) Error() string {
	var b strings.Builder
	unit := e.Unit
	if unit == "" {
		unit = "row"
	}
	fmt.Fprintf(&b, "%s: %d bad %s", e.Source, e.Total, unit)
	if e.Total != 1 {
		b.WriteString("s")
	}
	for _, r := range e.Rows {
		b.WriteString("\n  ")
		b.WriteString(r.Error())
	}
	if e.Total > len(e.Rows) {
		fmt.Fprintf(&b, "\n  … and %d more", e.Total-len(e.Rows))
	}
	return b.String()
}

// Unwrap makes every InputError an ErrBadInput.
func (e *InputError) Unwrap() error { return ErrBadInput }

// add records one row error, keeping only the first maxListedErrors.
func (e *InputError) add(r *RowError) {
	e.Total++
	if len(e.Rows) < maxListedErrors {
		e.Rows = append(e.Rows, r)
	}
}

// errOrNil returns e when it holds any row error.
func (e *InputError) errOrNil() error {
	if e.Total == 0 {
		return nil
	}
	return e
}

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
}
