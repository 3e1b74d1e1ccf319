package testenv

import (
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// StartBroker starts the embedded Kafka-protocol broker on a free loopback
// port with every classpulse topic, closed when the test ends.
func StartBroker(t testing.TB, partitions int) *stream.EmbeddedBroker {
	t.Helper()
	return StartBrokerWith(t, stream.EmbeddedConfig{Partitions: partitions})
}

// StartBrokerWith is StartBroker with the rest of the broker's
// configuration; an empty Listen is a free loopback port.
func StartBrokerWith(t testing.TB, cfg stream.EmbeddedConfig) *stream.EmbeddedBroker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := stream.StartEmbeddedBroker(cfg, nil)
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// WaitFor polls cond every 10ms until it holds or timeout passes, then fails
// the test with msg.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
