package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/simulate"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// pipeline is a running processor on the embedded broker and a real
// redis-server.
type pipeline struct {
	broker *stream.EmbeddedBroker
	redis  *testenv.Redis
	rdb    *redis.Client
	prod   *stream.Producer
	proc   *processor.Processor
	reg    *prometheus.Registry
	stop   func()
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := &pipeline{broker: testenv.StartBroker(t, 4), redis: testenv.StartRedis(t), reg: prometheus.NewRegistry()}
	p.rdb = p.redis.Client(t)
	var err error
	p.prod, err = stream.NewProducer(stream.ProducerConfig{Brokers: []string{p.broker.Addr()}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.prod.Close() })
	store, err := state.New(p.rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	p.proc, err = processor.New(processor.Config{Brokers: []string{p.broker.Addr()}}, store, rules.NewHolder(rules.DefaultPolicy()), p.prod, logger, p.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.proc.Run(ctx) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("processor Run: %v", err)
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

func TestEndToEndSimulatedClassWarningReachesWebSocket(t *testing.T) {
	p := startPipeline(t)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dash, err := dashboard.New(dashboard.Config{Addr: "127.0.0.1:0"}, p.rdb, p.prod, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := dash.Run(ctx); err != nil {
			t.Errorf("dashboard Run: %v", err)
		}
	}()
	defer wg.Wait()
	defer cancel()
	<-dash.Started()
	tok, err := dash.IssueToken(dashboard.Claims{Subject: "e2e-instructor", Role: dashboard.RoleInstructor, Classes: []string{"e2e-class"},
		Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + dash.Addr()
	conn, _, err := websocket.Dial(ctx, "ws://"+dash.Addr()+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}, "Origin": {origin}},
	})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	defer conn.CloseNow()
	for _, ch := range []string{"warnings", "class:e2e-class"} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"op":"subscribe","channel":"`+ch+`"}`)); err != nil {
			t.Fatal(err)
		}
	}

	class, err := simulate.New(simulate.Config{Students: 12, Session: "e2e-class", Warmup: 2 * time.Minute}, p.prod, logger)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = class.Run(ctx) }()

	// Tiles reach the socket through the tiles topic and the class stage,
	// warnings straight from the live feed, so either may come first: the
	// test needs both, in any order.
	var sawTile, sawWarning bool
	for !sawTile || !sawWarning {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("before the deadline: tile seen %v, engagement warning seen %v: %v", sawTile, sawWarning, err)
		}
		var f struct {
			Type    string          `json:"type"`
			Warning json.RawMessage `json:"warning"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if f.Type == "tile" {
			sawTile = true
		}
		if f.Type != "warning" || sawWarning {
			continue
		}
		var w stream.Warning
		if err := stream.DecodeInto(f.Warning, &w); err != nil {
			t.Fatalf("warning frame does not hold a valid warning: %v\n%s", err, f.Warning)
		}
		if w.Category != stream.CategoryEngagement && w.Category != stream.CategoryClass {
			continue
		}
		if w.State != stream.StateRaised || w.Reason == "" {
			t.Fatalf("unexpected first live warning %+v", w)
		}
		sawWarning = true
	}
	// The processor counts a warning after its batch is flushed, and the
	// dashboard may push it before that: wait for the count.
	testenv.WaitFor(t, 10*time.Second, "classpulse_warnings_total ≥ 1", func() bool {
		return testutil.ToFloat64(mustCounter(t, p.reg, "classpulse_warnings_total")) >= 1
	})
	if problems, err := testutil.GatherAndLint(p.reg); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %v", problems, err)
	}
}

// mustCounter sums a counter family across its labels, as a collector.
func mustCounter(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
	c.Add(sum)
	return c
}

func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("kcat not installed (run `make test-deps`): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func TestKcatValidEventChangesStateInvalidGoesToDLQ(t *testing.T) {
	p := startPipeline(t)
	ts := time.Now().UTC().Format(stream.TimeLayout)
	valid := `{"v":1,"id":"kcat-1","ts":"` + ts + `","student":"kcat-stu","course":"law","kind":"study","duration_s":1200}`
	invalid := `{"v":1,"id":"kcat-2","ts":"` + ts + `","student":"kcat-stu","course":"law","kind":"napping"}`
	kcat(t, valid+"\n"+invalid+"\n", "-P", "-b", p.broker.Addr(), "-t", stream.TopicClicks, "-k", "kcat-stu")

	ctx := context.Background()
	testenv.WaitFor(t, 30*time.Second, "the valid click applied to Redis", func() bool {
		v, _ := p.rdb.HGetAll(ctx, state.StudentTag("kcat-stu")+":study").Result()
		for k, sec := range v {
			if strings.HasPrefix(k, "t|law|") && sec == "1200" {
				return true
			}
		}
		return false
	})
	var dlq string
	testenv.WaitFor(t, 30*time.Second, "the invalid click in the DLQ", func() bool {
		dlq = kcat(t, "", "-C", "-b", p.broker.Addr(), "-t", stream.TopicDLQ, "-o", "beginning", "-e", "-q")
		return strings.Contains(dlq, `"source_topic":"classpulse.clicks.v1"`)
	})
	var d stream.DeadLetter
	if err := stream.DecodeInto([]byte(strings.TrimSpace(strings.Split(dlq, "\n")[0])), &d); err != nil {
		t.Fatalf("DLQ entry is not a valid dead letter: %v\n%s", err, dlq)
	}
	if d.Source != stream.TopicClicks || !strings.Contains(d.Error, "kind") || string(d.Original) != invalid || d.Student != "kcat-stu" {
		t.Fatalf("dead letter %+v", d)
	}
	// The processor kept running: a later valid event still lands.
	again := strings.Replace(strings.Replace(valid, "kcat-1", "kcat-3", 1), "1200", "60", 1)
	kcat(t, again+"\n", "-P", "-b", p.broker.Addr(), "-t", stream.TopicClicks, "-k", "kcat-stu")
	testenv.WaitFor(t, 30*time.Second, "a later valid click applied", func() bool {
		v, _ := p.rdb.HGetAll(ctx, state.StudentTag("kcat-stu")+":study").Result()
		for k, sec := range v {
			if strings.HasPrefix(k, "t|law|") && sec == "1260" {
				return true
			}
		}
		return false
	})
}

