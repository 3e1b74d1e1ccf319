package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// latest is what a batch left of one student: the last state seen of each
// rule family, to evaluate once per student per batch.
type latest struct {
	score    *stream.Score
	live     *state.Live
	liveAt   time.Time
	academic *state.Academic
	acadAt   time.Time
	campus   *rules.Campus // imported campus signals, read when the campus rules are on
	open     []byte
	order    int
}

// HandleBatch is the per-student stage: decode and validate every message
// (invalid ones go to the DLQ), apply the valid ones to Redis in one
// pipelined round, evaluate the policy once per student touched, and
// publish warnings and tiles. It returns nil once every message had its
// effect, and retries Redis and Kafka failures until ctx ends.
func (p *Processor) HandleBatch(ctx context.Context, batch []stream.Message) error {
	return p.handle(ctx, batch, true)
}

// StageBatch is HandleBatch in stages (stream.StagedHandler), as the
// processor's consumers run it: the call decodes the batch and computes
// its scores on the store's copies of live state; it returns the write
// stage (send the scripts to Redis without waiting for the replies), the
// apply stage (read the replies, evaluate the policy) and the publishing
// stage (publish warnings and tiles to Kafka, mirror warnings into the
// live feed, save the open-warnings documents). The consumer overlaps them
// across batches, so that Redis applies one batch while the Go side reads
// the replies of the one before, and the next is decoded and written. A
// batch's apply stage sees the documents of the ones before even if they
// are not saved yet (p.pending).
func (p *Processor) StageBatch(ctx context.Context, batch []stream.Message) ([]func(context.Context) error, error) {
	return p.stage(ctx, batch, true)
}

// handle applies a batch; with publish false (the rebuild's apply-only
// mode) it only restores state: no rules run, and nothing goes to Kafka or
// the live feed, since the log already holds what the first run published.
func (p *Processor) handle(ctx context.Context, batch []stream.Message, publish bool) error {
	later, err := p.stage(ctx, batch, publish)
	for _, f := range later {
		if err != nil {
			break
		}
		err = f(ctx)
	}
	return err
}

// stage is the first stage of a batch: decode, validate and prepare it
// (the Go side of applying it, state.Store.Prepare). It returns the two
// later ones: apply, then publish.
func (p *Processor) stage(ctx context.Context, batch []stream.Message, publish bool) ([]func(context.Context) error, error) {
	p.m.batchSize.Observe(float64(len(batch)))
	now := p.now()
	out := &outputs{opens: map[string][]byte{}}
	events := make([]stream.Event, len(batch))
	errs := make([]error, len(batch))
	p.parallel(len(batch), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			m := batch[i]
			e, err := stream.Decode(m.Topic, m.Value)
			if err == nil {
				err = p.checkTime(e, now)
			}
			if err == nil {
				err = stream.CheckJurisdiction(e, p.cfg.Jurisdiction)
			}
			events[i], errs[i] = e, err
		}
	})
	ops := make([]state.Op, 0, len(batch))
	for i, m := range batch {
		if errs[i] != nil {
			if publish {
				p.deadLetter(out, m, errs[i])
			}
			continue
		}
		_, consent := events[i].(*stream.Consent)
		ops = append(ops, state.Op{Event: events[i], Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Audit: consent && publish})
	}
	policy := p.policy.Policy()
	prep, err := p.prepare(ctx, policy, ops)
	if err != nil {
		return nil, err
	}
	var mark uint64
	return []func(context.Context) error{
		func(ctx context.Context) error {
			// Written without waiting: Redis executes this batch after the
			// one before, whose replies may still be on their way.
			if publish {
				mark = p.pending.mark()
			}
			p.write(ctx, prep)
			return nil
		},
		func(ctx context.Context) error {
			if publish {
				defer p.pending.done(mark)
			}
			return p.applyStage(ctx, batch, out, policy, ops, prep, mark, publish)
		},
		func(ctx context.Context) error {
			if !publish {
				return nil
			}
			return p.publishStage(ctx, batch, out)
		},
	}, nil
}

