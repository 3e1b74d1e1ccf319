package stream

import (
	"encoding/json"
	"time"
)

// NewDeadLetter wraps a message that failed validation, with the reason,
// for the DLQ topic. It keeps the original bytes untouched and fills in the
// student when the message at least carried a readable one.
func NewDeadLetter(m Message, cause error, now time.Time) *DeadLetter {
	d := &DeadLetter{
		Header:    NewHeader("", now),
		Original:  m.Value,
		Source:    m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Error:     cause.Error(),
	}
	var h struct {
		Student string `json:"student"`
	}
	if json.Unmarshal(m.Value, &h) == nil && checkIdent("student", h.Student, true) == nil {
		d.Student = h.Student
	}
	if len(d.Original) > MaxEventBytes {
		d.Original = d.Original[:MaxEventBytes]
	}
	return d
}
