package stream

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedBroker is an in-process broker that speaks the Kafka wire
// protocol (franz-go's kfake), for `classpulse demo` and the tests. Outside
// clients such as kcat or segmentio/kafka-go connect to Addr as to a real
// single-node Kafka cluster.
type EmbeddedBroker struct {
	cluster   *kfake.Cluster
	addr      string
	stop      chan struct{} // ends the retention loop
	done      chan struct{} // closed when it has ended
	closeOnce sync.Once
}

// EmbeddedConfig configures an EmbeddedBroker. The zero value listens on
// 127.0.0.1:9092 with 8 partitions per topic, in memory.
type EmbeddedConfig struct {
	// Listen is host:port to listen on; port 0 picks a free port.
	// Default "127.0.0.1:9092".
	Listen string
	// Partitions is the partition count of every classpulse topic. Default 8.
	Partitions int
	// DataDir, when set, persists the log to this folder so it survives a
	// restart. Default: memory only.
	DataDir string
	// TLS, when set, makes the broker accept only TLS connections (for
	// testing --kafka-tls*). Default plain TCP.
	TLS *tls.Config
	// SegmentBytes is the size of a partition's log segment. Default 8 MiB:
	// the broker keeps the active segment in one byte slice that doubles
	// when full, and at Kafka's 100 MB, partitions growing in step each
	// copied tens of MB inside the broker's single request loop, stalling
	// every produce and fetch for hundreds of milliseconds
	// (docs/performance.md).
	SegmentBytes int
	// Retention is how long the log keeps a record, by its timestamp (the
	// producer's: classpulse's producers stamp the hand-over time, a
	// relayed record keeps its own); older batches are deleted by a sweep every
	// tenth of it (between 100ms and a minute). Default 0: records are
	// kept as long as the broker runs, and a long run grows without bound
	// (a broker in memory, in the process's heap).
	Retention time.Duration
}

// StartEmbeddedBroker starts the broker and creates every classpulse topic.
// The caller owns the broker and must Close it.
func StartEmbeddedBroker(cfg EmbeddedConfig, logger *slog.Logger) (*EmbeddedBroker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9092"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 8
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 8 << 20
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("embedded broker: retention %v is negative", cfg.Retention)
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded broker: listen port %q is not a port number", portStr)
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1; listen where the operator said.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
		kfake.SeedTopics(int32(cfg.Partitions), AllTopics...),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.ClusterID("classpulse-embedded"),
	}
	brokerConfigs := map[string]string{"log.segment.bytes": strconv.Itoa(cfg.SegmentBytes)}
	if cfg.Retention > 0 {
		brokerConfigs["log.retention.ms"] = strconv.FormatInt(max(cfg.Retention.Milliseconds(), 1), 10)
	}
	opts = append(opts, kfake.BrokerConfigs(brokerConfigs))
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded broker on %s: %w", cfg.Listen, err)
	}
	b := &EmbeddedBroker{cluster: c, addr: c.ListenAddrs()[0], stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Retention > 0 {
		go b.sweep(min(max(cfg.Retention/10, 100*time.Millisecond), time.Minute))
	} else {
		close(b.done)
	}
	if logger != nil {
		logger.Info("embedded Kafka-protocol broker listening", "component", "broker", "addr", b.addr, "partitions", cfg.Partitions, "retention", cfg.Retention)
	}
	return b, nil
}

// sweep deletes what is past retention every interval, until Close.
// (The broker sweeps by itself only topics with their own retention.)
func (b *EmbeddedBroker) sweep(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.cluster.ApplyRetention()
		}
	}
}

// Addr is the host:port clients bootstrap from.
func (b *EmbeddedBroker) Addr() string { return b.addr }

// Close stops the broker; every client connection is closed.
func (b *EmbeddedBroker) Close() {
	b.closeOnce.Do(func() {
		close(b.stop)
		<-b.done
		b.cluster.Close()
	})
}
