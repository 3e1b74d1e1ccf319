package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/deploy/scale"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// seedStudent gives student real state through the same code the
// processor and the queue projector run: live buckets, study time, clicks,
// a grade, consent, a tile in the grid of each of sessions, a warning with a help-loop
// step in the queue read model, a roster entry and live stream entries.
func seedStudent(t *testing.T, ctx context.Context, rdb redis.UniversalClient, proj *queue.Projector, student string, offset int64, sessions []string) {
	t.Helper()
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now().UTC()
	consent := &stream.Consent{Header: stream.NewHeader(student, now.Add(-3*time.Second)), Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-09"}
	score := &stream.Score{Header: stream.NewHeader(student, now.Add(-2*time.Second)), Session: "S1", Course: "law", WindowMS: 1000, Frames: 10,
		FaceRatio: 1, Attention: 0.7, Model: "test-1"}
	click := &stream.Click{Header: stream.NewHeader(student, now.Add(-time.Second)), Course: "law", Kind: stream.KindStudy, DurationS: 600}
	grade := &stream.Grade{Header: stream.NewHeader(student, now), Course: "law", Term: "2026-autumn", Score: 40}
	var ops []state.Op
	for i, e := range []stream.Event{consent, score, click, grade} {
		if err := e.Validate(); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, state.Op{Event: e, Topic: e.Topic(), Partition: 0, Offset: offset + int64(i)})
	}
	if _, err := store.Apply(ctx, rules.DefaultPolicy(), ops); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := store.SaveOpen(ctx, student, []byte(`{"open":[]}`)); err != nil {
		t.Fatal(err)
	}
	for _, session := range sessions {
		tile := &stream.Tile{Header: stream.NewHeader(student, now), Session: session, Course: "law", Captured: true, Attention: 0.7}
		b, _ := stream.Encode(tile)
		if err := rdb.HSet(ctx, state.TilesKey(session), student, b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	w := &stream.Warning{Header: stream.NewHeader(student, now), Category: stream.CategoryGrade, Level: stream.LevelYellow,
		Rule: "failed_courses", Course: "law", Reason: "2 failed courses", Evidence: map[string]float64{"failed": 2}, State: stream.StateRaised}
	w.Ref = w.ID
	step := &stream.Intervention{Header: stream.NewHeader(student, now.Add(time.Second)), Warning: w.Ref, Action: stream.ActionAssign, By: "head", Owner: "c.wang"}
	if err := queue.NewStore(rdb).SetRoster(ctx, []queue.RosterEntry{{Student: student, Unit: "U1", Class: "C1"}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []stream.Event{w, step} {
		b, err := stream.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := proj.ApplyEvent(ctx, e.Topic(), b); err != nil {
			t.Fatalf("projector: %v", err)
		}
		if e.Topic() == stream.TopicWarnings {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: state.LiveWarnings, Values: map[string]any{"e": string(b)}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What classpulse followup keeps of the warning's help plan
	// (helploop/keys.go: {hl:<ref>}).
	if err := rdb.HSet(ctx, "{hl:"+w.Ref+"}", "playbook:plan-1", "study-yellow", "gap:plan-1", "3.5").Err(); err != nil {
		t.Fatal(err)
	}
}

func studentKeys(t *testing.T, ctx context.Context, rdb *redis.Client, student string) []string {
	t.Helper()
	keys, err := rdb.Keys(ctx, state.StudentTag(student)+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func readAudits(t *testing.T, addr string, want int) []stream.Audit {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: stream.TopicAudit, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []stream.Audit
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read audit %d of %d: %v", len(out)+1, want, err)
		}
		var a stream.Audit
		if err := stream.DecodeInto(m.Value, &a); err != nil {
			t.Fatalf("audit record %s: %v", m.Value, err)
		}
		if string(m.Key) != a.Student {
			t.Errorf("audit key %q, want the student %q", m.Key, a.Student)
		}
		out = append(out, a)
	}
	return out
}

func TestEraseRemovesOneStudentEverywhereInRedisAndLogsAnAudit(t *testing.T) {
	ctx := context.Background()
	rd := testenv.StartRedis(t)
	rdb := rd.Client(t)
	broker := testenv.StartBroker(t, 1)
	proj, err := queue.NewProjector(queue.ProjectorConfig{Brokers: []string{broker.Addr()}}, rdb, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	seedStudent(t, ctx, rdb, proj, "stu-A", 0, []string{"S1", "S2"})
	seedStudent(t, ctx, rdb, proj, "stu-B", 100, []string{"S1", "S2"})
	keysA := studentKeys(t, ctx, rdb, "stu-A")
	keysB := studentKeys(t, ctx, rdb, "stu-B")
	if len(keysA) < 5 {
		t.Fatalf("seeding made only %v", keysA)
	}
	before, _ := rdb.DBSize(ctx).Result()

	var out bytes.Buffer
	args := []string{"--student", "stu-A", "--redis", rd.Addr, "--brokers", broker.Addr(), "--actor", "dpo@school", "--reason", "ticket-42", "--log-level", "warn"}
	if err := eraseCmd(ctx, args, &out); err != nil {
		t.Fatalf("erase: %v\n%s", err, out.String())
	}

	if k := studentKeys(t, ctx, rdb, "stu-A"); len(k) != 0 {
		t.Errorf("student keys left: %v", k)
	}
	if k := studentKeys(t, ctx, rdb, "stu-B"); len(k) != len(keysB) {
		t.Errorf("the other student's keys changed: %v, want %v", k, keysB)
	}
	for _, s := range []string{"S1", "S2"} {
		fields, _ := rdb.HKeys(ctx, state.TilesKey(s)).Result()
		if strings.Join(fields, ",") != "stu-B" {
			t.Errorf("tiles of %s = %v, want only stu-B", s, fields)
		}
	}
	qs := queue.NewStore(rdb)
	for student, want := range map[string]int{"stu-A": 0, "stu-B": 1} {
		recs, total, err := qs.List(ctx, queue.Filter{Student: student})
		if err != nil || total != want || len(recs) != want {
			t.Errorf("queue records of %s = %d (%v), want %d", student, total, err, want)
		}
		if _, err := qs.Roster(ctx, student); (err == nil) != (want == 1) {
			t.Errorf("roster of %s: err %v, want present=%v", student, err, want == 1)
		}
	}
	// No index set still names a ref of stu-A's: every index either lost
	// the ref or, emptied, vanished.
	idx, _ := rdb.Keys(ctx, "{q}:i:*").Result()
	recsB, _, err := qs.List(ctx, queue.Filter{Student: "stu-B"})
	if err != nil || len(recsB) != 1 {
		t.Fatalf("stu-B's records = %d (%v), want 1", len(recsB), err)
	}
	for _, k := range idx {
		members, _ := rdb.SMembers(ctx, k).Result()
		for _, m := range members {
			if m != recsB[0].Ref {
				t.Errorf("index %s still holds %s", k, m)
			}
		}
	}
	if all, _ := rdb.ZCard(ctx, "{q}:all").Result(); all != 1 {
		t.Errorf("{q}:all holds %d refs, want 1", all)
	}
	live, _ := rdb.XRange(ctx, state.LiveWarnings, "-", "+").Result()
	if len(live) != 1 || !strings.Contains(live[0].Values["e"].(string), `"stu-B"`) {
		t.Errorf("live warnings after erase: %v", live)
	}
	steps, _ := rdb.XRange(ctx, state.LiveInterventions, "-", "+").Result()
	if len(steps) != 1 || !strings.Contains(steps[0].Values["e"].(string), `"stu-B"`) {
		t.Errorf("live interventions after erase: %v", steps)
	}

	audits := readAudits(t, broker.Addr(), 1)
	a := audits[0]
	if a.Student != "stu-A" || a.Action != stream.AuditErase || a.Actor != "dpo@school" || a.Detail != "ticket-42" {
		t.Errorf("audit = %+v", a)
	}
	after, _ := rdb.DBSize(ctx).Result()
	wantCounts := map[string]int64{"redis_keys": int64(len(keysA)), "tiles": 2, "queue_records": 1, "roster": 1, "live_entries": 2, "follow_ups": 1} // the warning, and the step the projector relayed
	for k, v := range wantCounts {
		if a.Counts[k] != v {
			t.Errorf("audit count %s = %d, want %d (counts %v)", k, a.Counts[k], v, a.Counts)
		}
	}
	// Keys removed outright: the student's own keys, the queue record and
	// its steps hash; the index sets only stu-A used vanish too.
	if before-after < int64(len(keysA))+3 {
		t.Errorf("DBSIZE fell from %d to %d, want at least %d fewer", before, after, len(keysA)+3)
	}
	report := out.String()
	for _, want := range []string{"erased student stu-A", "student state keys deleted: " + strconv.Itoa(len(keysA)), a.ID, "Kafka"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}

	// A second erasure finds nothing, succeeds, and is logged too.
	out.Reset()
	if err := eraseCmd(ctx, args, &out); err != nil {
		t.Fatalf("second erase: %v", err)
	}
	again := readAudits(t, broker.Addr(), 2)[1]
	for k, v := range again.Counts {
		if v != 0 {
			t.Errorf("second erase count %s = %d, want 0", k, v)
		}
	}
}

func TestEraseRefusesBadRequestsBeforeTouchingRedis(t *testing.T) {
	// A closed port: any attempt to reach Redis or Kafka would fail with a
	// connection error, not the validation error the case expects.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no student", []string{}, "--student is required"},
		{"glob in the id would match other students", []string{"--student", "stu*"}, "student"},
		{"brace in the id would break the hash tag", []string{"--student", "a}b"}, "student"},
		{"bad actor", []string{"--student", "stu-A", "--actor", "two words"}, "actor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := eraseCmd(context.Background(), append(c.args, "--redis", addr, "--brokers", addr), &out)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "connect") {
				t.Fatalf("erase = %v, want a refusal naming %q", err, c.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed a report for a refused request: %s", out.String())
			}
		})
	}
}

func TestEraseOnRedisClusterReachesEveryMaster(t *testing.T) {
	ctx := context.Background()
	cluster, err := scale.StartCluster(ctx, t.TempDir(), 3)
	if err != nil {
		t.Fatalf("redis cluster: %v", err)
	}
	t.Cleanup(cluster.Close)
	rdb := cluster.Client()
	t.Cleanup(func() { rdb.Close() })
	broker := testenv.StartBroker(t, 1)
	proj, err := queue.NewProjector(queue.ProjectorConfig{Brokers: []string{broker.Addr()}}, rdb, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// Twelve sessions: their {c:<session>} hash tags spread over the masters.
	sessions := []string{"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S12"}
	seedStudent(t, ctx, rdb, proj, "stu-A", 0, sessions)
	seedStudent(t, ctx, rdb, proj, "stu-B", 100, sessions)

	// The tiles must really sit on more than one master, or the test would
	// not show that erase reaches them all.
	holders := 0
	for _, addr := range cluster.Addrs {
		keys, err := cluster.Node(addr).Keys(ctx, "{c:*}:tiles").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			holders++
		}
	}
	if holders < 2 {
		t.Fatalf("tiles landed on %d master(s); pick sessions that spread", holders)
	}

	var out bytes.Buffer
	args := []string{"--student", "stu-A", "--redis", strings.Join(cluster.Addrs, ","), "--brokers", broker.Addr(), "--log-level", "warn"}
	if err := eraseCmd(ctx, args, &out); err != nil {
		t.Fatalf("erase: %v\n%s", err, out.String())
	}
	for _, addr := range cluster.Addrs {
		node := cluster.Node(addr)
		if k, _ := node.Keys(ctx, state.StudentTag("stu-A")+":*").Result(); len(k) != 0 {
			t.Errorf("master %s still holds %v", addr, k)
		}
		tiles, _ := node.Keys(ctx, "{c:*}:tiles").Result()
		for _, k := range tiles {
			if ok, _ := node.HExists(ctx, k, "stu-A").Result(); ok {
				t.Errorf("master %s: %s still has stu-A's tile", addr, k)
			}
			if ok, _ := node.HExists(ctx, k, "stu-B").Result(); !ok {
				t.Errorf("master %s: %s lost stu-B's tile", addr, k)
			}
		}
	}
	if n, _ := rdb.Exists(ctx, state.StudentKeys("stu-B")...).Result(); n == 0 {
		t.Error("stu-B's state is gone")
	}
	a := readAudits(t, broker.Addr(), 1)[0]
	if a.Counts["tiles"] != int64(len(sessions)) || a.Counts["queue_records"] != 1 || a.Counts["redis_keys"] == 0 {
		t.Errorf("audit counts %v, want %d tiles, 1 queue record, some keys", a.Counts, len(sessions))
	}
}
