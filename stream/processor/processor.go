package processor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// Publisher sends events to Kafka; *stream.Producer satisfies it.
type Publisher interface {
	Publish(ctx context.Context, events ...stream.Event) error
}

// PolicySource hands out the policy in force; *rules.Holder satisfies it,
// so a reload takes effect at the next batch.
type PolicySource interface {
	Policy() *rules.Policy
}

// Config configures a Processor. Brokers is required to Run; every other
// field documents its default.
type Config struct {
	// Brokers are the Kafka bootstrap host:port pairs.
	Brokers []string
	// KafkaTLS, when set, makes every Kafka client of the processor (its
	// consumer groups and the rebuild reader) speak TLS (--kafka-tls*).
	// Default plain TCP.
	KafkaTLS *tls.Config
	// Group is the consumer group of the per-student stage.
	// Default "classpulse-processor".
	Group string
	// ClassGroup is the consumer group of the class stage, which reads
	// tiles keyed by session. Default "classpulse-class".
	ClassGroup string
	// MaxBatch is the most messages applied in one pipelined round.
	// Default 500.
	MaxBatch int
	// Members is how many members of the group this process runs. Each
	// owns its own partitions, so one student's events stay in order,
	// while one member's Go work (decoding, rules, publishing) overlaps
	// another's Redis round trip. Default 1.
	Members int
	// Parallel is how many goroutines decode a batch and how many groups
	// of its students are applied to Redis concurrently, each group in
	// its own pipeline; on a single Redis node, group g of every batch
	// goes on ordered connection g of the store (state.Store.Write), so
	// the process keeps Parallel such connections. Default 2: on the
	// quiet 2-core machine 2 drained 31,500 events/s against 24,800 for
	// 1 before the rounds overlapped; after, 1, 2 and 3 were within the
	// machine's noise (docs/performance.md).
	Parallel int
	// MaxSkew is how far in the future an event's timestamp may lie before
	// it is refused as clock-skewed. Default 5m.
	MaxSkew time.Duration
	// RetryMin and RetryMax bound the backoff when Redis or Kafka fail.
	// Defaults 50ms and 5s.
	RetryMin, RetryMax time.Duration
	// StaleTile is how old a student's last tile may be and still count as
	// present in the class stage. Default 30s.
	StaleTile time.Duration
	// NoClassStage turns the class stage off (for a pod that should only
	// run the per-student stage). Default false.
	NoClassStage bool
	// Jurisdiction is the legal profile of the deployment (stream.Jurisdictions);
	// under "eu" a score carrying emotion fields goes to the DLQ. Default
	// "default": every inference the student consented to.
	Jurisdiction string
	// LagExpiry is how long a partition's consumer-lag series stays
	// exported without a batch from it: after a rebalance a partition this
	// member no longer owns must not keep reporting a stale lag. Default 30s.
	LagExpiry time.Duration
	// Rebuild makes Run first wipe the student state and rebuild it from
	// the topics (see Processor.Rebuild), then consume as usual. Default
	// false.
	Rebuild bool
}

