package state

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

// studentState is every key of a student's state, as Redis holds it.
func studentState(t *testing.T, s *Store, student string) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, k := range StudentKeys(student) {
		switch typ := s.Client().Type(ctx, k).Val(); typ {
		case "hash":
			out[k] = s.Client().HGetAll(ctx, k).Val()
		case "string":
			out[k] = s.Client().Get(ctx, k).Val()
		case "none":
		default:
			t.Fatalf("%s is a %s", k, typ)
		}
	}
	return out
}

// mixedBatches are batches of scores and study clicks of a few students,
// each student in every batch, so that a batch written while the one
// before is outstanding always meets its students there.
func mixedBatches(students []string, batches, perStudent int) [][]Op {
	var out [][]Op
	off := map[string]int64{}
	for b := 0; b < batches; b++ {
		var ops []Op
		for _, st := range students {
			for i := 0; i < perStudent; i++ {
				sec := b*perStudent + i
				ops = append(ops, Op{Event: score(st, sec, float64(sec%10)/10, 1), Topic: stream.TopicScores, Partition: 2, Offset: off["s"+st]})
				off["s"+st]++
				if sec%3 == 0 {
					c := &stream.Click{Header: stream.NewHeader(st, t0.Add(time.Duration(sec)*time.Second)), Course: "calculus", Kind: stream.KindStudy, DurationS: float64(10 + sec)}
					ops = append(ops, Op{Event: c, Topic: stream.TopicClicks, Partition: 1, Offset: off["c"+st]})
					off["c"+st]++
				}
			}
		}
		out = append(out, ops)
	}
	return out
}

func TestBatchesWrittenBeforeTheRepliesOfTheOnesBeforeApplyLikeOneAtATime(t *testing.T) {
	ctx := context.Background()
	students := []string{"st1", "st2", "st3"}
	batches := mixedBatches(students, 12, 4)

	serial := newStore(t)
	var want [][]Result
	for _, ops := range batches {
		want = append(want, apply(t, serial, ops...))
	}

	ahead := newStore(t)
	var preps []*Prepared
	written := 0
	for _, ops := range batches {
		p := prepare(t, ahead, ops...)
		ahead.Write(ctx, p, 0)
		if p.fl != nil {
			written++
		}
		preps = append(preps, p)
	}
	if written != len(batches) {
		t.Fatalf("%d of %d batches written ahead", written, len(batches))
	}
	for b, p := range preps {
		got, err := ahead.Await(ctx, p)
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		for i := range got {
			if got[i].Status != want[b][i].Status || !reflect.DeepEqual(got[i].Live, want[b][i].Live) || !reflect.DeepEqual(got[i].Academic, want[b][i].Academic) {
				t.Fatalf("batch %d op %d: %+v, applied one batch at a time %+v", b, i, got[i], want[b][i])
			}
		}
	}
	for _, st := range students {
		if got, want := studentState(t, ahead, st), studentState(t, serial, st); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: state %v\napplied one batch at a time: %v", st, got, want)
		}
	}
	if n := ahead.StaleCopies(); n != 0 {
		t.Errorf("%d scores refused as stale; batches on one lane should apply in order", n)
	}
}

