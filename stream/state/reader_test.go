package state_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// t0 is 09:00 in Shanghai, in study period 2026-autumn-3 of the default
// policy (2026-11-02 .. 2026-11-29).
var t0 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

type fixture struct {
	store  *state.Store
	reader *state.Reader
	off    int64
	t      *testing.T
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := testenv.StartRedis(t).Client(t)
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := state.NewReader(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, reader: reader, t: t}
}

// apply applies events in order and returns the last result.
func (f *fixture) apply(events ...stream.Event) state.Result {
	f.t.Helper()
	ops := make([]state.Op, len(events))
	for i, e := range events {
		ops[i] = state.Op{Event: e, Topic: e.Topic(), Offset: f.off}
		f.off++
	}
	res, err := f.store.Apply(context.Background(), rules.DefaultPolicy(), ops)
	if err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	return res[len(res)-1]
}

// attentionAt is a recognisable attention value per second.
func attentionAt(sec int) float64 { return float64(sec%100) / 100 }

func scores(student string, from, to int, face float64) []stream.Event {
	var out []stream.Event
	for sec := from; sec < to; sec++ {
		out = append(out, &stream.Score{Header: stream.NewHeader(student, t0.Add(time.Duration(sec)*time.Second)),
			Session: "S1", Course: "calculus", WindowMS: 1000, Frames: 10, FaceRatio: face, Attention: attentionAt(sec),
			Learning: &stream.Learning{Engaged: 0.2, Confused: 0.6, Bored: 0.1, Frustrated: 0.1}, Model: "m"})
	}
	return out
}

func TestReaderLiveReturnsTheHorizonOldestFirstAndTheRulesWindows(t *testing.T) {
	f := newFixture(t)
	// 700 seconds: the 10 minute horizon keeps the last 600; the face
	// leaves for the last 30.
	last := f.apply(append(scores("st1", 0, 670, 1), scores("st1", 670, 700, 0)...)...)
	h, err := f.reader.Live(context.Background(), "st1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Seconds) != 600 || h.Seconds[0].Unix != t0.Unix()+100 || h.Seconds[599].Unix != t0.Unix()+699 {
		t.Fatalf("got %d seconds from %d, want 600 from %d", len(h.Seconds), h.Seconds[0].Unix-t0.Unix(), 100)
	}
	for i, s := range h.Seconds {
		sec := int(s.Unix - t0.Unix())
		if math.Abs(s.Attention-attentionAt(sec)) > 1e-6 || s.Samples != 1 || s.LearningSamples != 1 || math.Abs(s.Learning[1]-0.6) > 1e-6 {
			t.Fatalf("second %d (%d) = %+v", sec, i, s)
		}
		if wantFace := sec < 670; (s.Face >= 0.5) != wantFace {
			t.Fatalf("second %d face %v", sec, s.Face)
		}
	}
	if h.Session != "S1" || h.Course != "calculus" || h.HeadUnix != last.Live.HeadUnix {
		t.Errorf("header %q %q %d, want S1 calculus %d", h.Session, h.Course, h.HeadUnix, last.Live.HeadUnix)
	}
	if h.W1 != last.Live.W1 || h.W2 != last.Live.W2 || h.W5 != last.Live.W5 || h.FaceAbsentSeconds != last.Live.FaceAbsentSeconds ||
		h.SessionTotals != last.Live.SessionTotals {
		t.Errorf("reader windows differ from what the rules saw:\n%+v\nvs\n%+v", h, last.Live)
	}
	// The session totals reach past the horizon: all 700 seconds.
	var att float64
	for sec := 0; sec < 700; sec++ {
		att += attentionAt(sec)
	}
	// Means come to six decimals (state.mean).
	st := h.SessionTotals
	if st.Seconds != 700 || math.Abs(st.Attention-att/700) > 5e-7 || math.Abs(st.Face-670.0/700) > 5e-7 ||
		st.LearningSeconds != 700 || st.Confused != 0.6 || h.SessionStartUnix != t0.Unix() {
		t.Errorf("session totals %+v from %d, want 700 s from %d, attention %.6f, face %.6f", st, h.SessionStartUnix, t0.Unix(), att/700, 670.0/700)
	}
}

