package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Version is the schema version every v1 event carries in its "v" field.
const Version = 1

// MaxEventBytes bounds the encoded size of one event. Anything larger is
// rejected before it is parsed.
const MaxEventBytes = 64 << 10

// TimeLayout is the wire form of every timestamp: RFC 3339, milliseconds, UTC.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time is a timestamp that encodes as RFC 3339 with milliseconds in UTC.
// On decoding it accepts any RFC 3339 time and normalises it to UTC.
type Time struct{ time.Time }

// At wraps t, truncated to milliseconds and in UTC, as an event timestamp.
func At(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON encodes the time in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON parses an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp must be an RFC 3339 string")
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q is not RFC 3339", s)
	}
	*t = At(p)
	return nil
}

// Header holds the fields every event carries.
type Header struct {
	V       int    `json:"v"`
	ID      string `json:"id"`
	TS      Time   `json:"ts"`
	Student string `json:"student"`
}

// EventHeader returns the header; it makes every event type an Event.
func (h *Header) EventHeader() *Header { return h }

// Event is one v1 event of any topic.
type Event interface {
	// EventHeader returns the common header for reading or filling in.
	EventHeader() *Header
	// Topic is the topic the event belongs on.
	Topic() string
	// Key is the partitioning key: the student id, or the session for tiles.
	Key() string
	// Validate checks every field rule of the event's type.
	Validate() error
}

// NewHeader fills in a header for student at time ts with a fresh id.
func NewHeader(student string, ts time.Time) Header {
	return Header{V: Version, ID: NewID(ts), TS: At(ts), Student: student}
}

func (h *Header) validate(studentRequired bool) error {
	if h.V != Version {
		return fieldErr("v", fmt.Sprintf("unsupported schema version %d (want %d)", h.V, Version))
	}
	if err := checkIdent("id", h.ID, true); err != nil {
		return err
	}
	if h.TS.IsZero() {
		return fieldErr("ts", "required")
	}
	if y := h.TS.Year(); y < 2000 || y > 2200 {
		return fieldErr("ts", fmt.Sprintf("year %d out of range 2000..2200", y))
	}
	return checkIdent("student", h.Student, studentRequired)
}

// checkIdent enforces the shape of ids: 1..64 characters of letters, digits
// and "-_.:@". Braces are never allowed, since student ids become part of
// Redis hash tags.
func checkIdent(field, s string, required bool) error {
	if s == "" {
		if required {
			return fieldErr(field, "required")
		}
		return nil
	}
	if len(s) > 64 {
		return fieldErr(field, fmt.Sprintf("longer than 64 characters (%d)", len(s)))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '@':
		default:
			return fieldErr(field, fmt.Sprintf("character %q not allowed (letters, digits and -_.:@ only)", c))
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return fieldErr(field, fmt.Sprintf("longer than %d bytes", max))
	}
	return nil
}

func checkRange(field string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return fieldErr(field, fmt.Sprintf("%v out of range %v..%v", v, lo, hi))
	}
	return nil
}

func checkUnit(field string, v float64) error { return checkRange(field, v, 0, 1) }

// inUnit is checkUnit's test without building an error, so a hot loop
// composes the field name only for a value that fails.
func inUnit(v float64) bool { return v >= 0 && v <= 1 }

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if v == "" {
		return fieldErr(field, "required")
	}
	return fieldErr(field, fmt.Sprintf("%q is not one of %v", v, allowed))
}

// Encode validates e and returns its JSON form.
func Encode(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if t, ok := e.(*Tile); ok {
		if b, ok := appendTile(make([]byte, 0, 256), t); ok {
			return b, nil
		}
	}
	return json.Marshal(e)
}

// Decode parses and validates one event read from topic. Unknown fields,
// trailing data, oversized input and every field-rule violation are errors
// wrapping ErrInvalid.
//
// Scores, clicks, grades and consent records take a single-pass scanner
// (decode_fast.go) when the input is plain JSON it is sure about; any other
// input takes the encoding/json path of DecodeInto, so both paths accept,
// refuse and report exactly alike.
func Decode(topic string, data []byte) (Event, error) {
	if len(data) <= MaxEventBytes {
		if e, ok := decodeFast(topic, data); ok {
			if err := e.Validate(); err != nil {
				return nil, err
			}
			return e, nil
		}
	}
	return decodeReference(topic, data)
}

// decodeReference is Decode on the encoding/json path only: the reference
// the fast path is checked against.
func decodeReference(topic string, data []byte) (Event, error) {
	e, err := NewForTopic(topic)
	if err != nil {
		return nil, err
	}
	if err := DecodeInto(data, e); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeInto parses data into e strictly and validates it.
func DecodeInto(data []byte, e Event) error {
	if len(data) > MaxEventBytes {
		return fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalid, len(data), MaxEventBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(e); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	return e.Validate()
}

// NewForTopic returns an empty event of the type carried by topic.
func NewForTopic(topic string) (Event, error) {
	switch topic {
	case TopicScores:
		return &Score{}, nil
	case TopicClicks:
		return &Click{}, nil
	case TopicGrades:
		return &Grade{}, nil
	case TopicConsent:
		return &Consent{}, nil
	case TopicWarnings:
		return &Warning{}, nil
	case TopicInterventions:
		return &Intervention{}, nil
	case TopicTiles:
		return &Tile{}, nil
	case TopicDLQ:
		return &DeadLetter{}, nil
	case TopicAudit:
		return &Audit{}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, topic)
}

// ValidIdent reports whether s has the shape of an id field of an event
// (1..64 letters, digits and "-_.:@"). Other packages that accept ids from
// outside (tokens, policy files) use it so one rule holds everywhere.
func ValidIdent(s string) bool { return checkIdent("id", s, true) == nil }
