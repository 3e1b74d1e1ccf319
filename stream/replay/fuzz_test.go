package replay

import (
	"bytes"
	"errors"
	"testing"

	"github.com/classpulse/classpulse/stream"
)

func TestParseLineForms(t *testing.T) {
	click := `{"v":1,"id":"01J0000000000000000000000A","ts":"2026-11-23T01:00:00.000Z","student":"s1","course":"calculus","kind":"quiz"}`
	consent := `{"v":1,"id":"01J0000000000000000000000B","ts":"2026-11-23T01:00:00.000Z","student":"s1","scope":"camera","granted":false,"policy_version":"p1"}`
	cases := []struct {
		name, line, topic string
		ok                bool
	}{
		{"wrapped with the full topic", `{"topic":"classpulse.clicks.v1","event":` + click + `}`, stream.TopicClicks, true},
		{"wrapped with the short topic", `{"topic":"clicks","event":` + click + `}`, stream.TopicClicks, true},
		{"bare click inferred from kind", click, stream.TopicClicks, true},
		{"bare consent inferred from scope", consent, stream.TopicConsent, true},
		{"wrapped under the wrong topic", `{"topic":"grades","event":` + click + `}`, "", false},
		{"output topic refused", `{"topic":"classpulse.tiles.v1","event":` + click + `}`, "", false},
		{"wrapper with an extra field", `{"topic":"clicks","event":` + click + `,"x":1}`, "", false},
		{"wrapper without event", `{"topic":"clicks"}`, "", false},
		{"bare event of no topic", `{"v":1,"id":"a","ts":"2026-11-23T01:00:00.000Z","student":"s1"}`, "", false},
		{"bare event with fields of two topics", `{"v":1,"id":"a","ts":"2026-11-23T01:00:00.000Z","student":"s1","kind":"quiz","scope":"camera"}`, "", false},
		{"not an object", `[1,2]`, "", false},
		{"empty", ``, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := ParseLine([]byte(c.line))
			if !c.ok {
				if err == nil || !errors.Is(err, ErrLine) {
					t.Fatalf("err = %v, want an ErrLine", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Topic != c.topic || in.Event.Topic() != c.topic {
				t.Fatalf("topic %q (event %q), want %q", in.Topic, in.Event.Topic(), c.topic)
			}
		})
	}
}

// FuzzParseLine: any input either parses into an event that the processor
// decodes again to the same topic, or fails with ErrLine; never a panic.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"topic":"clicks","event":{"v":1,"id":"a","ts":"2026-11-23T01:00:00.000Z","student":"s1","course":"c","kind":"quiz"}}`))
	f.Add([]byte(`{"v":1,"id":"a","ts":"2026-11-23T01:00:00.000Z","student":"s1","session":"S","course":"c","window_ms":1000,"frames":1,"face_ratio":1,"masked_ratio":0,"attention":0.5,"model":"m"}`))
	f.Add([]byte(`{"v":1,"id":"a","ts":"2026-11-23T01:00:00.000Z","student":"s1","course":"c","term":"t","score":50,"passed":false}`))
	f.Add([]byte(`{"topic":null,"event":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		in, err := ParseLine(line)
		if err != nil {
			if !errors.Is(err, ErrLine) {
				t.Fatalf("error %v does not wrap ErrLine", err)
			}
			return
		}
		e, err := stream.Decode(in.Topic, in.Value)
		if err != nil {
			t.Fatalf("parsed line does not decode again: %v", err)
		}
		if e.Topic() != in.Topic || !bytes.Equal(bytes.TrimSpace(in.Value), in.Value) {
			t.Fatalf("topic %q vs %q", e.Topic(), in.Topic)
		}
	})
}
