package state

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// click is a click of student at t0 plus at, on calculus.
func click(student string, at time.Duration, kind string) *stream.Click {
	return &stream.Click{Header: stream.NewHeader(student, t0.Add(at)), Course: "calculus", Kind: kind}
}

// TestClickCountsKeepTermsInTheClicksHashAndWindowsInTheDTTWHash: clicks
// over three DTTW windows count per term in the clicks hash, which a click
// returns to the rules, and per window in the dttw hash, so that what a
// click returns does not grow with the weeks of a term.
func TestClickCountsKeepTermsInTheClicksHashAndWindowsInTheDTTWHash(t *testing.T) {
	s := newStore(t)
	week := 7 * 24 * time.Hour
	var ops []Op
	for w := range 3 {
		for i := range w + 1 {
			ops = append(ops, Op{Event: click("d1", time.Duration(w)*week+time.Duration(i)*time.Minute, stream.KindQuiz), Topic: stream.TopicClicks, Partition: 0, Offset: int64(len(ops))})
		}
	}
	ops = append(ops, Op{Event: click("d1", 2*week+time.Hour, stream.KindHomework), Topic: stream.TopicClicks, Partition: 0, Offset: int64(len(ops))})
	res := apply(t, s, ops...)
	last := res[len(res)-1]
	if last.Status != Applied || last.Academic == nil {
		t.Fatalf("last click: status %v, academic %v", last.Status, last.Academic)
	}
	if got := last.Academic.Clicks["calculus"]["2026-autumn"]; got[stream.KindQuiz] != 6 || got[stream.KindHomework] != 1 {
		t.Fatalf("term counts in the reply %v, want quiz 6, homework 1", got)
	}
	ctx := context.Background()
	clicks, err := s.rdb.HGetAll(ctx, StudentTag("d1")+":clicks").Result()
	if err != nil {
		t.Fatal(err)
	}
	wantClicks := map[string]string{"k|calculus|2026-autumn|quiz": "6", "k|calculus|2026-autumn|homework": "1"}
	if !maps.Equal(clicks, wantClicks) {
		t.Fatalf("clicks hash %v, want %v", clicks, wantClicks)
	}
	dttw, err := s.rdb.HGetAll(ctx, DTTWKey("d1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	first := t0.Unix() / int64(week/time.Second)
	win := func(w int64) string { return strconv.FormatInt(first+w, 10) }
	wantDTTW := map[string]string{
		"d|calculus|" + win(0) + "|quiz": "1", "d|calculus|" + win(1) + "|quiz": "2",
		"d|calculus|" + win(2) + "|quiz": "3", "d|calculus|" + win(2) + "|homework": "1",
	}
	if !maps.Equal(dttw, wantDTTW) {
		t.Fatalf("dttw hash %v, want %v", dttw, wantDTTW)
	}
}

// TestDTTWCountsAnEarlierReleaseKeptInTheClicksHashMoveOnTheNextClick: a
// release before the dttw hash counted windows in the clicks hash. A
// student's next click moves them, adding its own count to its window's,
// and leaves the term counts where they were; a redelivered click moves
// nothing twice.
func TestDTTWCountsAnEarlierReleaseKeptInTheClicksHashMoveOnTheNextClick(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	win := strconv.FormatInt(t0.Unix()/int64(7*24*3600), 10)
	before := strconv.FormatInt(t0.Unix()/int64(7*24*3600)-1, 10)
	if err := s.rdb.HSet(ctx, StudentTag("m1")+":clicks",
		"k|calculus|2026-autumn|quiz", 9, "d|calculus|"+before+"|quiz", 5, "d|calculus|"+win+"|quiz", 4).Err(); err != nil {
		t.Fatal(err)
	}
	op := Op{Event: click("m1", time.Minute, stream.KindQuiz), Topic: stream.TopicClicks, Partition: 0, Offset: 7}
	for round, want := range []Status{Applied, Duplicate} {
		if res := apply(t, s, op); res[0].Status != want {
			t.Fatalf("round %d: status %v, want %v", round, res[0].Status, want)
		}
		clicks, err := s.rdb.HGetAll(ctx, StudentTag("m1")+":clicks").Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"k|calculus|2026-autumn|quiz": "10"}; !maps.Equal(clicks, want) {
			t.Fatalf("round %d: clicks hash %v, want %v", round, clicks, want)
		}
		dttw, err := s.rdb.HGetAll(ctx, DTTWKey("m1")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"d|calculus|" + before + "|quiz": "5", "d|calculus|" + win + "|quiz": "5"}; !maps.Equal(dttw, want) {
			t.Fatalf("round %d: dttw hash %v, want %v", round, dttw, want)
		}
	}
}

// TestWeeklyTotalsAnEarlierReleaseKeptInTheStudyHashMoveOnTheNextStudyClick:
// a release before the weeks hash kept weekly study totals in the study
// hash. Until the student's next study click moves them, a click returns
// them all; after it, only the weeks the rules read, of every course.
func TestWeeklyTotalsAnEarlierReleaseKeptInTheStudyHashMoveOnTheNextStudyClick(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	cal := fixedCal{}
	at := t0.Add(time.Minute)
	last, prev := cal.LastWeeks(at)
	old := cal.WeekKey(at.AddDate(0, 0, -70))
	now := cal.WeekKey(at)
	if err := s.rdb.HSet(ctx, StudentTag("w1")+":study",
		"t|calculus|2026-autumn", 5000, "t|law|2026-spring", 700,
		"w|calculus|"+old, 1000, "w|calculus|"+prev, 1500, "w|calculus|"+last, 2500, "w|law|"+last, 700).Err(); err != nil {
		t.Fatal(err)
	}
	quiz := Op{Event: click("w1", time.Minute, stream.KindQuiz), Topic: stream.TopicClicks, Partition: 0, Offset: 1}
	res := apply(t, s, quiz)
	if got := res[0].Academic.Study["calculus"].ByWeek; len(got) != 3 {
		t.Fatalf("before the move a click returns every week: %v", got)
	}
	study := &stream.Click{Header: stream.NewHeader("w1", t0.Add(2*time.Minute)), Course: "calculus", Kind: stream.KindStudy, DurationS: 60}
	res = apply(t, s, Op{Event: study, Topic: stream.TopicClicks, Partition: 0, Offset: 2})
	wantCalc := map[string]float64{prev: 1500, last: 2500}
	if got := res[0].Academic.Study["calculus"].ByWeek; !maps.Equal(got, wantCalc) {
		t.Fatalf("calculus weeks after the move %v, want %v", got, wantCalc)
	}
	// law's term total is of another term: custom rules read its weeks too.
	if got, want := res[0].Academic.Study["law"].ByWeek, map[string]float64{last: 700}; !maps.Equal(got, want) {
		t.Fatalf("law weeks after the move %v, want %v", got, want)
	}
	st, err := s.rdb.HGetAll(ctx, StudentTag("w1")+":study").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"t|calculus|2026-autumn": "5060", "t|law|2026-spring": "700", "p|calculus|2026-autumn|p3": "60"}; !maps.Equal(st, want) {
		t.Fatalf("study hash %v, want %v", st, want)
	}
	weeks, err := s.rdb.HGetAll(ctx, WeeksKey("w1")).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"w|calculus|" + old: "1000", "w|calculus|" + prev: "1500", "w|calculus|" + last: "2500", "w|law|" + last: "700", "w|calculus|" + now: "60"}
	if !maps.Equal(weeks, want) {
		t.Fatalf("weeks hash %v, want %v", weeks, want)
	}

	// While pods of both releases run, an older one adds to the week in
	// the study hash again: a click and the reader count both parts.
	if err := s.rdb.HIncrBy(ctx, StudentTag("w1")+":study", "w|calculus|"+last, 500).Err(); err != nil {
		t.Fatal(err)
	}
	res = apply(t, s, Op{Event: click("w1", 3*time.Minute, stream.KindQuiz), Topic: stream.TopicClicks, Partition: 0, Offset: 3})
	if got := res[0].Academic.Study["calculus"].ByWeek[last]; got != 3000 {
		t.Fatalf("last week in the reply %v s, want 2500 + 500", got)
	}
	rd, err := NewReader(s.rdb, Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := rd.Academic(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Study["calculus"].ByWeek[last]; got != 3000 {
		t.Fatalf("last week from the reader %v s, want 2500 + 500", got)
	}
}
