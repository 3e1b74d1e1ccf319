package processor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/profile"
	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// handler is a processor fed batches by hand on the embedded broker and a
// real redis-server.
func handler(t *testing.T, policy *rules.Policy) (*processor.Processor, *testenv.Redis, string, prometheus.Gatherer) {
	t.Helper()
	broker, r := testenv.StartBroker(t, 1), testenv.StartRedis(t)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	store, err := state.New(r.Client(t), state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg := prometheus.NewRegistry()
	proc, err := processor.New(processor.Config{Brokers: []string{broker.Addr()}}, store, rules.NewHolder(policy), prod, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return proc, r, broker.Addr(), reg
}

func batchOf(t *testing.T, topic string, first int64, es ...stream.Event) []stream.Message {
	t.Helper()
	var out []stream.Message
	for i, e := range es {
		b, err := stream.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stream.Message{Topic: topic, Offset: first + int64(i), Value: b})
	}
	return out
}

func TestConsentChangesAreAuditedAndKeepWhoAnswered(t *testing.T) {
	proc, r, addr, _ := handler(t, rules.DefaultPolicy())
	rdb := r.Client(t)
	ctx := context.Background()
	now := time.Now()
	grant := &stream.Consent{Header: stream.NewHeader("kid-1", now), Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1", Guardian: "parent-1"}
	score := &stream.Score{Header: stream.NewHeader("kid-1", now.Add(time.Second)), Session: "S", Course: "calculus", WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 0.8, Model: "t"}
	revoke := &stream.Consent{Header: stream.NewHeader("kid-1", now.Add(2*time.Second)), Scope: stream.ScopeCamera, Granted: false, PolicyVersion: "2026-1"}

	if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicConsent, 0, grant)); err != nil {
		t.Fatal(err)
	}
	if v := rdb.HGet(ctx, state.ConsentKey("kid-1"), stream.ScopeCamera).Val(); !strings.HasPrefix(v, "1|") || !strings.HasSuffix(v, "|2026-1|parent-1") {
		t.Fatalf("camera consent stored as %q, want granted under 2026-1 by parent-1", v)
	}
	if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicScores, 0, score)); err != nil {
		t.Fatal(err)
	}
	if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicConsent, 1, revoke)); err != nil {
		t.Fatal(err)
	}
	if v := rdb.HGet(ctx, state.ConsentKey("kid-1"), stream.ScopeCamera).Val(); !strings.HasPrefix(v, "0|") || !strings.HasSuffix(v, "|2026-1|") {
		t.Fatalf("camera consent stored as %q, want revoked by the student", v)
	}
	// Redelivered: applied once, audited once.
	if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicConsent, 1, revoke)); err != nil {
		t.Fatal(err)
	}

	got := auditLog(t, addr, 2)
	want := []struct {
		actor, role string
		granted     int64
		erased      bool
	}{
		{"guardian:parent-1", "guardian", 1, false},
		{"student:kid-1", "student", 0, true},
	}
	for i, w := range want {
		a := got[i]
		if a.Action != stream.AuditConsentChange || a.Student != "kid-1" || a.Actor != w.actor || a.Role != w.role || a.Target != stream.ScopeCamera || a.Counts["granted"] != w.granted {
			t.Errorf("audit %d = %+v, want %s (%s) granted=%d on camera", i, a, w.actor, w.role, w.granted)
		}
		if _, erased := a.Counts["erased_keys"]; erased != w.erased {
			t.Errorf("audit %d counts %v, want erased_keys present=%v", i, a.Counts, w.erased)
		}
	}
}

