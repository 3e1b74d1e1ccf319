package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

type fixedCal struct{}

func (fixedCal) PeriodAt(time.Time) (string, string, bool) { return "2026-autumn", "p3", true }

// WeekKey names weeks in UTC+8, as a school in Shanghai does.
func (fixedCal) WeekKey(t time.Time) string {
	y, w := t.In(time.FixedZone("UTC+8", 8*3600)).ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

func (c fixedCal) LastWeeks(t time.Time) (last, prev string) {
	return c.WeekKey(t.AddDate(0, 0, -7)), c.WeekKey(t.AddDate(0, 0, -14))
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func score(student string, sec int, att, face float64) *stream.Score {
	s := &stream.Score{
		Header:    stream.NewHeader(student, t0.Add(time.Duration(sec)*time.Second)),
		Session:   "S1",
		Course:    "calculus",
		WindowMS:  1000,
		Frames:    10,
		FaceRatio: face,
		Attention: att,
		Learning:  &stream.Learning{Engaged: att, Confused: 1 - att},
		Model:     "test-1",
	}
	return s
}

func newStore(t *testing.T) *Store {
	t.Helper()
	r := testenv.StartRedis(t)
	s, err := New(r.Client(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func apply(t *testing.T, s *Store, ops ...Op) []Result {
	t.Helper()
	res, err := s.Apply(context.Background(), fixedCal{}, ops)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func TestRollingWindowsSlideOutOldSeconds(t *testing.T) {
	s := newStore(t)
	var ops []Op
	// 300 seconds at attention 1, then 60 seconds at attention 0.
	for i := 0; i < 360; i++ {
		att := 1.0
		if i >= 300 {
			att = 0
		}
		ops = append(ops, Op{Event: score("st1", i, att, 1), Topic: stream.TopicScores, Offset: int64(i)})
	}
	res := apply(t, s, ops...)
	last := res[len(res)-1]
	if last.Status != Applied || last.Live == nil {
		t.Fatalf("last result %+v", last)
	}
	l := last.Live
	cases := []struct {
		name    string
		w       Window
		seconds int
		att     float64
	}{
		{"1m holds only the zeros", l.W1, 60, 0},
		{"2m is half and half", l.W2, 120, 0.5},
		{"5m is 240 ones of 300", l.W5, 300, 0.8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.w.Seconds != c.seconds || math.Abs(c.w.Attention-c.att) > 1e-6 {
				t.Fatalf("got %d seconds, attention %.4f; want %d, %.4f", c.w.Seconds, c.w.Attention, c.seconds, c.att)
			}
		})
	}
	if l.W2.Confused < 0.49 || l.W2.Confused > 0.51 {
		t.Errorf("2m confused mean %.3f, want 0.5", l.W2.Confused)
	}
}

func TestRedeliveredBatchChangesNothing(t *testing.T) {
	s := newStore(t)
	ops := []Op{
		{Event: score("st1", 0, 0.2, 1), Topic: stream.TopicScores, Partition: 1, Offset: 10},
		{Event: score("st1", 1, 0.4, 1), Topic: stream.TopicScores, Partition: 1, Offset: 11},
		{Event: &stream.Click{Header: stream.NewHeader("st1", t0), Course: "calculus", Kind: stream.KindStudy, DurationS: 600},
			Topic: stream.TopicClicks, Partition: 1, Offset: 5},
	}
	first := apply(t, s, ops...)
	again := apply(t, s, ops...)
	for i, r := range again {
		if r.Status != Duplicate {
			t.Errorf("op %d redelivered: status %v, want duplicate", i, r.Status)
		}
	}
	if got := first[2].Academic.Study["calculus"].ByTerm["2026-autumn"]; got != 600 {
		t.Fatalf("study seconds %v, want 600", got)
	}
	// A duplicate still carries the state after it (for the rules to be
	// evaluated again after a crash): the last score's windows, the
	// click's academic state.
	if again[1].Live == nil || *again[1].Live != *first[1].Live {
		t.Errorf("redelivered score's state %+v, want %+v", again[1].Live, first[1].Live)
	}
	if again[2].Academic == nil || again[2].Academic.Study["calculus"].ByTerm["2026-autumn"] != 600 {
		t.Errorf("redelivered click's academic state %+v", again[2].Academic)
	}
	// One more new click proves the redelivery did not double count.
	next := apply(t, s, Op{Event: &stream.Click{Header: stream.NewHeader("st1", t0), Course: "calculus", Kind: stream.KindStudy, DurationS: 60},
		Topic: stream.TopicClicks, Partition: 1, Offset: 6})
	if got := next[0].Academic.Study["calculus"].ByPeriod["2026-autumn"]["p3"]; got != 660 {
		t.Fatalf("study seconds after redelivery and one more click %v, want 660", got)
	}
}

func TestFaceAbsenceCountsFromLastFace(t *testing.T) {
	s := newStore(t)
	var ops []Op
	for i := 0; i < 40; i++ {
		face := 1.0
		if i >= 10 {
			face = 0
		}
		ops = append(ops, Op{Event: score("st2", i, face, face), Topic: stream.TopicScores, Offset: int64(i)})
	}
	res := apply(t, s, ops...)
	if got := res[len(res)-1].Live.FaceAbsentSeconds; got != 30 {
		t.Fatalf("face absent %v seconds, want 30", got)
	}
}

func TestCameraRevocationErasesLiveStateAndRefusesScores(t *testing.T) {
	s := newStore(t)
	apply(t, s, Op{Event: score("st3", 0, 1, 1), Topic: stream.TopicScores, Offset: 1})
	revoke := &stream.Consent{Header: stream.NewHeader("st3", t0.Add(2*time.Second)), Scope: stream.ScopeCamera, PolicyVersion: "2026-1"}
	res := apply(t, s, Op{Event: revoke, Topic: stream.TopicConsent, Offset: 1})
	if res[0].Status != Erased || res[0].ErasedSession != "S1" || res[0].ErasedKeys != 1 {
		t.Fatalf("revocation result %+v", res[0])
	}
	n, err := s.Client().Exists(context.Background(), LiveKey("st3")).Result()
	if err != nil || n != 0 {
		t.Fatalf("live key still exists (%d, %v)", n, err)
	}
	res = apply(t, s, Op{Event: score("st3", 3, 1, 1), Topic: stream.TopicScores, Offset: 2})
	if res[0].Status != Refused {
		t.Fatalf("score after revocation: %v, want refused", res[0].Status)
	}
}

func TestApplyReloadsScriptAfterFlush(t *testing.T) {
	s := newStore(t)
	apply(t, s, Op{Event: score("st4", 0, 1, 1), Topic: stream.TopicScores, Offset: 1})
	if err := s.Client().ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	res := apply(t, s, Op{Event: score("st4", 1, 1, 1), Topic: stream.TopicScores, Offset: 2})
	if res[0].Status != Applied || res[0].Live.W1.Seconds != 2 {
		t.Fatalf("after SCRIPT FLUSH: %+v", res[0])
	}
}

func TestStudyWeekFollowsTheCalendarsWeekNotUTC(t *testing.T) {
	cases := []struct {
		name string
		at   time.Time
		week string
	}{
		// Sunday 20:00 UTC is already Monday 04:00 in UTC+8: the next week.
		{"sunday evening utc is monday in the school's zone", time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC), "2026-W48"},
		{"midweek is the same week everywhere", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "2026-W48"},
		{"sunday morning utc is still sunday there", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), "2026-W47"},
	}
	s := newStore(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			student := fmt.Sprintf("wk%d", i)
			apply(t, s, Op{Event: &stream.Click{Header: stream.NewHeader(student, c.at), Course: "law", Kind: "study", DurationS: 90},
				Topic: stream.TopicClicks, Offset: 1})
			got, err := s.Client().HGet(context.Background(), WeeksKey(student), "w|law|"+c.week).Result()
			if err != nil || got != "90" {
				all, _ := s.Client().HGetAll(context.Background(), WeeksKey(student)).Result()
				t.Fatalf("w|law|%s = %q (%v); weeks hash %v", c.week, got, err, all)
			}
		})
	}
}

func TestGradesAreReturnedSorted(t *testing.T) {
	s := newStore(t)
	g := func(course string, score float64, off int64) Op {
		return Op{Event: &stream.Grade{Header: stream.NewHeader("st5", t0), Course: course, Term: "2026-autumn", Score: score, Passed: score >= 60},
			Topic: stream.TopicGrades, Offset: off}
	}
	res := apply(t, s, g("law", 41, 1), g("calculus", 75, 2))
	gr := res[1].Academic.Grades
	if len(gr) != 2 || gr[0].Course != "calculus" || gr[1].Course != "law" || gr[1].Passed || gr[1].Score != 41 {
		t.Fatalf("grades %+v", gr)
	}
}

func TestPauseLongerThanAWindowEmptiesOnlyThatWindow(t *testing.T) {
	s := newStore(t)
	var ops []Op
	for i := 0; i < 10; i++ {
		ops = append(ops, Op{Event: score("pause", i, 0.2, 1), Topic: stream.TopicScores, Offset: int64(i)})
	}
	apply(t, s, ops...)
	res := apply(t, s, Op{Event: score("pause", 100, 1, 1), Topic: stream.TopicScores, Offset: 10})
	l := res[0].Live
	if l.W1.Seconds != 1 || l.W1.Attention != 1 {
		t.Errorf("1 min window after a 90 s pause: %d s, attention %v; want only the new second", l.W1.Seconds, l.W1.Attention)
	}
	if l.W2.Seconds != 11 || l.W5.Seconds != 11 {
		t.Errorf("2 and 5 min windows: %d and %d s, want 11 each", l.W2.Seconds, l.W5.Seconds)
	}
	// At 121 s the 2 min window covers seconds 2–121: 2–9, 100 and 121;
	// the 1 min window 62–121: 100 and 121.
	res = apply(t, s, Op{Event: score("pause", 121, 1, 1), Topic: stream.TopicScores, Offset: 11})
	if l := res[0].Live; l.W2.Seconds != 10 || l.W1.Seconds != 2 || l.W5.Seconds != 12 {
		t.Errorf("at 121 s: windows of %d, %d and %d s, want 2, 10 and 12", l.W1.Seconds, l.W2.Seconds, l.W5.Seconds)
	}
}

// liveFields is a student's live hash. Its version "v" is part of it:
// the same scores applied to the same base give the same version,
// whichever store wrote them.
func liveFields(t *testing.T, s *Store, student string) map[string]string {
	t.Helper()
	h, err := s.Client().HGetAll(context.Background(), LiveKey(student)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantAll fails unless every result has status want; first is the first
// result's offset, for the message.
func wantAll(t *testing.T, res []Result, want Status, first int) {
	t.Helper()
	for i, r := range res {
		if r.Status != want {
			t.Fatalf("op %d: %v, want %v", first+i, r.Status, want)
		}
	}
}

func prepare(t *testing.T, s *Store, ops ...Op) *Prepared {
	t.Helper()
	p, err := s.Prepare(context.Background(), fixedCal{}, ops)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return p
}

func send(t *testing.T, s *Store, p *Prepared) []Result {
	t.Helper()
	res, err := s.Send(context.Background(), p)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return res
}

// scoreOps are one student's scores at seconds from…to-1, with offsets
// equal to the seconds, from partition 2 of the scores topic.
func scoreOps(student string, from, to int) []Op {
	var ops []Op
	for i := from; i < to; i++ {
		ops = append(ops, Op{Event: score(student, i, float64(i%10)/10, float64(i%4/3)), Topic: stream.TopicScores, Partition: 2, Offset: int64(i)})
	}
	return ops
}

func TestStaleCopiesAreRefusedAndReloaded(t *testing.T) {
	r := testenv.StartRedis(t)
	newS := func() *Store {
		s, err := New(r.Client(t), Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	single := newS()
	apply(t, single, scoreOps("ref", 0, 400)...)
	want := liveFields(t, single, "ref")

	cases := []struct {
		name string
		run  func(t *testing.T, a, b *Store, student string)
	}{
		{"the partition moved to another member and back", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 150)...)
			apply(t, b, scoreOps(student, 150, 300)...)
			res := apply(t, a, scoreOps(student, 300, 400)...)
			if res[0].Status != Applied || res[0].Live.W5.Seconds != 300 {
				t.Fatalf("first score after the move back: %+v", res[0])
			}
			// Every score of that batch was computed from the stale copy
			// in the first round, and refused.
			if a.StaleCopies() != 100 {
				t.Fatalf("stale copies counted: %d, want 100 (the batch after the move back)", a.StaleCopies())
			}
		}},
		{"two members applied the same batch during a rebalance", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 150)...)
			apply(t, b, scoreOps(student, 150, 299)...)
			// a still believes it is at offset 149: 150…298 are duplicates
			// it did not foresee, and 299 must not build on its copy.
			res := apply(t, a, scoreOps(student, 150, 300)...)
			wantAll(t, res[:149], Duplicate, 150)
			if last := res[149]; last.Status != Applied || last.Live.W5.Seconds != 300 {
				t.Fatalf("score 299: %+v", last)
			}
			apply(t, a, scoreOps(student, 300, 400)...)
		}},
		{"the next batch prepared while this one is sent", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 100)...)
			p1 := prepare(t, a, scoreOps(student, 100, 200)...)
			p2 := prepare(t, a, scoreOps(student, 200, 300)...)
			for _, p := range []*Prepared{p1, p2} {
				wantAll(t, send(t, a, p), Applied, 100)
			}
			apply(t, a, scoreOps(student, 300, 400)...)
			if a.StaleCopies() != 0 {
				t.Fatalf("%d stale copies: a prepared batch did not build on the one before", a.StaleCopies())
			}
		}},
		{"a prepared batch that was never sent is delivered again", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 150)...)
			prepare(t, a, scoreOps(student, 150, 300)...) // the process stopped before sending it
			wantAll(t, apply(t, a, scoreOps(student, 150, 300)...), Applied, 150)
			apply(t, a, scoreOps(student, 300, 400)...)
		}},
		{"the batch before a prepared one failed and was applied again", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 100)...)
			p1 := prepare(t, a, scoreOps(student, 100, 200)...)
			p2 := prepare(t, a, scoreOps(student, 200, 300)...)
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := a.Send(gone, p1); err == nil {
				t.Fatal("a send on a dead connection reported success")
			}
			if _, err := a.Send(context.Background(), p1); err == nil {
				t.Fatal("a prepared batch was sent twice")
			}
			apply(t, a, scoreOps(student, 100, 200)...)
			wantAll(t, send(t, a, p2), Applied, 200)
			apply(t, a, scoreOps(student, 300, 400)...)
		}},
		{"another member applied the batch a prepared one builds on", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 150)...)
			p := prepare(t, a, scoreOps(student, 150, 300)...)
			apply(t, b, scoreOps(student, 150, 300)...)
			wantAll(t, send(t, a, p), Duplicate, 150)
			apply(t, a, scoreOps(student, 300, 400)...)
		}},
		{"the member forgot the partition and was given it again", func(t *testing.T, a, b *Store, student string) {
			apply(t, a, scoreOps(student, 0, 200)...)
			a.ForgetPartition(stream.TopicScores, 2)
			if len(a.live) != 0 {
				t.Fatalf("%d copies kept after ForgetPartition", len(a.live))
			}
			apply(t, a, scoreOps(student, 200, 400)...)
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := newS(), newS()
			student := fmt.Sprintf("st%d", i)
			c.run(t, a, b, student)
			got := liveFields(t, a, student)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("field %s = %q, want %q (single store)", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d fields, want %d", len(got), len(want))
			}
		})
	}
}