// applyStage is the third stage of a batch: it reads the batch's results
// from Redis (written by the second, p.write) and evaluates the policy
// once per student touched, into out. mark is the batch's mark in
// p.pending, taken before its scripts were written.
func (p *Processor) applyStage(ctx context.Context, batch []stream.Message, out *outputs, policy *rules.Policy, ops []state.Op, prep []prepared, mark uint64, publish bool) error {
	results, err := p.send(ctx, policy, ops, prep)
	if err != nil {
		return err
	}
	applied := p.now()
	if p.logger.Enabled(ctx, slog.LevelDebug) {
		p.logger.Debug("batch applied", "outcomes", outcomes(ops, results))
	}
	students := map[string]*latest{}
	for i, r := range results {
		op := ops[i]
		h := op.Event.EventHeader()
		if r.Status == state.Applied || r.Status == state.Late {
			p.m.latency.Observe(applied.Sub(h.TS.Time).Seconds())
		}
		if c, ok := op.Event.(*stream.Consent); ok && publish && (r.Status == state.Applied || r.Status == state.Erased || r.AuditPending) {
			// A pending audit is that of a consent a stopped run applied
			// and did not publish the record of: published now.
			out.events = append(out.events, consentAudit(c, r))
			out.audited = append(out.audited, op)
		}
		if r.Status == state.Erased || (r.AuditPending && r.Erasure) {
			// A pending one was erased, and counted, by the run that
			// stopped before publishing its record; its tile may remain.
			if r.Status == state.Erased {
				p.m.erasures.Inc()
			}
			p.logger.Info("camera-derived state erased after consent revocation",
				"student", h.Student, "session", r.ErasedSession, "keys", r.ErasedKeys, "event", h.ID, "redelivered", r.Status != state.Erased)
			if r.ErasedSession != "" {
				if err := p.retry(ctx, "erase tile", func() error {
					return p.rdb.HDel(ctx, state.TilesKey(r.ErasedSession), h.Student).Err()
				}); err != nil {
					return err
				}
			}
			continue
		}
		// A duplicate with its state is evaluated too: the run that applied
		// it may have crashed before publishing what the rules made of it,
		// and reconciling with the open warnings raises only what is new.
		if !publish || (r.Status != state.Applied && r.Status != state.Duplicate) || (r.Live == nil && r.Academic == nil) {
			continue
		}
		l := students[h.Student]
		if l == nil {
			l = &latest{order: len(students)}
			students[h.Student] = l
		}
		l.open = r.Open
		if r.Live != nil {
			l.score, l.live, l.liveAt = op.Event.(*stream.Score), r.Live, h.TS.Time
		}
		if r.Academic != nil {
			l.academic, l.acadAt = r.Academic, h.TS.Time
		}
	}
	if !publish {
		return nil
	}
	// Evaluate in the order students appeared, so replays are deterministic.
	ids := make([]string, 0, len(students))
	for id := range students {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return students[ids[i]].order < students[ids[j]].order })
	if err := p.readCampus(ctx, policy, ids, students); err != nil {
		return err
	}
	// A document a batch before this one computed and had not saved when
	// this one's scripts read the stored one is newer than what they read.
	p.pending.Lock()
	for _, id := range ids {
		if doc, ok := p.pending.newer(id, mark); ok {
			students[id].open = doc
		}
	}
	p.pending.Unlock()
	for _, id := range ids {
		p.evaluateStudent(policy, id, students[id], out)
	}
	p.pending.Lock()
	for id, doc := range out.opens {
		p.pending.opens[id] = pendingDoc{doc: doc}
	}
	p.pending.Unlock()
	p.recordLag(batch)
	return nil
}

