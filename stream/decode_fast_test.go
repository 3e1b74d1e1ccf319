package stream

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	plainScore   = `{"v":1,"id":"01JDEMO0000000000000000001","ts":"2026-11-23T09:00:00.123Z","student":"stu-0001","session":"S1","course":"calculus","window_ms":1000,"frames":10,"face_ratio":1,"masked_ratio":0.2,"attention":0.8,"emotions":{"neutral":0.7,"happy":0.2,"sad":0,"angry":0,"fearful":0,"disgusted":0,"surprised":0.1},"learning":{"engaged":0.8,"confused":0.1,"bored":0,"frustrated":0},"head":{"yaw":10,"pitch":-5},"eyes_open":0.9,"model":"faceapi-1.0+kpca-1"}`
	plainClick   = `{"v":1,"id":"c1","ts":"2026-11-23T09:00:00.123Z","student":"stu-0001","course":"law","kind":"study","duration_s":600}`
	plainGrade   = `{"v":1,"id":"g","ts":"2026-11-23T09:00:00Z","student":"s","course":"law","term":"t","score":41,"passed":false,"elective":true,"core":true}`
	plainConsent = `{"v":1,"id":"k","ts":"2026-11-23T09:00:00Z","student":"s","scope":"camera","granted":false,"policy_version":"1","guardian":"parent-1"}`
)

