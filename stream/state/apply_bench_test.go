package state

import (
	"context"
	"strconv"
	"testing"

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

// BenchmarkApplyScores applies batches of 500 score events of distinct
// students (a live class: every student one score a second) to a real
// redis-server, at steady state: the rolling windows are full, so every
// score slides them. It reports the Redis CPU per event beside the
// wall time, since Redis's single thread is what bounds the processor.
func BenchmarkApplyScores(b *testing.B) {
	const students, batch = 1000, 500
	r := testenv.StartRedis(b)
	rdb := r.Client(b)
	s, err := New(rdb, Config{})
	if err != nil {
		b.Fatal(err)
	}
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
	// Every student has a roster profile and a camera consent on record,
	// as in a school: a score's checks read real hashes, not absent keys.
	pipe := rdb.Pipeline()
	for st := range students {
		id := "bench-" + strconv.Itoa(st)
		pipe.HSet(ctx, ProfileKey(id), "class", "c-"+strconv.Itoa(st/40), "minor", "0", "under_14", "0", "wants_degree", "1")
		pipe.HSet(ctx, ConsentKey(id), stream.ScopeCamera, "1|1767225600|2026-1|", stream.ScopeEmotion, "1|1767225600|2026-1|")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	// Five minutes and ten seconds of class first, so the five-minute windows are full.
	for range 310 * students / batch {
		if _, err := s.Apply(ctx, fixedCal{}, ops()); err != nil {
			b.Fatal(err)
		}
	}
	cpu0 := redisCPU(b, rdb)
	b.ResetTimer()
	events := 0
	for events < b.N {
		res, err := s.Apply(ctx, fixedCal{}, ops())
		if err != nil {
			b.Fatal(err)
		}
		if res[0].Status != Applied {
			b.Fatalf("status %v", res[0].Status)
		}
		events += batch
	}
	b.StopTimer()
	b.ReportMetric((redisCPU(b, rdb)-cpu0)*1e6/float64(events), "redis-µs/event")
}
