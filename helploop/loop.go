package helploop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// System is the actor of every step the loop records ("by": "system").
const System = "system"

// Step results the loop writes on its follow_up steps; the dashboard shows
// a confirm button on ResultProposeClose and the effectiveness report
// counts them.
const (
	ResultReminded     = "reminded"
	ResultProgress     = "progress"
	ResultNoProgress   = "no_progress"
	ResultTargetMet    = "target_met"
	ResultTargetUnmet  = "target_unmet"
	ResultNoData       = "no_data"
	ResultNotMet       = "not_met" // a check with no earlier look to compare with
	ResultProposeClose = "propose_close_helped"
	ResultEscalated    = "escalated_red"
)

// notePrefix marks every note the loop writes, so no reader mistakes it for
// a person's.
const notePrefix = "[automatic follow-up] "

// Config configures a Loop; the zero value works.
type Config struct {
	// Every is how often the loop looks for due checkpoints. Default 1m.
	Every time.Duration
	// Lease is how long a claimed checkpoint stays claimed if its replica
	// dies before finishing it; another replica then runs it. Default 5m.
	Lease time.Duration
	// Replica names this process in claims. Default host name and pid.
	Replica string
}

func (c *Config) applyDefaults() {
	if c.Every <= 0 {
		c.Every = time.Minute
	}
	if c.Lease <= 0 {
		c.Lease = 5 * time.Minute
	}
	if c.Replica == "" {
		h, _ := os.Hostname()
		c.Replica = h + ":" + strconv.Itoa(os.Getpid())
	}
}

// Publisher publishes events to Kafka; *stream.Producer satisfies it.
type Publisher interface {
	Publish(ctx context.Context, events ...stream.Event) error
}

// Notifier routes a message about a warning to people; *notify.Dispatcher
// satisfies it. The loop hands it a copy of the warning whose state is
// "follow_up" and whose reason is the reminder.
type Notifier interface {
	Notify(ctx context.Context, w *stream.Warning) error
}

// StateFollowUp is the state of the warnings the loop hands the Notifier;
// notify routes list it among their states (and do by default).
const StateFollowUp = "follow_up"

// Loop is the follow-up scheduler. Run it in any number of replicas.
type Loop struct {
	cfg    Config
	rdb    redis.UniversalClient
	store  *queue.Store
	reader *state.Reader
	policy *rules.Holder
	pub    Publisher
	notify Notifier
	logger *slog.Logger
	now    func() time.Time
	ran    atomic.Bool
	// beforeClaim, in tests, runs between reading a plan and claiming one
	// of its checkpoints: where another replica may finish it.
	beforeClaim func()
	metrics     struct {
		checkpoints *prometheus.CounterVec
		errors      prometheus.Counter
		tick        prometheus.Histogram
	}
}

// Option is a wiring or test seam.
type Option func(*Loop)

// WithClock sets the clock checkpoints are compared with.
func WithClock(now func() time.Time) Option { return func(l *Loop) { l.now = now } }

// WithNotifier sends reminders through n (default: none; steps are still
// recorded).
func WithNotifier(n Notifier) Option { return func(l *Loop) { l.notify = n } }

