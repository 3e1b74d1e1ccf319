package stream

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 9, 0, 0, 123e6, time.UTC)

func validScore() *Score {
	eyes := 0.9
	return &Score{
		Header:  Header{V: 1, ID: "01JDEMO0000000000000000001", TS: At(now), Student: "stu-0001"},
		Session: "S1", Course: "calculus", WindowMS: 1000, Frames: 10,
		FaceRatio: 1, MaskedRatio: 0.2, Attention: 0.8,
		Emotions: &Emotions{Neutral: 0.7, Happy: 0.2, Surprised: 0.1},
		Learning: &Learning{Engaged: 0.8, Confused: 0.1},
		Head:     &Head{Yaw: 10, Pitch: -5},
		EyesOpen: &eyes,
		Model:    "faceapi-1.0+kpca-1",
	}
}

func validClick() *Click {
	return &Click{Header: Header{V: 1, ID: "c1", TS: At(now), Student: "stu-0001"}, Course: "law", Kind: KindStudy, DurationS: 600}
}

func TestValidationRejectsEachBrokenField(t *testing.T) {
	cases := []struct {
		name  string
		event Event
		field string
	}{
		{"version 2", func() Event { s := validScore(); s.V = 2; return s }(), "v"},
		{"missing id", func() Event { s := validScore(); s.ID = ""; return s }(), "id"},
		{"id with a space", func() Event { s := validScore(); s.ID = "a b"; return s }(), "id"},
		{"id too long", func() Event { s := validScore(); s.ID = strings.Repeat("x", 65); return s }(), "id"},
		{"missing ts", func() Event { s := validScore(); s.TS = Time{}; return s }(), "ts"},
		{"ts in year 1999", func() Event { s := validScore(); s.TS = At(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)); return s }(), "ts"},
		{"missing student", func() Event { s := validScore(); s.Student = ""; return s }(), "student"},
		{"student with a hash-tag brace", func() Event { s := validScore(); s.Student = "a}b"; return s }(), "student"},
		{"missing session", func() Event { s := validScore(); s.Session = ""; return s }(), "session"},
		{"missing course", func() Event { s := validScore(); s.Course = ""; return s }(), "course"},
		{"window 50ms", func() Event { s := validScore(); s.WindowMS = 50; return s }(), "window_ms"},
		{"negative frames", func() Event { s := validScore(); s.Frames = -1; return s }(), "frames"},
		{"face ratio 1.5", func() Event { s := validScore(); s.FaceRatio = 1.5; return s }(), "face_ratio"},
		{"attention below 0", func() Event { s := validScore(); s.Attention = -0.1; return s }(), "attention"},
		{"masked more than face", func() Event { s := validScore(); s.FaceRatio = 0.1; s.MaskedRatio = 0.5; return s }(), "masked_ratio"},
		{"emotions not summing to 1", func() Event { s := validScore(); s.Emotions.Neutral = 0.2; return s }(), "emotions"},
		{"emotion above 1", func() Event { s := validScore(); s.Emotions = &Emotions{Happy: 1.2}; return s }(), "emotions.happy"},
		{"learning above 1", func() Event { s := validScore(); s.Learning.Bored = 2; return s }(), "learning.bored"},
		{"yaw 200", func() Event { s := validScore(); s.Head.Yaw = 200; return s }(), "head.yaw"},
		{"pitch -91", func() Event { s := validScore(); s.Head.Pitch = -91; return s }(), "head.pitch"},
		{"eyes open 3", func() Event { s := validScore(); e := 3.0; s.EyesOpen = &e; return s }(), "eyes_open"},
		{"missing model", func() Event { s := validScore(); s.Model = ""; return s }(), "model"},
		{"unknown click kind", func() Event { c := validClick(); c.Kind = "browse"; return c }(), "kind"},
		{"study without duration", func() Event { c := validClick(); c.DurationS = 0; return c }(), "duration_s"},
		{"study of two days", func() Event { c := validClick(); c.DurationS = 2 * 86400; return c }(), "duration_s"},
		{"grade 101", &Grade{Header: Header{V: 1, ID: "g", TS: At(now), Student: "s"}, Course: "law", Term: "2026a", Score: 101}, "score"},
		{"grade without term", &Grade{Header: Header{V: 1, ID: "g", TS: At(now), Student: "s"}, Course: "law", Score: 50}, "term"},
		{"consent scope microphone", &Consent{Header: Header{V: 1, ID: "k", TS: At(now), Student: "s"}, Scope: "microphone", PolicyVersion: "1"}, "scope"},
		{"consent without policy version", &Consent{Header: Header{V: 1, ID: "k", TS: At(now), Student: "s"}, Scope: ScopeCamera}, "policy_version"},
		{"warning level orange", &Warning{Header: Header{V: 1, ID: "w", TS: At(now), Student: "s"}, Ref: "w", Category: CategoryStudy, Level: "orange", Rule: "study", Reason: "r", State: StateRaised}, "level"},
		{"warning without reason", &Warning{Header: Header{V: 1, ID: "w", TS: At(now), Student: "s"}, Ref: "w", Category: CategoryStudy, Level: LevelRed, Rule: "study", State: StateRaised}, "reason"},
		{"class warning without session", &Warning{Header: Header{V: 1, ID: "w", TS: At(now)}, Ref: "w", Category: CategoryClass, Level: LevelYellow, Rule: "class_confused", Reason: "r", State: StateRaised}, "session"},
		{"talk without channel", &Intervention{Header: Header{V: 1, ID: "i", TS: At(now), Student: "s"}, Warning: "w", Action: ActionTalk, By: "t1"}, "channel"},
		{"plan without due date", &Intervention{Header: Header{V: 1, ID: "i", TS: At(now), Student: "s"}, Warning: "w", Action: ActionPlan, By: "t1"}, "due"},
		{"close without result", &Intervention{Header: Header{V: 1, ID: "i", TS: At(now), Student: "s"}, Warning: "w", Action: ActionClose, By: "t1"}, "result"},
		{"tile with unknown dominant", &Tile{Header: Header{V: 1, ID: "t", TS: At(now), Student: "s"}, Session: "S", Course: "c", Dominant: "happy"}, "dominant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.event.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a FieldError on %q", err, c.field)
			}
			if fe.Field != c.field {
				t.Fatalf("error names field %q (%v), want %q", fe.Field, err, c.field)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestValidEventsRoundTrip(t *testing.T) {
	due := At(now.Add(14 * 24 * time.Hour))
	events := []Event{
		validScore(),
		&Score{Header: Header{V: 1, ID: "s2", TS: At(now), Student: "s"}, Session: "S", Course: "c", WindowMS: 1000, Model: "m"},
		validClick(),
		&Click{Header: Header{V: 1, ID: "c2", TS: At(now), Student: "s"}, Course: "law", Kind: KindQuiz},
		&Grade{Header: Header{V: 1, ID: "g", TS: At(now), Student: "s"}, Course: "law", Term: "2026-autumn", Score: 41, Core: true},
		&Consent{Header: Header{V: 1, ID: "k", TS: At(now), Student: "s"}, Scope: ScopeCamera, Granted: true, PolicyVersion: "2026-1", Guardian: "parent-1"},
		&Warning{Header: Header{V: 1, ID: "w", TS: At(now), Student: "s"}, Ref: "w", Category: CategoryStudy, Level: LevelYellow, Rule: "study",
			Reason: "2 courses below required study time", Evidence: map[string]float64{"courses": 2}, State: StateRaised},
		&Warning{Header: Header{V: 1, ID: "w2", TS: At(now)}, Ref: "w2", Category: CategoryClass, Level: LevelYellow, Rule: "class_confused",
			Session: "S", Reason: "half the class confused", State: StateRaised},
		&Intervention{Header: Header{V: 1, ID: "i", TS: At(now), Student: "s"}, Warning: "w", Action: ActionPlan, By: "t1",
			Tasks: []string{"remind on Monday"}, Due: &due},
		&Tile{Header: Header{V: 1, ID: "t", TS: At(now), Student: "s"}, Session: "S", Course: "c", Captured: true, Attention: 0.4, Dominant: "confused", WarningLevel: LevelRed},
		&DeadLetter{Header: Header{V: 1, ID: "d", TS: At(now)}, Original: []byte{0xff, 0}, Source: TopicScores, Error: "bad"},
	}
	for _, e := range events {
		t.Run(e.Topic(), func(t *testing.T) {
			b, err := Encode(e)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			back, err := Decode(e.Topic(), b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			again, _ := json.Marshal(back)
			if string(again) != string(b) {
				t.Fatalf("round trip changed the event:\n%s\n%s", b, again)
			}
		})
	}
}

func TestTimestampsAreMillisecondUTC(t *testing.T) {
	b, err := Encode(validClick())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"ts":"2026-11-23T09:00:00.123Z"`) {
		t.Fatalf("encoded ts not RFC 3339 ms UTC: %s", b)
	}
	in := `{"v":1,"id":"x","ts":"2026-11-23T17:00:00.5+08:00","student":"s","course":"law","kind":"quiz"}`
	e, err := Decode(TopicClicks, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.EventHeader().TS.Time; !got.Equal(time.Date(2026, 11, 23, 9, 0, 0, 500e6, time.UTC)) || got.Location() != time.UTC {
		t.Fatalf("offset time not normalised to UTC: %v", got)
	}
}

func TestDecodeRejectsMalformedInput(t *testing.T) {
	cases := []struct{ name, topic, in string }{
		{"not json", TopicScores, "hello"},
		{"unknown field", TopicClicks, `{"v":1,"id":"x","ts":"2026-11-23T09:00:00Z","student":"s","course":"law","kind":"quiz","extra":1}`},
		{"trailing data", TopicClicks, `{"v":1,"id":"x","ts":"2026-11-23T09:00:00Z","student":"s","course":"law","kind":"quiz"} {}`},
		{"ts not RFC 3339", TopicClicks, `{"v":1,"id":"x","ts":"23/11/2026","student":"s","course":"law","kind":"quiz"}`},
		{"ts a number", TopicClicks, `{"v":1,"id":"x","ts":1732352400,"student":"s","course":"law","kind":"quiz"}`},
		{"wrong type", TopicGrades, `{"v":1,"id":"x","ts":"2026-11-23T09:00:00Z","student":"s","course":"law","term":"t","score":"high"}`},
		{"oversized", TopicClicks, `{"xapi":"` + strings.Repeat("a", MaxEventBytes) + `"}`},
		{"empty", TopicConsent, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Decode(c.topic, []byte(c.in)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := Decode("nope", []byte("{}")); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range []Event{validScore(), validClick()} {
		b, _ := Encode(e)
		f.Add(e.Topic(), b)
	}
	f.Add(TopicGrades, []byte(`{"v":1,"id":"g","ts":"2026-11-23T09:00:00Z","student":"s","course":"law","term":"t","score":41}`))
	f.Add(TopicConsent, []byte(`{"v":1,"id":"k","ts":"2026-11-23T09:00:00Z","student":"s","scope":"camera","granted":false,"policy_version":"1"}`))
	f.Fuzz(func(t *testing.T, topic string, data []byte) {
		e, err := Decode(topic, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownTopic) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrUnknownTopic", err)
			}
			return
		}
		// Whatever decodes must validate and survive a round trip.
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		if _, err := Decode(topic, b); err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
	})
}
