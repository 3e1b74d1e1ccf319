package ingest

import "errors"

// ErrUnmappable is wrapped by every reason an xAPI statement cannot become
// a click event; the reason's code is in a *StatementError.
var ErrUnmappable = errors.New("unmappable statement")

// ErrBadFile is wrapped by errors about a whole import file (unreadable,
// no header, unknown columns), as opposed to errors of single rows.
var ErrBadFile = errors.New("bad import file")

// StatementError says why one statement of a request was not accepted.
// Code is a short stable word (it is a metric label); Reason is a sentence
// for the person who configured the LMS.
type StatementError struct {
	Code   string
	Reason string
}

func (e *StatementError) Error() string { return e.Code + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrUnmappable) hold.
func (e *StatementError) Unwrap() error { return ErrUnmappable }

func unmappable(code, reason string) error { return &StatementError{Code: code, Reason: reason} }

// Codes of StatementError, the values of the reason label of
// classpulse_ingest_xapi_statements_total.
const (
	CodeMalformed = "malformed"     // not a JSON object of the xAPI shape
	CodeActor     = "no_student"    // no usable student id in actor
	CodeCourse    = "no_course"     // no course in object or context
	CodeVerb      = "unmapped"      // no row of the table matches verb and activity type
	CodeDuration  = "bad_duration"  // result.duration is not a usable ISO 8601 duration
	CodeTimestamp = "bad_timestamp" // timestamp is not RFC 3339 or out of range
	CodeInvalid   = "invalid_event" // the mapped event fails stream validation
	CodeVoided    = "voiding"       // voiding statements are not clicks
)

// reasonCodes lists every code, to pre-create metric series.
var reasonCodes = []string{CodeMalformed, CodeActor, CodeCourse, CodeVerb, CodeDuration, CodeTimestamp, CodeInvalid, CodeVoided}