// swap replaces the first old in s with new, failing loudly if absent so a
// case cannot silently test the unchanged input.
func swap(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("case setup: %q not in %s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

// decodeCases are inputs for each fast-path topic: plain valid events (fast
// is true: the fast path must take them), and every way an input can be
// refused or be unusual JSON, which must come out exactly as encoding/json
// has it. wantErr says whether the reference refuses it.
func decodeCases(t testing.TB) []struct {
	name, topic, in string
	fast, wantErr   bool
} {
	return []struct {
		name, topic, in string
		fast, wantErr   bool
	}{
		{"plain score", TopicScores, plainScore, true, false},
		{"score without optional blocks", TopicScores, `{"v":1,"id":"s2","ts":"2026-11-23T09:00:00.000Z","student":"s","session":"S","course":"c","window_ms":1000,"frames":0,"face_ratio":0,"masked_ratio":0,"attention":0,"model":"m"}`, true, false},
		{"score with white space", TopicScores, " \n\t{ \"v\" : 1 ,\r\n\"id\":\"x\",\"ts\":\"2026-11-23T09:00:00Z\",\"student\":\"s\",\"session\":\"S\",\"course\":\"c\",\"window_ms\":1000,\"model\":\"m\" , \"head\" : { \"yaw\" : 1e1 , \"pitch\" : -0.5E-1 } }\n ", true, false},
		{"score with offset time", TopicScores, swap(t, plainScore, `09:00:00.123Z`, `17:00:00.5+08:00`), true, false},
		{"plain click", TopicClicks, plainClick, true, false},
		{"click with xapi", TopicClicks, `{"v":1,"id":"x","ts":"2026-11-23T09:00:00Z","student":"s","course":"law","kind":"quiz","xapi":"https://x/1"}`, true, false},
		{"plain grade", TopicGrades, plainGrade, true, false},
		{"plain consent", TopicConsent, plainConsent, true, false},
		{"empty object is decoded then fails its rules", TopicScores, `{}`, true, true},

		// field rules: decoded on the fast path, refused by Validate
		{"schema version 2", TopicScores, swap(t, plainScore, `"v":1`, `"v":2`), true, true},
		{"window 50ms", TopicScores, swap(t, plainScore, `"window_ms":1000`, `"window_ms":50`), true, true},
		{"emotions not summing to 1", TopicScores, swap(t, plainScore, `"neutral":0.7`, `"neutral":0.2`), true, true},
		{"pitch -91", TopicScores, swap(t, plainScore, `"pitch":-5`, `"pitch":-91`), true, true},
		{"student with a brace", TopicScores, swap(t, plainScore, `"stu-0001"`, `"a}b"`), true, true},
		{"ts in 1999", TopicClicks, swap(t, plainClick, `2026-11-23`, `1999-11-23`), true, true},
		{"study of two days", TopicClicks, swap(t, plainClick, `600`, `172800`), true, true},
		{"grade 101", TopicGrades, swap(t, plainGrade, `41`, `101`), true, true},
		{"consent scope microphone", TopicConsent, swap(t, plainConsent, `camera`, `microphone`), true, true},

		// refusals and unusual JSON: the reference path decides
		{"oversized", TopicClicks, `{"xapi":"` + strings.Repeat("a", MaxEventBytes) + `"}`, false, true},
		{"empty", TopicConsent, ``, false, true},
		{"not json", TopicScores, `hello`, false, true},
		{"array", TopicScores, `[1]`, false, true},
		{"unknown field", TopicClicks, swap(t, plainClick, `"kind"`, `"extra":1,"kind"`), false, true},
		{"unknown nested field", TopicScores, swap(t, plainScore, `"yaw"`, `"roll":1,"yaw"`), false, true},
		{"trailing object", TopicClicks, plainClick + ` {}`, false, true},
		{"trailing garbage", TopicClicks, plainClick + `x`, false, true},
		{"trailing close brace", TopicClicks, plainClick + `}`, false, false},
		{"trailing close bracket", TopicClicks, plainClick + ` ]`, false, false},
		{"unterminated", TopicClicks, strings.TrimSuffix(plainClick, `}`), false, true},
		{"trailing comma", TopicClicks, strings.TrimSuffix(plainClick, `}`) + `,}`, false, true},
		{"ts not RFC 3339", TopicClicks, swap(t, plainClick, `2026-11-23T09:00:00.123Z`, `23/11/2026`), false, true},
		{"ts a number", TopicClicks, swap(t, plainClick, `"2026-11-23T09:00:00.123Z"`, `1732352400`), false, true},
		{"ts null", TopicClicks, swap(t, plainClick, `"2026-11-23T09:00:00.123Z"`, `null`), false, true},
		{"score a string", TopicGrades, swap(t, plainGrade, `41`, `"high"`), false, true},
		{"int field with a fraction", TopicScores, swap(t, plainScore, `"frames":10`, `"frames":10.0`), false, true},
		{"int field with an exponent", TopicScores, swap(t, plainScore, `"window_ms":1000`, `"window_ms":1e3`), false, true},
		{"int field overflowing", TopicScores, swap(t, plainScore, `"frames":10`, `"frames":99999999999999999999`), false, true},
		{"float overflowing", TopicScores, swap(t, plainScore, `"attention":0.8`, `"attention":1e999`), false, true},
		{"leading zero", TopicScores, swap(t, plainScore, `"frames":10`, `"frames":010`), false, true},
		{"bare minus", TopicScores, swap(t, plainScore, `"pitch":-5`, `"pitch":-`), false, true},
		{"bool a number", TopicGrades, swap(t, plainGrade, `"core":true`, `"core":1`), false, true},
		{"bool misspelt", TopicGrades, swap(t, plainGrade, `"core":true`, `"core":tru`), false, true},
		{"null for a plain field keeps it empty", TopicScores, swap(t, plainScore, `"session":"S1"`, `"session":null`), false, true},
		{"null for a pointer field", TopicScores, swap(t, plainScore, `"eyes_open":0.9`, `"eyes_open":null`), false, false},
		{"null bool", TopicGrades, swap(t, plainGrade, `"core":true`, `"core":null`), false, false},
		{"duplicate key, last wins", TopicClicks, swap(t, plainClick, `"kind"`, `"kind":"quiz","kind"`), false, false},
		{"duplicate nested object merges", TopicScores, swap(t, plainScore, `"head":{"yaw":10,"pitch":-5}`, `"head":{"yaw":10},"head":{"pitch":-5}`), false, false},
		{"key in another case", TopicClicks, swap(t, plainClick, `"kind"`, `"KIND"`), false, false},
		{"escaped key", TopicClicks, swap(t, plainClick, `"kind"`, `"\u006bind"`), false, false},
		{"escaped value", TopicClicks, swap(t, plainClick, `"law"`, `"l\u0061w"`), false, false},
		{"escaped quote in id", TopicClicks, swap(t, plainClick, `"c1"`, `"c\"1"`), false, true},
		{"non-ASCII in model", TopicScores, swap(t, plainScore, `faceapi`, `fäceapi`), false, false},
		{"invalid UTF-8 in model", TopicScores, swap(t, plainScore, `faceapi`, "face\xffapi"), false, false},
		{"control character in a string", TopicClicks, swap(t, plainClick, `"law"`, "\"l\x01w\""), false, true},
		{"byte order mark", TopicClicks, "\xef\xbb\xbf" + plainClick, false, true},
		{"emotions not an object", TopicScores, swap(t, plainScore, `"emotions":{`, `"emotions":[{`), false, true},
	}
}

// refDecode is Decode on the reference path only.
func refDecode(topic string, data []byte) (Event, error) { return decodeReference(topic, data) }

// sameDecode fails unless Decode and the reference agree on data: both
// refuse with the same error text, or both accept deep-equal events.
func sameDecode(t *testing.T, topic string, data []byte) (Event, error) {
	t.Helper()
	got, gotErr := Decode(topic, data)
	want, wantErr := refDecode(topic, data)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("Decode(%q) error %v, reference error %v", data, gotErr, wantErr)
	}
	if gotErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("Decode(%q) error %q, reference %q", data, gotErr, wantErr)
		}
		if errors.Is(gotErr, ErrInvalid) != errors.Is(wantErr, ErrInvalid) || errors.Is(gotErr, ErrUnknownTopic) != errors.Is(wantErr, ErrUnknownTopic) {
			t.Fatalf("Decode(%q) error %v wraps differently from %v", data, gotErr, wantErr)
		}
		var gf, wf *FieldError
		if errors.As(gotErr, &gf) != errors.As(wantErr, &wf) || (gf != nil && *gf != *wf) {
			t.Fatalf("Decode(%q) field error %v, reference %v", data, gf, wf)
		}
		return nil, gotErr
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) =\n%#v\nreference\n%#v", data, got, want)
	}
	return got, nil
}

