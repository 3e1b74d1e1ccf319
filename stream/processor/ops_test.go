package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// member is one processor instance with its own metrics, started by run.
type member struct {
	proc *processor.Processor
	reg  *prometheus.Registry
	stop func()
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func newMember(t *testing.T, broker string, rdb redis.UniversalClient, prod *stream.Producer, cfg processor.Config) *member {
	t.Helper()
	cfg.Brokers = []string{broker}
	cfg.NoClassStage = true
	cfg.RetryMax = 500 * time.Millisecond
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := &member{reg: prometheus.NewRegistry()}
	m.proc, err = processor.New(cfg, store, rules.NewHolder(rules.DefaultPolicy()), prod, quietLogger(), m.reg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *member) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.proc.Run(ctx) }()
	var once sync.Once
	m.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("processor Run: %v", err)
			}
		})
	}
	t.Cleanup(m.stop)
}

// outcome sums classpulse_processor_events_total for one outcome.
func (m *member) outcome(t *testing.T, name string) int {
	return int(testutil.ToFloat64(counterWith(t, m.reg, "classpulse_processor_events_total", name)))
}

// infra is a broker, a redis-server and a producer for one test.
type infra struct {
	broker *stream.EmbeddedBroker
	redis  *testenv.Redis
	rdb    *redis.Client
	prod   *stream.Producer
}

func startInfra(t *testing.T, redisArgs ...string) *infra {
	t.Helper()
	in := &infra{broker: testenv.StartBroker(t, 4), redis: testenv.StartRedis(t, redisArgs...)}
	in.rdb = in.redis.Client(t)
	var err error
	in.prod, err = stream.NewProducer(stream.ProducerConfig{Brokers: []string{in.broker.Addr()}}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.prod.Close() })
	return in
}

// studyClicks publishes n study clicks of 30 s, round-robin over students,
// in chunks of chunk with pause between chunks.
func studyClicks(t *testing.T, ctx context.Context, prod *stream.Producer, students, n, chunk int, pause time.Duration) {
	t.Helper()
	now := time.Now().Add(-time.Hour)
	var evs []stream.Event
	for i := 0; i < n; i++ {
		s := "ops-" + strconv.Itoa(i%students)
		evs = append(evs, &stream.Click{Header: stream.NewHeader(s, now.Add(time.Duration(i)*time.Millisecond)), Course: "law", Kind: "study", DurationS: 30})
		if len(evs) == chunk || i == n-1 {
			if err := prod.Publish(ctx, evs...); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			evs = evs[:0]
			time.Sleep(pause)
		}
	}
}

// studyTotals sums, per student, the study seconds and study-click counts
// of every term: what n clicks must add up to, exactly once each.
func studyTotals(t *testing.T, rdb *redis.Client, students int) (seconds, clicks map[string]float64) {
	t.Helper()
	ctx := context.Background()
	seconds, clicks = map[string]float64{}, map[string]float64{}
	for i := 0; i < students; i++ {
		s := "ops-" + strconv.Itoa(i)
		st, _ := rdb.HGetAll(ctx, state.StudentTag(s)+":study").Result()
		for k, v := range st {
			if strings.HasPrefix(k, "t|") {
				f, _ := strconv.ParseFloat(v, 64)
				seconds[s] += f
			}
		}
		ck, _ := rdb.HGetAll(ctx, state.StudentTag(s)+":clicks").Result()
		for k, v := range ck {
			if strings.HasPrefix(k, "k|") {
				f, _ := strconv.ParseFloat(v, 64)
				clicks[s] += f
			}
		}
	}
	return seconds, clicks
}

func checkExactTotals(t *testing.T, rdb *redis.Client, students, n int) {
	t.Helper()
	seconds, clicks := studyTotals(t, rdb, students)
	for i := 0; i < students; i++ {
		s := "ops-" + strconv.Itoa(i)
		want := float64(n / students)
		if i < n%students {
			want++
		}
		if clicks[s] != want || seconds[s] != 30*want {
			t.Errorf("%s: %v clicks, %v s of study; want exactly %v and %v", s, clicks[s], seconds[s], want, 30*want)
		}
	}
}