func TestReplayingABatchLeavesStateUnchanged(t *testing.T) {
	p := startPipeline(t)
	p.stop() // drive HandleBatch directly
	ctx := context.Background()
	now := time.Now()
	var batch []stream.Message
	for i := 0; i < 90; i++ {
		sc := &stream.Score{Header: stream.NewHeader("dup-stu", now.Add(time.Duration(i-90)*time.Second)), Session: "S", Course: "calculus",
			WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 0.1, Model: "t"}
		b, _ := stream.Encode(sc)
		batch = append(batch, stream.Message{Topic: stream.TopicScores, Partition: 0, Offset: int64(i), Value: b, HighWaterMark: 90})
	}
	batch = append(batch, stream.Message{Topic: stream.TopicScores, Partition: 0, Offset: 90, Value: []byte("{broken"), HighWaterMark: 91})
	if err := p.proc.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	dump := func() map[string]string {
		out := map[string]string{}
		keys, _ := p.rdb.Keys(ctx, "{s:dup-stu}*").Result()
		for _, k := range keys {
			typ, _ := p.rdb.Type(ctx, k).Result()
			switch typ {
			case "hash":
				m, _ := p.rdb.HGetAll(ctx, k).Result()
				b, _ := json.Marshal(m)
				out[k] = string(b)
			case "string":
				out[k], _ = p.rdb.Get(ctx, k).Result()
			}
		}
		return out
	}
	before := dump()
	if before[state.WarnKey("dup-stu")] == "" {
		t.Fatalf("90 s of attention 0.1 raised no warning; state %v", before)
	}
	if err := p.proc.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	after := dump()
	if len(before) != len(after) {
		t.Fatalf("keys changed on replay: %d → %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("key %s changed on replay:\n%s\n%s", k, v, after[k])
		}
	}
	n, _ := p.rdb.XLen(ctx, state.LiveWarnings).Result()
	if n == 0 {
		t.Fatal("no warning on the live feed")
	}
	dup := testutil.ToFloat64(counterWith(t, p.reg, "classpulse_processor_events_total", "duplicate"))
	if dup != 90 {
		t.Fatalf("duplicates counted %v, want 90", dup)
	}
	if got := testutil.ToFloat64(counterWith(t, p.reg, "classpulse_dlq_events_total", "")); got != 2 {
		t.Fatalf("DLQ count %v, want 2 (the broken message, twice)", got)
	}
}

// counterWith sums a counter family over the series having a label value
// equal to want (any series when want is empty).
func counterWith(t *testing.T, g prometheus.Gatherer, name, want string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := want == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == want {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
	c.Add(sum)
	return c
}

func TestEUJurisdictionSendsEmotionScoresToTheDLQ(t *testing.T) {
	broker, r := testenv.StartBroker(t, 2), testenv.StartRedis(t)
	rdb := r.Client(t)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg := prometheus.NewRegistry()
	proc, err := processor.New(processor.Config{Brokers: []string{broker.Addr()}, Jurisdiction: stream.JurisdictionEU}, store,
		rules.NewHolder(rules.DefaultPolicy()), prod, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	plain := &stream.Score{Header: stream.NewHeader("eu-1", now), Session: "S", Course: "calculus", WindowMS: 1000, Frames: 10,
		FaceRatio: 1, Attention: 0.8, Model: "t"}
	withEmotion := *plain
	withEmotion.Header = stream.NewHeader("eu-2", now)
	withEmotion.Learning = &stream.Learning{Engaged: 0.9}
	var batch []stream.Message
	for i, e := range []stream.Event{plain, &withEmotion} {
		b, _ := stream.Encode(e)
		batch = append(batch, stream.Message{Topic: stream.TopicScores, Offset: int64(i), Value: b})
	}
	if err := proc.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(context.Background(), state.LiveKey("eu-1")).Result(); n != 1 {
		t.Error("a score without emotion fields was not applied under eu")
	}
	if n, _ := rdb.Exists(context.Background(), state.LiveKey("eu-2")).Result(); n != 0 {
		t.Error("a score with learning emotions was applied under eu")
	}
	if got := testutil.ToFloat64(counterWith(t, reg, "classpulse_dlq_events_total", "")); got != 1 {
		t.Fatalf("DLQ count %v, want 1", got)
	}
}