func (c *Config) applyDefaults() {
	if c.Group == "" {
		c.Group = "classpulse-processor"
	}
	if c.ClassGroup == "" {
		c.ClassGroup = "classpulse-class"
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.Members <= 0 {
		c.Members = 1
	}
	if c.Parallel <= 0 {
		c.Parallel = 2
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = 5 * time.Minute
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 50 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.StaleTile <= 0 {
		c.StaleTile = 30 * time.Second
	}
	if c.LagExpiry <= 0 {
		c.LagExpiry = 30 * time.Second
	}
}

// Processor is the stream processor: it applies input events to the
// per-student state, evaluates the warning policy, and publishes warnings
// and tiles; its class stage turns tiles into class-level signals.
type Processor struct {
	cfg     Config
	store   *state.Store
	rdb     redis.UniversalClient
	policy  PolicySource
	pub     Publisher
	logger  *slog.Logger
	m       *metrics
	now     func() time.Time
	ran     atomic.Bool
	ready   atomic.Bool
	lagMu   sync.Mutex
	lagSeen map[lagKey]time.Time // last batch per partition, to expire series
	// hook, when set, sees every batch after it had its full effect.
	hook func(batch []stream.Message, done time.Time)
	// pending holds the open-warnings documents the batches' apply stages
	// computed, by student, until every batch that may have read an older
	// stored one has evaluated: a batch evaluates against these, not what
	// its scripts read, unless the document was saved before it wrote them.
	pending pendingDocs
}

// pendingDocs are open-warnings documents computed and not yet saved, or
// saved after a batch in flight may have read the stored one. A batch
// takes a mark (the number of saves so far) before its scripts are
// written; a document saved after that mark may be newer than what its
// scripts read.
type pendingDocs struct {
	sync.Mutex
	opens map[string]pendingDoc
	saves uint64         // saves so far
	marks map[uint64]int // marks of the batches between write and evaluation
}

type pendingDoc struct {
	doc   []byte
	saved uint64 // the save that wrote it; 0 not saved yet
}

// mark registers a batch about to write its scripts; done must follow.
func (d *pendingDocs) mark() uint64 {
	d.Lock()
	defer d.Unlock()
	m := d.saves
	d.marks[m]++
	return m
}

// done unregisters a batch's mark and drops the documents saved before
// every batch still registered wrote its scripts: those read them.
func (d *pendingDocs) done(m uint64) {
	d.Lock()
	defer d.Unlock()
	if d.marks[m]--; d.marks[m] <= 0 {
		delete(d.marks, m)
	}
	oldest := d.saves
	for k := range d.marks {
		oldest = min(oldest, k)
	}
	for id, p := range d.opens {
		if p.saved != 0 && p.saved <= oldest {
			delete(d.opens, id)
		}
	}
}

// newer returns the document of student id a batch with mark m must
// evaluate against instead of the one its script read, if any.
func (d *pendingDocs) newer(id string, m uint64) ([]byte, bool) {
	p, ok := d.opens[id]
	if !ok || (p.saved != 0 && p.saved <= m) {
		return nil, false
	}
	return p.doc, true
}

// Option sets a wiring or test seam.
type Option func(*Processor)

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(p *Processor) { p.now = now } }

// WithBatchHook calls f after every batch of the per-student stage has had
// its full effect (state applied, warnings and tiles published), before its
// offsets are committed. f must not keep batch. The pipeline benchmark
// measures produce→applied latency through it.
func WithBatchHook(f func(batch []stream.Message, done time.Time)) Option {
	return func(p *Processor) { p.hook = f }
}

// New builds a processor. reg may be nil in tools that keep no metrics.
func New(cfg Config, store *state.Store, policy PolicySource, pub Publisher, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Processor, error) {
	cfg.applyDefaults()
	if store == nil || policy == nil || pub == nil {
		return nil, errors.New("processor: store, policy and publisher are required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	p := &Processor{cfg: cfg, store: store, rdb: store.Client(), policy: policy, pub: pub,
		logger: logger.With("component", "processor"), m: newMetrics(reg, store), now: time.Now, lagSeen: map[lagKey]time.Time{}}
	p.pending.opens = map[string]pendingDoc{}
	p.pending.marks = map[uint64]int{}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// Ready reports whether the last Redis round trip succeeded.
func (p *Processor) Ready() bool { return p.ready.Load() }

// Run consumes until ctx ends, then finishes the batch in flight, commits
// and returns nil. It may be called once.
func (p *Processor) Run(ctx context.Context) error {
	if p.ran.Swap(true) {
		return errors.New("processor: Run called twice")
	}
	p.ready.Store(p.rdb.Ping(ctx).Err() == nil)
	if p.cfg.Rebuild {
		if _, err := p.Rebuild(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < p.cfg.Members; i++ {
		students, err := stream.NewStagedConsumer(stream.ConsumerConfig{
			Brokers: p.cfg.Brokers, TLS: p.cfg.KafkaTLS, Group: p.cfg.Group, Topics: stream.InputTopics, MaxBatch: p.cfg.MaxBatch,
		}, p.StageBatch, p.logger)
		if err != nil {
			return err
		}
		g.Go(func() error { return students.Run(gctx) })
	}
	g.Go(func() error {
		// A member that lost every partition gets no batch that would
		// expire their series, so a ticker expires them too.
		t := time.NewTicker(p.cfg.LagExpiry / 3)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				p.expireLag()
			}
		}
	})
	if !p.cfg.NoClassStage {
		class, err := stream.NewConsumer(stream.ConsumerConfig{
			Brokers: p.cfg.Brokers, TLS: p.cfg.KafkaTLS, Group: p.cfg.ClassGroup, Topics: []string{stream.TopicTiles}, MaxBatch: p.cfg.MaxBatch,
		}, p.HandleTiles, p.logger)
		if err != nil {
			return err
		}
		g.Go(func() error { return class.Run(gctx) })
	}
	p.logger.Info("processor running", "brokers", p.cfg.Brokers, "group", p.cfg.Group, "class_stage", !p.cfg.NoClassStage)
	return g.Wait()
}

// retry runs f until it succeeds or ctx ends, backing off exponentially.
func (p *Processor) retry(ctx context.Context, what string, f func() error) error {
	wait := p.cfg.RetryMin
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up at shutdown)", what, err)
		}
		p.logger.Warn("retrying", "what", what, "err", err, "backoff", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (gave up at shutdown)", what, err)
		case <-time.After(wait):
		}
		wait = min(wait*2, p.cfg.RetryMax)
	}
}