func TestDecodeFastMatchesReference(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			_, took := decodeFast(c.topic, []byte(c.in))
			took = took && len(c.in) <= MaxEventBytes
			if took != c.fast {
				t.Fatalf("fast path taken = %v, want %v", took, c.fast)
			}
			_, err := sameDecode(t, c.topic, []byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("Decode error = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestDecodeFastRefusalsNameTheField(t *testing.T) {
	cases := []struct{ name, topic, in, field string }{
		{"schema version", TopicScores, swap(t, plainScore, `"v":1`, `"v":3`), "v"},
		{"missing model", TopicScores, swap(t, plainScore, `,"model":"faceapi-1.0+kpca-1"`, ``), "model"},
		{"learning above 1", TopicScores, swap(t, plainScore, `"bored":0`, `"bored":2`), "learning.bored"},
		{"unknown kind", TopicClicks, swap(t, plainClick, `"study"`, `"browse"`), "kind"},
		{"grade without term", TopicGrades, swap(t, plainGrade, `"term":"t",`, ``), "term"},
		{"consent without policy version", TopicConsent, swap(t, plainConsent, `"policy_version":"1",`, ``), "policy_version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sameDecode(t, c.topic, []byte(c.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Decode error %v, want a FieldError on %q", err, c.field)
			}
		})
	}
}

// FuzzDecodeFastMatchesReference feeds arbitrary bytes and mutations of valid
// events to Decode (fast path first) and to the encoding/json reference, and
// requires the same decision, the same error and deep-equal events.
func FuzzDecodeFastMatchesReference(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.topic, []byte(c.in))
	}
	for _, e := range []Event{validScore(), validClick()} {
		b, _ := Encode(e)
		f.Add(e.Topic(), b)
	}
	f.Fuzz(func(t *testing.T, topic string, data []byte) {
		sameDecode(t, topic, data)
		// The same bytes on every fast-path topic, so a mutation of a score
		// is also tried as a click, a grade and a consent record.
		for _, other := range []string{TopicScores, TopicClicks, TopicGrades, TopicConsent} {
			if other != topic {
				sameDecode(t, other, data)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	events := []struct{ topic, in string }{
		{TopicScores, plainScore}, {TopicClicks, plainClick}, {TopicGrades, plainGrade}, {TopicConsent, plainConsent},
	}
	for _, ev := range events {
		name := strings.TrimSuffix(strings.TrimPrefix(ev.topic, "classpulse."), ".v1")
		data := []byte(ev.in)
		for _, p := range []struct {
			path string
			fn   func(string, []byte) (Event, error)
		}{{"reference", refDecode}, {"fast", Decode}} {
			b.Run("type="+name+"/path="+p.path, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := p.fn(ev.topic, data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
