package state

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/stream"
)

//go:embed apply.lua
var applySource string

// Config configures a Store. The zero value works.
type Config struct {
	// Horizon is how much per-second live history is kept. Default 10m;
	// at least 5m, the longest rolling window.
	Horizon time.Duration
	// LiveTTL is how long live state outlives a student's last score event
	// before Redis expires it. Default 2h.
	LiveTTL time.Duration
	// Window is the length of a DTTW counting window (DESIGN.md §5).
	// Default 7 days.
	Window time.Duration
}

func (c *Config) applyDefaults() {
	if c.Horizon == 0 {
		c.Horizon = 10 * time.Minute
	}
	if c.LiveTTL == 0 {
		c.LiveTTL = 2 * time.Hour
	}
	if c.Window == 0 {
		c.Window = 7 * 24 * time.Hour
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	if c.Horizon < 5*time.Minute || c.Horizon > 24*time.Hour {
		return fmt.Errorf("state: horizon %v must be between 5m and 24h", c.Horizon)
	}
	if c.LiveTTL < c.Horizon {
		return fmt.Errorf("state: live TTL %v shorter than the horizon %v", c.LiveTTL, c.Horizon)
	}
	if c.Window < time.Hour {
		return fmt.Errorf("state: DTTW window %v shorter than an hour", c.Window)
	}
	return nil
}

// Store applies events to per-student state in Redis and reads it back.
// It is safe for concurrent use; one student's events must be applied in
// order by one caller, which the partitioning by student gives.
type Store struct {
	rdb    redis.UniversalClient
	cfg    Config
	script *redis.Script
}

// New returns a store over rdb (a client, a cluster client or a ring).
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{rdb: rdb, cfg: cfg, script: redis.NewScript(applySource)}, nil
}

// Client is the Redis client the store writes through.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Calendar places an event time in the school's term calendar; package
// rules' policy provides it.
type Calendar interface {
	// PeriodAt returns the term and study period of t; ok is false
	// outside every term.
	PeriodAt(t time.Time) (term, period string, ok bool)
	// WeekKey names the week of t the way the week-over-week trend rule
	// reads it, so that study time is bucketed where the rule looks.
	WeekKey(t time.Time) string
}

// Op is one event to apply, with where it was read from.
type Op struct {
	Event     stream.Event
	Topic     string
	Partition int
	Offset    int64
}

// Status says what applying an event did.
type Status int

// Outcomes of applying one event.
const (
	Duplicate Status = iota // already applied: redelivery, nothing changed
	Applied
	Refused // a score after camera consent was revoked
	Erased  // consent revoked: camera-derived state deleted
	Late    // a score older than the live horizon: only the offset moved
)

func (s Status) String() string {
	switch s {
	case Duplicate:
		return "duplicate"
	case Applied:
		return "applied"
	case Refused:
		return "refused"
	case Erased:
		return "erased"
	case Late:
		return "late"
	}
	return "unknown"
}

// Result is the state of one student right after one event was applied:
// Live after a score, Academic after a click or a grade.
type Result struct {
	Status   Status
	Live     *Live
	Academic *Academic
	// Open is the student's open-warnings document as stored (may be empty).
	Open []byte
	// ErasedSession and ErasedKeys tell what an erasure removed.
	ErasedSession string
	ErasedKeys    int64
}

// Apply runs the apply script for every op in one pipeline round trip and
// returns one result per op, in order. It loads the script on NOSCRIPT. An
// error means the batch may be partly applied; applying it again is safe,
// since each student's last applied offset makes redelivery a no-op.
func (s *Store) Apply(ctx context.Context, cal Calendar, ops []Op) ([]Result, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	cmds, err := s.runPipeline(ctx, cal, ops, true)
	if err != nil && isNoScript(err) {
		if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("state: load script: %w", err)
		}
		cmds, err = s.runPipeline(ctx, cal, ops, true)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(ops))
	for i, c := range cmds {
		r, err := parseResult(c.Val())
		if err != nil {
			return nil, fmt.Errorf("state: result of %s offset %d: %w", ops[i].Topic, ops[i].Offset, err)
		}
		out[i] = r
	}
	return out, nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func (s *Store) runPipeline(ctx context.Context, cal Calendar, ops []Op, sha bool) ([]*redis.Cmd, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(ops))
	for i, op := range ops {
		keys, args, err := s.scriptArgs(cal, op)
		if err != nil {
			return nil, err
		}
		if sha {
			cmds[i] = s.script.EvalSha(ctx, pipe, keys, args...)
		} else {
			cmds[i] = s.script.Eval(ctx, pipe, keys, args...)
		}
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil && isNoScript(c.Err()) {
				return cmds, c.Err()
			}
		}
		return cmds, fmt.Errorf("state: apply pipeline: %w", err)
	}
	return cmds, nil
}