func TestABatchWrittenAfterOneThatFailsDoesNotOvertakeIt(t *testing.T) {
	ctx := context.Background()
	click := func(off int64, dur float64) Op {
		c := &stream.Click{Header: stream.NewHeader("st1", t0), Course: "calculus", Kind: stream.KindStudy, DurationS: dur}
		return Op{Event: c, Topic: stream.TopicClicks, Partition: 1, Offset: off}
	}
	cases := []struct {
		name                 string
		first, second, third []Op
	}{
		{"clicks", []Op{click(10, 100)}, []Op{click(12, 20)}, []Op{click(14, 3)}},
		{"scores", scoreOps("st1", 10, 12), scoreOps("st1", 12, 14), scoreOps("st1", 14, 16)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			apply(t, s, append(scoreOps("st1", 0, 2), click(1, 1))...) // loads the script, makes the copies
			first := prepare(t, s, c.first...)
			// The first batch finds no script (a failover to a node
			// without it, say); the second is written after Redis
			// refused the first, and finds it again.
			if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			s.Write(ctx, first, 0)
			if first.fl == nil {
				t.Fatal("first batch not written ahead")
			}
			if vals, err := first.fl.wait(ctx); err != nil || firstReplyError(vals) == nil {
				t.Fatalf("first batch: %v, %v; want NOSCRIPT replies", vals, err)
			}
			if err := s.script.Load(ctx, s.Client()).Err(); err != nil {
				t.Fatal(err)
			}
			second := prepare(t, s, c.second...)
			s.Write(ctx, second, 0)
			var reply redisError
			if _, err := s.Await(ctx, first); !errors.As(err, &reply) || !isNoScript(reply) {
				t.Fatalf("first batch: %v, want NOSCRIPT", err)
			}
			// The processor applies a failed batch again, afresh, before
			// it reads the replies of the next.
			wantAll(t, apply(t, s, c.first...), Applied, 10)
			// The next batch, prepared and written once the first is
			// applied again, while the second is still outstanding.
			third := prepare(t, s, c.third...)
			s.Write(ctx, third, 0)
			for i, p := range []*Prepared{second, third} {
				res, err := s.Await(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				wantAll(t, res, Applied, 12+2*i)
			}
			if c.name == "clicks" && s.GapRefusals() == 0 {
				t.Error("no click counted as refused after an earlier one not applied")
			}
			want := newStore(t)
			apply(t, want, append(scoreOps("st1", 0, 2), click(1, 1))...)
			apply(t, want, c.first...)
			apply(t, want, c.second...)
			apply(t, want, c.third...)
			if got, want := studentState(t, s, "st1"), studentState(t, want, "st1"); !reflect.DeepEqual(got, want) {
				t.Errorf("state %v\nwant %v", got, want)
			}
		})
	}
}

func TestWriteWithoutAnOrderedConnectionSendsOnAwait(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	// A ring (like a cluster client) routes by key: no one connection
	// keeps an order, so the store has no lanes over it.
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"only": r.Addr}})
	t.Cleanup(func() { ring.Close() })
	cases := []struct {
		name string
		rdb  redis.UniversalClient
		lane int
	}{
		{"a ring client", ring, 0},
		{"a lane that does not exist", r.Client(t), -1},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.rdb, Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			st := fmt.Sprintf("st%d", i)
			apply(t, s, scoreOps(st, 0, 1)...)
			p := prepare(t, s, scoreOps(st, 1, 3)...)
			s.Write(ctx, p, c.lane)
			if p.fl != nil {
				t.Fatal("written on an ordered connection")
			}
			res, err := s.Await(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			wantAll(t, res, Applied, 1)
			if _, err := s.Await(ctx, p); err == nil {
				t.Fatal("a batch awaited twice did not fail")
			}
		})
	}
}

// killOrdered kills the store's ordered connections in Redis, as a
// failover or a network cut would, and returns how many it killed.
func killOrdered(t *testing.T, s *Store) int {
	t.Helper()
	ctx := context.Background()
	list, err := s.Client().ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+orderedConnName+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := s.Client().Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	return n
}

// Batches written ahead, on two lanes, up to three outstanding, while the
// ordered connections are killed at different points: each batch whose
// replies fail is applied again, afresh, as the processor does, and the
// state ends exactly as applying every batch once, in order, leaves it.
func TestWrittenBatchesEndInTheSameStateWhereverTheirConnectionsBreak(t *testing.T) {
	ctx := context.Background()
	students := []string{"st1", "st2", "st3", "st4"}
	batches := mixedBatches(students, 16, 3)
	serial := newStore(t)
	for _, ops := range batches {
		apply(t, serial, ops...)
	}
	cases := []struct {
		name   string
		killAt map[int]bool // after writing these batches
	}{
		{"once, early", map[int]bool{2: true}},
		{"once, late", map[int]bool{12: true}},
		{"twice in a row", map[int]bool{5: true, 6: true}},
		{"every fourth batch", map[int]bool{3: true, 7: true, 11: true, 15: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			type written struct {
				ops   []Op
				preps [2]*Prepared
			}
			var outstanding []written
			failed, killed := 0, 0
			await := func() {
				w := outstanding[0]
				outstanding = outstanding[1:]
				for lane, p := range w.preps {
					res, err := s.Await(ctx, p)
					if err != nil {
						failed++
						res = apply(t, s, p.ops...)
					}
					for i, r := range res {
						if r.Status != Applied && r.Status != Duplicate {
							t.Fatalf("lane %d op %d: %v", lane, i, r.Status)
						}
					}
				}
			}
			for b, ops := range batches {
				// Two lanes, students split between them as the
				// processor splits a batch.
				var split [2][]Op
				for _, op := range ops {
					lane := 0
					if st := op.Event.EventHeader().Student; st == "st2" || st == "st4" {
						lane = 1
					}
					split[lane] = append(split[lane], op)
				}
				w := written{ops: ops}
				for lane := range split {
					w.preps[lane] = prepare(t, s, split[lane]...)
					s.Write(ctx, w.preps[lane], lane)
				}
				outstanding = append(outstanding, w)
				if c.killAt[b] {
					killed += killOrdered(t, s)
				}
				if len(outstanding) == 3 {
					await()
				}
			}
			for len(outstanding) > 0 {
				await()
			}
			if killed == 0 || failed == 0 {
				t.Fatalf("%d connections killed, %d batches failed: the test broke nothing", killed, failed)
			}
			for _, st := range students {
				if got, want := studentState(t, s, st), studentState(t, serial, st); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: state %v\napplied one batch at a time: %v", st, got, want)
				}
			}
		})
	}
}

