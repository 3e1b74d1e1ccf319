package profile

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// line wraps a valid event as one line of an events file.
func line(t testing.TB, e stream.Event) string {
	t.Helper()
	b, err := stream.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{"topic": e.Topic(), "event": json.RawMessage(b)})
	return string(env)
}

func TestExportFeaturesFromEventsFile(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	click := func(student, kind string, h int, dur float64) stream.Event {
		return &stream.Click{Header: stream.NewHeader(student, at(h)), Course: "math", Kind: kind, DurationS: dur}
	}
	score := func(student, session string, h int, attn float64) stream.Event {
		return &stream.Score{Header: stream.NewHeader(student, at(h)), Session: session, Course: "math", WindowMS: 1000,
			Frames: 10, FaceRatio: 1, Attention: attn, Learning: &stream.Learning{Engaged: attn, Confused: 0.2}, Model: "m1"}
	}
	lines := []string{
		line(t, click("s1", stream.KindExtra, 0, 0)),
		line(t, click("s1", stream.KindStudy, 1, 600)),
		line(t, click("s1", stream.KindStudy, 50, 300)),
		line(t, click("s1", stream.KindPlayer, 60, 120)),
		line(t, click("s1", stream.KindPlayer, 61, 0)),
		line(t, click("s2", stream.KindQuiz, 99, 0)),
		line(t, click("s2", stream.KindQuiz, 100, 0)),
		"",
		line(t, score("s1", "L1", 2, 0.8)),
		line(t, score("s1", "L1", 2, 0.6)),
		line(t, score("s1", "L2", 30, 0.7)),
		line(t, score("s2", "L1", 2, 0.5)),
		line(t, &stream.Grade{Header: stream.NewHeader("s1", at(90)), Course: "math", Term: "2026S", Score: 71}),
		line(t, &stream.Grade{Header: stream.NewHeader("s1", at(95)), Course: "math", Term: "2026S", Score: 84}),
		line(t, &stream.Consent{Header: stream.NewHeader("s2", at(98)), Scope: stream.ScopeCamera, Granted: false, PolicyVersion: "p1"}),
		`{"topic":"classpulse.clicks.v1","event":{"v":1}}`,
		`not json`,
		`{"topic":"nope","event":{}}`,
	}
	acc, err := NewAccumulator(2)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := acc.ReadJSONL(strings.NewReader(strings.Join(lines, "\n")), "events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if bad == nil || bad.Total != 3 || bad.Rows[0].Line != 16 || bad.Rows[2].Line != 18 {
		t.Fatalf("bad lines %v, want lines 16, 17 and 18", bad)
	}
	if !strings.Contains(bad.Error(), "unknown topic") {
		t.Fatalf("bad line reasons: %v", bad)
	}
	tb, err := FeaturesFromAggregates(acc.Aggregates(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 2 || tb.IDs[0] != "s1" || tb.Text["course"][1] != "math" {
		t.Fatalf("rows %v %v", tb.IDs, tb.Text)
	}
	get := func(i int, col string) float64 { return tb.Rows[i][tb.Column(col)] }
	want := map[string]float64{
		ColAttendance: 1, ColLiveSessions: 2, ColStudySeconds: 900, ColCourseVisits: 2,
		ColVideoSeconds: 120, ColVideoViews: 1, ColFinalScore: 84, ColAttention: 0.7, "engaged": 0.7, "confused": 0.2,
		// The course spans hours 0..100; windows are [0, 50) and [50, 100].
		"extra_w1": 1, "study_w1": 1, "study_w2": 1, "player_control_w2": 2,
	}
	for col, v := range want {
		if got := get(0, col); math.Abs(got-v) > 1e-9 {
			t.Errorf("s1 %s = %v, want %v", col, got, v)
		}
	}
	if !math.IsNaN(get(0, ColQuizScore)) {
		t.Error("quiz score must be missing: no event carries it")
	}
	if get(1, "quiz_w2") != 2 || get(1, "quiz_w1") != 0 {
		t.Errorf("s2 quiz windows %v, %v", get(1, "quiz_w1"), get(1, "quiz_w2"))
	}
	for _, col := range []string{ColAttention, ColLiveSessions, "engaged"} {
		if !math.IsNaN(get(1, col)) {
			t.Errorf("s2 revoked camera consent, but %s = %v", col, get(1, col))
		}
	}
	if !math.IsNaN(get(1, ColFinalScore)) {
		t.Error("s2 has no grade, final score must be missing")
	}
}

func TestReadJSONLSkipsOverlongLines(t *testing.T) {
	acc, _ := NewAccumulator(1)
	in := strings.Repeat("x", maxLineBytes+10) + "\n" + `{"topic":"classpulse.clicks.v1"}` + "\n"
	bad, err := acc.ReadJSONL(strings.NewReader(in), "f")
	if err != nil {
		t.Fatal(err)
	}
	if bad == nil || bad.Total != 2 || !strings.Contains(bad.Rows[0].Reason, "longer than") || bad.Rows[1].Line != 2 {
		t.Fatalf("bad = %v", bad)
	}
	if !errors.Is(bad, ErrBadInput) {
		t.Fatal("InputError does not wrap ErrBadInput")
	}
}

func FuzzReadJSONL(f *testing.F) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Add(line(f, &stream.Click{Header: stream.NewHeader("s1", ts), Course: "c", Kind: stream.KindStudy, DurationS: 5}) + "\n\n{}")
	f.Add(line(f, &stream.Grade{Header: stream.NewHeader("s1", ts), Course: "c", Term: "t", Score: 50}))
	f.Add(`{"topic":"classpulse.scores.v1","event":{"v":1,"id":"a","ts":"2026-01-01T00:00:00Z","student":"s"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		acc, _ := NewAccumulator(3)
		if _, err := acc.ReadJSONL(strings.NewReader(in), "fuzz"); err != nil {
			t.Fatalf("reading from memory failed: %v", err)
		}
		tb, err := FeaturesFromAggregates(acc.Aggregates(), 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range tb.Rows {
			for _, v := range r {
				if math.IsInf(v, 0) {
					t.Fatal("infinite feature")
				}
			}
		}
	})
}
