package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Message is one record read from Kafka, with its topic, partition, offset
// and the partition's high-water mark.
type Message = kafka.Message

// BatchHandler applies a batch of messages. It returns nil only once every
// message has had its effect (applied, or sent to the DLQ); only then are
// the offsets committed. It should retry transient failures itself and
// return an error only when its context ends.
type BatchHandler func(ctx context.Context, batch []Message) error

// StagedHandler applies a batch in stages. The call itself is the first
// stage; it returns the later ones (at most MaxLaterStages; none when
// nothing is left to do), and the batch's offsets are committed only after
// the last returned nil. The consumer runs a batch's later stages while
// the next batch's first stage runs, and stage k of a batch after stage k
// of the batch before it, so that consecutive batches overlap like a
// pipeline: a later stage must not depend on anything an earlier stage of
// a later batch changes. Like a BatchHandler, every stage retries
// transient failures itself and fails only when its context ends.
type StagedHandler func(ctx context.Context, batch []Message) (later []func(context.Context) error, err error)

// MaxLaterStages is the most later stages a StagedHandler may return.
const MaxLaterStages = 3

// ConsumerConfig configures a Consumer. Brokers is required; every other
// field documents its default.
type ConsumerConfig struct {
	// Brokers are the bootstrap host:port pairs. Required.
	Brokers []string
	// Group is the consumer group id. Default "classpulse-processor".
	Group string
	// Topics to consume. Default InputTopics.
	Topics []string
	// MaxBatch is the most messages handed to the handler at once. Default 500.
	MaxBatch int
	// BatchWait is how long to wait for more messages once one has arrived,
	// before handing over a partial batch. Default 0.5ms: longer waits set
	// the batch cycle at moderate rates, keeping batches small and latency up.
	BatchWait time.Duration
	// CommitInterval is how often applied offsets are committed. Default 1s,
	// at least 100ms.
	// Offsets are committed only after the handler returned nil for them.
	CommitInterval time.Duration
	// SessionTimeout is the group session timeout. Default 10s.
	SessionTimeout time.Duration
	// ShutdownGrace bounds how long a batch in flight may still run after
	// the context is cancelled. Default 10s.
	ShutdownGrace time.Duration
	// TLS, when set, makes the consumer connect over TLS (see
	// config.TLS.Client for --kafka-tls*). Default plain TCP.
	TLS *tls.Config
}

func (c *ConsumerConfig) applyDefaults() {
	if c.Group == "" {
		c.Group = "classpulse-processor"
	}
	if len(c.Topics) == 0 {
		c.Topics = InputTopics
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 500 * time.Microsecond
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c *ConsumerConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("consumer: no brokers given (--brokers or CLASSPULSE_BROKERS)")
	}
	return nil
}

// Consumer reads topics as a member of a consumer group and hands batches
// to a handler, committing offsets only after they were applied.
type Consumer struct {
	cfg     ConsumerConfig
	handler StagedHandler
	logger  *slog.Logger
	ran     atomic.Bool
}

// NewConsumer builds a consumer whose handler applies each batch fully
// before the next is handed over; Run starts it.
func NewConsumer(cfg ConsumerConfig, handler BatchHandler, logger *slog.Logger) (*Consumer, error) {
	return NewStagedConsumer(cfg, func(ctx context.Context, batch []Message) ([]func(context.Context) error, error) {
		return nil, handler(ctx, batch)
	}, logger)
}

// NewStagedConsumer builds a consumer that overlaps a batch's later stages
// with the next batches' (see StagedHandler); Run starts it.
func NewStagedConsumer(cfg ConsumerConfig, handler StagedHandler, logger *slog.Logger) (*Consumer, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Consumer{cfg: cfg, handler: handler, logger: logger.With("component", "consumer", "group", cfg.Group)}, nil
}

