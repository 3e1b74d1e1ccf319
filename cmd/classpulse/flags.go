package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/rules"
)

// infra holds the flags every server command shares.
type infra struct {
	brokers      config.List
	redis        string
	redisCluster bool
	logLevel     string
	logFormat    string
	kafkaTLS     config.TLS
	redisTLS     config.TLS
}

func (f *infra) register(fs *flag.FlagSet, withKafka, withRedis bool) {
	if withKafka {
		f.brokers = config.List{"127.0.0.1:9092"}
		fs.Var(&f.brokers, "brokers", "Kafka bootstrap brokers, comma-separated host:port")
		f.kafkaTLS.Register(fs, "kafka", "Kafka")
	}
	if withRedis {
		fs.StringVar(&f.redis, "redis", "127.0.0.1:6379", "Redis address host:port (several, comma-separated, for a cluster)")
		fs.BoolVar(&f.redisCluster, "redis-cluster", false, "treat --redis as Redis Cluster seed nodes even when only one is given")
		f.redisTLS.Register(fs, "redis", "Redis")
	}
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
}

func (f *infra) logger() (*slog.Logger, error) {
	return config.NewLogger(os.Stderr, f.logLevel, f.logFormat)
}

// redisClient connects to a single Redis or, given several addresses or
// --redis-cluster, to a Redis Cluster; over TLS with --redis-tls*. A TLS
// file that cannot be read makes every command of the client fail with
// that error (see checkTLS to fail at start instead).
func (f *infra) redisClient() redis.UniversalClient {
	addrs := strings.Split(f.redis, ",")
	tc, err := f.redisTLS.Client()
	var dialErr func(context.Context, string, string) (net.Conn, error)
	if err != nil {
		dialErr = func(context.Context, string, string) (net.Conn, error) { return nil, fmt.Errorf("redis %w", err) }
	}
	if f.redisCluster || len(addrs) > 1 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, TLSConfig: tc, Dialer: dialErr})
	}
	return redis.NewClient(&redis.Options{Addr: addrs[0], TLSConfig: tc, Dialer: dialErr})
}

// checkTLS reads the Kafka and Redis TLS files, so that a missing or bad
// file stops a command at start with a clear error.
func (f *infra) checkTLS() error {
	if _, err := f.kafkaTLS.Client(); err != nil {
		return fmt.Errorf("kafka %w", err)
	}
	if _, err := f.redisTLS.Client(); err != nil {
		return fmt.Errorf("redis %w", err)
	}
	return nil
}

// kafkaClientTLS is the TLS set-up of every Kafka client of a command
// (--kafka-tls*), nil for plain TCP. With TLS on it shakes hands with a
// broker now (config.TLS.ClientChecked), so a wrong CA stops the command
// at start with a clear error instead of a consumer retrying forever.
func (f *infra) kafkaClientTLS(ctx context.Context) (*tls.Config, error) {
	tc, err := f.kafkaTLS.ClientChecked(ctx, f.brokers)
	if err != nil {
		return nil, fmt.Errorf("kafka %w (--kafka-tls*)", err)
	}
	return tc, nil
}

// loadPolicy reads the policy file, or the embedded default when path is
// empty, into a holder that keeps the last good policy on a bad reload.
func loadPolicy(path string) (*rules.Holder, error) {
	if path == "" {
		return rules.NewHolder(rules.DefaultPolicy()), nil
	}
	p, err := rules.LoadPolicyFile(path)
	if err != nil {
		return nil, err
	}
	return rules.NewHolder(p), nil
}

// newFlagSet makes a flag set whose usage lists flags with their
// environment variables.
func newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: classpulse %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}
