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
)

// ProducerConfig configures a Producer. The zero value is not usable:
// Brokers is required. Every other field documents its default.
type ProducerConfig struct {
	// Brokers are the bootstrap host:port pairs. Required.
	Brokers []string
	// BatchTimeout is how long a partial batch waits for more messages
	// before it is sent. Default 0.5ms: kafka-go's 1s default would add a
	// second to every live warning.
	BatchTimeout time.Duration
	// BatchSize is the most messages per partition in one produce request;
	// a full batch is sent at once. Default 100: kafka-go allocates room for
	// BatchSize messages for every partition a call writes to, which at 1000
	// made the processor's tiles (a few dozen per partition per batch) cost
	// more in allocation than in encoding.
	BatchSize int
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// Async makes Publish return before the broker acknowledges; errors are
	// then only logged. Default false: Publish returns once every replica
	// has the events.
	Async bool
	// ClientID names the producer to the broker. Default "classpulse".
	ClientID string
	// TLS, when set, makes the producer's own transport speak TLS (see
	// config.TLS.Client for --kafka-tls*). Default plain TCP.
	TLS *tls.Config
	// Transport overrides the connection set-up entirely (TLS is then
	// ignored); for a caller that shares one transport between clients.
	// Default: one the producer makes, with TLS.
	Transport *kafka.Transport
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
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 500 * time.Microsecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
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
type Producer struct {
	w      *kafka.Writer
	logger *slog.Logger
	// own is the transport the producer made (nil when the caller passed
	// one); Close closes its idle connections, the caller closes its own.
	own *kafka.Transport
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
	transport, own := cfg.Transport, (*kafka.Transport)(nil)
	if transport == nil {
		transport = NewTransport(cfg.ClientID, cfg.TLS)
		own = transport
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...),
		// Murmur2 is the Java client's partitioner, so our events and those
		// of other Kafka producers in a school agree on a student's partition.
		Balancer:               &kafka.Murmur2Balancer{},
		BatchTimeout:           cfg.BatchTimeout,
		BatchSize:              cfg.BatchSize,
		WriteTimeout:           cfg.WriteTimeout,
		RequiredAcks:           kafka.RequireAll,
		MaxAttempts:            10,
		WriteBackoffMin:        10 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		Async:                  cfg.Async,
		AllowAutoTopicCreation: false,
		Transport:              transport,
	}
	if cfg.Async {
		w.Completion = func(msgs []kafka.Message, err error) {
			if err != nil {
				logger.Error("async publish failed", "err", err, "messages", len(msgs))
			}
		}
	}
	return &Producer{w: w, logger: logger, own: own}, nil
}

// RequiredAcks reports the acknowledgement level the producer asks for.
func (p *Producer) RequiredAcks() kafka.RequiredAcks { return p.w.RequiredAcks }

// BatchTimeout reports how long a partial batch waits.
func (p *Producer) BatchTimeout() time.Duration { return p.w.BatchTimeout }

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
func (p *Producer) PublishRaw(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d messages: %w", len(msgs), err)
	}
	return nil
}

// Close flushes pending messages, then closes the connections of the
// transport the producer made: kafka-go's Writer.Close leaves a Transport's
// pooled connections (and their goroutines) open.
func (p *Producer) Close() error {
	err := p.w.Close()
	if p.own != nil {
		p.own.CloseIdleConnections()
	}
	return err
}
