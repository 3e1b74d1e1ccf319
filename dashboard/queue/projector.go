package queue

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

var (
	//go:embed warning.lua
	warningLua    string
	warningScript = redis.NewScript(warningLua)
	//go:embed step.lua
	stepLua    string
	stepScript = redis.NewScript(stepLua)
)

// ProjectorConfig configures a Projector. Brokers is required; every other
// field documents its default.
type ProjectorConfig struct {
	// Brokers are the Kafka bootstrap host:port pairs. Required.
	Brokers []string
	// TLS, when set, makes the consumer speak TLS to Kafka (--kafka-tls*).
	// Default plain TCP.
	TLS *tls.Config
	// Group is the consumer group. Default "classpulse-queue". Use a fresh
	// group (and an empty Redis) to rebuild the model from the topics.
	Group string
	// LiveMaxLen caps the live interventions stream (approximately).
	// Default 100000.
	LiveMaxLen int64
}

func (c *ProjectorConfig) applyDefaults() {
	if c.Group == "" {
		c.Group = "classpulse-queue"
	}
	if c.LiveMaxLen <= 0 {
		c.LiveMaxLen = 100000
	}
}

// Validate reports a configuration that cannot work.
func (c *ProjectorConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("queue: no brokers given")
	}
	return nil
}

// Projector consumes warnings and interventions and applies them to the
// read model. Run it in as many replicas as you like: the consumer group
// shares the partitions and every apply is idempotent.
type Projector struct {
	cfg    ProjectorConfig
	rdb    redis.UniversalClient
	logger *slog.Logger
	events *prometheus.CounterVec
	errs   prometheus.Counter
	ran    atomic.Bool
}

// NewProjector builds a projector; Run starts it.
func NewProjector(cfg ProjectorConfig, rdb redis.UniversalClient, logger *slog.Logger, reg prometheus.Registerer) (*Projector, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	return &Projector{
		cfg:    cfg,
		rdb:    rdb,
		logger: logger.With("component", "queue"),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_queue_events_total",
			Help: "Events applied to the warning queue read model, by topic and outcome (applied, duplicate, invalid).",
		}, []string{"topic", "outcome"}),
		errs: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_queue_redis_errors_total", Help: "Redis errors while applying queue events (retried).",
		}),
	}, nil
}

// Run consumes until ctx ends and returns nil then. It may be called once.
func (p *Projector) Run(ctx context.Context) error {
	if p.ran.Swap(true) {
		return errors.New("queue: Run called twice")
	}
	c, err := stream.NewConsumer(stream.ConsumerConfig{
		Brokers: p.cfg.Brokers,
		TLS:     p.cfg.TLS,
		Group:   p.cfg.Group,
		Topics:  []string{stream.TopicWarnings, stream.TopicInterventions},
	}, p.Apply, p.logger)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// Apply applies a batch of messages, retrying Redis failures until ctx
// ends. Invalid messages are counted, logged and skipped: they are our own
// outputs, already validated when published, so one here is a bug upstream
// and must not block the queue.
func (p *Projector) Apply(ctx context.Context, batch []stream.Message) error {
	for i := range batch {
		m := &batch[i]
		for {
			outcome, err := p.applyOne(ctx, m.Topic, m.Value)
			if err == nil {
				p.events.WithLabelValues(m.Topic, outcome).Inc()
				break
			}
			if errors.Is(err, stream.ErrInvalid) || errors.Is(err, stream.ErrUnknownTopic) {
				p.events.WithLabelValues(m.Topic, "invalid").Inc()
				p.logger.Warn("invalid event skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
				break
			}
			p.errs.Inc()
			p.logger.Warn("applying queue event, retrying", "topic", m.Topic, "err", err)
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return nil
}

// ApplyEvent applies one encoded event of topic; it is what Apply does per
// message, exposed for tests and for rebuilding from a file.
func (p *Projector) ApplyEvent(ctx context.Context, topic string, value []byte) (outcome string, err error) {
	outcome, err = p.applyOne(ctx, topic, value)
	if err == nil {
		p.events.WithLabelValues(topic, outcome).Inc()
	}
	return outcome, err
}

func (p *Projector) applyOne(ctx context.Context, topic string, value []byte) (string, error) {
	e, err := stream.Decode(topic, value)
	if err != nil {
		return "", err
	}
	switch ev := e.(type) {
	case *stream.Warning:
		return p.applyWarning(ctx, ev, value)
	case *stream.Intervention:
		return p.applyStep(ctx, ev, value)
	}
	return "", fmt.Errorf("%w: topic %s is not projected", stream.ErrUnknownTopic, topic)
}

func (p *Projector) applyWarning(ctx context.Context, w *stream.Warning, raw []byte) (string, error) {
	ts := w.TS.UnixMilli()
	n, err := warningScript.Run(ctx, p.rdb, []string{recKey(w.Ref), keyAll, keyRoster},
		w.ID, string(raw), w.Ref, w.Student, w.Session, w.Course, w.Category, w.Level, w.Rule, w.Reason,
		w.State, ts, TermOf(w.TS.Time), stream.LevelRank(w.Level)).Int()
	if err != nil {
		return "", fmt.Errorf("queue: apply warning %s: %w", w.Ref, err)
	}
	if n == 0 {
		return "duplicate", nil
	}
	return "applied", nil
}

func (p *Projector) applyStep(ctx context.Context, iv *stream.Intervention, raw []byte) (string, error) {
	ts := iv.TS.UnixMilli()
	res, err := stepScript.Run(ctx, p.rdb, []string{recKey(iv.Warning), stepsKey(iv.Warning)},
		iv.ID, string(raw), iv.Warning, iv.Action, iv.By, iv.Owner, ts, iv.Result, iv.Student,
		strconv.Itoa(iv.TS.Year())).Result()
	if err != nil {
		return "", fmt.Errorf("queue: apply step %s: %w", iv.ID, err)
	}
	if n, ok := res.(int64); ok && n == 0 {
		return "duplicate", nil
	}
	// Only the first application mirrors the step to the live feed, so a
	// redelivery does not show it twice.
	err = p.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: LiveInterventions, MaxLen: p.cfg.LiveMaxLen, Approx: true,
		Values: map[string]any{"e": string(raw)},
	}).Err()
	if err != nil {
		// The step is applied; only the live push is lost (pages that
		// reload see it). Retrying the whole step would be a duplicate.
		p.errs.Inc()
		p.logger.Warn("mirroring a step to the live feed", "err", err)
	}
	return "applied", nil
}