func TestErasureByAnotherMemberRefusesTheStaleCopy(t *testing.T) {
	r := testenv.StartRedis(t)
	a, _ := New(r.Client(t), Config{})
	b, _ := New(r.Client(t), Config{})
	apply(t, a, scoreOps("er", 0, 50)...)
	revoke := &stream.Consent{Header: stream.NewHeader("er", t0.Add(51*time.Second)), Scope: stream.ScopeCamera, PolicyVersion: "2026-1"}
	if res := apply(t, b, Op{Event: revoke, Topic: stream.TopicConsent, Offset: 1}); res[0].Status != Erased {
		t.Fatalf("revocation: %+v", res[0])
	}
	if res := apply(t, a, scoreOps("er", 52, 53)...); res[0].Status != Refused {
		t.Fatalf("score after another member erased: %v, want refused", res[0].Status)
	}
	grant := &stream.Consent{Header: stream.NewHeader("er", t0.Add(60*time.Second)), Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1"}
	apply(t, b, Op{Event: grant, Topic: stream.TopicConsent, Offset: 2})
	res := apply(t, a, scoreOps("er", 61, 63)...)
	if l := res[1].Live; res[1].Status != Applied || l.W5.Seconds != 2 {
		t.Fatalf("after the grant the state starts afresh: %+v", res[1])
	}
}

func TestSecondOlderThanEveryWindowFillsItsBucketInRedis(t *testing.T) {
	s := newStore(t)
	apply(t, s, scoreOps("old", 0, 400)...)
	// Second 50 is 349 s behind the head: in the horizon, in no window.
	late := Op{Event: score("old", 50, 1, 1), Topic: stream.TopicScores, Partition: 2, Offset: 400}
	res := apply(t, s, late)
	if res[0].Status != Applied || res[0].Live.W5.Seconds != 300 {
		t.Fatalf("late score: %+v", res[0])
	}
	want := t0.Unix() + 50
	got, err := s.Client().HGet(context.Background(), LiveKey("old"), "b"+strconv.FormatInt(want%600, 10)).Result()
	if err != nil {
		t.Fatal(err)
	}
	sec, v, ok := parseBucketVec(got)
	if !ok || sec != want || v[0] != 2 || math.Abs(v[1]-1) > 1e-9 {
		t.Fatalf("bucket of second 50 = %q, want two samples summing attention 0+1", got)
	}
}

func TestStudentUnder14IsCapturedOnlyOnAGuardiansConsent(t *testing.T) {
	cases := []struct {
		name     string
		under14  string
		consent  *stream.Consent
		want     Status
		stateful bool
	}{
		{"under 14, no consent recorded", "1", nil, Refused, false},
		{"under 14, the student's own yes", "1", &stream.Consent{Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1"}, Refused, false},
		{"under 14, a guardian's yes", "1", &stream.Consent{Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1", Guardian: "parent-1"}, Applied, true},
		{"under 14, a guardian's no", "1", &stream.Consent{Scope: stream.ScopeCamera, Granted: false, PolicyVersion: "2026-1", Guardian: "parent-1"}, Refused, false},
		{"14 or older, the student's own yes", "0", &stream.Consent{Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1"}, Applied, true},
		{"no roster flag, no consent event", "", nil, Applied, true},
	}
	s := newStore(t)
	ctx := context.Background()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			student := fmt.Sprintf("kid%d", i)
			if c.under14 != "" {
				if err := s.Client().HSet(ctx, ProfileKey(student), "under_14", c.under14).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if c.consent != nil {
				c.consent.Header = stream.NewHeader(student, t0)
				apply(t, s, Op{Event: c.consent, Topic: stream.TopicConsent, Offset: 1})
			}
			res := apply(t, s, Op{Event: score(student, 1, 1, 1), Topic: stream.TopicScores, Offset: 1})
			if res[0].Status != c.want {
				t.Fatalf("score: %v, want %v", res[0].Status, c.want)
			}
			n, _ := s.Client().Exists(ctx, LiveKey(student)).Result()
			if (n == 1) != c.stateful {
				t.Fatalf("live key exists=%v, want %v", n == 1, c.stateful)
			}
		})
	}
}

// loadMidPipeline makes the first pipeline of EVALSHAs it sees meet a
// Redis without the script that gets it after the pipeline's first `at`
// calls, as when another member (or another group of this one) loads it
// into a restarted Redis while this pipeline is on the wire: the calls
// before fail with NOSCRIPT, those after run.
type loadMidPipeline struct {
	pipelinesOnly
	at   int
	done bool
}

// pipelinesOnly is the part of a go-redis hook that lets dials and single
// commands through.
type pipelinesOnly struct{}

func (pipelinesOnly) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (pipelinesOnly) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *loadMidPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.done || len(cmds) <= h.at || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds)
		}
		h.done = true
		// Flushed first: the store loads the script before its first
		// pipeline, as a restarted Redis would have lost it since.
		flush := redis.NewStatusCmd(ctx, "script", "flush")
		load := redis.NewStringCmd(ctx, "script", "load", applySource)
		with := append(append(append([]redis.Cmder{flush}, cmds[:h.at]...), load), cmds[h.at:]...)
		err := next(ctx, with)
		if err == nil {
			err = errors.Join(flush.Err(), load.Err())
		}
		for _, c := range cmds {
			if e := c.Err(); e != nil && err == nil {
				err = e
			}
		}
		return err
	}
}

// failSecondRound fails the script pipeline after the one it is armed on:
// Redis lost between a round and the stale round after it.
type failSecondRound struct {
	pipelinesOnly
	armed bool
	seen  int
}

func (h *failSecondRound) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !h.armed || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds)
		}
		if h.seen++; h.seen == 2 {
			return errors.New("connection reset")
		}
		return next(ctx, cmds)
	}
}