func TestSessionTotalsStartAgainWithANewSession(t *testing.T) {
	f := newFixture(t)
	f.apply(scores("st9", 0, 120, 1)...)
	next := scores("st9", 120, 150, 0)
	for _, e := range next {
		e.(*stream.Score).Session = "S2"
	}
	last := f.apply(next...)
	h, err := f.reader.Live(context.Background(), "st9")
	if err != nil {
		t.Fatal(err)
	}
	if st := h.SessionTotals; st.Seconds != 30 || st.Face != 0 || h.Session != "S2" || h.SessionStartUnix != t0.Unix()+120 || st != last.Live.SessionTotals {
		t.Fatalf("after a new session: %+v from %d (session %s), want 30 s without a face from %d", st, h.SessionStartUnix, h.Session, t0.Unix()+120)
	}
}

func TestReaderHasNoStateForUnknownOrErasedStudents(t *testing.T) {
	f := newFixture(t)
	f.apply(scores("st2", 0, 10, 1)...)
	if _, err := f.reader.Live(context.Background(), "st2"); err != nil {
		t.Fatalf("before erasure: %v", err)
	}
	f.apply(&stream.Consent{Header: stream.NewHeader("st2", t0.Add(11*time.Second)), Scope: "camera", Granted: false, PolicyVersion: "p1"})
	cases := []struct {
		name string
		read func() error
	}{
		{"live of an unknown student", func() error { _, err := f.reader.Live(context.Background(), "nobody"); return err }},
		{"academic of an unknown student", func() error { _, err := f.reader.Academic(context.Background(), "nobody"); return err }},
		{"live after camera consent is revoked", func() error { _, err := f.reader.Live(context.Background(), "st2"); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.read(); !errors.Is(err, state.ErrNoState) {
				t.Fatalf("err = %v, want ErrNoState", err)
			}
		})
	}
}

// academicEvents: 3 h of calculus and 1 h of law this term, a quiz, a
// failed calculus, a passed law, a failed politics (a public elective in
// the policy), and a grade of the previous term.
func academicEvents(student string) []stream.Event {
	at := func(m int) stream.Header { return stream.NewHeader(student, t0.Add(time.Duration(m)*time.Minute)) }
	return []stream.Event{
		&stream.Click{Header: at(0), Course: "calculus", Kind: stream.KindStudy, DurationS: 7200},
		&stream.Click{Header: at(1), Course: "calculus", Kind: stream.KindStudy, DurationS: 3600},
		&stream.Click{Header: at(2), Course: "law", Kind: stream.KindStudy, DurationS: 3600},
		&stream.Click{Header: at(3), Course: "law", Kind: "quiz"},
		&stream.Grade{Header: at(4), Course: "calculus", Term: "2026-autumn", Score: 41},
		&stream.Grade{Header: at(5), Course: "law", Term: "2026-autumn", Score: 75, Passed: true},
		&stream.Grade{Header: at(6), Course: "politics", Term: "2026-autumn", Score: 30},
		&stream.Grade{Header: at(7), Course: "english", Term: "2026-spring", Score: 90, Passed: true},
	}
}

// TestReaderAcademicIsWhatTheRulesSaw: the reader returns what the rules
// saw after the last click or grade, but every week's study time, where
// the rules get only the two weeks they read (Calendar.LastWeeks).
func TestReaderAcademicIsWhatTheRulesSaw(t *testing.T) {
	f := newFixture(t)
	week := 7 * 24 * time.Hour
	var earlier []stream.Event
	for w := 1; w <= 4; w++ { // one study click a week in the four weeks before
		earlier = append(earlier, &stream.Click{Header: stream.NewHeader("st3", t0.Add(-time.Duration(w)*week)), Course: "calculus", Kind: stream.KindStudy, DurationS: float64(600 * w)})
	}
	f.apply(earlier...)
	last := f.apply(academicEvents("st3")...)
	a, err := f.reader.Academic(context.Background(), "st3")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(a.Study["calculus"].ByWeek); got != 5 {
		t.Fatalf("reader: calculus has %d weeks %v, want 5", got, a.Study["calculus"].ByWeek)
	}
	lastWeek, prevWeek := rules.DefaultPolicy().LastWeeks(t0.Add(7 * time.Minute)) // the last grade's time
	want := map[string]float64{lastWeek: 600, prevWeek: 1200}
	if got := last.Academic.Study["calculus"].ByWeek; !maps.Equal(got, want) {
		t.Fatalf("the rules saw calculus weeks %v, want %v", got, want)
	}
	if got := last.Academic.Study["law"].ByWeek; len(got) != 0 {
		t.Fatalf("the rules saw law weeks %v, want none (law was studied this week only)", got)
	}
	for _, st := range a.Study {
		maps.DeleteFunc(st.ByWeek, func(w string, _ float64) bool { return w != lastWeek && w != prevWeek })
	}
	if !reflect.DeepEqual(a, last.Academic) {
		t.Fatalf("reader:\n%+v\napply result:\n%+v", a, last.Academic)
	}
	if got := a.Study["calculus"].ByTerm["2026-autumn"]; got != 10800+6000 {
		t.Fatalf("calculus study %v s, want 16800", got)
	}
}