func waitTotal(t *testing.T, rdb *redis.Client, students, n int, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("%d clicks applied", n), func() bool {
		_, clicks := studyTotals(t, rdb, students)
		sum := 0.0
		for _, c := range clicks {
			sum += c
		}
		return sum >= float64(n)
	})
}

func TestRedisDownTenSecondsLosesAndDoublesNothing(t *testing.T) {
	// Every write reaches the append-only file before Redis answers, so a
	// kill loses nothing Redis acknowledged.
	in := startInfra(t, "--appendonly", "yes", "--appendfsync", "always")
	const students, n = 20, 2000
	m := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50})
	m.run(t)
	ctx := context.Background()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); studyClicks(t, ctx, in.prod, students, n, 50, 20*time.Millisecond) }()
	waitTotal(t, in.rdb, students, n/5, 60*time.Second)
	in.redis.Stop()
	time.Sleep(10 * time.Second)
	if err := in.redis.Start(); err != nil {
		t.Fatal(err)
	}
	<-pubDone
	waitTotal(t, in.rdb, students, n, 60*time.Second)
	m.stop()
	checkExactTotals(t, in.rdb, students, n)
	if got := testutil.ToFloat64(counterWith(t, m.reg, "classpulse_processor_redis_errors_total", "")); got < 1 {
		t.Errorf("redis_errors_total = %v; the outage went unnoticed", got)
	}
	// Batches that failed mid-pipeline are retried whole; what Redis had
	// applied before the kill comes back as duplicates, never twice.
	if applied := m.outcome(t, "applied"); applied != n {
		t.Errorf("applied %d, want exactly %d", applied, n)
	}
}

func TestStopDuringRedisOutageCommitsNothingUnapplied(t *testing.T) {
	in := startInfra(t, "--appendonly", "yes", "--appendfsync", "always")
	const students, n = 10, 1000
	first := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50, Group: "ops-outage"})
	first.run(t)
	ctx := context.Background()
	studyClicks(t, ctx, in.prod, students, n/2, 50, 0)
	waitTotal(t, in.rdb, students, n/10, 60*time.Second)
	in.redis.Stop()
	// Events keep arriving while Redis is down; the member fails to apply
	// its batch, retries, and is stopped in the middle of it: the batch is
	// abandoned after the shutdown grace, and its offsets must stay
	// uncommitted.
	studyClicks(t, ctx, in.prod, students, n-n/2, 50, 0)
	time.Sleep(time.Second)
	first.stop()
	if err := in.redis.Start(); err != nil {
		t.Fatal(err)
	}
	second := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50, Group: "ops-outage"})
	second.run(t)
	waitTotal(t, in.rdb, students, n, 60*time.Second)
	second.stop()
	checkExactTotals(t, in.rdb, students, n)
	// A pipeline Redis executed just before it stopped may have lost its
	// replies: the first member counted none of it as applied, and the
	// second finds those events already applied (duplicates). The state
	// above is exact either way; the counts must account for every event
	// and apply none twice.
	applied := first.outcome(t, "applied") + second.outcome(t, "applied")
	if dup := second.outcome(t, "duplicate"); applied > n || applied+dup < n {
		t.Errorf("applied %d and %d duplicates after the restart, want %d events applied exactly once", applied, dup, n)
	}
}

