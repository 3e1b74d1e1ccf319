package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

// TestEdgeDeliversOverKafkaTLS gives consent against a TLS-only broker with
// --kafka-tls-ca: the consent events go through the spool and the producer
// over TLS and are read back over TLS; `run` with a CA that does not sign
// the broker stops at start with the verification error.
func TestEdgeDeliversOverKafkaTLS(t *testing.T) {
	files := testenv.NewTLS(t)
	other := testenv.NewTLS(t)
	addr := testenv.StartTLSBroker(t, 1, files).Addr()
	state := t.TempDir()
	ctx := context.Background()
	if err := consentAsk(ctx, edgeArgs(addr, state, "s1", "--answer", "camera", "--kafka-tls-ca", files.CA)); err != nil {
		t.Fatal(err)
	}
	tc, err := (&config.TLS{CA: files.CA}).Client()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan stream.Message, 8)
	cctx, cancel := context.WithCancel(ctx)
	cons, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: []string{addr}, TLS: tc, Group: "edge-tls-test", Topics: []string{stream.TopicConsent}},
		func(_ context.Context, batch []stream.Message) error {
			for _, m := range batch {
				got <- m
			}
			return nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cons.Run(cctx) }()
	select {
	case m := <-got:
		var c stream.Consent
		if err := stream.DecodeInto(m.Value, &c); err != nil || c.Student != "s1" {
			t.Fatalf("consent event %s: %v", m.Value, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no consent event delivered over TLS")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	err = runCapture(rctx, edgeArgs(addr, state, "s1", "--session", "live1", "--course", "C1", "--source", "none.mp4",
		"--model-dir", modelDir, "--kafka-tls-ca", other.CA))
	if rctx.Err() != nil || err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("run with a wrong Kafka CA: %v", err)
	}
}
