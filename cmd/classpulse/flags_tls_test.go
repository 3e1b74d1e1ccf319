package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

// infraFrom parses the shared infra flags of a command from args.
func infraFrom(t *testing.T, args ...string) *infra {
	t.Helper()
	fs := newFlagSet("test", "")
	var in infra
	in.register(fs, true, true)
	in.registerKafkaTLS(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &in
}

// TestRedisClientSpeaksTLSWithTheGivenCA runs a real redis-server with a
// TLS port (Debian's redis-server is built with TLS) and a certificate from
// a CA made in the test: --redis-tls-ca connects, and plain TCP to the TLS
// port or a client that does not trust the CA fails.
func TestRedisClientSpeaksTLSWithTheGivenCA(t *testing.T) {
	files := testenv.NewTLS(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	testenv.StartRedis(t, "--tls-port", strconv.Itoa(port), "--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--tls-ca-cert-file", files.CA, "--tls-auth-clients", "optional")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ping := func(in *infra) error {
		c := in.redisClient()
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"trusted CA", []string{"--redis", addr, "--redis-tls-ca", files.CA}, true},
		{"trusted CA and a client certificate", []string{"--redis", addr, "--redis-tls-ca", files.CA, "--redis-tls-cert", files.Cert, "--redis-tls-key", files.Key}, true},
		{"plain TCP to the TLS port", []string{"--redis", addr}, false},
		{"system roots only", []string{"--redis", addr, "--redis-tls"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ping(infraFrom(t, tc.args...)); (err == nil) != tc.ok {
				t.Fatalf("PING: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	bad := infraFrom(t, "--redis", addr, "--redis-tls-ca", files.CA+".gone")
	if err := bad.checkTLS(); err == nil || !strings.Contains(err.Error(), "redis tls ca") {
		t.Fatalf("checkTLS with a missing CA file: %v", err)
	}
	if err := ping(bad); err == nil || !strings.Contains(err.Error(), "tls ca") {
		t.Fatalf("a client built with a missing CA file: %v, want the file error", err)
	}
}

// TestKafkaProducerSpeaksTLSWithTheGivenCA publishes to a Kafka-protocol
// broker that only accepts TLS, through --kafka-tls-ca.
func TestKafkaProducerSpeaksTLSWithTheGivenCA(t *testing.T) {
	files := testenv.NewTLS(t)
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}}), kfake.SeedTopics(1, stream.TopicAudit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	audit := func() stream.Event {
		return &stream.Audit{Header: stream.NewHeader("s1", time.Now()), Actor: "ops", Action: stream.AuditReadStudent}
	}
	publish := func(in *infra) error {
		tr, err := in.kafkaTransport()
		if err != nil {
			return err
		}
		p, err := stream.NewProducer(stream.ProducerConfig{Brokers: in.brokers, Transport: tr, WriteTimeout: 3 * time.Second}, nil)
		if err != nil {
			return err
		}
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.Publish(ctx, audit())
	}
	if err := publish(infraFrom(t, "--brokers", addr, "--kafka-tls-ca", files.CA)); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	if err := publish(infraFrom(t, "--brokers", addr)); err == nil {
		t.Fatal("a plain-TCP producer published to the TLS-only broker")
	}
	if _, err := infraFrom(t, "--kafka-tls-cert", files.Cert).kafkaTransport(); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("a client certificate without its key: %v", err)
	}
}