// Run consumes until ctx is cancelled, then lets the batch in flight finish
// (within ShutdownGrace), commits what was applied, leaves the group and
// returns nil. It may be called once.
//
// It reads with franz-go's client: one fetch request per broker carries
// every partition this member owns (a client with a connection and a fetch
// loop per partition asks the broker many times more often for the same
// records). Applied offsets are marked and committed every CommitInterval;
// before partitions are revoked in a rebalance the member finishes every
// batch in flight and commits, so their next owner starts where it ended.
func (c *Consumer) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errors.New("consumer: Run called twice")
	}
	gate := newRebalanceGate()
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID("classpulse"),
		kgo.WithLogger(newKgoLogger(c.logger)),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(c.cfg.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16 << 20),
		kgo.FetchMaxPartitionBytes(1 << 20),
		kgo.FetchMaxWait(2 * time.Second),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.HeartbeatInterval(c.cfg.SessionTimeout / 5),
		kgo.RebalanceTimeout(c.cfg.SessionTimeout),
		// Partitions added to a topic are seen within this, and rebalanced.
		kgo.MetadataMaxAge(10 * time.Second),
		kgo.AutoCommitMarks(),
		// franz-go refuses intervals under 100ms.
		kgo.AutoCommitInterval(max(c.cfg.CommitInterval, 100*time.Millisecond)),
		kgo.OnPartitionsRevoked(func(rctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			// The cooperative balancer calls this with nothing revoked as
			// a rebalance begins; stalling the group then gains nothing.
			if len(revoked) == 0 {
				return
			}
			gate.quiesce()
			defer gate.resume()
			if err := cl.CommitMarkedOffsets(rctx); err != nil {
				c.logger.Warn("commit before revocation failed; the next owner redoes those batches (a no-op)", "err", err)
			}
		}),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) {
			gate.quiesce()
			gate.resume()
		}),
	}
	if c.cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.cfg.TLS))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	// Work on a batch continues for a grace period after ctx ends, so that
	// a shutdown finishes the batch and commits it instead of redoing it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.cfg.ShutdownGrace, cancelWork)
		<-work.Done()
		t.Stop()
	})
	defer stop()

	// Batches in their later stages (flights), oldest first: at most
	// MaxLaterStages while the next one runs its first stage. Each marks
	// its batch's offsets for commit when its last stage succeeds.
	var flights []*flight
	drain := func() error {
		var first error
		for _, f := range flights {
			if err := f.wait(); err != nil && first == nil {
				first = err
			}
		}
		flights = nil
		return first
	}
	// On the way out: every batch in flight ends, what was applied is
	// committed, and the member leaves the group (its partitions move at
	// once instead of after the session timeout).
	defer func() {
		drain()
		gate.close()
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := cl.CommitMarkedOffsets(commitCtx); err != nil {
			c.logger.Warn("final commit failed; the next owner redoes those batches (a no-op)", "err", err)
		}
		cl.Close()
	}()
	for {
		// A rebalance waits for this member: every batch in flight ends
		// before the partitions move.
		if gate.wanted() {
			err := drain()
			gate.quiesced()
			if err != nil {
				if work.Err() != nil {
					return nil
				}
				return err
			}
			if !gate.awaitResume(ctx) {
				return nil
			}
			continue
		}
		batch, marks, err := c.poll(ctx, cl, gate)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.logger.Warn("fetch failed, retrying", "err", err)
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return nil
			}
			continue
		}
		if len(batch) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			continue // woken for a rebalance
		}
		if c.logger.Enabled(ctx, slog.LevelDebug) {
			c.logger.Debug("batch fetched", "messages", len(batch), "ranges", ranges(batch))
		}
		later, err := c.handler(work, batch)
		if err == nil && len(later) > MaxLaterStages {
			err = fmt.Errorf("%d later stages, at most %d", len(later), MaxLaterStages)
		}
		if err != nil {
			if work.Err() != nil {
				c.logger.Warn("batch abandoned at shutdown; it will be redelivered", "messages", len(batch))
				return nil
			}
			return fmt.Errorf("consumer: handler: %w", err)
		}
		for len(flights) > 0 && (len(flights) == MaxLaterStages || len(later) == 0) {
			err := flights[0].wait()
			flights = flights[1:]
			if err != nil {
				// The batches after it were applied in part at most, and
				// are not committed: they are redelivered, and applying
				// them again is a no-op.
				if work.Err() != nil {
					return nil
				}
				return err
			}
		}
		if len(later) == 0 {
			c.commit(work, cl, batch, marks)
		} else {
			var prev *flight
			if len(flights) > 0 {
				prev = flights[len(flights)-1]
			}
			flights = append(flights, c.fly(work, cl, later, batch, marks, prev))
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// poll returns the next batch: it waits for a first record, then takes
// what else arrives within BatchWait, up to MaxBatch. It returns early,
// with what it has, when a rebalance waits for this member.
//
// marks holds, per topic and partition, the offset after the batch's last
// record there, with that record's leader epoch: what commit marks.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client, gate *rebalanceGate) (batch []Message, marks offsetMarks, err error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !gate.wakeOn(cancel) {
		return nil, nil, nil
	}
	defer gate.wakeOn(nil)
	marks = offsetMarks{}
	wait := pctx
	for len(batch) < c.cfg.MaxBatch {
		fetches := cl.PollRecords(wait, c.cfg.MaxBatch-len(batch))
		if batch == nil {
			// Sized by what came, not by MaxBatch: at moderate rates
			// batches are far smaller than MaxBatch, and a slice of
			// MaxBatch messages is 76 KB at the default.
			batch = make([]Message, 0, fetches.NumRecords())
		}
		var ferr error
		fetches.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = fmt.Errorf("%s/%d: %w", topic, part, err)
			}
		})
		n := len(batch)
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				last := p.Records[len(p.Records)-1]
				marks.add(p.Topic, p.Partition, kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1})
			}
			for _, r := range p.Records {
				m := Message{
					Topic:         r.Topic,
					Partition:     int(r.Partition),
					Offset:        r.Offset,
					HighWaterMark: p.HighWatermark,
					Key:           r.Key,
					Value:         r.Value,
					Time:          r.Timestamp,
				}
				for _, h := range r.Headers {
					m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
				}
				batch = append(batch, m)
			}
		})
		if ferr != nil {
			if len(batch) == 0 {
				return nil, nil, ferr
			}
			// Other partitions' records came with it: they are handed
			// over, and the error is not lost.
			c.logger.Warn("fetch failed for a partition; the others' records are kept", "err", ferr)
		}
		if len(batch) == n {
			return batch, marks, nil // nothing more within BatchWait, or woken
		}
		if wait == pctx {
			var stop context.CancelFunc
			wait, stop = context.WithTimeout(pctx, c.cfg.BatchWait)
			defer stop()
		}
	}
	return batch, marks, nil
}

