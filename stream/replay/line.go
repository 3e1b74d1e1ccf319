package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/classpulse/classpulse/stream"
)

// ErrLine marks a line of an events file that cannot be replayed; the
// error text says why.
var ErrLine = errors.New("replay: bad line")

// MaxLineBytes is the longest line accepted: an event's size limit plus
// room for the wrapper.
const MaxLineBytes = stream.MaxEventBytes + 256

// Input is one parsed line: the event, its topic and its JSON as the
// processor will read it.
type Input struct {
	Topic string
	Value []byte
	Event stream.Event
}

// wrapper is the explicit line form.
type wrapper struct {
	Topic string          `json:"topic"`
	Event json.RawMessage `json:"event"`
}

// topicAliases lets a file say "clicks" for "classpulse.clicks.v1".
var topicAliases = map[string]string{
	"scores": stream.TopicScores, "clicks": stream.TopicClicks,
	"grades": stream.TopicGrades, "consent": stream.TopicConsent,
}

// signature lists, per input topic, the fields that only its events carry;
// a bare event's topic is inferred from them.
var signature = []struct {
	topic  string
	fields []string
}{
	{stream.TopicScores, []string{"session", "window_ms", "frames", "face_ratio", "masked_ratio", "attention", "emotions", "learning", "head", "eyes_open", "model"}},
	{stream.TopicClicks, []string{"kind", "duration_s", "xapi"}},
	{stream.TopicGrades, []string{"term", "score", "passed", "elective", "core"}},
	{stream.TopicConsent, []string{"scope", "granted", "policy_version", "guardian"}},
}

// ParseLine decodes one line of an events file. Two forms are accepted:
//
//   - wrapped: {"topic":"classpulse.clicks.v1","event":{…a v1 event…}}, with
//     exactly those two fields; the topic may also be written short
//     ("scores", "clicks", "grades", "consent");
//   - bare: a v1 input event on its own, {"v":1,"id":…,"ts":…,…}. Its topic
//     is inferred from the fields only one input topic's events carry
//     (attention, face_ratio, session… for scores; kind, duration_s for
//     clicks; term, score, passed for grades; scope, granted for consent).
//     A bare line whose fields point to no topic or to several is refused:
//     wrap it.
//
// Only the input topics (scores, clicks, grades, consent) can be replayed.
// The event is decoded and validated exactly as the processor does
// (stream.Decode: unknown fields, bad values and oversized events are
// errors). Every error wraps ErrLine.
func ParseLine(line []byte) (*Input, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, fmt.Errorf("%w: empty line", ErrLine)
	}
	if len(line) > MaxLineBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrLine, len(line), MaxLineBytes)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrLine, err)
	}
	topic, value := "", line
	if _, ok := fields["topic"]; ok {
		var w wrapper
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("%w: wrapped line: %v (want exactly \"topic\" and \"event\")", ErrLine, err)
		}
		if len(bytes.TrimSpace(w.Event)) == 0 || bytes.Equal(bytes.TrimSpace(w.Event), []byte("null")) {
			return nil, fmt.Errorf("%w: wrapped line has no \"event\"", ErrLine)
		}
		topic, value = w.Topic, w.Event
		if full, ok := topicAliases[topic]; ok {
			topic = full
		}
		if !isInput(topic) {
			return nil, fmt.Errorf("%w: topic %q is not an input topic (want one of %s)", ErrLine, w.Topic, strings.Join(stream.InputTopics, ", "))
		}
	} else {
		t, err := inferTopic(fields)
		if err != nil {
			return nil, err
		}
		topic = t
	}
	e, err := stream.Decode(topic, value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s event: %v", ErrLine, topic, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, value); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLine, err)
	}
	return &Input{Topic: topic, Value: compact.Bytes(), Event: e}, nil
}

func isInput(topic string) bool {
	for _, t := range stream.InputTopics {
		if t == topic {
			return true
		}
	}
	return false
}

func inferTopic(fields map[string]json.RawMessage) (string, error) {
	var matched []string
	for _, s := range signature {
		for _, f := range s.fields {
			if _, ok := fields[f]; ok {
				matched = append(matched, s.topic)
				break
			}
		}
	}
	switch len(matched) {
	case 1:
		return matched[0], nil
	case 0:
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "", fmt.Errorf("%w: cannot tell the topic of an event with fields %v; wrap it as {\"topic\":…,\"event\":…}", ErrLine, keys)
	}
	return "", fmt.Errorf("%w: the fields of this event belong to several topics (%s); wrap it as {\"topic\":…,\"event\":…}", ErrLine, strings.Join(matched, ", "))
}
