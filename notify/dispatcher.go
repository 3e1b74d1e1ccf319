package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// Redis keys of the dispatcher.
const (
	// DeadLetterKey lists deliveries given up on, newest last (capped at
	// 10000): the Attempt record of the last try plus the message.
	DeadLetterKey = "classpulse:notify:dead"
	// dueKey orders pending keys by when they are due (Unix ms).
	dueKey = "classpulse:notify:due"
)

// AttemptsKey is the Redis list of every delivery attempt for one warning
// (all its transitions share ref). A student's list carries the student's
// hash tag, so erasing the student erases it.
func AttemptsKey(student, ref string) string {
	if student == "" {
		return "classpulse:notify:attempts:" + ref
	}
	return state.StudentTag(student) + ":notify:" + ref
}

func pendingKey(channel, to string) string {
	sum := sha256.Sum256([]byte(to))
	return "classpulse:notify:pending:" + channel + ":" + hex.EncodeToString(sum[:12])
}

func sentKey(id, channel, to string) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + to))
	return "classpulse:notify:sent:" + id + ":" + hex.EncodeToString(sum[:12])
}

// Attempt is one recorded delivery attempt (or a decision not to send now).
type Attempt struct {
	TS      time.Time `json:"ts"`
	Warning string    `json:"warning"`
	Ref     string    `json:"ref"`
	Channel string    `json:"channel"`
	To      string    `json:"to"`
	Role    string    `json:"role,omitempty"`
	Try     int       `json:"try,omitempty"`
	// Outcome is delivered, failed (will retry), dead (given up),
	// held (quiet hours), digest (queued for the next digest) or
	// skipped (no address for the role).
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	Digest  int    `json:"digest,omitempty"` // warnings in a digest delivery
}

// pending is a held or digest-queued message.
type pending struct {
	Warning *stream.Warning `json:"warning"`
	Channel string          `json:"channel"`
	To      string          `json:"to"`
	Role    string          `json:"role,omitempty"`
	Digest  bool            `json:"digest"`
}

// target is one (channel, address) a warning goes to.
type target struct {
	channel, to, role string
	digest, loud      bool
}

// Dispatcher consumes warnings and delivers notifications. Run it once.
type Dispatcher struct {
	cfg    Config
	rdb    redis.UniversalClient
	logger *slog.Logger
	send   *sender
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) bool
	ran    atomic.Bool

	deliveries *prometheus.CounterVec
	warnings   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// Option is a wiring or test seam.
type Option func(*Dispatcher)

// WithClock sets the clock used for quiet hours, digests and records.
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// WithHTTPClient sets the client webhooks and bots are called with.
func WithHTTPClient(c *http.Client) Option { return func(d *Dispatcher) { d.send.client = c } }

// New builds a dispatcher; reg may be nil.
func New(cfg Config, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Dispatcher, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, errors.New("notify: no Redis client")
	}
	if logger == nil {
		logger = slog.Default()
	}
	f := promauto.With(reg)
	d := &Dispatcher{
		cfg: cfg, rdb: rdb, logger: logger.With("component", "notify"), now: time.Now,
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_notify_deliveries_total",
			Help: "Notification delivery attempts and decisions, by channel and outcome (delivered, failed, dead, held, digest, skipped).",
		}, []string{"channel", "outcome"}),
		warnings: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_notify_warnings_total",
			Help: "Warnings read by the dispatcher, by outcome (routed, unrouted, invalid, duplicate).",
		}, []string{"outcome"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "classpulse_notify_attempt_duration_seconds",
			Help:    "Duration of one delivery attempt, by channel.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"channel"}),
	}
	d.send = &sender{cfg: &d.cfg, client: &http.Client{}, now: func() time.Time { return d.now() }}
	d.sleep = func(ctx context.Context, dur time.Duration) bool {
		t := time.NewTimer(dur)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Run consumes classpulse.warnings.v1 in its consumer group and flushes
// held and digest messages until ctx ends; then it returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.ran.Swap(true) {
		return errors.New("notify: Run called twice")
	}
	cons, err := stream.NewConsumer(stream.ConsumerConfig{
		Brokers: d.cfg.Brokers, TLS: d.cfg.KafkaTLS, Group: d.cfg.Group, Topics: []string{stream.TopicWarnings}, MaxBatch: 100,
	}, d.HandleBatch, d.logger)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cons.Run(ctx) })
	g.Go(func() error {
		t := time.NewTicker(time.Duration(d.cfg.FlushEvery))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := d.Flush(ctx); err != nil && ctx.Err() == nil {
					d.logger.Warn("flushing held notifications", "err", err)
				}
			}
		}
	})
	return g.Wait()
}