// TestAFailedStaleRoundFailsTheApply: scores refused as stale are sent
// again in a second round; if that round fails, Apply must fail (the batch
// is then not committed), and applying it again must end where an
// undisturbed store ends.
func TestAFailedStaleRoundFailsTheApply(t *testing.T) {
	r := testenv.StartRedis(t)
	hook := &failSecondRound{}
	rdb := r.Client(t)
	rdb.AddHook(hook)
	a, err := New(rdb, Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(r.Client(t), Config{})
	apply(t, a, scoreOps("sr", 0, 150)...)
	apply(t, b, scoreOps("sr", 150, 300)...) // a's copy is stale now
	hook.armed = true
	if _, err := a.Apply(context.Background(), fixedCal{}, scoreOps("sr", 300, 310)); err == nil {
		t.Fatal("Apply reported success though its stale round failed")
	}
	for i, res := range apply(t, a, scoreOps("sr", 300, 310)...) {
		if res.Status != Applied {
			t.Fatalf("op %d after the failure: %v, want applied", 300+i, res.Status)
		}
	}
	ref := newStore(t)
	apply(t, ref, scoreOps("sr", 0, 310)...)
	if got, want := liveFields(t, a, "sr"), liveFields(t, ref, "sr"); !maps.Equal(got, want) {
		t.Fatalf("live hash after the retry differs from an undisturbed store's")
	}
}

// TestScriptLoadedMidPipelineLosesNoEvent: when the script appears in a
// fresh Redis halfway through a pipeline, the calls before it fail and
// some after it of the same students run. Sending the pipeline again
// must apply exactly the failed ones: none may be taken for a
// redelivery because a later event of its student got in first.
func TestScriptLoadedMidPipelineLosesNoEvent(t *testing.T) {
	var ops []Op
	for i := 0; i < 12; i++ {
		for _, st := range []string{"gx", "gy"} {
			ops = append(ops, Op{Event: &stream.Click{Header: stream.NewHeader(st, t0.Add(time.Duration(i)*time.Second)), Course: "calculus",
				Kind: stream.KindStudy, DurationS: float64(1 + i)}, Topic: stream.TopicClicks, Partition: 3, Offset: int64(2*i + len(st) - 2)})
		}
	}
	for i := 0; i < 12; i++ {
		ops = append(ops, Op{Event: score("gx", i, float64(i%10)/10, 1), Topic: stream.TopicScores, Partition: 1, Offset: int64(100 + i)})
	}
	// The same ops applied undisturbed are the reference.
	want := newStore(t)
	apply(t, want, ops...)

	for _, at := range []int{1, 7, 13, 24, 30} {
		t.Run(fmt.Sprintf("loaded after %d calls", at), func(t *testing.T) {
			r := testenv.StartRedis(t)
			rdb := r.Client(t)
			rdb.AddHook(&loadMidPipeline{at: at})
			s, err := New(rdb, Config{})
			if err != nil {
				t.Fatal(err)
			}
			for i, res := range apply(t, s, ops...) {
				if res.Status != Applied && res.Status != Duplicate {
					t.Errorf("op %d: status %v", i, res.Status)
				}
			}
			ctx := context.Background()
			for _, st := range []string{"gx", "gy"} {
				for _, k := range StudentKeys(st)[:5] {
					got, err := rdb.HGetAll(ctx, k).Result()
					if err != nil {
						t.Fatal(err)
					}
					exp, err := want.Client().HGetAll(ctx, k).Result()
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, exp) {
						t.Errorf("%s = %v, undisturbed %v", k, got, exp)
					}
				}
			}
		})
	}
}