func (s *Store) scriptArgs(cal Calendar, op Op) ([]string, []any, error) {
	h := op.Event.EventHeader()
	keys := StudentKeys(h.Student)
	sec := h.TS.Unix()
	base := []any{"", op.Topic + ":" + strconv.Itoa(op.Partition), op.Offset, sec}
	switch e := op.Event.(type) {
	case *stream.Score:
		base[0] = "score"
		return keys, append(base, e.Session, e.Course, int64(s.cfg.Horizon/time.Second),
			int64(s.cfg.LiveTTL/time.Second), packScore(e)), nil
	case *stream.Click:
		base[0] = "click"
		term, period := "none", ""
		if cal != nil {
			if t, p, ok := cal.PeriodAt(h.TS.Time); ok {
				term, period = t, p
			}
		}
		var week string
		if cal != nil {
			week = cal.WeekKey(h.TS.Time)
		} else {
			y, w := h.TS.UTC().ISOWeek()
			week = fmt.Sprintf("%04d-W%02d", y, w)
		}
		window := strconv.FormatInt(h.TS.Unix()/int64(s.cfg.Window/time.Second), 10)
		return keys, append(base, e.Course, e.Kind, e.DurationS, term, period, week, window), nil
	case *stream.Grade:
		base[0] = "grade"
		return keys, append(base, e.Term, e.Course, fmt.Sprintf("%g|%s|%s|%s", e.Score, b01(e.Passed), b01(e.Elective), b01(e.Core))), nil
	case *stream.Consent:
		base[0] = "consent"
		return keys, append(base, e.Scope, b01(e.Granted), e.PolicyVersion), nil
	}
	return nil, nil, fmt.Errorf("state: no state for %s events", op.Event.Topic())
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// packScore lays out one score event as the script's vector: n, attention,
// face, masked, engaged, confused, bored, frustrated, learning n, emotion n,
// then the seven emotions.
func packScore(e *stream.Score) string {
	v := make([]float64, nv)
	v[0] = 1
	v[1], v[2], v[3] = e.Attention, e.FaceRatio, e.MaskedRatio
	if e.Learning != nil {
		v[4], v[5], v[6], v[7] = e.Learning.Engaged, e.Learning.Confused, e.Learning.Bored, e.Learning.Frustrated
		v[8] = 1
	}
	if e.Emotions != nil {
		v[9] = 1
		for i, x := range e.Emotions.Values() {
			v[10+i] = x
		}
	}
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'g', 6, 64))
	}
	return b.String()
}

const nv = 17

func parseResult(v any) (Result, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return Result{}, errors.New("unexpected script reply")
	}
	code, _ := arr[0].(int64)
	switch code {
	case 0:
		return Result{Status: Duplicate}, nil
	case 2:
		return Result{Status: Refused}, nil
	case 3:
		r := Result{Status: Erased}
		if len(arr) >= 3 {
			r.ErasedSession, _ = arr[1].(string)
			r.ErasedKeys, _ = arr[2].(int64)
		}
		return r, nil
	case 1:
	default:
		return Result{}, fmt.Errorf("unknown status %d", code)
	}
	switch {
	case len(arr) == 1:
		return Result{Status: Applied}, nil
	case len(arr) == 2:
		return Result{Status: Late}, nil
	case len(arr) == 7:
		live, err := parseLive(arr)
		if err != nil {
			return Result{}, err
		}
		open, _ := arr[6].(string)
		return Result{Status: Applied, Live: live, Open: []byte(open)}, nil
	case len(arr) == 6:
		ac, err := parseAcademic(arr[1:5])
		if err != nil {
			return Result{}, err
		}
		open, _ := arr[5].(string)
		return Result{Status: Applied, Academic: ac, Open: []byte(open)}, nil
	}
	return Result{}, fmt.Errorf("unexpected reply of %d elements", len(arr))
}

// SaveOpen stores a student's open-warnings document.
func (s *Store) SaveOpen(ctx context.Context, student string, open []byte) error {
	return s.rdb.Set(ctx, WarnKey(student), open, 0).Err()
}