// publishStage is the third stage of a batch: it publishes warnings and
// tiles to Kafka, mirrors warnings into the live feed and saves the
// open-warnings documents.
func (p *Processor) publishStage(ctx context.Context, batch []stream.Message, out *outputs) error {
	var save func(redis.Pipeliner)
	if len(out.opens) > 0 {
		save = func(pipe redis.Pipeliner) {
			for id, doc := range out.opens {
				pipe.Set(ctx, state.WarnKey(id), doc, 0)
			}
		}
	}
	if err := p.flush(ctx, out, save); err != nil {
		return err
	}
	if len(out.audited) > 0 {
		if err := p.retry(ctx, "audit markers", func() error { return p.store.AuditsPublished(ctx, out.audited) }); err != nil {
			return err
		}
	}
	if len(out.opens) > 0 {
		p.pending.Lock()
		p.pending.saves++
		for id, doc := range out.opens {
			// A later batch may have a newer document pending already;
			// an equal one is what Redis holds now, and goes once every
			// batch in flight has read it (pendingDocs.done).
			if cur, ok := p.pending.opens[id]; ok && cur.saved == 0 && bytes.Equal(cur.doc, doc) {
				cur.saved = p.pending.saves
				p.pending.opens[id] = cur
			}
		}
		p.pending.Unlock()
	}
	p.countWarnings(out.warnings)
	if p.hook != nil {
		p.hook(batch, time.Now())
	}
	return nil
}

// outcomes summarises a batch's results for debug logs: per topic and
// partition, how many events had each outcome.
func outcomes(ops []state.Op, results []state.Result) string {
	type key struct {
		topic  string
		part   int
		status state.Status
	}
	var order []key
	n := map[key]int{}
	for i, op := range ops {
		k := key{op.Topic, op.Partition, results[i].Status}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	var b strings.Builder
	for i, k := range order {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s/%d:%s=%d", k.topic, k.part, k.status, n[k])
	}
	return b.String()
}

// parallel runs f over [0, n) split into Parallel contiguous ranges, one
// goroutine each.
func (p *Processor) parallel(n int, f func(lo, hi int)) {
	k := min(p.cfg.Parallel, n)
	if k <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for g := 0; g < k; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(g*n/k, (g+1)*n/k)
		}()
	}
	wg.Wait()
}

// prepared is one group of a batch, prepared (state.Store.Prepare).
type prepared struct {
	idx     []int // the group's ops, by index in the batch
	ops     []state.Op
	prep    *state.Prepared
	written time.Time // when write sent prep
}