// TestGroupedScriptCallsApplyLikeOneCallPerEvent: Write sends up to
// Config.Group events in one call of the apply script (apply.lua's group).
// Batches of every kind of event, written ahead of one another, must give
// the results and the state that one call per event, one batch at a time,
// gives: scores, study clicks, grades, a revocation that erases and a
// grant after it, and a batch delivered twice.
func TestGroupedScriptCallsApplyLikeOneCallPerEvent(t *testing.T) {
	ctx := context.Background()
	students := []string{"st1", "st2", "st3", "st4", "st5"}
	batches := mixedBatches(students, 6, 3)
	consent := func(st string, sec int, granted bool, off int64) Op {
		c := &stream.Consent{Header: stream.NewHeader(st, t0.Add(time.Duration(sec)*time.Second)), Scope: stream.ScopeCamera, Granted: granted, PolicyVersion: "2026-1"}
		return Op{Event: c, Topic: stream.TopicConsent, Partition: 0, Offset: off}
	}
	grade := func(st string, off int64, score float64) Op {
		g := &stream.Grade{Header: stream.NewHeader(st, t0), Course: "calculus", Term: "2026-autumn", Score: score, Passed: score >= 50}
		return Op{Event: g, Topic: stream.TopicGrades, Partition: 0, Offset: off}
	}
	// st2 revokes camera consent in batch 2 (its scores are erased, then
	// refused); st4 gets grades. (No grant follows the revocation: a
	// score refused as stale is sent again once the batches written after
	// it are applied, so it would meet a later grant that one call per
	// event, one batch at a time, has not applied yet. Events of two
	// topics have no order between them, in Kafka or here.)
	batches[2] = append(batches[2], consent("st2", 6, false, 0), grade("st4", 0, 41))
	batches[4] = append(batches[4], grade("st4", 1, 77))
	// Batches 3 and 4 come again after batch 5, as after a rebalance: a
	// second run of writes, once the first is answered. (Written in the
	// same run, a redelivered score could overtake the first delivery's
	// stale retry, which is sent only when the first is answered, and
	// refuse it first: the same state, but the retry would then read
	// duplicate where one batch at a time reads refused.)
	runs := [][][]Op{batches, {batches[3], batches[4]}}

	serial := newStore(t)
	var want [][]Result
	for _, run := range runs {
		for _, ops := range run {
			want = append(want, apply(t, serial, ops...))
		}
	}
	for _, group := range []int{1, 2, 5, 16, 1024} {
		t.Run(fmt.Sprintf("%d events a call", group), func(t *testing.T) {
			s, err := New(testenv.StartRedis(t).Client(t), Config{Group: group})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			b := 0
			for r, run := range runs {
				var preps []*Prepared
				for _, ops := range run {
					p := prepare(t, s, ops...)
					s.Write(ctx, p, 0)
					if p.fl == nil {
						t.Fatal("batch not written ahead")
					}
					// (A redelivered batch is mostly reads of the open
					// warnings, each a command of its own.)
					if calls := len(p.calls); r == 0 && group > 1 && calls > 1 && len(p.groups) >= calls {
						t.Fatalf("%d calls sent as %d commands, want groups of up to %d", calls, len(p.groups), group)
					}
					preps = append(preps, p)
				}
				for _, p := range preps {
					got, err := s.Await(ctx, p)
					if err != nil {
						t.Fatalf("batch %d: %v", b, err)
					}
					for i := range got {
						g, w := got[i], want[b][i]
						if g.Status != w.Status || !reflect.DeepEqual(g.Live, w.Live) || !reflect.DeepEqual(g.Academic, w.Academic) ||
							string(g.Open) != string(w.Open) || g.ErasedSession != w.ErasedSession || g.ErasedKeys != w.ErasedKeys {
							t.Fatalf("batch %d op %d: %+v, one call per event %+v", b, i, g, w)
						}
					}
					b++
				}
			}
			for _, st := range students {
				if got, want := studentState(t, s, st), studentState(t, serial, st); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: state %v\none call per event: %v", st, got, want)
				}
			}
		})
	}
}

