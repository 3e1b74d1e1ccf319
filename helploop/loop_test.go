package helploop

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/notify"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// clock is the fake clock the loops read.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// fixture is the real chain: Redis, the embedded broker, a producer, the
// queue projector consuming what the loop publishes, and the state store
// the processor writes.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	rdb    *redis.Client
	prod   *stream.Producer
	store  *queue.Store
	st     *state.Store
	reader *state.Reader
	policy *rules.Holder
	clock  *clock
	off    int64
	hook   *receiver
	url    string
	brok   []string
}

// receiver is a webhook endpoint that records what notify posts.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	r.mu.Lock()
	r.bodies = append(r.bodies, m)
	r.mu.Unlock()
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.bodies) }

var sh = rules.DefaultPolicy().Location()

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rdb := testenv.StartRedis(t).Client(t)
	b := testenv.StartBroker(t, 2)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{b.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := queue.NewProjector(queue.ProjectorConfig{Brokers: []string{b.Addr()}}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- proj.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("projector: %v", err)
		}
		prod.Close()
	})
	st, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reader, err := state.NewReader(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hook := &receiver{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	return &fixture{t: t, ctx: context.Background(), rdb: rdb, prod: prod, store: queue.NewStore(rdb), st: st, reader: reader,
		policy: rules.NewHolder(rules.DefaultPolicy()), clock: &clock{}, hook: hook, url: srv.URL, brok: []string{b.Addr()}}
}

// loop builds one replica reading the fixture's clock.
func (f *fixture) loop(name string, reg prometheus.Registerer) *Loop {
	f.t.Helper()
	d, err := notify.New(notify.Config{Brokers: f.brok, WebhookSecret: "0123456789abcdef0123",
		Routes: []notify.Route{{Channel: notify.ChannelWebhook, To: []string{f.url}, States: []string{notify.StateFollowUp}}}},
		f.rdb, nil, nil, notify.WithClock(f.clock.now))
	if err != nil {
		f.t.Fatal(err)
	}
	l, err := New(Config{Replica: name}, f.rdb, f.reader, f.policy, f.prod, nil, reg, WithClock(f.clock.now), WithNotifier(d))
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// study records hours of online study in course at ts, as the processor
// applies a click.
func (f *fixture) study(student, course string, hours float64, ts time.Time) {
	f.t.Helper()
	var ops []state.Op
	for hours > 0 {
		h := min(hours, 4)
		hours -= h
		ops = append(ops, state.Op{Event: &stream.Click{Header: stream.NewHeader(student, ts), Course: course, Kind: stream.KindStudy, DurationS: h * 3600},
			Topic: stream.TopicClicks, Offset: f.off})
		f.off++
	}
	if _, err := f.st.Apply(f.ctx, f.policy.Policy(), ops); err != nil {
		f.t.Fatal(err)
	}
}

// warnAndPlan raises a study warning at level for student and posts the
// counsellor's plan, due after days, through Kafka; it returns the ref
// once the queue shows the plan.
func (f *fixture) warnAndPlan(student, level string, at time.Time, days int) string {
	f.t.Helper()
	w := &stream.Warning{Header: stream.NewHeader(student, at), Category: stream.CategoryStudy, Level: level, Rule: rules.RuleStudy,
		Reason: "2 courses below required study time", Evidence: map[string]float64{"courses_short": 2}, State: stream.StateRaised}
	w.Ref = w.ID
	due := stream.At(at.AddDate(0, 0, days))
	plan := &stream.Intervention{Header: stream.NewHeader(student, at.Add(time.Minute)), Warning: w.Ref, Action: stream.ActionPlan,
		By: "c.wang", Tasks: []string{"call the student"}, Due: &due}
	if err := f.prod.Publish(f.ctx, w); err != nil {
		f.t.Fatal(err)
	}
	if err := f.prod.Publish(f.ctx, plan); err != nil {
		f.t.Fatal(err)
	}
	f.waitSteps(w.Ref, 1)
	testenv.WaitFor(f.t, 10*time.Second, "warning projected", func() bool {
		r, err := f.store.Get(f.ctx, w.Ref)
		return err == nil && r.Category != "" && r.Loop == "in_progress"
	})
	return w.Ref
}

// waitSteps waits until the queue holds n steps of ref and returns them.
func (f *fixture) waitSteps(ref string, n int) []*stream.Intervention {
	f.t.Helper()
	var steps []*stream.Intervention
	testenv.WaitFor(f.t, 10*time.Second, "steps projected", func() bool {
		steps, _ = f.store.Steps(f.ctx, ref)
		return len(steps) >= n
	})
	return steps
}

func (f *fixture) tick(l *Loop, at time.Time) int {
	f.t.Helper()
	f.clock.set(at)
	n, err := l.Tick(f.ctx)
	if err != nil {
		f.t.Fatalf("tick at %v: %v", at, err)
	}
	return n
}

// Monday 23 November 2026, in the default policy's third autumn period.
var monday = time.Date(2026, 11, 23, 15, 0, 0, 0, sh)

func TestFollowUpChecksRemindsAndEscalatesAnUnmetYellowPlan(t *testing.T) {
	f := newFixture(t)
	f.study("s1", "calculus", 2, monday.AddDate(0, 0, -20))
	f.study("s1", "law", 2, monday.AddDate(0, 0, -20))
	ref := f.warnAndPlan("s1", stream.LevelYellow, monday, 14)
	reg := prometheus.NewRegistry()
	l := f.loop("a", reg)

	if n := f.tick(l, monday.Add(time.Hour)); n != 0 {
		t.Fatalf("a checkpoint ran an hour after the plan: %d", n)
	}
	// Friday: no study since the plan, so no progress, and the family is to
	// be contacted.
	if n := f.tick(l, time.Date(2026, 11, 27, 9, 30, 0, 0, sh)); n != 1 {
		t.Fatalf("Friday ran %d checkpoints, want 1", n)
	}
	steps := f.waitSteps(ref, 2)
	check := steps[1]
	if check.By != System || check.Action != stream.ActionFollowUp || check.Result != ResultNoProgress || check.Channel != "system" {
		t.Errorf("Friday step = %+v", check)
	}
	if want := "[automatic follow-up] Progress check of Friday 27 November: no progress"; len(check.Notes) < len(want) || check.Notes[:len(want)] != want {
		t.Errorf("notes %q", check.Notes)
	}
	testenv.WaitFor(t, 10*time.Second, "reminder delivered to the webhook", func() bool { return f.hook.count() == 1 })
	atts, err := notify.Attempts(f.ctx, f.rdb, "s1", ref)
	if err != nil || len(atts) != 1 || atts[0].Outcome != "delivered" {
		t.Errorf("delivery attempts on the warning = %+v, %v", atts, err)
	}

	// Study over the weekend: Monday's reminder, then progress on Friday.
	f.study("s1", "law", 8, time.Date(2026, 11, 28, 10, 0, 0, 0, sh))
	if n := f.tick(l, time.Date(2026, 11, 30, 9, 0, 0, 0, sh)); n != 1 {
		t.Fatalf("Monday ran %d, want the reminder", n)
	}
	if n := f.tick(l, time.Date(2026, 12, 4, 9, 0, 0, 0, sh)); n != 1 {
		t.Fatalf("second Friday ran %d, want the check", n)
	}
	steps = f.waitSteps(ref, 4)
	if steps[2].Result != ResultReminded || steps[3].Result != ResultProgress {
		t.Errorf("results %q, %q; want reminded, progress", steps[2].Result, steps[3].Result)
	}

	// The deadline (Monday 7 December 15:00): still short, so red.
	f.tick(l, time.Date(2026, 12, 7, 15, 0, 0, 0, sh))
	steps = f.waitSteps(ref, 5)
	last := steps[len(steps)-1]
	if last.Action != stream.ActionEscalate || last.Result != ResultEscalated || last.By != System {
		t.Errorf("deadline step = %+v", last)
	}
	testenv.WaitFor(t, 10*time.Second, "the warning raised to red", func() bool {
		r, err := f.store.Get(f.ctx, ref)
		return err == nil && r.Level == stream.LevelRed && r.State == stream.StateEscalated && r.Loop == "escalated"
	})
	if n := f.tick(l, time.Date(2026, 12, 30, 9, 0, 0, 0, sh)); n != 0 {
		t.Errorf("%d checkpoints ran after the deadline", n)
	}
	if got := testutil.ToFloat64(l.metrics.checkpoints.WithLabelValues(rules.CheckpointDeadline, ResultEscalated)); got != 1 {
		t.Errorf("deadline escalations counted %v", got)
	}
	if problems, err := testutil.CollectAndLint(l.metrics.checkpoints); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %v", problems, err)
	}
}

func TestFollowUpProposesClosingWhenTheTargetIsMet(t *testing.T) {
	f := newFixture(t)
	f.study("s2", "calculus", 1, monday.AddDate(0, 0, -20))
	f.study("s2", "law", 1, monday.AddDate(0, 0, -20))
	ref := f.warnAndPlan("s2", stream.LevelYellow, monday, 4)
	l := f.loop("a", nil)
	f.tick(l, monday.Add(time.Minute*2))
	f.study("s2", "calculus", 60, monday.Add(24*time.Hour))
	f.study("s2", "law", 60, monday.Add(24*time.Hour))
	// The deadline is Friday 27 at 15:00; the Friday check at 09:00 finds
	// the target met, the deadline proposes closing.
	f.tick(l, time.Date(2026, 11, 27, 16, 0, 0, 0, sh))
	steps := f.waitSteps(ref, 2)
	last := steps[len(steps)-1]
	if last.Result != ResultProposeClose || last.Action != stream.ActionFollowUp {
		t.Fatalf("deadline step = %+v", last)
	}
	r, err := f.store.Get(f.ctx, ref)
	if err != nil || r.Loop == "closed" || r.Level != stream.LevelYellow {
		t.Errorf("the system must not close or escalate a met plan: %+v %v", r, err)
	}
	// The Friday check was superseded by the due deadline, not run.
	h, _ := f.rdb.HGetAll(f.ctx, planKey(ref)).Result()
	var check map[string]any
	for k, v := range h {
		if len(k) > 5 && k[:5] == "done:" && json.Unmarshal([]byte(v), &check) == nil && check["result"] == "superseded" {
			return
		}
	}
	t.Errorf("no superseded check recorded: %v", h)
}

// A replica that read the plan before another replica ran a checkpoint
// and released its claim does not run it again when it then wins the
// claim.
func TestFollowUpAReplicaWithAStaleReadDoesNotRunAFinishedCheckpoint(t *testing.T) {
	f := newFixture(t)
	f.study("s4", "calculus", 1, monday.AddDate(0, 0, -20))
	f.study("s4", "law", 1, monday.AddDate(0, 0, -20))
	f.warnAndPlan("s4", stream.LevelYellow, monday, 14)
	a, b := f.loop("a", nil), f.loop("b", nil)
	f.tick(a, monday.Add(time.Minute*2))
	f.clock.set(time.Date(2026, 11, 27, 9, 1, 0, 0, sh))
	ranA := 0
	b.beforeClaim = func() {
		b.beforeClaim = nil
		n, err := a.Tick(f.ctx)
		if err != nil {
			t.Error(err)
		}
		ranA = n
	}
	ranB, err := b.Tick(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ranA != 1 || ranB != 0 {
		t.Fatalf("replica a ran %d, b (read before a finished) ran %d; want 1 and 0", ranA, ranB)
	}
	if keys, _ := f.rdb.Keys(f.ctx, "*claim*").Result(); len(keys) != 0 {
		t.Errorf("claims left behind: %v", keys)
	}
}

func TestFollowUpTwoReplicasRunEachCheckpointOnceAndSurviveRestart(t *testing.T) {
	f := newFixture(t)
	f.study("s3", "calculus", 1, monday.AddDate(0, 0, -20))
	f.study("s3", "law", 1, monday.AddDate(0, 0, -20))
	ref := f.warnAndPlan("s3", stream.LevelYellow, monday, 14)
	a, b := f.loop("a", nil), f.loop("b", nil)
	f.tick(a, monday.Add(time.Minute*2))
	friday := time.Date(2026, 11, 27, 9, 1, 0, 0, sh)
	f.clock.set(friday)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, l := range []*Loop{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := l.Tick(f.ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Fatalf("replicas ran %v checkpoints, want 1 in all", counts)
	}
	// A restarted replica (fresh Loop, same Redis) finds it done.
	if n := f.tick(f.loop("a-restarted", nil), friday.Add(time.Hour)); n != 0 {
		t.Errorf("restarted replica ran %d", n)
	}
	// A checkpoint claimed by a replica that died mid-step runs once its
	// lease lapses; the retried step has the same id, so the queue holds it
	// once.
	mon := time.Date(2026, 11, 30, 9, 0, 0, 0, sh)
	steps := f.waitSteps(ref, 2)
	planID := steps[0].ID
	f.rdb.Set(f.ctx, claimKey(ref, planID, "remind-2026-11-30"), "dead-replica", 50*time.Millisecond)
	if n := f.tick(a, mon); n != 0 {
		t.Fatalf("ran a checkpoint another replica holds: %d", n)
	}
	testenv.WaitFor(t, 5*time.Second, "lease lapses", func() bool {
		return f.rdb.Exists(f.ctx, claimKey(ref, planID, "remind-2026-11-30")).Val() == 0
	})
	if n := f.tick(a, mon); n != 1 {
		t.Fatalf("after the lease, ran %d", n)
	}
	if err := f.prod.Publish(f.ctx, &stream.Intervention{Header: stream.Header{V: 1, ID: eventID(mon, ref, planID, "remind-2026-11-30", "step"),
		TS: stream.At(mon), Student: "s3"}, Warning: ref, Action: stream.ActionFollowUp, Channel: "system", By: System, Result: ResultReminded}); err != nil {
		t.Fatal(err)
	}
	// A sentinel after the duplicate: once it is projected, so is the
	// duplicate (one student, one partition, in order).
	if err := f.prod.Publish(f.ctx, &stream.Intervention{Header: stream.NewHeader("s3", mon.Add(time.Hour)), Warning: ref,
		Action: stream.ActionTalk, Channel: "phone", By: "c.wang"}); err != nil {
		t.Fatal(err)
	}
	steps = f.waitSteps(ref, 4)
	if len(steps) != 4 {
		t.Errorf("steps %d, want plan, check, one reminder and the talk", len(steps))
	}
}

func TestFollowUpSkipsPlansWithoutPlaybookAndClosedWarnings(t *testing.T) {
	f := newFixture(t)
	f.study("s4", "calculus", 1, monday.AddDate(0, 0, -20))
	ref := f.warnAndPlan("s4", stream.LevelYellow, monday, 14)
	closeAt := monday.Add(time.Hour)
	if err := f.prod.Publish(f.ctx, &stream.Intervention{Header: stream.NewHeader("s4", closeAt), Warning: ref, Action: stream.ActionClose,
		By: "c.wang", Result: "withdrawn"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "closed", func() bool {
		r, err := f.store.Get(f.ctx, ref)
		return err == nil && r.Loop == "closed"
	})
	// A policy without playbooks follows nothing.
	f.policy.Store(mustPolicy(t))
	other := f.warnAndPlan("s5", stream.LevelYellow, monday, 14)
	l := f.loop("a", nil)
	if n := f.tick(l, time.Date(2026, 12, 30, 9, 0, 0, 0, sh)); n != 0 {
		t.Errorf("ran %d checkpoints", n)
	}
	if steps, _ := f.store.Steps(f.ctx, other); len(steps) != 1 {
		t.Errorf("steps on a plan without playbook: %d", len(steps))
	}
}

func mustPolicy(t *testing.T) *rules.Policy {
	t.Helper()
	y := rules.DefaultPolicyYAML()
	i := strings.Index(string(y), "\nplaybooks:")
	p, err := rules.LoadPolicy(y[:i+1], "no-playbooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
