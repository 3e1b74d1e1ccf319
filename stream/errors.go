package stream

import "errors"

// ErrInvalid is wrapped by every validation failure of an event, so callers
// can route it to the DLQ with errors.Is.
var ErrInvalid = errors.New("invalid event")

// ErrUnknownTopic is returned when decoding bytes read from a topic that
// carries no v1 event type.
var ErrUnknownTopic = errors.New("unknown topic")

// FieldError names the field at fault in an invalid event.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap lets errors.Is(err, ErrInvalid) hold for every FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }
