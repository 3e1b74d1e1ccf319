package state

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// CacheStudents bounds how many students' live state a Store keeps a
	// copy of in memory: 76 bytes per second of the last 5 minutes, about
	// 50 KB of Go heap per student scored steadily for 5 minutes (measured
	// with slice headroom and map entries), so the default can take ~5 GB.
	// Beyond it arbitrary copies are dropped and reloaded from Redis when
	// the student is seen again. Default 100000.
	CacheStudents int
	// Group is how many events' script calls Write sends as one call
	// (apply.lua's group), which saves Redis what each call costs before
	// the script runs. 1 sends every event on its own. Over a cluster
	// client every event is its own call. Default 16.
	Group int
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
	if c.CacheStudents == 0 {
		c.CacheStudents = 100_000
	}
	if c.Group == 0 {
		c.Group = 16
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
	if c.CacheStudents < 0 {
		return fmt.Errorf("state: cache of %d students; want a positive count (--cache-students)", c.CacheStudents)
	}
	if c.Group < 1 || c.Group > 1024 {
		return fmt.Errorf("state: script group of %d events; want 1 to 1024 (--script-group)", c.Group)
	}
	return nil
}

// Store applies events to per-student state in Redis and reads it back.
// It is safe for concurrent use; one student's events must be applied in
// order by one caller, which the partitioning by student gives.
//
// The live rolling state is computed in Go, on a copy of each student's
// live hash that the Store keeps (loaded the first time the student is
// seen); the apply script writes what was computed only if the hash is
// still the version the copy was based on. So a copy gone stale — another
// group member wrote the student after a rebalance, an erasure, a TTL
// expiry — is refused, reloaded and the event computed again.
type Store struct {
	rdb     redis.UniversalClient
	cfg     Config
	script  *redis.Script
	horizon int64 // seconds
	ttl     string
	mu      sync.Mutex
	live    map[string]*rolling // student → copy; taken out while a batch works on it
	// sent holds, per student and offset field, the offset of the last
	// script call prepared and not yet confirmed by its reply: a later
	// batch's first call of the chain names it as its predecessor (ARGV
	// 5), so that a batch written while an earlier one is outstanding
	// (Write) cannot overtake an event of it that then fails.
	sent   map[chain]int64
	stale  atomic.Int64 // script refusals of stale copies
	gaps   atomic.Int64 // script refusals after an earlier event not applied
	loaded atomic.Bool  // the script was loaded once
	// lanes are the ordered connections Write sends on, by lane; made on
	// first use, over a single-node client only.
	lanesMu sync.Mutex
	lanes   []*orderedConn
}

// chain names one student's events read from one offset field.
type chain struct{ student, field string }

// New returns a store over rdb (a client, a cluster client or a ring).
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{rdb: rdb, cfg: cfg, script: redis.NewScript(applySource),
		horizon: int64(cfg.Horizon / time.Second), ttl: strconv.FormatInt(int64(cfg.LiveTTL/time.Second), 10),
		live: map[string]*rolling{}, sent: map[chain]int64{}}, nil
}

// Close closes the store's ordered connections (Write); the client given
// to New is the caller's to close.
func (s *Store) Close() error {
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	var first error
	for _, c := range s.lanes {
		if c != nil {
			if err := c.close(); err != nil && first == nil {
				first = err
			}
		}
	}
	s.lanes = nil
	return first
}

// lane returns the ordered connection of lane i, nil when the client is
// not a single node (a cluster client routes by slot; it has no one
// connection to keep an order on).
func (s *Store) lane(i int) *orderedConn {
	c, ok := s.rdb.(*redis.Client)
	if !ok || i < 0 {
		return nil
	}
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	for len(s.lanes) <= i {
		s.lanes = append(s.lanes, nil)
	}
	if s.lanes[i] == nil {
		s.lanes[i] = newOrderedConn(c.Options())
	}
	return s.lanes[i]
}

// Client is the Redis client the store writes through.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// StaleCopies counts the score writes the script refused because the
// store's copy of the student's live state was stale.
func (s *Store) StaleCopies() int64 { return s.stale.Load() }

// GapRefusals counts the clicks, grades and consents the script refused
// because an earlier event of the student, in a batch written before
// theirs, was not applied (that batch failed); each was sent again once
// it was (see Write). Scores refused so count as stale (StaleCopies): the
// reply does not tell that from a score after a stale one in its round.
func (s *Store) GapRefusals() int64 { return s.gaps.Load() }

// Calendar places an event time in the school's term calendar; package
// rules' policy provides it.
type Calendar interface {
	// PeriodAt returns the term and study period of t; ok is false
	// outside every term.
	PeriodAt(t time.Time) (term, period string, ok bool)
	// WeekKey names the week of t the way the week-over-week trend rule
	// reads it, so that study time is bucketed where the rule looks.
	WeekKey(t time.Time) string
	// LastWeeks names the two weeks before t's that the rules read when
	// they evaluate a student at t; a click or grade returns only those
	// weeks' study time.
	LastWeeks(t time.Time) (last, prev string)
}

// utcCalendar places every event in UTC ISO weeks and outside every term:
// the calendar of a caller that passes none.
type utcCalendar struct{}

func (utcCalendar) PeriodAt(time.Time) (string, string, bool) { return "", "", false }

func (utcCalendar) WeekKey(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

func (c utcCalendar) LastWeeks(t time.Time) (last, prev string) {
	y, m, d := t.UTC().Date()
	noon := time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
	return c.WeekKey(noon.AddDate(0, 0, -7)), c.WeekKey(noon.AddDate(0, 0, -14))
}

// Op is one event to apply, with where it was read from.
type Op struct {
	Event     stream.Event
	Topic     string
	Partition int
	Offset    int64
	// Audit, for a consent, keeps an outbox marker in Redis, written with
	// the consent, until AuditsPublished clears it: the caller publishes
	// the consent's audit record in between, and a redelivery of a consent
	// whose record was never published (the run stopped) comes back as a
	// Duplicate with AuditPending set.
	Audit bool
}

// Status says what applying an event did.
type Status int

// Outcomes of applying one event.
const (
	Duplicate Status = iota // already applied: redelivery, nothing changed
	Applied
	Refused // a score after camera consent was revoked, or of a student under 14 without a guardian's consent
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
	Status Status
	// Live (a score) or Academic (a click or grade) is the student's state
	// after the event: set when it was applied, and when it was a
	// duplicate whose state the store read anyway, so that a redelivered
	// batch is evaluated again. Academic is set only on the student's last
	// click or grade of the Apply call (the state after all of them).
	Live     *Live
	Academic *Academic
	// Open is the student's open-warnings document as stored (may be empty).
	Open []byte
	// ErasedSession and ErasedKeys tell what an erasure removed.
	ErasedSession string
	ErasedKeys    int64
	// AuditPending marks a Duplicate consent whose audit record was never
	// published (see Op.Audit); Erasure then says whether applying it
	// erased, with ErasedSession and ErasedKeys as it did.
	AuditPending bool
	Erasure      bool
}

// ttlRefresh is how many seconds of event time pass between refreshes of
// a live hash's expiry: its TTL (hours) need not move with every score.
const ttlRefresh = 60

// maxRounds bounds how often one Apply recomputes events whose copy was
// refused as stale; past it the caller's retry starts the batch again.
const maxRounds = 8

// Apply runs the apply script for every op in one pipeline round trip and
// returns one result per op, in order. It loads the script on NOSCRIPT. An
// error means the batch may be partly applied; applying it again is safe,
// since each student's last applied offset makes redelivery a no-op.
//
// Scores whose live copy was stale cost one more round trip: the copies
// are reloaded and those scores computed and sent again, in order.
//
// Apply is Prepare then Send.
func (s *Store) Apply(ctx context.Context, cal Calendar, ops []Op) ([]Result, error) {
	p, err := s.Prepare(ctx, cal, ops)
	if err != nil {
		return nil, err
	}
	return s.Send(ctx, p)
}

// Prepared is a batch computed on the store's copies of live state and not
// sent yet (see Prepare).
type Prepared struct {
	cal   Calendar
	ops   []Op
	out   []Result
	calls []call  // the first round
	fl    *flight // the first round, written (Write) and not read yet
	load  bool    // fl starts with a SCRIPT LOAD
	sent  bool
	// groups: how many calls each command of fl carries (groupCalls).
	groups []int
}

// Prepare does the Go side of Apply's first round: it computes every
// score on the store's copies of live state (loading the missing ones) and
// lays out every script call, so that a caller can prepare the next batch
// while Redis executes this one. The copies stay in the store, ahead of
// Redis, for the next Prepare to build on; Send (or Write, then Await)
// must follow in batch order.
//
// Nothing a Prepare assumed can make a later batch wrong: a score computed
// on a copy Redis does not hold is refused by the script's compare-and-set
// and computed again (Send), and a copy whose offset is ahead of what Redis
// confirmed is reloaded before an event at or below that offset is
// computed on it, so a prepared batch that was never sent (the processor
// stopped, or this batch failed) leaves no event taken for a duplicate.
func (s *Store) Prepare(ctx context.Context, cal Calendar, ops []Op) (*Prepared, error) {
	if cal == nil {
		cal = utcCalendar{}
	}
	p := &Prepared{cal: cal, ops: ops, out: make([]Result, len(ops))}
	if len(ops) == 0 {
		return p, nil
	}
	idx := make([]int, len(ops))
	for i := range idx {
		idx[i] = i
	}
	var err error
	p.calls, err = s.build(ctx, cal, ops, idx, p.out)
	return p, err
}

// Send applies a prepared batch in Redis and returns one result per op,
// in order; see Apply. A batch is sent once: after an error, Apply it
// again.
func (s *Store) Send(ctx context.Context, p *Prepared) ([]Result, error) {
	if p.sent {
		return nil, errors.New("state: a prepared batch was sent twice")
	}
	p.sent = true
	stale, err := s.send(ctx, p.ops, p.calls, p.out)
	return s.rounds(ctx, p, stale, err)
}

// Write sends a prepared batch's calls on an ordered connection of the
// store (one per lane) and returns without waiting for the replies; Await
// reads them. Redis executes what one lane carries in the order written,
// so a caller can write batch k+1 while batch k's replies are still
// outstanding, and Redis need not wait between batches. Should batch k
// fail after k+1 was written, a student's later events cannot overtake
// the failed ones: each student's first call of a batch names the last
// call of the batches still unconfirmed (the script's gap check), and a
// call refused so is sent again by Await, once the batches before it are
// applied. Await must follow in batch order.
//
// Until the script is known to be loaded (the first batch, and after a
// NOSCRIPT reply), the batch's calls follow a SCRIPT LOAD on the lane.
//
// Write does nothing over a cluster client (no one connection to keep the
// order on) or for a batch with no calls; Await then sends the batch
// itself.
func (s *Store) Write(ctx context.Context, p *Prepared, lane int) {
	if p.sent || p.fl != nil || len(p.calls) == 0 {
		return
	}
	c := s.lane(lane)
	if c == nil {
		return
	}
	p.load = !s.loaded.Load()
	p.groups = groupCalls(p.calls, s.cfg.Group)
	n := len(p.groups)
	if p.load {
		n++
	}
	sha := s.script.Hash()
	p.fl = c.sendEncoded(ctx, n, func(buf []byte) ([]byte, error) {
		if p.load {
			buf = appendArrayHeader(buf, 3)
			buf = appendBulkString(buf, "script")
			buf = appendBulkString(buf, "load")
			buf = appendBulkString(buf, applySource)
		}
		k := 0
		for _, size := range p.groups {
			calls := p.calls[k : k+size]
			k += size
			if calls[0].getOpen {
				buf = appendArrayHeader(buf, 2)
				buf = appendBulkString(buf, "get")
				buf = appendBulkString(buf, WarnKey(calls[0].student))
				continue
			}
			var err error
			if buf, err = appendApplyCall(buf, sha, p.ops, calls); err != nil {
				return buf, err
			}
		}
		return buf, nil
	})
}

// appendApplyCall lays out the EVALSHA of one event's call, or of a group
// of them (apply.lua): '*', the number of events, each one's number of
// keys and of arguments, then all the keys and all the arguments.
func appendApplyCall(buf []byte, sha string, ops []Op, calls []call) ([]byte, error) {
	keys, args := 0, 0
	for i := range calls {
		keys += len(calls[i].keys)
		args += calls[i].nargs()
	}
	if len(calls) > 1 {
		args += 2 + 2*len(calls)
	}
	buf = appendArrayHeader(buf, 3+keys+args)
	buf = appendBulkString(buf, "evalsha")
	buf = appendBulkString(buf, sha)
	buf = appendBulkInt(buf, int64(keys))
	for i := range calls {
		for _, k := range calls[i].keys {
			buf = appendBulkString(buf, k)
		}
	}
	if len(calls) > 1 {
		buf = appendBulkString(buf, "*")
		buf = appendBulkInt(buf, int64(len(calls)))
		for i := range calls {
			buf = appendBulkInt(buf, int64(len(calls[i].keys)))
			buf = appendBulkInt(buf, int64(calls[i].nargs()))
		}
	}
	for _, call := range calls {
		if call.score != nil {
			buf = call.score.append(buf)
			continue
		}
		for i, a := range call.args {
			var err error
			if buf, err = appendArg(buf, a); err != nil {
				return buf, fmt.Errorf("state: %s offset %d: script argument %d has %w", ops[call.op].Topic, ops[call.op].Offset, i, err)
			}
		}
	}
	return buf, nil
}

// groupCalls splits calls into the commands Write sends, returning how
// many calls each carries in order: a GET of open warnings alone, script
// calls in runs of up to limit events, one apply script call for the run
// (apply.lua's group). Redis pays what a call costs before the script runs
// once per command, not once per event: a score's script call cost about
// 3 µs of Redis CPU more on its own than in a group of eight
// (BenchmarkEvalshaCost).
func groupCalls(calls []call, limit int) []int {
	var sizes []int
	run := 0
	for _, c := range calls {
		if c.getOpen {
			if run > 0 {
				sizes = append(sizes, run)
				run = 0
			}
			sizes = append(sizes, 1)
			continue
		}
		run++
		if run == limit {
			sizes = append(sizes, run)
			run = 0
		}
	}
	if run > 0 {
		sizes = append(sizes, run)
	}
	return sizes
}

// ungroup spreads the replies of the commands Write sent (groups: how many
// calls each carried) over their calls: a group's reply is an array of
// its events' replies.
func ungroup(vals []any, groups []int, calls int) ([]any, error) {
	if len(vals) == calls {
		return vals, nil
	}
	out := make([]any, 0, calls)
	for i, v := range vals {
		if groups[i] == 1 {
			out = append(out, v)
			continue
		}
		arr, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("state: apply pipeline: a group of %d events answered a %T, not their replies", groups[i], v)
		}
		if len(arr) != groups[i] {
			return nil, fmt.Errorf("state: apply pipeline: a group of %d events answered %d replies", groups[i], len(arr))
		}
		out = append(out, arr...)
	}
	return out, nil
}

// Await returns the results of a batch given to Write, sending again what
// Redis refused as stale or out of order, like Send; a batch Write did not
// send is sent now.
func (s *Store) Await(ctx context.Context, p *Prepared) ([]Result, error) {
	if p.fl == nil {
		return s.Send(ctx, p)
	}
	if p.sent {
		return nil, errors.New("state: a prepared batch was sent twice")
	}
	p.sent = true
	vals, err := p.fl.wait(ctx)
	p.fl = nil
	if err == nil {
		err = firstReplyError(vals)
	}
	if err == nil && p.load {
		s.loaded.Store(true)
		vals = vals[1:]
	}
	if err == nil {
		// An error reply inside a group (apply.lua's unknown kind) fails
		// the batch as the call's own would.
		if vals, err = ungroup(vals, p.groups, len(p.calls)); err == nil {
			err = firstReplyError(vals)
		}
	}
	if err != nil {
		if isNoScript(err) {
			s.loaded.Store(false)
		}
		s.dropCopies(p.calls)
		return nil, fmt.Errorf("state: apply pipeline: %w", err)
	}
	stale, err := s.receive(p.ops, p.calls, vals, p.out)
	return s.rounds(ctx, p, stale, err)
}

// firstReplyError is the first error reply among vals, a missing key
// aside.
func firstReplyError(vals []any) error {
	for _, v := range vals {
		if err, ok := v.(redisError); ok {
			return err
		}
	}
	return nil
}

// rounds computes again and sends the events of p refused as stale, until
// none is, after the first round returned stale and err.
func (s *Store) rounds(ctx context.Context, p *Prepared, stale []int, err error) ([]Result, error) {
	for round := 1; len(stale) > 0; round++ {
		if err != nil {
			return nil, err
		}
		if round == maxRounds {
			return nil, fmt.Errorf("state: the live state of %d events kept changing under this store for %d rounds (another member writing the same students?)", len(stale), maxRounds)
		}
		var calls []call
		if calls, err = s.build(ctx, p.cal, p.ops, stale, p.out); err != nil {
			return nil, err
		}
		stale, err = s.send(ctx, p.ops, calls, p.out)
	}
	if err != nil {
		return nil, err
	}
	return p.out, nil
}

// call is one script call of a round.
type call struct {
	op   int
	keys []string
	// args are a click's, grade's or consent's script arguments; score
	// those of a score, typed, so that laying out the hot path boxes
	// nothing.
	args    []any
	score   *scoreArgs
	student string   // set for scores
	field   string   // the offset field of a script call
	copy    *rolling // the copy the score was computed on
	live    *Live    // what the score computed
	// getOpen: not a script call but a GET of the student's open
	// warnings, for a score the copy knows to be applied already.
	getOpen bool
}

// nargs is the number of the call's script arguments.
func (c *call) nargs() int {
	if c.score != nil {
		return c.score.len()
	}
	return len(c.args)
}

// build lays out the script calls of ops[idx…] (in order), computing the
// scores on the store's copies, which it puts back computed; results
// known without Redis go to out.
func (s *Store) build(ctx context.Context, cal Calendar, ops []Op, idx []int, out []Result) ([]call, error) {
	copies, err := s.take(ctx, ops, idx)
	if err != nil {
		return nil, err
	}
	calls := make([]call, 0, len(idx))
	var buf []byte
	// The room of the batch's scores, allocated once: their arguments, the
	// pairs they write (a score writes four, a new session's or course's
	// up to eight; a longer list, as a format 1 hash's rewrite, goes to an
	// array of its own), the pairs' binary values (a bucket and the
	// summary; a Builder grows past that if it must) and the state the
	// rules see.
	const pairsPerScore = 8
	args := make([]scoreArgs, len(idx))
	lives := make([]Live, len(idx))
	pairs := make([]string, pairsPerScore*len(idx))
	var values strings.Builder
	// prevs: the offset of each student's previous script call in this
	// pipeline, per offset field, for the script's gap check (apply.lua):
	// calls after one that was not applied change nothing. A student's
	// first call names the last call of an earlier batch whose reply has
	// not confirmed it (sent; see Write).
	prevs := make(map[chain]int64, len(idx))
	prevOf := func(student, field string, offset int64) string {
		k := chain{student, field}
		p, ok := prevs[k]
		prevs[k] = offset
		if !ok {
			s.mu.Lock()
			p, ok = s.sent[k]
			s.mu.Unlock()
			// One at or after this offset is a redelivery's, or the batch
			// being sent again: nothing before it is outstanding.
			ok = ok && p < offset
		}
		if !ok {
			return ""
		}
		return strconv.FormatInt(p, 10)
	}
	// Only each student's last click or grade of the round asks for the
	// academic state back: the caller evaluates a student once per batch,
	// on the latest state, and the state is most of a click's reply.
	lastAcademic := map[string]int{}
	scores := 0
	for _, i := range idx {
		switch e := ops[i].Event.(type) {
		case *stream.Score:
			scores++
		case *stream.Click:
			lastAcademic[e.Student] = i
		case *stream.Grade:
			lastAcademic[e.Student] = i
		}
	}
	values.Grow(scores * (bucketLen + summaryLen))
	var fields lastField
	for _, i := range idx {
		op := ops[i]
		field := fields.of(op.Topic, op.Partition)
		sc, ok := op.Event.(*stream.Score)
		if !ok {
			if c, ok := op.Event.(*stream.Consent); ok && !c.Granted && (c.Scope == stream.ScopeCamera || c.Scope == stream.ScopeEmotion) {
				// The script deletes the live hash; so does the copy.
				if r := copies[c.Student]; r != nil {
					r.erase()
				} else {
					s.forget(c.Student)
				}
			}
			student := op.Event.EventHeader().Student
			last, ok := lastAcademic[student]
			keys, args, err := s.scriptArgs(cal, op, field, prevOf(student, field, op.Offset), ok && last == i)
			if err != nil {
				return nil, err
			}
			calls = append(calls, call{op: i, keys: keys, args: args, field: field})
			continue
		}
		r := copies[sc.Student]
		if r.offField != field {
			// The student's scores come from another partition now (the
			// topic was repartitioned): offsets start again.
			s.mu.Lock()
			r.offField, r.off, r.confirmed = field, -1, -1
			s.mu.Unlock()
		}
		if r.off >= 0 && op.Offset <= r.off {
			// Applied before, perhaps by a run that crashed before it
			// published what the rules made of it: the result carries the
			// state now and the open warnings, so that the caller can
			// evaluate again (reconciling with the open warnings raises
			// only what was not raised yet).
			if r.head >= 0 {
				fs := r.fs
				if fs < 0 {
					fs = r.head
				}
				l := &lives[len(calls)]
				r.snapshot(fs, l)
				calls = append(calls, call{op: i, student: sc.Student, live: l, getOpen: true})
			} else {
				out[i] = Result{Status: Duplicate}
			}
			continue
		}
		expect := r.version
		v := scoreVec(sc)
		round32(&v)
		sec := sc.TS.Unix()
		var st liveStep
		k := len(calls)
		st, buf = r.step(sec, sc.Session, sc.Course, &v, s.horizon, buf,
			stepRoom{pairs: pairs[k*pairsPerScore : k*pairsPerScore : (k+1)*pairsPerScore], values: &values, live: &lives[k]})
		// The script checks the offset only when the copy does not know
		// the last one applied (see apply.lua).
		check := ""
		if expect == "" || r.off < 0 {
			check = "1"
		}
		r.off = op.Offset
		// The expiry is set on every write that may create the hash, and
		// refreshed once a minute of event time otherwise.
		ttl := ""
		if expect == "" || st.mode == modeFresh || !r.ttlSet || sec < r.ttlAt || sec-r.ttlAt >= ttlRefresh {
			ttl, r.ttlSet, r.ttlAt = s.ttl, true, sec
		}
		sa := &args[k]
		*sa = scoreArgs{field: field, offset: op.Offset, sec: sec, prev: prevOf(sc.Student, field, op.Offset),
			expect: expect, ttl: ttl, mode: st.mode, vector: st.vector, horizon: s.horizon, check: check, pairs: st.pairs}
		if st.mode != modeLate {
			r.version = nextVersion(r.version, field, op.Offset)
			sa.version = r.version
		}
		if r.keys == nil {
			r.keys = scoreKeys(sc.Student)
		}
		calls = append(calls, call{op: i, keys: r.keys, score: sa, student: sc.Student, field: field, copy: r, live: st.live})
	}
	s.mu.Lock()
	for k, off := range prevs {
		// A batch sent again (after it failed) must not hide a later
		// batch's call still outstanding.
		if cur, ok := s.sent[k]; !ok || off > cur {
			s.sent[k] = off
		}
	}
	for student, r := range copies {
		s.live[student] = r
	}
	for student := range s.live {
		if len(s.live) <= s.cfg.CacheStudents {
			break
		}
		delete(s.live, student)
	}
	s.mu.Unlock()
	return calls, nil
}

// send runs the calls of one round in one pipeline and fills their
// results; it returns the scores refused as stale, to compute again.
func (s *Store) send(ctx context.Context, ops []Op, calls []call, out []Result) ([]int, error) {
	cmds, err := s.exec(ctx, calls)
	if err != nil {
		s.dropCopies(calls)
		return nil, err
	}
	vals := make([]any, len(cmds))
	for k, c := range cmds {
		vals[k] = c.Val()
	}
	return s.receive(ops, calls, vals, out)
}

// dropCopies drops the copies of the students scored in a round that
// failed: Redis may hold some of it, and the copies are ahead of it, so
// they go and are loaded again.
func (s *Store) dropCopies(calls []call) {
	s.mu.Lock()
	for _, c := range calls {
		if c.student != "" {
			delete(s.live, c.student)
		}
	}
	s.mu.Unlock()
}

// receive fills the results of one round from its replies (vals, one per
// call, none an error) and returns the events to send again: scores
// refused as stale, and events refused because an earlier event of the
// student, in an earlier batch still outstanding when this one was
// written, was not applied (the gap check).
func (s *Store) receive(ops []Op, calls []call, vals []any, out []Result) ([]int, error) {
	drop := map[string]bool{}
	confirm := map[*rolling]int64{}
	var stale []int
	// done: the calls whose outcome is final, to clear from s.sent.
	done := make([]bool, len(calls))
	for k, c := range calls {
		if c.student == "" {
			if arr, ok := vals[k].([]any); ok && len(arr) > 0 && arr[0] == int64(6) {
				s.gaps.Add(1)
				stale = append(stale, c.op)
				continue
			}
			r, err := parseResult(vals[k])
			if err != nil {
				return nil, fmt.Errorf("state: result of %s offset %d: %w", ops[c.op].Topic, ops[c.op].Offset, err)
			}
			out[c.op] = r
			done[k] = true
			continue
		}
		if c.getOpen {
			open, _ := vals[k].(string)
			out[c.op] = Result{Status: Duplicate, Live: c.live, Open: []byte(open)}
			continue
		}
		arr, _ := vals[k].([]any)
		if len(arr) == 0 {
			return nil, fmt.Errorf("state: result of %s offset %d: unexpected script reply", ops[c.op].Topic, ops[c.op].Offset)
		}
		code, _ := arr[0].(int64)
		if code == 1 || code == 5 {
			confirm[c.copy] = ops[c.op].Offset
		}
		done[k] = code != 4 && code != 6
		switch code {
		case 1:
			r := Result{Status: Applied, Live: c.live}
			if len(arr) > 1 {
				open, _ := arr[1].(string)
				r.Open = []byte(open)
			}
			out[c.op] = r
		case 5:
			out[c.op] = Result{Status: Late}
		case 0:
			// Applied by someone else since the copy was made.
			out[c.op] = Result{Status: Duplicate}
			drop[c.student] = true
		case 2:
			out[c.op] = Result{Status: Refused}
			drop[c.student] = true
		case 4, 6:
			// Stale, or (6) after an earlier score of the student that
			// was not applied: computed again, in order, on a reloaded
			// copy.
			s.stale.Add(1)
			stale = append(stale, c.op)
			drop[c.student] = true
		default:
			return nil, fmt.Errorf("state: result of %s offset %d: unknown status %d", ops[c.op].Topic, ops[c.op].Offset, code)
		}
	}
	s.mu.Lock()
	for r, off := range confirm {
		r.confirmed = max(r.confirmed, off)
	}
	for student := range drop {
		delete(s.live, student)
	}
	for k, c := range calls {
		if !done[k] {
			continue
		}
		key := chain{ops[c.op].Event.EventHeader().Student, c.field}
		if off, ok := s.sent[key]; ok && off == ops[c.op].Offset {
			delete(s.sent, key)
		}
	}
	s.mu.Unlock()
	return stale, nil
}

// take hands the copies of the students scored in ops[idx…] to one round,
// taking them out of the store (so no two batches work on one copy) and
// loading the missing ones from Redis in one pipelined round trip.
func (s *Store) take(ctx context.Context, ops []Op, idx []int) (map[string]*rolling, error) {
	copies := make(map[string]*rolling, len(idx))
	var missing []int // op index of each missing student's first score
	var fields lastField
	s.mu.Lock()
	for _, i := range idx {
		sc, ok := ops[i].Event.(*stream.Score)
		if !ok {
			continue
		}
		if _, ok := copies[sc.Student]; ok {
			continue
		}
		r := s.live[sc.Student]
		delete(s.live, sc.Student)
		if r != nil && r.offField == fields.of(ops[i].Topic, ops[i].Partition) && ops[i].Offset <= r.off && ops[i].Offset > r.confirmed {
			// Computed ahead by a batch that was not applied: Redis is
			// the truth for this one. (A copy of another partition is
			// reset, score by score, in build.)
			r = nil
		}
		copies[sc.Student] = r
		if r == nil {
			missing = append(missing, i)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return copies, nil
	}
	pipe := s.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(missing))
	offs := make([]*redis.StringCmd, len(missing))
	for k, i := range missing {
		op := ops[i]
		student := op.Event.EventHeader().Student
		hs[k] = pipe.HGetAll(ctx, LiveKey(student))
		offs[k] = pipe.HGet(ctx, offKey(student), offField(op.Topic, op.Partition))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("state: load live state: %w", err)
	}
	for k, i := range missing {
		op := ops[i]
		off, err := offs[k].Int64()
		if errors.Is(err, redis.Nil) {
			off = -1
		} else if err != nil {
			return nil, fmt.Errorf("state: load live state: %w", err)
		}
		if err := hs[k].Err(); err != nil {
			return nil, fmt.Errorf("state: load live state: %w", err)
		}
		copies[op.Event.EventHeader().Student] = loadRolling(hs[k].Val(), offField(op.Topic, op.Partition), off, s.horizon)
	}
	return copies, nil
}

// forget drops a student's copy.
func (s *Store) forget(student string) {
	s.mu.Lock()
	delete(s.live, student)
	s.mu.Unlock()
}

// Forget drops every copy of live state this store keeps, so that each
// student is loaded from Redis again; call it after the state was wiped
// behind the store's back (Processor.Rebuild does).
func (s *Store) Forget() {
	s.mu.Lock()
	clear(s.live)
	clear(s.sent)
	s.mu.Unlock()
}

// ForgetPartition drops the copies of the students whose scores came from
// one partition: the processor calls it for partitions it no longer
// serves. (A copy kept anyway is safe — the script refuses it once another
// member wrote the student — it only costs memory.)
func (s *Store) ForgetPartition(topic string, partition int) {
	field := offField(topic, partition)
	s.mu.Lock()
	for student, r := range s.live {
		if r.offField == field {
			delete(s.live, student)
		}
	}
	for k := range s.sent {
		if k.field == field {
			delete(s.sent, k)
		}
	}
	s.mu.Unlock()
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// exec sends the calls in one pipeline, loading the script on NOSCRIPT.
// The script is loaded once before the first pipeline, so that a fresh
// Redis does not fail a whole first batch.
func (s *Store) exec(ctx context.Context, calls []call) ([]*redis.Cmd, error) {
	if !s.loaded.Load() {
		if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("state: load script: %w", err)
		}
		s.loaded.Store(true)
	}
	cmds, err := s.runPipeline(ctx, calls)
	if err != nil && isNoScript(err) {
		if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("state: load script: %w", err)
		}
		cmds, err = s.runPipeline(ctx, calls)
	}
	return cmds, err
}

func (s *Store) runPipeline(ctx context.Context, calls []call) ([]*redis.Cmd, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		if c.getOpen {
			cmds[i] = redis.NewCmd(ctx, "get", WarnKey(c.student))
			_ = pipe.Process(ctx, cmds[i])
			continue
		}
		args := c.args
		if c.score != nil {
			args = c.score.anys()
		}
		cmds[i] = s.script.EvalSha(ctx, pipe, c.keys, args...)
	}
	if len(calls) == 0 {
		return cmds, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// A missing open-warnings document (redis.Nil) is no failure.
		var first error
		for _, c := range cmds {
			switch err := c.Err(); {
			case err == nil || errors.Is(err, redis.Nil):
			case isNoScript(err):
				return cmds, err
			case first == nil:
				first = err
			}
		}
		if first != nil {
			return cmds, fmt.Errorf("state: apply pipeline: %w", first)
		}
	}
	return cmds, nil
}