// prepare splits a batch's students into Parallel groups and prepares each
// (concurrently): the Go side of applying them, done while Redis applies
// the previous batch. A student's events all fall in one group, in order,
// so per-student order holds; events of different students do not depend
// on each other.
func (p *Processor) prepare(ctx context.Context, policy *rules.Policy, ops []state.Op) ([]prepared, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	k := min(p.cfg.Parallel, len(ops))
	groups := make([]prepared, k)
	for i, op := range ops {
		g := 0
		if k > 1 {
			h := fnv.New32a()
			h.Write([]byte(op.Event.EventHeader().Student))
			g = int(h.Sum32() % uint32(k))
		}
		groups[g].idx = append(groups[g].idx, i)
		groups[g].ops = append(groups[g].ops, op)
	}
	var eg errgroup.Group
	for g := range groups {
		if len(groups[g].ops) == 0 {
			continue
		}
		eg.Go(func() error {
			return p.retry(ctx, "prepare", func() error {
				prep, err := p.store.Prepare(ctx, policy, groups[g].ops)
				if err != nil {
					p.m.redisErrors.Inc()
					p.ready.Store(false)
					return err
				}
				groups[g].prep = prep
				return nil
			})
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return groups, nil
}

// write sends each prepared group of a batch to Redis on its own lane,
// without waiting for the replies (state.Store.Write): group g of every
// batch goes on lane g, so Redis applies a group's batches in order while
// their replies are read, by send, in the next stage.
func (p *Processor) write(ctx context.Context, groups []prepared) {
	for g := range groups {
		if groups[g].prep != nil {
			groups[g].written = time.Now()
			p.store.Write(ctx, groups[g].prep, g)
		}
	}
}

// send reads the results of the prepared groups of a batch (written by
// write; a group it did not write is sent now), each concurrently, and
// returns them in the batch's order. A group that fails is applied again,
// afresh, until it succeeds or ctx ends.
func (p *Processor) send(ctx context.Context, policy *rules.Policy, ops []state.Op, groups []prepared) ([]state.Result, error) {
	results := make([]state.Result, len(ops))
	var eg errgroup.Group
	for _, g := range groups {
		if len(g.ops) == 0 {
			continue
		}
		eg.Go(func() error {
			return p.retry(ctx, "apply", func() error {
				start := time.Now()
				if g.prep != nil && !g.written.IsZero() {
					start = g.written
				}
				var res []state.Result
				var err error
				if g.prep != nil {
					res, err = p.store.Await(ctx, g.prep)
					g.prep = nil
				} else {
					res, err = p.store.Apply(ctx, policy, g.ops)
				}
				if err != nil {
					p.m.redisErrors.Inc()
					p.ready.Store(false)
					return err
				}
				p.ready.Store(true)
				p.m.scriptDur.Observe(time.Since(start).Seconds())
				// Counted as soon as the group is applied: another group of
				// the batch may fail, and its redelivery will find these
				// events already applied.
				for j, i := range g.idx {
					results[i] = res[j]
					p.m.events.WithLabelValues(g.ops[j].Topic, res[j].Status.String()).Inc()
				}
				return nil
			})
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// checkTime refuses clock-skewed events: a timestamp further in the future
// than MaxSkew would pin a student's live windows ahead of real time.
func (p *Processor) checkTime(e stream.Event, now time.Time) error {
	if ts := e.EventHeader().TS.Time; ts.After(now.Add(p.cfg.MaxSkew)) {
		return fmt.Errorf("%w: ts: %s is more than %v ahead of the processor's clock", stream.ErrInvalid, ts.Format(time.RFC3339), p.cfg.MaxSkew)
	}
	return nil
}

// consentAudit is the audit record of a consent change the state took:
// who answered (the guardian, for a minor), which scope, granted or not,
// under which notice, and what a revocation erased.
func consentAudit(c *stream.Consent, r state.Result) *stream.Audit {
	actor, role := "student:"+c.Student, "student"
	if c.Guardian != "" {
		actor, role = "guardian:"+c.Guardian, "guardian"
	}
	verb := "granted"
	counts := map[string]int64{"granted": 1}
	if !c.Granted {
		verb, counts["granted"] = "revoked", 0
	}
	detail := c.Scope + " consent " + verb + " under notice " + c.PolicyVersion
	if r.Status == state.Erased || r.Erasure {
		counts["erased_keys"] = r.ErasedKeys
		detail += "; camera-derived live state erased"
	}
	// The record's id derives from the consent event's, so that the record
	// a stopped run published before it could clear the outbox marker, and
	// publishes again, reads as the same record.
	h := stream.NewHeader(c.Student, c.TS.Time)
	h.ID = stream.DerivedID(c.ID, c.TS.Time, stream.AuditConsentChange)
	return &stream.Audit{Header: h, Actor: actor, Role: role,
		Action: stream.AuditConsentChange, Target: c.Scope, Counts: counts, Detail: detail}
}

// readCampus adds the imported campus signals (classpulse import) of each
// student with academic news to their evaluation, when the policy's
// behaviour or participation rule is on: those rules are judged with the
// student's other academic rules, on their next click or grade.
func (p *Processor) readCampus(ctx context.Context, policy *rules.Policy, ids []string, students map[string]*latest) error {
	if !policy.Behaviour.Enabled && !policy.Participation.Enabled {
		return nil
	}
	var reads []ingest.CampusRead
	for _, id := range ids {
		if l := students[id]; l.academic != nil {
			reads = append(reads, ingest.CampusRead{Student: id, Now: l.acadAt})
		}
	}
	return p.retry(ctx, "campus signals", func() error {
		cs, err := ingest.ReadCampusMany(ctx, p.rdb, reads, policy, func(student string, err error) {
			p.logger.Warn("campus signal entry unreadable; left out", "student", student, "err", err)
		})
		if err != nil {
			p.m.redisErrors.Inc()
			return err
		}
		for i, r := range reads {
			students[r.Student].campus = cs[i]
		}
		return nil
	})
}

func (p *Processor) evaluateStudent(policy *rules.Policy, id string, l *latest, out *outputs) {
	open := parseOpen(l.open)
	changed := false
	session := ""
	if l.live != nil {
		session = l.score.Session
		snap := &rules.Snapshot{Student: id, Now: l.liveAt, Live: liveSnapshot(l.score, l.live)}
		var ws []*stream.Warning
		open, ws = rules.Reconcile(policy, id, session, open, rules.EvaluateFamilies(policy, snap, rules.FamilyLive), rules.FamilyLive, l.liveAt)
		changed = changed || len(ws) > 0
		p.emit(out, ws)
	}
	if l.academic != nil {
		snap := l.academic.Snapshot(id, l.acadAt)
		snap.Campus = l.campus
		var ws []*stream.Warning
		open, ws = rules.Reconcile(policy, id, session, open, rules.EvaluateFamilies(policy, snap, rules.FamilyAcademic), rules.FamilyAcademic, l.acadAt)
		changed = changed || len(ws) > 0
		p.emit(out, ws)
	}
	if changed {
		doc, err := json.Marshal(open)
		if err == nil {
			out.opens[id] = doc
		}
	}
	if l.live != nil {
		out.events = append(out.events, tileOf(l.score, l.live, open.Level()))
	}
}

func (p *Processor) emit(out *outputs, ws []*stream.Warning) {
	for _, w := range ws {
		out.events = append(out.events, w)
		out.warnings = append(out.warnings, w)
	}
}

func liveSnapshot(sc *stream.Score, l *state.Live) *rules.Live {
	return &rules.Live{
		Session: sc.Session, Course: sc.Course, Captured: true,
		Attention1m: l.W1.Attention, Attention2m: l.W2.Attention, Attention5m: l.W5.Attention,
		Face1m: l.W1.Face, Face2m: l.W2.Face, Face5m: l.W5.Face,
		Masked1m:   l.W1.Masked,
		Confused1m: l.W1.Confused, Confused2m: l.W2.Confused, Confused5m: l.W5.Confused,
		Frustrated1m: l.W1.Frustrated, Frustrated2m: l.W2.Frustrated, Frustrated5m: l.W5.Frustrated,
		Engaged1m: l.W1.Engaged, Bored1m: l.W1.Bored,
		Samples1m: l.W1.Seconds, Samples2m: l.W2.Seconds, Samples5m: l.W5.Seconds,
		FaceAbsentSeconds: l.FaceAbsentSeconds,
	}
}

// tileOf summarises a student's live state for the class grid.
func tileOf(sc *stream.Score, l *state.Live, level string) *stream.Tile {
	t := &stream.Tile{
		Header:       stream.NewHeader(sc.Student, sc.TS.Time),
		Session:      sc.Session,
		Course:       sc.Course,
		Captured:     true,
		Attention:    l.W1.Attention,
		FacePresent:  l.FaceAbsentSeconds == 0,
		Masked:       l.W1.Masked >= 0.5,
		WarningLevel: level,
	}
	if l.W1.LearningSeconds > 0 {
		best, name := -1.0, ""
		for i, v := range []float64{l.W1.Engaged, l.W1.Confused, l.W1.Bored, l.W1.Frustrated} {
			if v > best {
				best, name = v, stream.LearningNames[i]
			}
		}
		t.Dominant = name
	}
	return t
}