func TestSecondMemberTakesOverStoppedMembersPartitions(t *testing.T) {
	in := startInfra(t)
	const students = 40
	a := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50, Group: "ops-group"})
	b := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50, Group: "ops-group"})
	a.run(t)
	b.run(t)
	ctx := context.Background()
	// Keep events flowing until the group has settled and both members
	// applied some; a loaded machine may take many seconds to rebalance.
	// Rounds are whole multiples of the class, so every student's exact
	// total stays known.
	n := 0
	deadline := time.Now().Add(90 * time.Second)
	for !(a.outcome(t, "applied") > 0 && b.outcome(t, "applied") > 0) {
		if time.Now().After(deadline) {
			t.Fatalf("after %d events, members applied %v and %v: the group never shared the partitions", n, a.outcome(t, "applied"), b.outcome(t, "applied"))
		}
		studyClicks(t, ctx, in.prod, students, 5*students, 100, 50*time.Millisecond)
		n += 5 * students
	}
	a.stop()
	// The rest arrives after the stop: the remaining member must take over
	// the stopped member's partitions and apply all of it exactly once.
	studyClicks(t, ctx, in.prod, students, 25*students, 100, 20*time.Millisecond)
	n += 25 * students
	waitTotal(t, in.rdb, students, n, 90*time.Second)
	b.stop()
	checkExactTotals(t, in.rdb, students, n)
	if got := a.outcome(t, "applied") + b.outcome(t, "applied"); got != n {
		t.Errorf("members applied %d between them, want %d", got, n)
	}
}

func TestShutdownCommitsBatchInFlightSoRestartSeesNoDuplicates(t *testing.T) {
	in := startInfra(t)
	const students, n = 10, 1500
	first := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50, Group: "ops-restart"})
	first.run(t)
	ctx := context.Background()
	studyClicks(t, ctx, in.prod, students, n/2, 50, 0)
	waitTotal(t, in.rdb, students, n/4, 60*time.Second)
	first.stop() // mid-stream: the rest of the first half is still unread
	studyClicks(t, ctx, in.prod, students, n-n/2, 50, 0)

	second := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 50, Group: "ops-restart"})
	second.run(t)
	testenv.WaitFor(t, 60*time.Second, "the second processor applied the rest", func() bool {
		return first.outcome(t, "applied")+second.outcome(t, "applied") >= n
	})
	second.stop()
	if dup := second.outcome(t, "duplicate"); dup != 0 {
		t.Errorf("restarted processor saw %d already-applied events: the first did not commit what it applied", dup)
	}
	if got := first.outcome(t, "applied") + second.outcome(t, "applied"); got != n {
		t.Errorf("applied %d in all, want %d", got, n)
	}
	// The second half was stamped after the first; its totals include both.
	seconds, clicks := studyTotals(t, in.rdb, students)
	sum, sec := 0.0, 0.0
	for s := range clicks {
		sum, sec = sum+clicks[s], sec+seconds[s]
	}
	if sum != n || sec != 30*n {
		t.Errorf("state holds %v clicks and %v s, want %d and %d", sum, sec, n, 30*n)
	}
}

// dumpStudents reads every {s:*} key as a comparable string.
func dumpStudents(t *testing.T, rdb *redis.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	keys, err := rdb.Keys(ctx, "{s:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		typ, _ := rdb.Type(ctx, k).Result()
		switch typ {
		case "hash":
			m, _ := rdb.HGetAll(ctx, k).Result()
			b, _ := json.Marshal(m)
			out[k] = string(b)
		case "string":
			out[k], _ = rdb.Get(ctx, k).Result()
		default:
			out[k] = typ
		}
	}
	return out
}

// openSummary keeps what the warnings topic determines of an open
// document: which warnings are open, raised by which event, at what level.
// Reason and evidence may be refreshed in place without an event.
func openSummary(t *testing.T, doc string) map[string]string {
	t.Helper()
	var o rules.Open
	if err := json.Unmarshal([]byte(doc), &o); err != nil {
		t.Fatalf("open document %s: %v", doc, err)
	}
	out := map[string]string{}
	for k, w := range o {
		if w.Active() {
			out[k] = fmt.Sprintf("%s %s %s %s %s %v %s", w.Ref, w.Rule, w.Level, w.Category, w.Session, w.Family, w.RaisedAt.UTC().Format(stream.TimeLayout))
		}
	}
	return out
}