// offsetMarks is the offset to commit per topic and partition.
type offsetMarks map[string]map[int32]kgo.EpochOffset

func (m offsetMarks) add(topic string, part int32, o kgo.EpochOffset) {
	parts := m[topic]
	if parts == nil {
		parts = map[int32]kgo.EpochOffset{}
		m[topic] = parts
	}
	if cur, ok := parts[part]; !ok || cur.Less(o) {
		parts[part] = o
	}
}

// rebalanceGate lets a rebalance callback (on the client's group goroutine)
// wait until the consume loop has finished every batch in flight, and
// keeps the loop from polling until the callback is done.
type rebalanceGate struct {
	mu       sync.Mutex
	want     bool
	closed   bool
	wake     context.CancelFunc // cancels the loop's poll in progress
	quiet    chan struct{}      // closed by the loop once drained
	resumeCh chan struct{}      // closed by the callback when done
}

func newRebalanceGate() *rebalanceGate { return &rebalanceGate{} }

// quiesce, from a callback, asks the loop to finish its batches and waits
// until it has (at once when the loop has stopped).
func (g *rebalanceGate) quiesce() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.want = true
	g.quiet = make(chan struct{})
	g.resumeCh = make(chan struct{})
	quiet := g.quiet
	if g.wake != nil {
		g.wake()
	}
	g.mu.Unlock()
	<-quiet
}

// resume, from a callback, lets the loop poll again.
func (g *rebalanceGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resumeCh != nil {
		close(g.resumeCh)
		g.resumeCh = nil
	}
}

// wanted reports, to the loop, that a callback waits for it.
func (g *rebalanceGate) wanted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.want
}

// quiesced tells the waiting callback the loop has no batch in flight.
func (g *rebalanceGate) quiesced() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want = false
	if g.quiet != nil {
		close(g.quiet)
		g.quiet = nil
	}
}

// awaitResume waits until the callback is done; false if ctx ended first.
func (g *rebalanceGate) awaitResume(ctx context.Context) bool {
	g.mu.Lock()
	ch := g.resumeCh
	g.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// wakeOn registers the cancel of the loop's poll in progress (nil: none);
// false when a callback already waits, so that the loop does not poll.
func (g *rebalanceGate) wakeOn(cancel context.CancelFunc) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cancel != nil && g.want {
		return false
	}
	g.wake = cancel
	return true
}

// close marks the loop stopped: callbacks no longer wait for it.
func (g *rebalanceGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.quiet != nil {
		close(g.quiet)
		g.quiet = nil
	}
}