// New builds a loop over the queue read model and student state in rdb,
// the policy in force in policy, publishing with pub.
func New(cfg Config, rdb redis.UniversalClient, reader *state.Reader, policy *rules.Holder, pub Publisher, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Loop, error) {
	cfg.applyDefaults()
	if rdb == nil || reader == nil || policy == nil || pub == nil {
		return nil, errors.New("helploop: Redis, state reader, policy and publisher are required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	l := &Loop{cfg: cfg, rdb: rdb, store: queue.NewStore(rdb), reader: reader, policy: policy, pub: pub,
		logger: logger.With("component", "helploop"), now: time.Now}
	f := promauto.With(reg)
	l.metrics.checkpoints = f.NewCounterVec(prometheus.CounterOpts{
		Name: "classpulse_helploop_checkpoints_total",
		Help: "Help-plan checkpoints handled, by kind (remind, check, deadline) and result.",
	}, []string{"kind", "result"})
	l.metrics.errors = f.NewCounter(prometheus.CounterOpts{
		Name: "classpulse_helploop_errors_total", Help: "Errors while following up help plans (the checkpoint is retried).",
	})
	l.metrics.tick = f.NewHistogram(prometheus.HistogramOpts{
		Name: "classpulse_helploop_tick_duration_seconds", Help: "Duration of one pass over the plans in force.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Run looks for due checkpoints every Config.Every until ctx ends, then
// returns nil. It may be called once.
func (l *Loop) Run(ctx context.Context) error {
	if l.ran.Swap(true) {
		return errors.New("helploop: Run called twice")
	}
	t := time.NewTicker(l.cfg.Every)
	defer t.Stop()
	for {
		if _, err := l.Tick(ctx); err != nil && ctx.Err() == nil {
			l.logger.Warn("follow-up pass failed; retrying next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick makes one pass: every due checkpoint of every plan in force that no
// replica has run yet is run. It returns how many it ran.
func (l *Loop) Tick(ctx context.Context) (int, error) {
	start := time.Now()
	defer func() { l.metrics.tick.Observe(time.Since(start).Seconds()) }()
	p := l.policy.Policy()
	ran := 0
	var firstErr error
	for _, loop := range []string{"in_progress", "escalated"} {
		for offset := 0; ; offset += 1000 {
			recs, total, err := l.store.List(ctx, queue.Filter{Loop: loop, Limit: 1000, Offset: offset})
			if err != nil {
				return ran, err
			}
			for _, rec := range recs {
				n, err := l.follow(ctx, p, rec)
				ran += n
				if err != nil {
					l.metrics.errors.Inc()
					l.logger.Warn("following up a plan", "ref", rec.Ref, "err", err)
					if firstErr == nil {
						firstErr = err
					}
				}
			}
			if offset+len(recs) >= total || len(recs) == 0 {
				break
			}
		}
	}
	return ran, firstErr
}

// plan is the help plan in force on a warning and what the loop pinned.
type plan struct {
	step     *stream.Intervention
	playbook *rules.Playbook
	hash     map[string]string
}

// latestPlan returns the latest plan step, unless the warning was closed
// after it.
func latestPlan(steps []*stream.Intervention) *stream.Intervention {
	var last *stream.Intervention
	for _, st := range steps {
		switch st.Action {
		case stream.ActionPlan:
			if st.Due != nil {
				last = st
			}
		case stream.ActionClose:
			last = nil
		}
	}
	return last
}

// follow runs the due checkpoints of one warning's plan.
func (l *Loop) follow(ctx context.Context, p *rules.Policy, rec *queue.Record) (int, error) {
	if rec.Student == "" {
		return 0, nil
	}
	steps, err := l.store.Steps(ctx, rec.Ref)
	if err != nil {
		return 0, err
	}
	st := latestPlan(steps)
	if st == nil {
		return 0, nil
	}
	pl, err := l.pin(ctx, p, rec, st)
	if err != nil || pl == nil {
		return 0, err
	}
	now := l.now()
	cps := pl.playbook.Checkpoints(p, st.TS.Time, st.Due.Time)
	// Only the latest due checkpoint of each kind runs; earlier ones missed
	// while no replica was running are marked superseded. A due deadline
	// supersedes everything before it.
	var due []rules.Checkpoint
	for _, c := range cps {
		if !c.At.After(now) {
			due = append(due, c)
		}
	}
	deadlineDue := len(due) > 0 && due[len(due)-1].Kind == rules.CheckpointDeadline
	ran := 0
	for i, c := range due {
		if _, done := pl.hash[fieldDone(st.ID, c.ID)]; done {
			continue
		}
		superseded := deadlineDue && c.Kind != rules.CheckpointDeadline
		for _, later := range due[i+1:] {
			superseded = superseded || later.Kind == c.Kind
		}
		if l.beforeClaim != nil {
			l.beforeClaim()
		}
		ok, err := l.rdb.SetNX(ctx, claimKey(rec.Ref, st.ID, c.ID), l.cfg.Replica, l.cfg.Lease).Result()
		if err != nil {
			return ran, fmt.Errorf("helploop: claim %s %s: %w", rec.Ref, c.ID, err)
		}
		if !ok {
			continue // another replica runs it now
		}
		// The plan was read before the claim: another replica may have run
		// the checkpoint and released its claim since. Marking done and
		// releasing are one transaction, so with the claim held, done is
		// final.
		if done, err := l.rdb.HExists(ctx, planKey(rec.Ref), fieldDone(st.ID, c.ID)).Result(); err != nil {
			return ran, fmt.Errorf("helploop: claim %s %s: %w", rec.Ref, c.ID, err)
		} else if done {
			if err := l.rdb.Del(ctx, claimKey(rec.Ref, st.ID, c.ID)).Err(); err != nil {
				return ran, fmt.Errorf("helploop: releasing %s %s: %w", rec.Ref, c.ID, err)
			}
			continue
		}
		result := "superseded"
		if !superseded {
			if result, err = l.run(ctx, p, rec, pl, c); err != nil {
				// Leave the claim to lapse: the lease spaces out retries.
				return ran, err
			}
			ran++
		}
		l.metrics.checkpoints.WithLabelValues(c.Kind, result).Inc()
		b, _ := json.Marshal(map[string]any{"result": result, "at": c.At, "by": l.cfg.Replica, "ran_at": now.UTC()})
		pipe := l.rdb.TxPipeline()
		pipe.HSet(ctx, planKey(rec.Ref), fieldDone(st.ID, c.ID), string(b))
		pipe.Del(ctx, claimKey(rec.Ref, st.ID, c.ID))
		if _, err := pipe.Exec(ctx); err != nil {
			return ran, fmt.Errorf("helploop: marking %s %s done: %w", rec.Ref, c.ID, err)
		}
		pl.hash[fieldDone(st.ID, c.ID)] = string(b)
	}
	return ran, nil
}

// pin returns the plan with the playbook pinned to it: the policy's
// playbook for the warning's category and level when the loop first saw
// the plan, so that a later escalation does not change the plan's
// schedule. It records the gap at that moment, the baseline of the first
// progress check. nil: the plan has no playbook (not followed up).
func (l *Loop) pin(ctx context.Context, p *rules.Policy, rec *queue.Record, st *stream.Intervention) (*plan, error) {
	key := planKey(rec.Ref)
	h, err := l.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("helploop: plan state of %s: %w", rec.Ref, err)
	}
	id, ok := h[fieldPlaybook(st.ID)]
	if !ok {
		id = "-"
		if pb := p.Playbook(rec.Category, rec.Level); pb != nil {
			id = pb.ID
		}
		fields := []any{fieldPlaybook(st.ID), id}
		if id != "-" {
			if f, ok, err := l.holding(ctx, p, rec, l.now()); err != nil {
				return nil, err
			} else if ok {
				fields = append(fields, fieldGap(st.ID), strconv.FormatFloat(rules.Gap(f), 'f', -1, 64))
			}
		}
		// The replica that pins first wins (HSETNX). The gap goes first, so
		// that whoever sees a pinned playbook sees its baseline too (a
		// replica pinning at the same moment may have written it).
		if len(fields) > 2 {
			if err := l.rdb.HSetNX(ctx, key, fields[2].(string), fields[3]).Err(); err != nil {
				return nil, fmt.Errorf("helploop: pin %s: %w", rec.Ref, err)
			}
		}
		if err := l.rdb.HSetNX(ctx, key, fields[0].(string), id).Err(); err != nil {
			return nil, fmt.Errorf("helploop: pin %s: %w", rec.Ref, err)
		}
		if h, err = l.rdb.HGetAll(ctx, key).Result(); err != nil {
			return nil, fmt.Errorf("helploop: plan state of %s: %w", rec.Ref, err)
		}
		id = h[fieldPlaybook(st.ID)]
	}
	if id == "-" {
		return nil, nil
	}
	pb := p.PlaybookByID(id)
	if pb == nil {
		l.logger.Warn("the playbook pinned to a plan is no longer in the policy; not following it up", "ref", rec.Ref, "playbook", id)
		return nil, nil
	}
	return &plan{step: st, playbook: pb, hash: h}, nil
}

// holding re-reads the student's state and evaluates the warning's rule at
// now. ok is false when the student has no academic state at all.
func (l *Loop) holding(ctx context.Context, p *rules.Policy, rec *queue.Record, now time.Time) (*rules.Finding, bool, error) {
	a, err := l.reader.Academic(ctx, rec.Student)
	if errors.Is(err, state.ErrNoState) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	snap := a.Snapshot(rec.Student, now)
	if p.Behaviour.Enabled || p.Participation.Enabled {
		if snap.Campus, err = ingest.ReadCampus(ctx, l.rdb, rec.Student, p, now); err != nil {
			return nil, false, err
		}
	}
	return rules.Holding(p, snap, rec.Rule, rec.Course, rules.FamilyAcademic), true, nil
}

// eventID is the id of an event the loop publishes for one checkpoint: a
// ULID at the checkpoint's time whose random part is derived from warning,
// plan, checkpoint and purpose, so a retried checkpoint publishes the same
// ids and the queue applies it once.
func eventID(at time.Time, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return ulid.MustNew(ulid.Timestamp(at), bytes.NewReader(sum[:])).String()
}

// run does one checkpoint and returns its result.
func (l *Loop) run(ctx context.Context, p *rules.Policy, rec *queue.Record, pl *plan, c rules.Checkpoint) (string, error) {
	st, pb := pl.step, pl.playbook
	f, hasData, err := l.holding(ctx, p, rec, l.now())
	if err != nil {
		return "", err
	}
	gap := rules.Gap(f)
	prev, hasPrev := pl.hash[fieldGap(st.ID)]
	prevGap, _ := strconv.ParseFloat(prev, 64)
	day := c.At.In(p.Location()).Format("Monday 2 January")
	status := "the condition no longer holds"
	if f != nil {
		status = "still holds (" + f.Level + "): " + f.Reason
	}
	var result, notes, message string
	var events []stream.Event
	switch c.Kind {
	case rules.CheckpointRemind:
		result = ResultReminded
		notes = fmt.Sprintf("Weekly reminder of %s (playbook %s): %s.", day, pb.ID, status)
		message = fmt.Sprintf("Reminder (%s) of the help plan %q, due %s: %s", day, pb.Title, st.Due.Time.In(p.Location()).Format("2006-01-02"), status)
	case rules.CheckpointCheck:
		switch {
		case !hasData:
			result, notes = ResultNoData, "Progress check of "+day+": the student has no study data yet."
		case f == nil:
			result, notes = ResultTargetMet, "Progress check of "+day+": target met — "+status+"."
		case hasPrev && gap >= prevGap:
			result = ResultNoProgress
			notes = fmt.Sprintf("Progress check of %s: no progress (gap %g, was %g); %s.", day, gap, prevGap, status)
			if pb.FamilyContact() {
				notes += " The playbook asks the counsellor to contact the family now."
			}
		case !hasPrev:
			result = ResultNotMet
			notes = fmt.Sprintf("Progress check of %s: target not met yet (gap %g); %s.", day, gap, status)
		default:
			result = ResultProgress
			notes = fmt.Sprintf("Progress check of %s: progress (gap %g, was %g); %s.", day, gap, prevGap, status)
		}
		message = notes
	case rules.CheckpointDeadline:
		switch {
		case !hasData:
			result, notes = ResultNoData, "Deadline "+day+": the student has no study data; a counsellor decides."
		case f == nil:
			result = ResultProposeClose
			notes = "Deadline " + day + ": target met — " + status + ". Proposal: close this warning as helped. A counsellor confirms; the system does not close it."
		case pb.OnUnmet == rules.OnUnmetRaiseRed && rec.Level == stream.LevelYellow:
			result = ResultEscalated
			notes = "Deadline " + day + ": target not met — " + status + ". The playbook raises the warning to red."
			ow := &rules.OpenWarning{Ref: rec.Ref, Rule: rec.Rule, Course: rec.Course, Session: rec.Session,
				Category: rec.Category, Level: rec.Level, Family: rules.FamilyAcademic, Evidence: f.Evidence, RaisedAt: rec.RaisedAt}
			_, w := rules.Escalate(ow, rec.Student, stream.LevelRed,
				"Help plan deadline passed with the target unmet: "+f.Reason, eventID(c.At, rec.Ref, st.ID, c.ID, "warning"), c.At)
			w.TS = stream.At(c.At)
			events = append(events, w)
		default:
			result = ResultTargetUnmet
			notes = "Deadline " + day + ": target not met — " + status + ". A counsellor decides the next step."
		}
		message = notes
	}
	action := stream.ActionFollowUp
	if result == ResultEscalated {
		action = stream.ActionEscalate
	}
	iv := &stream.Intervention{
		Header:  stream.Header{V: stream.Version, ID: eventID(c.At, rec.Ref, st.ID, c.ID, "step"), TS: stream.At(c.At), Student: rec.Student},
		Warning: rec.Ref, Action: action, Channel: "system", By: System, Result: result,
		Notes: notePrefix + notes,
	}
	events = append(events, iv)
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return "", fmt.Errorf("helploop: %s event for %s: %w", c.ID, rec.Ref, err)
		}
	}
	if err := l.pub.Publish(ctx, events...); err != nil {
		return "", fmt.Errorf("helploop: publishing %s of %s: %w", c.ID, rec.Ref, err)
	}
	if hasData && c.Kind != rules.CheckpointRemind {
		l.rdb.HSet(ctx, planKey(rec.Ref), fieldGap(st.ID), strconv.FormatFloat(gap, 'f', -1, 64))
	}
	l.remind(ctx, rec, c, st, message)
	l.logger.Info("help-plan checkpoint", "ref", rec.Ref, "checkpoint", c.ID, "playbook", pb.ID, "result", result)
	return result, nil
}

// remind hands the notifier the warning with the reminder as its reason.
// A failed reminder is logged, not retried here: notify records and
// retries its own deliveries, and the step is already on the topic.
func (l *Loop) remind(ctx context.Context, rec *queue.Record, c rules.Checkpoint, st *stream.Intervention, message string) {
	if l.notify == nil || len(rec.Warning) == 0 {
		return
	}
	var w stream.Warning
	if err := json.Unmarshal(rec.Warning, &w); err != nil {
		l.logger.Warn("warning of a record unreadable; no reminder", "ref", rec.Ref, "err", err)
		return
	}
	w.ID = eventID(c.At, rec.Ref, st.ID, c.ID, "notify")
	w.TS = stream.At(c.At)
	w.State = StateFollowUp
	w.Reason = message
	if err := l.notify.Notify(ctx, &w); err != nil {
		l.logger.Warn("sending a follow-up reminder", "ref", rec.Ref, "err", err)
	}
}
