package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
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
const MaxLaterStages = 2

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
	// CommitInterval is how often applied offsets are committed. Default 1s.
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
func (c *Consumer) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errors.New("consumer: Run called twice")
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           c.cfg.Brokers,
		GroupID:           c.cfg.Group,
		GroupTopics:       c.cfg.Topics,
		Dialer:            NewDialer("classpulse", c.cfg.TLS),
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           2 * time.Second, // kafka-go keeps a quarter of it as RTT slack; MinBytes 1 still returns at once
		ReadBatchTimeout:  5 * time.Second,
		QueueCapacity:     2 * c.cfg.MaxBatch,
		CommitInterval:    c.cfg.CommitInterval,
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    c.cfg.SessionTimeout,
		HeartbeatInterval: c.cfg.SessionTimeout / 5,
		RebalanceTimeout:  c.cfg.SessionTimeout,
		// Rebalance as soon as partitions are added to a topic.
		WatchPartitionChanges: true,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.logger.Warn("kafka reader", "detail", fmt.Sprintf(msg, args...))
		}),
	})
	// Closing the reader flushes the last applied offsets to the group.
	defer func() {
		if err := r.Close(); err != nil {
			c.logger.Error("closing reader", "err", err)
		}
	}()

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
	// MaxLaterStages while the next one runs its first stage. Each commits
	// its batch when its last stage succeeds.
	var flights []*flight
	defer func() {
		for _, f := range flights {
			f.wait()
		}
	}()
	for {
		// A fresh slice each time: the batches in flight hold their own.
		batch := make([]Message, 0, c.cfg.MaxBatch)
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			c.logger.Warn("fetch failed, retrying", "err", err)
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return nil
			}
			continue
		}
		batch = append(batch, m)
		batch = c.fill(ctx, r, batch)
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
			if err := c.commit(work, r, batch); err != nil {
				if work.Err() != nil {
					return nil
				}
				return err
			}
		} else {
			var prev *flight
			if len(flights) > 0 {
				prev = flights[len(flights)-1]
			}
			flights = append(flights, c.fly(work, r, later, batch, prev))
		}
		if ctx.Err() != nil {
			return nil
		}
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
func (c *Consumer) fly(work context.Context, r *kafka.Reader, later []func(context.Context) error, batch []Message, prev *flight) *flight {
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
				if err := c.commit(work, r, batch); err != nil {
					fail(err)
					return
				}
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

// commit hands a batch's offsets to the reader, which commits them with
// the next CommitInterval tick.
func (c *Consumer) commit(ctx context.Context, r *kafka.Reader, batch []Message) error {
	if err := r.CommitMessages(ctx, batch...); err != nil {
		return fmt.Errorf("consumer: commit: %w", err)
	}
	if c.logger.Enabled(ctx, slog.LevelDebug) {
		c.logger.Debug("batch committed", "ranges", ranges(batch))
	}
	return nil
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

// fill adds messages already fetched, waiting at most BatchWait for more.
func (c *Consumer) fill(ctx context.Context, r *kafka.Reader, batch []Message) []Message {
	wait, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	for len(batch) < c.cfg.MaxBatch {
		m, err := r.FetchMessage(wait)
		if err != nil {
			return batch
		}
		batch = append(batch, m)
	}
	return batch
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