// kgoLogger passes the client's warnings and errors to slog and, when the
// logger shows debug lines, its info lines too (joining the group,
// partitions assigned and revoked) as debug lines. The client asks Level
// before each line it might log, so the level is settled once, here.
type kgoLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
}

func newKgoLogger(l *slog.Logger) kgoLogger {
	level := kgo.LogLevelWarn
	if l.Enabled(context.Background(), slog.LevelDebug) {
		level = kgo.LogLevelInfo
	}
	return kgoLogger{l: l, level: level}
}

func (k kgoLogger) Level() kgo.LogLevel { return k.level }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		k.l.Error("kafka client: "+msg, keyvals...)
	case kgo.LogLevelWarn:
		k.l.Warn("kafka client: "+msg, keyvals...)
	default:
		k.l.Debug("kafka client: "+msg, keyvals...)
	}
}

// flight is a batch in its later stages.
type flight struct {
	// stage[k] is closed once stage k (MaxLaterStages: the commit) of the
	// batch ended or will not run; failed is set before a stage that
	// failed, or will not run, is closed, and err before the last closes.
	stage  [MaxLaterStages + 1]chan struct{}
	failed atomic.Bool
	err    error
}

func (f *flight) wait() error {
	<-f.stage[MaxLaterStages]
	return f.err
}

// fly runs a batch's later stages, each after the same stage of the batch
// before (prev, nil for none) ended, then commits the batch after prev's
// commit. A failure of prev's, or of one of its own stages, ends the
// flight without committing.
func (c *Consumer) fly(work context.Context, cl *kgo.Client, later []func(context.Context) error, batch []Message, marks offsetMarks, prev *flight) *flight {
	f := &flight{}
	for k := range f.stage {
		f.stage[k] = make(chan struct{})
	}
	// A batch with fewer stages runs them as the last ones before the
	// commit, in step with batches that have more.
	skip := MaxLaterStages - len(later)
	go func() {
		k := 0
		defer func() {
			for ; k < len(f.stage); k++ {
				close(f.stage[k])
			}
		}()
		fail := func(err error) {
			f.err = err
			f.failed.Store(true)
		}
		for ; k <= MaxLaterStages; k++ {
			if prev != nil {
				<-prev.stage[k]
				if prev.failed.Load() {
					// Applying this batch's stage before the earlier batch's
					// would let a redelivery of that one find its events
					// "already applied" by offset.
					fail(errors.New("consumer: an earlier batch failed"))
					return
				}
			}
			switch {
			case k == MaxLaterStages:
				c.commit(work, cl, batch, marks)
			case k >= skip:
				if err := later[k-skip](work); err != nil {
					if work.Err() != nil {
						c.logger.Warn("batch abandoned at shutdown; it will be redelivered", "messages", len(batch))
					}
					fail(fmt.Errorf("consumer: handler: %w", err))
					return
				}
			}
			close(f.stage[k])
		}
	}()
	return f
}

// commit marks a batch's offsets as applied; the client commits them with
// the next CommitInterval tick, before a revocation and at shutdown.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, batch []Message, marks offsetMarks) {
	cl.MarkCommitOffsets(marks)
	if c.logger.Enabled(ctx, slog.LevelDebug) {
		c.logger.Debug("batch committed", "ranges", ranges(batch))
	}
}

// ranges describes which offsets a batch holds, for debug logs: one
// "topic/partition:first-last(count)" per partition, in order of first
// appearance. A count below last-first+1 shows a gap.
func ranges(batch []Message) string {
	type span struct {
		first, last int64
		n           int
	}
	type tp struct {
		topic string
		part  int
	}
	var order []tp
	spans := map[tp]*span{}
	for _, m := range batch {
		k := tp{m.Topic, m.Partition}
		sp := spans[k]
		if sp == nil {
			sp = &span{first: m.Offset}
			spans[k] = sp
			order = append(order, k)
		}
		sp.last = m.Offset
		sp.n++
	}
	var b strings.Builder
	for i, k := range order {
		if i > 0 {
			b.WriteByte(' ')
		}
		sp := spans[k]
		fmt.Fprintf(&b, "%s/%d:%d-%d(%d)", k.topic, k.part, sp.first, sp.last, sp.n)
	}
	return b.String()
}

// sleepCtx sleeps for d or until ctx ends; it reports whether it slept fully.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
