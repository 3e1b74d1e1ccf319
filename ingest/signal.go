package ingest

import (
	"fmt"
	"math"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// TopicSignals carries generic time-stamped campus signals (library visits,
// campus-card spending, dormitory access, activity participation), keyed by
// student. It is not yet in stream.AllTopics; operators create it with the
// others (docs/ingest.md).
const TopicSignals = stream.TopicSignals

// SignalsKey is the Redis sorted set that mirrors a student's signals for
// rules to read: score = event time in Unix milliseconds, member = the
// signal event JSON. It shares the student's hash tag.
func SignalsKey(student string) string { return state.StudentTag(student) + ":signals" }

// Signal is one campus signal. Kind names the source ("library", "card",
// "dorm", "activity" or a school's own word); Value is its amount where it
// has one (yuan spent, minutes stayed); Detail is free text such as the
// club's name.
type Signal struct {
	stream.Header
	Kind   string  `json:"kind"`
	Value  float64 `json:"value,omitempty"`
	Detail string  `json:"detail,omitempty"`
	Source string  `json:"source,omitempty"`
}

// Topic implements stream.Event.
func (*Signal) Topic() string { return TopicSignals }

// Key implements stream.Event.
func (s *Signal) Key() string { return s.Student }

// Validate implements stream.Event.
func (s *Signal) Validate() error {
	bad := func(field, reason string) error {
		return &stream.FieldError{Field: field, Reason: reason}
	}
	switch {
	case s.V != stream.Version:
		return bad("v", fmt.Sprintf("unsupported schema version %d", s.V))
	case !stream.ValidIdent(s.ID):
		return bad("id", "required, letters, digits and -_.:@")
	case s.TS.IsZero() || s.TS.Year() < 2000 || s.TS.Year() > 2200:
		return bad("ts", "required, year 2000..2200")
	case !stream.ValidIdent(s.Student):
		return bad("student", "required, letters, digits and -_.:@")
	case !stream.ValidIdent(s.Kind):
		return bad("kind", "required, letters, digits and -_.:@")
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || math.Abs(s.Value) > 1e9:
		return bad("value", "must be a finite number within ±1e9")
	case len(s.Detail) > 200:
		return bad("detail", "longer than 200 bytes")
	case s.Source != "" && !stream.ValidIdent(s.Source):
		return bad("source", "letters, digits and -_.:@")
	}
	return nil
}