// scriptArgs lays out the script call of a click, grade or consent read
// from offset field field ("<topic>:<partition>"); prev is the offset of
// the student's previous call on that field in the pipeline ("" for the
// first); wantState asks a click or grade to answer with the student's
// academic state.
func (s *Store) scriptArgs(cal Calendar, op Op, field, prev string, wantState bool) ([]string, []any, error) {
	// The weeks of study time the reply carries: only a reply needs them.
	want, lastWeek, prevWeek := "", "", ""
	if wantState {
		want = "1"
		lastWeek, prevWeek = cal.LastWeeks(op.Event.EventHeader().TS.Time)
	}
	h := op.Event.EventHeader()
	keys := StudentKeys(h.Student)
	sec := h.TS.Unix()
	base := []any{"", field, op.Offset, sec, prev}
	switch e := op.Event.(type) {
	case *stream.Click:
		base[0] = "click"
		term, period := "none", ""
		if t, p, ok := cal.PeriodAt(h.TS.Time); ok {
			term, period = t, p
		}
		window := strconv.FormatInt(h.TS.Unix()/int64(s.cfg.Window/time.Second), 10)
		return keys, append(base, e.Course, e.Kind, e.DurationS, term, period, cal.WeekKey(h.TS.Time), window, want, lastWeek, prevWeek), nil
	case *stream.Grade:
		base[0] = "grade"
		return keys, append(base, e.Term, e.Course, fmt.Sprintf("%g|%s|%s|%s", e.Score, b01(e.Passed), b01(e.Elective), b01(e.Core)), want, lastWeek, prevWeek), nil
	case *stream.Consent:
		base[0] = "consent"
		return keys, append(base, e.Scope, b01(e.Granted), e.PolicyVersion, e.Guardian, b01(op.Audit)), nil
	}
	return nil, nil, fmt.Errorf("state: no state for %s events", op.Event.Topic())
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// scoreVec lays out one score event as a vector: n, attention, face,
// masked, engaged, confused, bored, frustrated, learning n, emotion n,
// then the seven emotions.
func scoreVec(e *stream.Score) vec {
	var v vec
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
	return v
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
		// A duplicate click or grade comes with the academic state, like
		// an applied one (see the duplicate score in applyRound).
		switch len(arr) {
		case 6:
			ac, err := parseAcademic(arr[1:5])
			if err != nil {
				return Result{}, err
			}
			open, _ := arr[5].(string)
			return Result{Status: Duplicate, Academic: ac, Open: []byte(open)}, nil
		case 2:
			marker, _ := arr[1].(string)
			return parseAuditMarker(marker)
		}
		return Result{Status: Duplicate}, nil
	case 2:
		return Result{Status: Refused}, nil
	case 6:
		// receive sends these again before it parses a reply.
		return Result{}, errors.New("not applied: an earlier event of the student was not")
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
	switch len(arr) {
	case 1:
		return Result{Status: Applied}, nil
	case 6:
		ac, err := parseAcademic(arr[1:5])
		if err != nil {
			return Result{}, err
		}
		open, _ := arr[5].(string)
		return Result{Status: Applied, Academic: ac, Open: []byte(open)}, nil
	}
	return Result{}, fmt.Errorf("unexpected reply of %d elements", len(arr))
}

// parseAuditMarker reads a consent's outbox marker, "status|erased
// keys|session" (apply.lua).
func parseAuditMarker(m string) (Result, error) {
	parts := strings.SplitN(m, "|", 3)
	if len(parts) != 3 {
		return Result{}, fmt.Errorf("unreadable audit marker %q", m)
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Result{}, fmt.Errorf("unreadable audit marker %q", m)
	}
	r := Result{Status: Duplicate, AuditPending: true, Erasure: parts[0] == "3"}
	if r.Erasure {
		r.ErasedKeys, r.ErasedSession = n, parts[2]
	}
	return r, nil
}

// AuditsPublished clears the outbox markers of the consents among ops
// (see Op.Audit), once their audit records are published.
func (s *Store) AuditsPublished(ctx context.Context, ops []Op) error {
	pipe := s.rdb.Pipeline()
	n := 0
	for _, op := range ops {
		c, ok := op.Event.(*stream.Consent)
		if !ok || !op.Audit {
			continue
		}
		pipe.HDel(ctx, offKey(c.Student), auditMarker(op))
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("state: clear audit markers: %w", err)
	}
	return nil
}

// auditMarker is the off-hash field of a consent's outbox marker.
func auditMarker(op Op) string {
	return "audit|" + offField(op.Topic, op.Partition) + "|" + strconv.FormatInt(op.Offset, 10)
}

// SaveOpen stores a student's open-warnings document.
func (s *Store) SaveOpen(ctx context.Context, student string, open []byte) error {
	return s.rdb.Set(ctx, WarnKey(student), open, 0).Err()
}
