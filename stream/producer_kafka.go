package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerConfig configures a Producer. The zero value is not usable:
// Brokers is required. Every other field documents its default.
type ProducerConfig struct {
	// Brokers are the bootstrap host:port pairs. Required.
	Brokers []string
	// Linger is how long a partition waits for more records before a
	// produce request is built. Default 0: records handed over while a
	// request is in flight go out together in the next one, so batching
	// costs no latency; a linger timer would add its length to every
	// live warning.
	Linger time.Duration
	// WriteTimeout bounds one produce request, and a whole Publish,
	// retries included (up to 10 per record): Publish fails after it when
	// the brokers cannot be reached. Default 10s. Publish returns once every
	// in-sync replica has the events.
	WriteTimeout time.Duration
	// ClientID names the producer to the broker. Default "classpulse".
	ClientID string
	// TLS, when set, makes the producer connect over TLS (see
	// config.TLS.Client for --kafka-tls*). Default plain TCP.
	TLS *tls.Config
}

// NewTransport is the connection set-up of every classpulse producer and
// admin client: TLS when tc is not nil, plain TCP otherwise.
func NewTransport(clientID string, tc *tls.Config) *kafka.Transport {
	return &kafka.Transport{ClientID: clientID, TLS: tc}
}

// NewDialer is the connection set-up of every kafka-go reader (the rebuild): TLS
// when tc is not nil, plain TCP otherwise.
func NewDialer(clientID string, tc *tls.Config) *kafka.Dialer {
	return &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second, DualStack: true, TLS: tc}
}

func (c *ProducerConfig) applyDefaults() {
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ClientID == "" {
		c.ClientID = "classpulse"
	}
}

// Validate reports a configuration that cannot work.
func (c *ProducerConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("producer: no brokers given (--brokers or CLASSPULSE_BROKERS)")
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("producer: broker %q is not host:port", b)
		}
	}
	return nil
}

// Producer publishes validated events, each to its own topic, keyed by its
// Key so that one student's events stay in one partition, in order. It is
// safe for concurrent use.
//
// It writes with franz-go's client: one produce request per broker
// carries every partition that has records, where kafka-go's Writer sent
// one request per partition (a processor batch touches most partitions).
type Producer struct {
	cl      *kgo.Client
	timeout time.Duration
}

// NewProducer builds a producer. It connects lazily on the first Publish.
func NewProducer(cfg ProducerConfig, logger *slog.Logger) (*Producer, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "producer")
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(newKgoLogger(logger)),
		// Murmur2 on the key is the Java client's partitioner, so our events
		// and those of other Kafka producers in a school agree on a
		// student's partition.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Not idempotent: an idempotent client waits out a record in flight
		// even when the caller's context ends, so a broker that vanished
		// would hold shutdown. A retried record the broker had already
		// stored arrives twice; every consumer of classpulse events applies
		// a repeat as a no-op (by offset, or by event id).
		kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProduceRequestTimeout(cfg.WriteTimeout),
		kgo.RecordRetries(10),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(10*time.Millisecond<<min(tries, 7), time.Second)
		}),
	}
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &Producer{cl: cl, timeout: cfg.WriteTimeout}, nil
}

// RequiredAcks reports the acknowledgement level the producer asks for.
func (p *Producer) RequiredAcks() kgo.Acks { return p.cl.OptValue(kgo.RequiredAcks).(kgo.Acks) }

// Linger reports how long a partial batch waits.
func (p *Producer) Linger() time.Duration { return p.cl.OptValue(kgo.ProducerLinger).(time.Duration) }

// Publish validates and writes events. Either every event is valid and the
// whole call is written, or nothing is written and the first invalid
// event's error is returned.
func (p *Producer) Publish(ctx context.Context, events ...Event) error {
	msgs := make([]kafka.Message, 0, len(events))
	for _, e := range events {
		b, err := Encode(e)
		if err != nil {
			return fmt.Errorf("publish %s: %w", e.Topic(), err)
		}
		msgs = append(msgs, kafka.Message{Topic: e.Topic(), Key: []byte(e.Key()), Value: b})
	}
	return p.PublishRaw(ctx, msgs...)
}

// PublishRaw writes already-encoded messages; each must name its topic.
// It is for relaying bytes as they were received (the DLQ, the spool).
// The partition a message names is ignored: its key chooses.
func (p *Producer) PublishRaw(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("publish %d messages: message %d names no topic", len(msgs), i)
		}
		r := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Timestamp: m.Time}
		recs[i] = r
		if len(m.Headers) > 0 {
			r.Headers = make([]kgo.RecordHeader, len(m.Headers))
			for j, h := range m.Headers {
				r.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
	}
	// A deadline rather than franz-go's record timeout, which counts from
	// a record's own time: a relayed record keeps its original one.
	bounded, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	for _, res := range p.cl.ProduceSync(bounded, recs...) {
		if res.Err == nil {
			continue
		}
		if errors.Is(res.Err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("publish %d messages: not delivered within %v: %s: %w", len(msgs), p.timeout, res.Record.Topic, res.Err)
		}
		return fmt.Errorf("publish %d messages: %s: %w", len(msgs), res.Record.Topic, res.Err)
	}
	return nil
}

// Close closes the connections. Every Publish has returned by then or
// fails.
func (p *Producer) Close() error {
	p.cl.Close()
	return nil
}