func TestConfigRefusesSettingsThatCannotWork(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{"defaults", Config{}, ""},
		{"horizon shorter than the longest window", Config{Horizon: time.Minute}, "horizon"},
		{"live TTL shorter than the horizon", Config{LiveTTL: time.Minute}, "live TTL"},
		{"DTTW window under an hour", Config{Window: time.Minute}, "DTTW window"},
		{"negative student cache", Config{CacheStudents: -1}, "--cache-students"},
		{"small student cache", Config{CacheStudents: 10}, ""},
		{"negative script group", Config{Group: -1}, "--script-group"},
		{"script group past 1024 events", Config{Group: 1025}, "--script-group"},
		{"every event its own call", Config{Group: 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(nil, c.cfg)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

// TestCopiesBeyondTheCacheAreReloadedNotLost: a store whose cache holds
// fewer students than it serves drops copies and reloads them from Redis;
// the state must end the same as with room for all.
func TestCopiesBeyondTheCacheAreReloadedNotLost(t *testing.T) {
	students := []string{"c1", "c2", "c3", "c4", "c5"}
	run := func(cache int) *Store {
		r := testenv.StartRedis(t)
		s, err := New(r.Client(t), Config{CacheStudents: cache})
		if err != nil {
			t.Fatal(err)
		}
		for sec := 0; sec < 90; sec += 10 {
			var ops []Op
			for _, st := range students {
				ops = append(ops, scoreOps(st, sec, sec+10)...)
			}
			apply(t, s, ops...)
		}
		return s
	}
	small, roomy := run(2), run(0)
	if n := len(small.live); n > 2 {
		t.Fatalf("a 2-student cache holds %d copies", n)
	}
	if n := len(roomy.live); n != len(students) {
		t.Fatalf("an unbounded cache holds %d copies, want %d", n, len(students))
	}
	for _, st := range students {
		if got, want := liveFields(t, small, st), liveFields(t, roomy, st); !maps.Equal(got, want) {
			t.Errorf("%s: with a 2-student cache %v, with room for all %v", st, got, want)
		}
	}
}

// TestOnlyTheLastAcademicEventOfAStudentCarriesTheState: the rules read a
// student's academic state once per batch, after its last click or grade,
// so only that one fetches it; it holds every earlier event's effect.
func TestOnlyTheLastAcademicEventOfAStudentCarriesTheState(t *testing.T) {
	s := newStore(t)
	click := func(st string, off int64, dur float64) Op {
		return Op{Event: &stream.Click{Header: stream.NewHeader(st, t0), Course: "calculus", Kind: stream.KindStudy, DurationS: dur},
			Topic: stream.TopicClicks, Partition: 1, Offset: off}
	}
	grade := Op{Event: &stream.Grade{Header: stream.NewHeader("la", t0), Term: "2026-autumn", Course: "calculus", Score: 55},
		Topic: stream.TopicGrades, Partition: 1, Offset: 1}
	ops := []Op{click("la", 10, 60), click("lb", 11, 30), click("la", 12, 120), grade, click("lb", 13, 30)}
	for round, want := range []Status{Applied, Duplicate} {
		res := apply(t, s, ops...)
		for i, r := range res {
			if r.Status != want {
				t.Fatalf("round %d op %d: status %v, want %v", round, i, r.Status, want)
			}
			if last := i == 3 || i == 4; (r.Academic != nil) != last {
				t.Errorf("round %d op %d: academic state %v, want it only on each student's last", round, i, r.Academic != nil)
			}
		}
		if got := res[3].Academic.Study["calculus"].ByTerm["2026-autumn"]; got != 180 {
			t.Errorf("round %d: la's state after the grade has %v study seconds, want 180", round, got)
		}
		if got := res[4].Academic.Study["calculus"].ByTerm["2026-autumn"]; got != 60 {
			t.Errorf("round %d: lb's state has %v study seconds, want 60", round, got)
		}
		if len(res[3].Academic.Grades) != 1 {
			t.Errorf("round %d: la's grades %+v", round, res[3].Academic.Grades)
		}
	}
}

// TestFormat1LiveHashIsReadThenRewrittenInRedis: a live hash a processor
// before "live hash format 2" wrote (text fields) is read by the Reader and
// carried on by the Store, whose first score rewrites it in format 2.
func TestFormat1LiveHashIsReadThenRewrittenInRedis(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base := t0.Unix()
	text := func(sec int64, att string) string {
		return strconv.FormatInt(sec, 10) + " 1 " + att + " 1 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0"
	}
	old := map[string]any{"h": base + 1, "fs": base, "lf": base + 1, "sess": "S1", "course": "calculus", "v": "old1",
		"w60": "2 1 2 0 1 1 0.2 0.1 2 0 0 0 0 0 0 0 0", "w120": "2 1 2 0 1 1 0.2 0.1 2 0 0 0 0 0 0 0 0",
		"w300": "2 1 2 0 1 1 0.2 0.1 2 0 0 0 0 0 0 0 0", "st": "2 1 2 0 1 1 0.2 0.1 2 0 0 0 0 0 0 0 0",
		"b" + strconv.FormatInt(base%600, 10): text(base, "0.25"), "b" + strconv.FormatInt((base+1)%600, 10): text(base+1, "0.75")}
	if err := s.Client().HSet(ctx, LiveKey("f1"), old).Err(); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(s.Client(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := rd.Live(ctx, "f1")
	if err != nil || len(before.Seconds) != 2 || before.W1.Seconds != 2 || before.W1.Attention != 0.5 || before.SessionStartUnix != base {
		t.Fatalf("format 1 hash read as %+v, %v", before, err)
	}
	// The rewrite writes more pairs than a batch keeps room for per score;
	// the next score of the batch must not write over them.
	res := apply(t, s, Op{Event: score("f1", 2, 1, 1), Topic: stream.TopicScores, Partition: 2, Offset: 7},
		Op{Event: score("f2", 2, 0.5, 1), Topic: stream.TopicScores, Partition: 2, Offset: 8})
	if res[0].Status != Applied || res[0].Live.W1.Seconds != 3 || res[0].Live.W1.Attention != 0.666667 {
		t.Fatalf("score on a format 1 hash: %+v", res[0])
	}
	if res[1].Status != Applied || res[1].Live.W1.Seconds != 1 || res[1].Live.W1.Attention != 0.5 {
		t.Fatalf("score after it in the batch: %+v", res[1])
	}
	h, err := s.Client().HGetAll(ctx, LiveKey("f1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h["w60"]; ok {
		t.Fatalf("format 1 fields left after the rewrite: %v", h)
	}
	if _, ok := parseSummary(h["s"]); !ok {
		t.Fatalf("no format 2 summary after the rewrite: %q", h["s"])
	}
	after, err := rd.Live(ctx, "f1")
	if err != nil || len(after.Seconds) != 3 || after.Seconds[0].Attention != 0.25 || after.W1 != res[0].Live.W1 ||
		after.SessionTotals.Seconds != 3 || after.SessionStartUnix != base {
		t.Fatalf("rewritten hash read as %+v, %v", after, err)
	}
}

// TestScoresFromANewPartitionInOneBatchAreApplied: after the scores topic
// was repartitioned, a batch can hold a student's scores from the old
// partition and then from the new one, whose offsets start lower. They are
// not duplicates.
func TestScoresFromANewPartitionInOneBatchAreApplied(t *testing.T) {
	s := newStore(t)
	var ops []Op
	for i := 0; i < 10; i++ {
		ops = append(ops, Op{Event: score("rp", i, 0.5, 1), Topic: stream.TopicScores, Partition: 2, Offset: int64(100 + i)})
	}
	for i := 10; i < 15; i++ {
		ops = append(ops, Op{Event: score("rp", i, 0.5, 1), Topic: stream.TopicScores, Partition: 5, Offset: int64(i - 10)})
	}
	res := apply(t, s, ops...)
	wantAll(t, res, Applied, 0)
	if w := res[14].Live.W1; w.Seconds != 15 {
		t.Fatalf("window after both partitions: %d seconds, want 15", w.Seconds)
	}
}

// A consent applied with Op.Audit keeps an outbox marker until its audit
// record is published: a redelivery before that comes back pending, with
// what the erasure did; after AuditsPublished, a plain duplicate.
func TestAConsentsAuditStaysPendingUntilPublished(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	apply(t, s, scoreOps("au", 0, 20)...)
	revoke := Op{Event: &stream.Consent{Header: stream.NewHeader("au", t0.Add(21*time.Second)), Scope: stream.ScopeCamera, PolicyVersion: "2026-1"},
		Topic: stream.TopicConsent, Partition: 3, Offset: 7, Audit: true}
	grant := Op{Event: &stream.Consent{Header: stream.NewHeader("au", t0.Add(22*time.Second)), Scope: stream.ScopeClickstream, Granted: true, PolicyVersion: "2026-1"},
		Topic: stream.TopicConsent, Partition: 3, Offset: 8, Audit: true}
	quiet := Op{Event: &stream.Consent{Header: stream.NewHeader("au", t0.Add(23*time.Second)), Scope: stream.ScopeEmotion, Granted: true, PolicyVersion: "2026-1"},
		Topic: stream.TopicConsent, Partition: 3, Offset: 9}
	first := apply(t, s, revoke, grant, quiet)
	if first[0].Status != Erased || first[0].ErasedKeys != 1 || first[1].Status != Applied || first[2].Status != Applied {
		t.Fatalf("first delivery: %+v", first)
	}
	again := apply(t, s, revoke, grant, quiet)
	want := []Result{
		{Status: Duplicate, AuditPending: true, Erasure: true, ErasedKeys: 1, ErasedSession: "S1"},
		{Status: Duplicate, AuditPending: true},
		{Status: Duplicate}, // applied without Audit: no marker
	}
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("redelivered before the audit was published:\n got %+v\nwant %+v", again, want)
	}
	if err := s.AuditsPublished(ctx, []Op{revoke, grant, quiet}); err != nil {
		t.Fatal(err)
	}
	for i, r := range apply(t, s, revoke, grant) {
		if !reflect.DeepEqual(r, Result{Status: Duplicate}) {
			t.Errorf("redelivered after the audit was published, op %d: %+v", i, r)
		}
	}
	if n := s.Client().HLen(ctx, offKey("au")).Val(); n != 2 {
		t.Errorf("off hash has %d fields after the markers were cleared, want the two offsets", n)
	}
}

// TestStudyTotalsHoldWhatHINCRBYFLOATWouldHaveWritten: whole seconds are
// added by HINCRBY and fractions by HINCRBYFLOAT (apply.lua); whatever
// the mix, each total must read exactly as HINCRBYFLOAT alone writes it.
func TestStudyTotalsHoldWhatHINCRBYFLOATWouldHaveWritten(t *testing.T) {
	cases := []struct {
		name string
		durs []float64
		// floats: the HINCRBYFLOATs the script may run (3 totals a click).
		floats int64
	}{
		{"whole seconds", []float64{30, 30, 600}, 0},
		{"a fraction first", []float64{30.25, 30, 45}, 9},
		{"a fraction in between", []float64{30, 0.5, 30}, 6},
		{"fractions that add up to whole", []float64{0.25, 0.75, 30}, 6},
		{"one second", []float64{1}, 0},
		{"two days less a fraction", []float64{2*86400 - 1.5, 1.5}, 6},
	}
	s := newStore(t)
	ctx := context.Background()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			student := fmt.Sprintf("st%d", i)
			ref := "ref:" + student
			floats0 := commandCalls(t, s.Client(), "hincrbyfloat")
			for k, d := range c.durs {
				apply(t, s, Op{Event: &stream.Click{Header: stream.NewHeader(student, t0.Add(time.Duration(k)*time.Second)), Course: "law", Kind: "study", DurationS: d},
					Topic: stream.TopicClicks, Offset: int64(k + 1)})
			}
			// Whole seconds on a whole total take HINCRBY: the script ran
			// no more HINCRBYFLOATs than the fractions need.
			if n := commandCalls(t, s.Client(), "hincrbyfloat") - floats0; n > c.floats {
				t.Errorf("the script ran %d HINCRBYFLOATs, want at most %d", n, c.floats)
			}
			for _, d := range c.durs {
				if err := s.Client().HIncrByFloat(ctx, ref, "x", d).Err(); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := s.Client().HGet(ctx, ref, "x").Result()
			got, _ := s.Client().HGetAll(ctx, StudentTag(student)+":study").Result()
			weeks, _ := s.Client().HGetAll(ctx, WeeksKey(student)).Result()
			if len(got) != 2 || len(weeks) != 1 {
				t.Fatalf("study hash %v, weeks hash %v, want the period and term totals, then the week's", got, weeks)
			}
			maps.Copy(got, weeks)
			for field, v := range got {
				if v != want {
					t.Errorf("%s = %q, want %q", field, v, want)
				}
			}
		})
	}
}

// commandCalls is how many times Redis ran a command (INFO commandstats),
// from scripts too.
func commandCalls(t *testing.T, rdb redis.UniversalClient, cmd string) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(rest[:strings.IndexByte(rest+",", ',')], 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		return n
	}
	return 0
}
