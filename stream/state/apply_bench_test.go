package state

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

// redisCPU returns the seconds of CPU the Redis server has used.
func redisCPU(tb testing.TB, rdb *redis.Client) float64 {
	tb.Helper()
	cpu, err := ServerCPU(context.Background(), rdb)
	if err != nil {
		tb.Fatal(err)
	}
	return cpu
}

// benchStore is a store with the default configuration on a redis-server
// of its own.
func benchStore(b *testing.B) (*Store, *redis.Client) {
	rdb := testenv.StartRedis(b).Client(b)
	s, err := New(rdb, Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s, rdb
}

// scoreBench is a store on a real redis-server and a source of batches of
// score events of distinct students (a live class: every student one
// score a second), applied for five minutes and ten seconds of class
// first, so that the five-minute windows are full and every score slides
// them. Every student has a roster profile and a camera consent on record,
// as in a school: a score's checks read real hashes, not absent keys.
func scoreBench(b *testing.B, students, batch int) (*Store, *redis.Client, func() []Op) {
	s, rdb := benchStore(b)
	ctx := context.Background()
	sec := make([]int, students)
	next, offset := 0, int64(0)
	ops := func() []Op {
		out := make([]Op, batch)
		for i := range out {
			st := next % students
			next++
			offset++
			sec[st]++
			e := score("bench-"+strconv.Itoa(st), sec[st], float64(sec[st]%10)/10, 1)
			e.Emotions = &stream.Emotions{Neutral: 0.6, Happy: 0.2, Sad: 0.05, Angry: 0.05, Fearful: 0.03, Disgusted: 0.02, Surprised: 0.05}
			out[i] = Op{Event: e, Topic: stream.TopicScores, Partition: 1, Offset: offset}
		}
		return out
	}
	pipe := rdb.Pipeline()
	for st := range students {
		id := "bench-" + strconv.Itoa(st)
		pipe.HSet(ctx, ProfileKey(id), "class", "c-"+strconv.Itoa(st/40), "minor", "0", "under_14", "0", "wants_degree", "1")
		pipe.HSet(ctx, ConsentKey(id), stream.ScopeCamera, "1|1767225600|2026-1|", stream.ScopeEmotion, "1|1767225600|2026-1|")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	for range 310 * students / batch {
		if _, err := s.Apply(ctx, fixedCal{}, ops()); err != nil {
			b.Fatal(err)
		}
	}
	return s, rdb, ops
}

// BenchmarkApplyScores applies batches of 500 score events to a real
// redis-server at steady state (scoreBench). It reports the Redis CPU per
// event beside the wall time, since Redis's single thread is what bounds
// the processor.
func BenchmarkApplyScores(b *testing.B) {
	const batch = 500
	s, rdb, ops := scoreBench(b, 1000, batch)
	applyTimed(b, s, rdb, ops, func(r Result) bool { return r.Status == Applied })
}

// applyTimed applies batches of ops until b.N events, checking each
// batch's first result with ok, and reports Redis's CPU per event.
func applyTimed(b *testing.B, s *Store, rdb *redis.Client, ops func() []Op, ok func(Result) bool) {
	ctx := context.Background()
	cpu0 := redisCPU(b, rdb)
	b.ResetTimer()
	events := 0
	for events < b.N {
		batch := ops()
		res, err := s.Apply(ctx, fixedCal{}, batch)
		if err != nil {
			b.Fatal(err)
		}
		if !ok(res[0]) {
			b.Fatalf("a batch's first result: %+v", res[0])
		}
		events += len(batch)
	}
	b.StopTimer()
	b.ReportMetric((redisCPU(b, rdb)-cpu0)*1e6/float64(events), "redis-µs/event")
}

// BenchmarkEvalshaCost measures what an EVALSHA costs Redis before the
// apply script does anything, and what a command inside it adds: scripts
// that return at once, called with the argument shapes of a score (five
// keys, seventeen arguments, the bucket and summary values' sizes) and of
// redis-benchmark's reference (one key, one argument), then with one
// command each. It reports the Redis CPU per call.
func BenchmarkEvalshaCost(b *testing.B) {
	const students, batch = 10_000, 500
	r := testenv.StartRedis(b)
	rdb := r.Client(b)
	ctx := context.Background()
	small := make([]any, 17)
	for i := range small {
		small[i] = "x" + strconv.Itoa(i)
	}
	score := append([]any(nil), small...)
	score[14] = string(make([]byte, bucketLen))
	score[16] = string(make([]byte, summaryLen))
	cases := []struct {
		name   string
		script string
		keys   int
		args   []any
	}{
		{"return/1key-1arg", "return {1, ''}", 1, []any{"x"}},
		{"return/5keys-17small", "return {1, ''}", 5, small},
		{"return/5keys-17score", "return {1, ''}", 5, score},
		{"reference-HINCRBY-HSET/1key-1arg", "redis.call('HINCRBY', KEYS[1], 'n', 1) redis.call('HSET', KEYS[1], 'last', ARGV[1]) return 1", 1, []any{"x"}},
		{"HGET/5keys-17score", "redis.call('HGET', KEYS[1], 'v') return {1, ''}", 5, score},
		{"HSET-summary/5keys-17score", "redis.call('HSET', KEYS[2], 's', ARGV[17]) return {1, ''}", 5, score},
		{"HSET-3pairs/5keys-17score", "redis.call('HSET', KEYS[2], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[17]) return {1, ''}", 5, score},
		{"HSET-off/5keys-17score", "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) return {1, ''}", 5, score},
		{"GET/5keys-17score", "return {1, redis.call('GET', KEYS[4]) or ''}", 5, score},
		// Eight scores' keys and arguments in one call, as a group of
		// apply.lua carries them: its Redis µs per call over eight is a
		// score's share.
		{"return-8/40keys-136score", "local r = {} for i = 1, 8 do r[i] = {1, ''} end return r", 40, slices.Repeat(score, 8)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			sha, err := rdb.ScriptLoad(ctx, c.script).Result()
			if err != nil {
				b.Fatal(err)
			}
			keys := make([][]string, students)
			for st := range keys {
				for k := range c.keys {
					keys[st] = append(keys[st], StudentTag("bench-"+strconv.Itoa(st))+":k"+strconv.Itoa(k))
				}
			}
			cpu0 := redisCPU(b, rdb)
			b.ResetTimer()
			calls := 0
			for calls < b.N {
				pipe := rdb.Pipeline()
				for i := range batch {
					pipe.EvalSha(ctx, sha, keys[(calls+i)%students], c.args...)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
				calls += batch
			}
			b.StopTimer()
			b.ReportMetric((redisCPU(b, rdb)-cpu0)*1e6/float64(calls), "redis-µs/call")
		})
	}
}

// BenchmarkPrepareScores measures the Go side of a score (Store.Prepare:
// the rolling step on the kept copy, the version, the script arguments)
// at steady state (scoreBench), every copy kept, so that no Redis round
// trip is inside the loop. Allocations per event are reported beside the
// time.
func BenchmarkPrepareScores(b *testing.B) {
	const batch = 500
	s, _, ops := scoreBench(b, 1000, batch)
	ctx := context.Background()
	batches := make([][]Op, 64)
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for events < b.N {
		// Up to 64 batches made with the timer stopped, no more than b.N
		// needs (to a batch), so that ns/op is per event.
		n := min(len(batches), (b.N-events+batch-1)/batch)
		b.StopTimer()
		for k := range n {
			batches[k] = ops()
		}
		b.StartTimer()
		for _, bt := range batches[:n] {
			p, err := s.Prepare(ctx, fixedCal{}, bt)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.calls) != batch {
				b.Fatalf("%d calls for %d scores", len(p.calls), batch)
			}
		}
		events += batch * n
	}
}

// BenchmarkApplyClicks applies batches of 500 clicks of distinct students
// to a real redis-server, each student's last click of the batch asking
// for the academic state (as the processor asks), and reports the Redis
// CPU per click. Every student has a roster profile, consents, grades of
// two terms and four courses with clicks of every kind; "whole" study
// durations take HINCRBY, "fraction" ones HINCRBYFLOAT. "term" gives every
// student fifteen earlier weekly DTTW windows of counts (a term's
// history: 15 × 4 courses × 14 kinds fields of the clicks hash) before the
// benchmark, as a school's students have by the end of a term. "whole/
// two-years" gives every student two years of weekly study totals
// ("w|course|week" of the study hash, 104 weeks × 4 courses): the rules
// read two weeks of them, but a click returns them all, so this case
// measures a cost that still grows with a student's history.
func BenchmarkApplyClicks(b *testing.B) {
	const students, batch, courses = 1000, 500, 4
	cases := []struct {
		name     string
		duration float64
		history  int // earlier DTTW windows seeded
		weeks    int // earlier weeks of study totals seeded
	}{
		{"whole", 30, 0, 0},
		{"fraction", 30.5, 0, 0},
		{"whole/term", 30, 15, 0},
		{"whole/two-years", 30, 0, 104},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s, rdb := benchStore(b)
			ctx := context.Background()
			window := t0.Unix() / int64(s.cfg.Window/time.Second)
			pipe := rdb.Pipeline()
			for st := range students {
				id := "bench-" + strconv.Itoa(st)
				pipe.HSet(ctx, ProfileKey(id), "class", "c-"+strconv.Itoa(st/40), "minor", "0", "under_14", "0", "wants_degree", "1")
				pipe.HSet(ctx, ConsentKey(id), stream.ScopeCamera, "1|1767225600|2026-1|", stream.ScopeClickstream, "1|1767225600|2026-1|")
				for ci := range courses {
					course := "course-" + strconv.Itoa(ci)
					pipe.HSet(ctx, StudentTag(id)+":grades", "2025-autumn|"+course, "71|1|0|1", "2026-spring|"+course, "58|0|0|1")
					for w := range c.weeks {
						y, wk := t0.AddDate(0, 0, -7*(w+1)).ISOWeek()
						pipe.HSet(ctx, StudentTag(id)+":study", fmt.Sprintf("w|%s|%04d-W%02d", course, y, wk), 3600)
					}
					for w := window - int64(c.history); w < window; w++ {
						for _, kind := range stream.ClickKinds {
							pipe.HSet(ctx, StudentTag(id)+":clicks", "d|"+course+"|"+strconv.FormatInt(w, 10)+"|"+kind, 3)
						}
					}
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			next, offset := 0, int64(0)
			ops := func() []Op {
				out := make([]Op, batch)
				for i := range out {
					st := next % students
					kind := stream.ClickKinds[(next/students)%len(stream.ClickKinds)]
					course := "course-" + strconv.Itoa((next/students/len(stream.ClickKinds))%courses)
					next++
					offset++
					e := &stream.Click{Header: stream.NewHeader("bench-"+strconv.Itoa(st), t0.Add(time.Duration(next/students)*time.Second)), Course: course, Kind: kind}
					if kind == stream.KindStudy {
						e.DurationS = c.duration
					}
					out[i] = Op{Event: e, Topic: stream.TopicClicks, Partition: 1, Offset: offset}
				}
				return out
			}
			// Every student gets every kind of every course first: the
			// hashes are as full as they stay.
			for range students * len(stream.ClickKinds) * courses / batch {
				if _, err := s.Apply(ctx, fixedCal{}, ops()); err != nil {
					b.Fatal(err)
				}
			}
			applyTimed(b, s, rdb, ops, func(r Result) bool { return r.Status == Applied && r.Academic != nil })
		})
	}
}

// BenchmarkWriteScores applies batches of 500 score events as the
// processor does (Prepare, Write on an ordered connection, Await) with
// Config.Group events per script call, and reports Redis's CPU per event:
// what grouping the calls saves Redis.
func BenchmarkWriteScores(b *testing.B) {
	for _, group := range []int{1, 16} {
		b.Run(fmt.Sprintf("group-%d", group), func(b *testing.B) {
			const batch = 500
			s, rdb, ops := scoreBench(b, 1000, batch)
			s.cfg.Group = group
			ctx := context.Background()
			cpu0 := redisCPU(b, rdb)
			b.ResetTimer()
			events := 0
			for events < b.N {
				p, err := s.Prepare(ctx, fixedCal{}, ops())
				if err != nil {
					b.Fatal(err)
				}
				s.Write(ctx, p, 0)
				res, err := s.Await(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				if res[0].Status != Applied {
					b.Fatalf("a batch's first result: %+v", res[0])
				}
				events += batch
			}
			b.StopTimer()
			b.ReportMetric((redisCPU(b, rdb)-cpu0)*1e6/float64(events), "redis-µs/event")
		})
	}
}