func TestStateReaderServesTheStudentPage(t *testing.T) {
	f := newFixture(t)
	f.apply(academicEvents("st4")...)
	f.apply(scores("st4", 0, 90, 1)...)
	rdb := f.store.Client()
	sr, err := dashboard.NewStateReader(rdb, state.Config{}, rules.NewHolder(rules.DefaultPolicy()), func() time.Time { return t0.Add(time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	var _ dashboard.StudentReader = sr
	ctx := context.Background()

	live, err := sr.Live(ctx, "st4")
	if err != nil {
		t.Fatal(err)
	}
	if live.Session != "S1" || len(live.Points) != 90 || !live.Points[0].TS.Equal(t0) || live.Points[89].Dominant != "confused" ||
		!live.Points[5].FacePresent || math.Abs(live.Points[5].Attention-0.05) > 1e-6 || live.Points[5].Learning["engaged"] != 0.2 {
		t.Fatalf("live series %+v", live)
	}
	if tot := live.Totals; tot == nil || tot.Seconds != 90 || !tot.Started.Equal(t0) || tot.FacePresent != 1 ||
		math.Abs(tot.Attention-0.445) > 1e-9 || math.Abs(tot.Learning["confused"]-0.6) > 1e-9 || tot.Emotions != nil {
		t.Fatalf("session totals %+v", live.Totals)
	}

	// Period 3 runs from 2026-11-02 00:00 to 2026-11-30 00:00 in Shanghai;
	// at 10:00 on the 23rd, 21 days and 10 hours of its 28 days are gone.
	frac := (21*24 + 10) / (28 * 24.0)
	want := map[string]float64{
		"calculus": (8 + 8 + 8*frac) * 1.25 * 3600, // difficulty 1.25
		"law":      (8 + 8 + 8*frac) * 3600,
	}
	cases := []struct {
		name, term, want string
		courses          map[string]float64
		grades           int
	}{
		{"current term by the calendar", "", "2026-autumn", map[string]float64{"calculus": 10800, "law": 3600}, 3},
		{"an earlier term asked for", "2026-spring", "2026-spring", nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := sr.Academic(ctx, "st4", c.term)
			if err != nil {
				t.Fatal(err)
			}
			if a.Term != c.want || len(a.Grades) != c.grades {
				t.Fatalf("term %q with %d grades, want %q with %d", a.Term, len(a.Grades), c.want, c.grades)
			}
			for _, cs := range a.Courses {
				if studied, ok := c.courses[cs.Course]; ok {
					if cs.StudySeconds != studied || math.Abs(cs.RequiredSeconds-want[cs.Course]) > 1 {
						t.Errorf("%s: studied %v of %v s, want %v of %v", cs.Course, cs.StudySeconds, cs.RequiredSeconds, studied, want[cs.Course])
					}
				}
			}
			for _, g := range a.Grades {
				if g.Course == "politics" && !g.Elective {
					t.Errorf("politics is a public elective in the policy: %+v", g)
				}
			}
		})
	}
	if _, err := sr.Academic(ctx, "nobody", ""); !errors.Is(err, dashboard.ErrNotAvailable) {
		t.Fatalf("unknown student: %v, want ErrNotAvailable", err)
	}
}