func TestRebuildEqualsLiveState(t *testing.T) {
	in := startInfra(t)
	live := newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 64, Group: "ops-rebuild"})
	live.run(t)
	ctx := context.Background()
	now := time.Now().Add(-10 * time.Minute)
	var evs []stream.Event
	for s := 0; s < 6; s++ {
		id := "rb-" + strconv.Itoa(s)
		evs = append(evs, &stream.Consent{Header: stream.NewHeader(id, now), Scope: "camera", Granted: true, PolicyVersion: "v1"})
		for i := 0; i < 100; i++ {
			att := 0.9
			if s%2 == 0 {
				att = 0.1 // sustained low attention raises an engagement warning
			}
			evs = append(evs, &stream.Score{Header: stream.NewHeader(id, now.Add(time.Duration(i)*time.Second)), Session: "rb-class", Course: "calculus",
				WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: att, Model: "t",
				Learning: &stream.Learning{Engaged: att, Confused: 0.2, Bored: 0.1, Frustrated: 0.1}})
		}
		for c := 0; c < 5; c++ {
			course := "course-" + strconv.Itoa(c)
			evs = append(evs, &stream.Click{Header: stream.NewHeader(id, now.Add(time.Duration(c)*time.Minute)), Course: course, Kind: "study", DurationS: float64(60 * (s + 1))})
			evs = append(evs, &stream.Click{Header: stream.NewHeader(id, now.Add(time.Duration(c)*time.Minute)), Course: course, Kind: "quiz"})
			// Students 0–2 fail four courses: a red grade warning.
			evs = append(evs, &stream.Grade{Header: stream.NewHeader(id, now.Add(time.Duration(c)*time.Minute)), Course: course, Term: "2026-fall",
				Score: float64(40 + 30*(s/3)), Passed: s >= 3 || c == 4})
		}
	}
	if err := in.prod.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	total := len(evs)
	testenv.WaitFor(t, 60*time.Second, "every event applied", func() bool {
		return live.outcome(t, "applied")+live.outcome(t, "late")+live.outcome(t, "refused") >= total
	})
	live.stop()
	before := dumpStudents(t, in.rdb)
	if before[state.WarnKey("rb-0")] == "" {
		t.Fatalf("the live run raised no warning for rb-0; state %v", before)
	}

	// Once with one apply group, once with two applied concurrently
	// (processor --parallel 2): both must give the live state back.
	var rebuilt *member
	for _, parallel := range []int{1, 2} {
		rebuilt = newMember(t, in.broker.Addr(), in.rdb, in.prod, processor.Config{MaxBatch: 64, Group: "ops-rebuild", Parallel: parallel})
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) { checkRebuild(t, ctx, in, rebuilt, before, total) })
	}
	// Apply-only: the rebuild published nothing.
	if got := testutil.ToFloat64(counterWith(t, rebuilt.reg, "classpulse_warnings_total", "")); got != 0 {
		t.Errorf("rebuild counted %v warnings; it must not re-raise", got)
	}
	// Running as a group member afterwards redelivers nothing new.
	rebuilt.run(t)
	time.Sleep(3 * time.Second)
	rebuilt.stop()
	if got := rebuilt.outcome(t, "applied"); got != total {
		t.Errorf("after rebuild the member applied %d more (total %d), want none beyond the rebuild's %d", got-total, got, total)
	}
}

// checkRebuild rebuilds the state with rebuilt and compares it with the
// live run's.
func checkRebuild(t *testing.T, ctx context.Context, in *infra, rebuilt *member, before map[string]string, total int) {
	t.Helper()
	st, err := rebuilt.proc.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.KeysDeleted < int64(len(before)) || st.Messages != int64(total) {
		t.Errorf("rebuild stats %+v: want ≥ %d keys deleted and %d messages", st, len(before), total)
	}
	after := dumpStudents(t, in.rdb)
	if len(after) != len(before) {
		t.Errorf("rebuilt %d keys, live run had %d", len(after), len(before))
	}
	for k, v := range before {
		if strings.HasSuffix(k, ":warn") {
			if got, want := openSummary(t, after[k]), openSummary(t, v); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s rebuilt as\n%v\nlive\n%v", k, got, want)
			}
			continue
		}
		if after[k] != v {
			t.Errorf("%s rebuilt as\n%s\nlive\n%s", k, after[k], v)
		}
	}
}
