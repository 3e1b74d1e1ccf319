package state

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoState means Redis holds no state of the asked kind for a student:
// none was ever applied, it expired, or it was erased.
var ErrNoState = errors.New("state: no state for this student")

// LiveSecond is one second of a student's live buckets: the means of the
// score events that fell in that second (normally one).
type LiveSecond struct {
	Unix int64
	// Samples is how many score events the second holds.
	Samples int
	// Attention, Face and Masked are means over the samples, 0–1.
	Attention, Face, Masked float64
	// Learning holds engaged, confused, bored, frustrated (stream.LearningNames
	// order), means over the LearningSamples that carried them.
	Learning        [4]float64
	LearningSamples int
	// Emotions holds the seven emotions (stream.EmotionNames order), means
	// over the EmotionSamples that carried them.
	Emotions       [7]float64
	EmotionSamples int
}

// LiveHistory is what a student's live key holds: the current session's
// per-second history within the horizon, oldest first, and the rolling
// windows the rules last saw.
type LiveHistory struct {
	Session, Course string
	HeadUnix        int64
	Seconds         []LiveSecond
	W1, W2, W5      Window
	// SessionTotals aggregates every score of the session so far, from
	// its first second SessionStartUnix (0 when not known).
	SessionTotals    Window
	SessionStartUnix int64
	// FaceAbsentSeconds is how long no face has been seen, up to the head.
	FaceAbsentSeconds float64
}

// Reader reads a student's state back for people: the dashboard's
// student page. It only reads; the processor's Store writes.
type Reader struct {
	rdb     redis.UniversalClient
	horizon int64
}

// NewReader returns a reader over rdb. cfg must have the Horizon the
// processor writes with (zero: the default), since a bucket's slot is its
// second modulo the horizon.
func NewReader(rdb redis.UniversalClient, cfg Config) (*Reader, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reader{rdb: rdb, horizon: int64(cfg.Horizon / time.Second)}, nil
}

// Live returns the student's live history, or an error wrapping ErrNoState.
// Buckets outside the horizon behind the head, and buckets whose second
// does not belong to their slot (written under another horizon), are left
// out.
func (r *Reader) Live(ctx context.Context, student string) (*LiveHistory, error) {
	h, err := r.rdb.HGetAll(ctx, LiveKey(student)).Result()
	if err != nil {
		return nil, fmt.Errorf("state: read live state: %w", err)
	}
	sum, _, ok := liveSummary(h)
	if !ok {
		return nil, fmt.Errorf("live state of %s: %w", student, ErrNoState)
	}
	head := sum.head
	l := &LiveHistory{Session: h["sess"], Course: h["course"], HeadUnix: head,
		W1: windowOf(&sum.sums[0]), W2: windowOf(&sum.sums[1]), W5: windowOf(&sum.sums[2]), SessionTotals: windowOf(&sum.tot)}
	if sum.fs >= 0 {
		l.SessionStartUnix = sum.fs
	}
	// The same arithmetic as rolling.snapshot's.
	if sum.lf >= 0 {
		l.FaceAbsentSeconds = float64(head - sum.lf)
	} else if sum.fs >= 0 {
		l.FaceAbsentSeconds = float64(head - sum.fs + 1)
	}
	for field, v := range h {
		slot, ok := strings.CutPrefix(field, "b")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(slot, 10, 64)
		if err != nil {
			continue
		}
		sec, ok := parseBucket(v)
		if !ok || sec.Unix <= head-r.horizon || sec.Unix > head || mod(sec.Unix, r.horizon) != n {
			continue
		}
		l.Seconds = append(l.Seconds, sec)
	}
	sort.Slice(l.Seconds, func(i, j int) bool { return l.Seconds[i].Unix < l.Seconds[j].Unix })
	return l, nil
}

// mod is Lua's %: the result has the sign of the divisor.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// parseBucket reads a bucket value (either format, see parseBucketVec)
// as the means of its second.
func parseBucket(s string) (LiveSecond, bool) {
	sec, v, ok := parseBucketVec(s)
	if !ok {
		return LiveSecond{}, false
	}
	out := LiveSecond{Unix: sec, Samples: int(v[0] + 0.5), LearningSamples: int(v[8] + 0.5), EmotionSamples: int(v[9] + 0.5)}
	if out.Samples <= 0 {
		return LiveSecond{}, false
	}
	out.Attention, out.Face, out.Masked = mean(v[1], v[0]), mean(v[2], v[0]), mean(v[3], v[0])
	if out.LearningSamples > 0 {
		for i := range out.Learning {
			out.Learning[i] = mean(v[4+i], v[8])
		}
	}
	if out.EmotionSamples > 0 {
		for i := range out.Emotions {
			out.Emotions[i] = mean(v[10+i], v[9])
		}
	}
	return out, true
}

// Academic returns the student's academic state (study time, click counts,
// grades, profile) as the rules see it after a click or grade, but with
// every week's study time (a click's reply carries the two weeks the
// rules read), or an error wrapping ErrNoState when all of it is empty.
func (r *Reader) Academic(ctx context.Context, student string) (*Academic, error) {
	keys := StudentKeys(student)
	pipe := r.rdb.Pipeline()
	cmds := []*redis.MapStringStringCmd{
		pipe.HGetAll(ctx, keys[2]), pipe.HGetAll(ctx, keys[3]), pipe.HGetAll(ctx, keys[4]), pipe.HGetAll(ctx, keys[7]),
	}
	weeks := pipe.HGetAll(ctx, keys[9])
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("state: read academic state: %w", err)
	}
	arr := make([]any, len(cmds))
	empty := true
	for i, c := range cmds {
		arr[i] = flatten(c.Val())
		empty = empty && len(c.Val()) == 0
	}
	// The weekly totals are read as fields of the study hash, where
	// releases before the weeks hash kept them.
	arr[0] = append(arr[0].([]any), flatten(weeks.Val())...)
	empty = empty && len(weeks.Val()) == 0
	if empty {
		return nil, fmt.Errorf("academic state of %s: %w", student, ErrNoState)
	}
	a, err := parseAcademic(arr)
	if err != nil {
		return nil, fmt.Errorf("state: academic state of %s: %w", student, err)
	}
	return a, nil
}

// flatten turns a hash into the flat field, value reply the apply script
// returns, so one parser serves both.
func flatten(m map[string]string) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, 2*len(m))
	for _, k := range keys {
		out = append(out, k, m[k])
	}
	return out
}
