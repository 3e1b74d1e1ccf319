package main

import (
	"flag"
	"fmt"
	"log/slog"
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
}

func (f *infra) register(fs *flag.FlagSet, withKafka, withRedis bool) {
	if withKafka {
		f.brokers = config.List{"127.0.0.1:9092"}
		fs.Var(&f.brokers, "brokers", "Kafka bootstrap brokers, comma-separated host:port")
	}
	if withRedis {
		fs.StringVar(&f.redis, "redis", "127.0.0.1:6379", "Redis address host:port (several, comma-separated, for a cluster)")
		fs.BoolVar(&f.redisCluster, "redis-cluster", false, "treat --redis as Redis Cluster seed nodes even when only one is given")
	}
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
}

func (f *infra) logger() (*slog.Logger, error) {
	return config.NewLogger(os.Stderr, f.logLevel, f.logFormat)
}

// redisClient connects to a single Redis or, given several addresses or
// --redis-cluster, to a Redis Cluster.
func (f *infra) redisClient() redis.UniversalClient {
	addrs := strings.Split(f.redis, ",")
	if f.redisCluster || len(addrs) > 1 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	}
	return redis.NewClient(&redis.Options{Addr: addrs[0]})
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