func TestWrittenBackPredictionRaisesPredictedRiskOnTheNextClick(t *testing.T) {
	yaml := strings.Replace(string(rules.DefaultPolicyYAML()), "predicted_risk:\n  enabled: false", "predicted_risk:\n  enabled: true", 1)
	policy, err := rules.LoadPolicy([]byte(yaml), "on.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !policy.PredictedRisk.Enabled {
		t.Fatal("could not turn the predicted-risk rule on")
	}
	proc, r, _, _ := handler(t, policy)
	rdb := r.Client(t)
	ctx := context.Background()
	now := time.Now().UTC()
	pd := 0.86
	rec := profile.StudentLearner{Student: "s1", Record: learner.Record{Course: "calculus", Profile: "marginal", K: 3, Grade: "D", PD: &pd, Model: "gbt-0123456789ab", At: now.Add(-time.Hour)}}
	if _, err := profile.WriteLearners(ctx, rdb, []profile.StudentLearner{rec}); err != nil {
		t.Fatal(err)
	}
	click := &stream.Click{Header: stream.NewHeader("s1", now), Course: "calculus", Kind: stream.KindQuiz}
	if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicClicks, 0, click)); err != nil {
		t.Fatal(err)
	}
	open := rdb.Get(ctx, state.WarnKey("s1")).Val()
	if !strings.Contains(open, rules.RulePredictedRisk) {
		t.Fatalf("open warnings after the click: %s, want a predicted_risk warning", open)
	}
}

// A run that applied a revocation and stopped before it published the
// audit record leaves an outbox marker in Redis: the redelivery publishes
// the record, with what the erasure removed, once.
func TestARevocationAppliedByAStoppedRunIsStillAudited(t *testing.T) {
	proc, r, addr, reg := handler(t, rules.DefaultPolicy())
	rdb := r.Client(t)
	ctx := context.Background()
	now := time.Now()
	score := &stream.Score{Header: stream.NewHeader("kid-2", now), Session: "S", Course: "calculus", WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 0.8, Model: "t"}
	if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicScores, 0, score)); err != nil {
		t.Fatal(err)
	}
	revoke := &stream.Consent{Header: stream.NewHeader("kid-2", now.Add(time.Second)), Scope: stream.ScopeCamera, Granted: false, PolicyVersion: "2026-1"}
	// The stopped run: the revocation applied in Redis, nothing published.
	stopped, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopped.Close() })
	res, err := stopped.Apply(ctx, nil, []state.Op{{Event: revoke, Topic: stream.TopicConsent, Offset: 0, Audit: true}})
	if err != nil || res[0].Status != state.Erased {
		t.Fatalf("the stopped run's apply: %+v %v", res, err)
	}
	// Redelivered twice: audited once.
	for range 2 {
		if err := proc.HandleBatch(ctx, batchOf(t, stream.TopicConsent, 0, revoke)); err != nil {
			t.Fatal(err)
		}
	}
	a := auditLog(t, addr, 1)[0]
	if a.Action != stream.AuditConsentChange || a.Student != "kid-2" || a.Counts["granted"] != 0 || a.Counts["erased_keys"] != 1 {
		t.Errorf("audit %+v, want the revocation with one erased key", a)
	}
	if want := stream.DerivedID(revoke.ID, revoke.TS.Time, stream.AuditConsentChange); a.ID != want {
		t.Errorf("audit id %s, want %s, derived from the consent's", a.ID, want)
	}
	// The stopped run counted its erasure; this one erased nothing.
	if n := testutil.ToFloat64(mustCounter(t, reg, "classpulse_processor_erasures_total")); n != 0 {
		t.Errorf("erasures counted %v times by the run that only published the record, want 0", n)
	}
}

// auditLog reads the audit topic: n records, then none more within half a
// second.
func auditLog(t *testing.T, addr string, n int) []stream.Audit {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: stream.TopicAudit, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []stream.Audit
	for len(got) < n {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("audit record %d of %d: %v", len(got)+1, n, err)
		}
		var a stream.Audit
		if err := stream.DecodeInto(m.Value, &a); err != nil {
			t.Fatalf("audit %s: %v", m.Value, err)
		}
		got = append(got, a)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if m, err := rd.ReadMessage(short); err == nil {
		t.Fatalf("more than %d audit records: %s", n, m.Value)
	}
	return got
}