// TestAnErrorInsideAGroupFailsTheBatchAndLosesNothing: a Redis error in
// one event of a group (here its offsets key of the wrong type, which the
// script reads before it writes anything) ends the group where it
// happened and fails the batch. Applying the batch again, once the
// cause is gone, applies exactly what had not been: the state equals that
// of a clean run.
func TestAnErrorInsideAGroupFailsTheBatchAndLosesNothing(t *testing.T) {
	ctx := context.Background()
	click := func(st string, off int64) Op {
		c := &stream.Click{Header: stream.NewHeader(st, t0.Add(5*time.Second)), Course: "calculus", Kind: stream.KindStudy, DurationS: 60}
		return Op{Event: c, Topic: stream.TopicClicks, Partition: 1, Offset: off}
	}
	warmup := append(scoreOps("st1", 0, 3), scoreOps("st2", 0, 3)...)
	batch := append(append(scoreOps("st1", 3, 5), click("bad", 0)), scoreOps("st2", 3, 5)...)

	s := newStore(t)
	apply(t, s, warmup...)
	if err := s.Client().Set(ctx, StudentTag("bad")+":off", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p := prepare(t, s, batch...)
	s.Write(ctx, p, 0)
	if len(p.groups) != 1 {
		t.Fatalf("batch sent as %d commands, want one group", len(p.groups))
	}
	if _, err := s.Await(ctx, p); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("batch with a wrong-type key: %v, want its WRONGTYPE error", err)
	}
	if err := s.Client().Del(ctx, StudentTag("bad")+":off").Err(); err != nil {
		t.Fatal(err)
	}
	res := apply(t, s, batch...)
	// st1's scores ran before the error: now duplicates. The rest apply.
	wantAll(t, res[:2], Duplicate, 0)
	wantAll(t, res[2:], Applied, 2)

	clean := newStore(t)
	apply(t, clean, warmup...)
	apply(t, clean, batch...)
	for _, st := range []string{"st1", "st2", "bad"} {
		if got, want := studentState(t, s, st), studentState(t, clean, st); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: state %v\nclean run: %v", st, got, want)
		}
	}
}

// TestUngroupSpreadsAGroupsReplyOrRefusesIt: the reply of a group must be
// an array of exactly its events' replies; anything else (a reply
// mangled on the way, a script of another release answering one reply)
// fails the batch instead of handing an event another's reply.
func TestUngroupSpreadsAGroupsReplyOrRefusesIt(t *testing.T) {
	one := []any{int64(1), ""}
	cases := []struct {
		name   string
		vals   []any
		groups []int
		calls  int
		want   []any // nil: an error
	}{
		{"single calls pass as they are", []any{one, "doc"}, []int{1, 1}, 2, []any{one, "doc"}},
		{"a group and a single call", []any{[]any{one, []any{int64(4)}}, "doc"}, []int{2, 1}, 3, []any{one, []any{int64(4)}, "doc"}},
		{"a group answering fewer replies", []any{[]any{one}, "doc"}, []int{2, 1}, 3, nil},
		{"a group answering more replies", []any{[]any{one, one, one}}, []int{2}, 2, nil},
		{"a group answering one event's reply", []any{[]any{int64(1), ""}}, []int{3}, 3, nil},
		{"a group answering a string", []any{"OK"}, []int{2}, 2, nil},
		{"a group answering nil", []any{nil}, []int{2}, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ungroup(c.vals, c.groups, c.calls)
			switch {
			case c.want == nil && err == nil:
				t.Fatalf("ungroup gave %v, want an error", got)
			case c.want != nil && err != nil:
				t.Fatalf("ungroup: %v", err)
			case c.want != nil && !reflect.DeepEqual(got, c.want):
				t.Fatalf("ungroup gave %v, want %v", got, c.want)
			}
		})
	}
}