// HandleBatch routes and delivers every warning of a batch; it returns once
// each delivery is done, dead-lettered or queued, so offsets are committed
// only then (stream.BatchHandler).
func (d *Dispatcher) HandleBatch(ctx context.Context, batch []stream.Message) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, m := range batch {
		e, err := stream.Decode(stream.TopicWarnings, m.Value)
		if err != nil {
			d.warnings.WithLabelValues("invalid").Inc()
			d.logger.Warn("skipping invalid warning", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		w := e.(*stream.Warning)
		g.Go(func() error { return d.notifyRetrying(ctx, w) })
	}
	return g.Wait()
}

// notifyRetrying retries Notify while Redis is unreachable, as a batch
// handler must; addresses already served are not sent to twice (sentKey).
func (d *Dispatcher) notifyRetrying(ctx context.Context, w *stream.Warning) error {
	backoff := 100 * time.Millisecond
	for {
		err := d.Notify(ctx, w)
		if err == nil || ctx.Err() != nil {
			return err
		}
		d.logger.Warn("notifying failed; retrying", "ref", w.Ref, "err", err, "in", backoff)
		if !d.sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (r *Route) matches(w *stream.Warning) bool {
	return (len(r.Categories) == 0 || slices.Contains(r.Categories, w.Category)) &&
		stream.LevelRank(w.Level) >= stream.LevelRank(r.MinLevel) &&
		slices.Contains(r.States, w.State)
}

// targets resolves the routes matching w to (channel, address) pairs.
func (d *Dispatcher) targets(ctx context.Context, w *stream.Warning) ([]target, []Attempt, error) {
	var out []target
	var skipped []Attempt
	seen := map[string]bool{}
	add := func(t target) {
		k := t.channel + "\x00" + t.to
		if !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	var profile map[string]string
	for _, r := range d.cfg.Routes {
		if !r.matches(w) {
			continue
		}
		for _, to := range r.To {
			add(target{channel: r.Channel, to: to, digest: r.Digest, loud: r.IgnoreQuietHours})
		}
		if len(r.Roles) == 0 || w.Student == "" {
			continue
		}
		if profile == nil {
			var err error
			if profile, err = d.rdb.HGetAll(ctx, state.ProfileKey(w.Student)).Result(); err != nil {
				return nil, nil, fmt.Errorf("notify: roster of %s: %w", w.Student, err)
			}
		}
		for _, role := range r.Roles {
			var ids []string
			switch role {
			case "student":
				ids = []string{w.Student}
			case "guardian":
				if profile["minor"] != "1" {
					continue // guardians hear only about minors (DESIGN.md §1)
				}
				ids = splitIDs(profile["guardians"])
			default:
				ids = splitIDs(profile[role+"s"])
			}
			if len(ids) == 0 {
				skipped = append(skipped, Attempt{Channel: r.Channel, Role: role, Outcome: "skipped", Error: "no " + role + " on the roster"})
			}
			for _, id := range ids {
				c, err := d.rdb.HGetAll(ctx, ingest.ContactKey(id)).Result()
				if err != nil {
					return nil, nil, fmt.Errorf("notify: contact %s: %w", id, err)
				}
				addr := c["email"]
				if r.Channel == ChannelWebhook {
					addr = c["webhook"]
				}
				if addr == "" {
					skipped = append(skipped, Attempt{Channel: r.Channel, To: id, Role: role, Outcome: "skipped", Error: "contact " + id + " has no " + r.Channel + " address"})
					continue
				}
				add(target{channel: r.Channel, to: addr, role: role, digest: r.Digest, loud: r.IgnoreQuietHours})
			}
		}
	}
	return out, skipped, nil
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Notify routes one warning and delivers, holds or queues it per target.
func (d *Dispatcher) Notify(ctx context.Context, w *stream.Warning) error {
	ts, skipped, err := d.targets(ctx, w)
	if err != nil {
		return err
	}
	for _, a := range skipped {
		a.Warning, a.Ref = w.ID, w.Ref
		d.record(ctx, w.Student, a)
	}
	if len(ts) == 0 {
		d.warnings.WithLabelValues("unrouted").Inc()
		return nil
	}
	d.warnings.WithLabelValues("routed").Inc()
	now := d.now()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, t := range ts {
		quietUntil, quiet := d.quietUntil(now)
		if t.digest || (quiet && !t.loud) {
			due := now.Add(time.Duration(d.cfg.DigestInterval))
			outcome := "digest"
			if !t.digest {
				outcome, due = "held", quietUntil
			} else if q, ok := d.quietUntil(due); ok && !t.loud {
				due = q
			}
			if err := d.hold(ctx, pending{Warning: w, Channel: t.channel, To: t.to, Role: t.role, Digest: t.digest}, due); err != nil {
				return err
			}
			d.record(ctx, w.Student, Attempt{Warning: w.ID, Ref: w.Ref, Channel: t.channel, To: t.to, Role: t.role, Outcome: outcome})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.deliverOnce(ctx, w, t); err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// deliverOnce sends w to t unless an earlier run already did (a redelivered
// warning after a crash between send and commit).
func (d *Dispatcher) deliverOnce(ctx context.Context, w *stream.Warning, t target) error {
	key := sentKey(w.ID, t.channel, t.to)
	if n, err := d.rdb.Exists(ctx, key).Result(); err == nil && n > 0 {
		d.warnings.WithLabelValues("duplicate").Inc()
		return nil
	}
	m := d.message([]*stream.Warning{w}, t)
	ok, err := d.deliver(ctx, m, []*stream.Warning{w})
	if err != nil {
		return err
	}
	if ok {
		d.rdb.Set(ctx, key, "1", 7*24*time.Hour)
	}
	return nil
}

// deliver tries m up to MaxAttempts times with exponential backoff,
// recording each try on every warning it carries; after the last failure
// (or a permanent one) it dead-letters m. It reports whether m got through;
// the error is only for a cancelled context.
func (d *Dispatcher) deliver(ctx context.Context, m *Message, ws []*stream.Warning) (bool, error) {
	backoff := time.Duration(d.cfg.BackoffMin)
	for try := 1; ; try++ {
		start := time.Now()
		err := d.send.send(ctx, m)
		d.latency.WithLabelValues(m.Channel).Observe(time.Since(start).Seconds())
		a := Attempt{Channel: m.Channel, To: m.To, Role: m.Role, Try: try, Outcome: "delivered"}
		if len(ws) > 1 {
			a.Digest = len(ws)
		}
		var perm permanentError
		switch {
		case err == nil:
		case errors.As(err, &perm) || try >= d.cfg.MaxAttempts:
			a.Outcome, a.Error = "dead", err.Error()
		default:
			a.Outcome, a.Error = "failed", err.Error()
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		for _, w := range ws {
			a.Warning, a.Ref = w.ID, w.Ref
			d.record(ctx, w.Student, a)
		}
		switch a.Outcome {
		case "delivered":
			return true, nil
		case "dead":
			b, _ := json.Marshal(map[string]any{"attempt": a, "subject": m.Subject, "text": m.Text, "warnings": ws})
			pipe := d.rdb.Pipeline()
			pipe.RPush(ctx, DeadLetterKey, b)
			pipe.LTrim(ctx, DeadLetterKey, -10000, -1)
			if _, err := pipe.Exec(ctx); err != nil {
				d.logger.Error("dead-lettering a notification", "err", err)
			}
			d.logger.Warn("notification dead-lettered", "channel", m.Channel, "tries", try, "err", a.Error)
			return false, nil
		}
		if !d.sleep(ctx, backoff) {
			return false, ctx.Err()
		}
		backoff = min(2*backoff, time.Duration(d.cfg.BackoffMax))
	}
}

// record appends a to the warning's attempts list and counts it.
func (d *Dispatcher) record(ctx context.Context, student string, a Attempt) {
	a.TS = d.now().UTC()
	d.deliveries.WithLabelValues(a.Channel, a.Outcome).Inc()
	b, _ := json.Marshal(a)
	key := AttemptsKey(student, a.Ref)
	pipe := d.rdb.Pipeline()
	pipe.RPush(ctx, key, b)
	pipe.LTrim(ctx, key, -1000, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		d.logger.Error("recording a delivery attempt", "ref", a.Ref, "err", err)
	}
}

// Attempts reads the recorded attempts of a warning, oldest first.
func Attempts(ctx context.Context, rdb redis.UniversalClient, student, ref string) ([]Attempt, error) {
	vals, err := rdb.LRange(ctx, AttemptsKey(student, ref), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Attempt, 0, len(vals))
	for _, v := range vals {
		var a Attempt
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("attempt record: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// quietUntil reports whether t is in quiet hours and, if so, when they end.
func (d *Dispatcher) quietUntil(t time.Time) (time.Time, bool) {
	if d.cfg.quietStart < 0 || d.cfg.quietStart == d.cfg.quietEnd {
		return time.Time{}, false
	}
	lt := t.In(d.cfg.loc)
	m := lt.Hour()*60 + lt.Minute()
	s, e := d.cfg.quietStart, d.cfg.quietEnd
	in := s < e && m >= s && m < e || s > e && (m >= s || m < e)
	if !in {
		return time.Time{}, false
	}
	end := time.Date(lt.Year(), lt.Month(), lt.Day(), e/60, e%60, 0, 0, d.cfg.loc)
	if !end.After(lt) {
		end = end.AddDate(0, 0, 1)
	}
	return end, true
}

// hold queues p until due (the earliest due of its key wins).
func (d *Dispatcher) hold(ctx context.Context, p pending, due time.Time) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	key := pendingKey(p.Channel, p.To)
	pipe := d.rdb.TxPipeline()
	pipe.RPush(ctx, key, b)
	pipe.ZAddNX(ctx, dueKey, redis.Z{Score: float64(due.UnixMilli()), Member: key})
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("notify: queueing a held message: %w", err)
	}
	return nil
}

// Flush sends every held message and digest that is due.
func (d *Dispatcher) Flush(ctx context.Context) error {
	now := d.now()
	keys, err := d.rdb.ZRangeByScore(ctx, dueKey, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(now.UnixMilli())}).Result()
	if err != nil {
		return err
	}
	for _, key := range keys {
		var vals *redis.StringSliceCmd
		if _, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			vals = p.LRange(ctx, key, 0, -1)
			p.Del(ctx, key)
			p.ZRem(ctx, dueKey, key)
			return nil
		}); err != nil {
			return err
		}
		var digest []*stream.Warning
		var digestRaw []string
		var dt target
		entries := vals.Val()
		for i, v := range entries {
			var p pending
			if err := json.Unmarshal([]byte(v), &p); err != nil {
				d.logger.Error("dropping unreadable held message", "err", err)
				continue
			}
			t := target{channel: p.Channel, to: p.To, role: p.Role}
			if p.Digest {
				digest, dt = append(digest, p.Warning), t
				digestRaw = append(digestRaw, v)
				continue
			}
			if err := d.deliverOnce(ctx, p.Warning, t); err != nil {
				d.requeue(ctx, key, append(entries[i:], digestRaw...))
				return err
			}
		}
		if len(digest) > 0 {
			if _, err := d.deliver(ctx, d.message(digest, dt), digest); err != nil {
				d.requeue(ctx, key, digestRaw)
				return err
			}
		}
	}
	return nil
}

// requeue puts messages taken by an interrupted Flush back, due at once, so
// a shutdown mid-flush loses none (an address already served is skipped on
// the next flush by its sent marker).
func (d *Dispatcher) requeue(ctx context.Context, key string, entries []string) {
	if len(entries) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	args := make([]any, len(entries))
	for i, e := range entries {
		args[i] = e
	}
	pipe := d.rdb.TxPipeline()
	pipe.RPush(ctx, key, args...)
	pipe.ZAddNX(ctx, dueKey, redis.Z{Score: float64(d.now().UnixMilli()), Member: key})
	if _, err := pipe.Exec(ctx); err != nil {
		d.logger.Error("requeueing held notifications failed; they are lost", "messages", len(entries), "err", err)
	}
}

// message renders one warning, or a digest of several, for a target.
func (d *Dispatcher) message(ws []*stream.Warning, t target) *Message {
	m := &Message{Channel: t.channel, To: t.to, Role: t.role}
	line := func(w *stream.Warning) string {
		var b strings.Builder
		fmt.Fprintf(&b, "[%s] %s %s warning", strings.ToUpper(w.Level), w.Category, w.State)
		if w.Student != "" {
			fmt.Fprintf(&b, " for student %s", w.Student)
		} else {
			fmt.Fprintf(&b, " for session %s", w.Session)
		}
		if w.Course != "" {
			fmt.Fprintf(&b, ", course %s", w.Course)
		}
		fmt.Fprintf(&b, ": %s (rule %s", w.Reason, w.Rule)
		keys := make([]string, 0, len(w.Evidence))
		for k := range w.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, ", %s %g", k, w.Evidence[k])
		}
		b.WriteString(")")
		if d.cfg.DashboardURL != "" && w.Student != "" {
			fmt.Fprintf(&b, "\n%s/student?id=%s", strings.TrimRight(d.cfg.DashboardURL, "/"), w.Student)
		}
		return b.String()
	}
	if len(ws) == 1 {
		w := ws[0]
		m.Subject = fmt.Sprintf("classpulse: %s %s warning %s", w.Level, w.Category, w.State)
		if w.State == StateFollowUp {
			m.Subject = fmt.Sprintf("classpulse: help-plan follow-up on a %s %s warning", w.Level, w.Category)
		}
		m.Text = line(w) + "\n"
		m.Payload = map[string]any{"type": "warning", "role": t.role, "warning": w}
		return m
	}
	m.Subject = fmt.Sprintf("classpulse digest: %d warnings", len(ws))
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("- " + line(w) + "\n")
	}
	m.Text = b.String()
	m.Payload = map[string]any{"type": "digest", "role": t.role, "warnings": ws}
	return m
}