// outputs collects what one batch publishes.
type outputs struct {
	events   []stream.Event // to Kafka: warnings, tiles, dead letters
	warnings []*stream.Warning
	opens    map[string][]byte // student → open-warnings document to save
	// audited are the consents whose audit records events holds; their
	// outbox markers are cleared once those are published.
	audited []state.Op
}

// flush publishes to Kafka first, then mirrors warnings into the live feed
// and saves lifecycle documents, so that nothing dashboards see is missing
// from the log.
func (p *Processor) flush(ctx context.Context, out *outputs, saveOpen func(pipe redis.Pipeliner)) error {
	if len(out.events) > 0 {
		if err := p.retry(ctx, "publish", func() error { return p.pub.Publish(ctx, out.events...) }); err != nil {
			return err
		}
	}
	if len(out.warnings) == 0 && saveOpen == nil {
		return nil
	}
	return p.retry(ctx, "live feed", func() error {
		pipe := p.rdb.Pipeline()
		for _, w := range out.warnings {
			b, _ := json.Marshal(w)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: state.LiveWarnings, MaxLen: state.LiveMaxLen, Approx: true, Values: []any{"e", b}})
		}
		if saveOpen != nil {
			saveOpen(pipe)
		}
		_, err := pipe.Exec(ctx)
		if err != nil {
			p.m.redisErrors.Inc()
		}
		return err
	})
}

func (p *Processor) countWarnings(ws []*stream.Warning) {
	for _, w := range ws {
		if w.State != stream.StateCleared {
			p.m.warnings.WithLabelValues(w.Category, w.Level).Inc()
		}
	}
}

func (p *Processor) deadLetter(out *outputs, m stream.Message, err error) {
	p.m.events.WithLabelValues(m.Topic, "invalid").Inc()
	p.m.dlq.WithLabelValues(m.Topic).Inc()
	p.logger.Warn("invalid event sent to DLQ", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
	out.events = append(out.events, stream.NewDeadLetter(m, err, p.now()))
}

type lagKey struct {
	topic string
	part  int
}

func (p *Processor) recordLag(batch []stream.Message) {
	last := map[lagKey]stream.Message{}
	for _, m := range batch {
		last[lagKey{m.Topic, m.Partition}] = m
	}
	now := p.now()
	p.lagMu.Lock()
	for k, m := range last {
		lag := m.HighWaterMark - m.Offset - 1
		if lag < 0 {
			lag = 0
		}
		p.m.lag.WithLabelValues(k.topic, strconv.Itoa(k.part)).Set(float64(lag))
		p.lagSeen[k] = now
	}
	p.lagMu.Unlock()
	p.expireLag()
}

// expireLag drops the lag series of partitions that sent no batch for
// LagExpiry: after a rebalance they belong to another member, which
// exports their lag.
func (p *Processor) expireLag() {
	cutoff := p.now().Add(-p.cfg.LagExpiry)
	p.lagMu.Lock()
	defer p.lagMu.Unlock()
	for k, at := range p.lagSeen {
		if at.Before(cutoff) {
			p.m.lag.DeleteLabelValues(k.topic, strconv.Itoa(k.part))
			delete(p.lagSeen, k)
			// Its students' live copies go too: the member now serving
			// the partition writes them.
			p.store.ForgetPartition(k.topic, k.part)
		}
	}
}

func parseOpen(b []byte) rules.Open {
	open := rules.Open{}
	if len(b) > 0 {
		// A document that no longer parses is replaced: the rules raise
		// whatever still holds again, which beats stopping the partition.
		_ = json.Unmarshal(b, &open)
	}
	return open
}
