package scale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

func startCluster(t *testing.T) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := StartCluster(ctx, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// noTerm places every event outside the school calendar: score events do
// not need one.
type noTerm struct{}

func (noTerm) PeriodAt(time.Time) (string, string, bool) { return "", "", false }

func (noTerm) WeekKey(t time.Time) string {
	y, w := t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

func (c noTerm) LastWeeks(t time.Time) (last, prev string) {
	return c.WeekKey(t.AddDate(0, 0, -7)), c.WeekKey(t.AddDate(0, 0, -14))
}

func scoreOps(students, partitions int, now time.Time) []state.Op {
	ops := make([]state.Op, 0, students)
	next := make([]int64, partitions)
	for i := 0; i < students; i++ {
		student := fmt.Sprintf("s%05d", i)
		ev := &stream.Score{
			Header:  stream.NewHeader(student, now),
			Session: "sess-1", Course: "calculus",
			WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 0.8,
			Model: "scale-test",
		}
		p := i % partitions
		ops = append(ops, state.Op{Event: ev, Topic: stream.TopicScores, Partition: p, Offset: next[p]})
		next[p]++
	}
	return ops
}

// The real apply script touches every key of a student in one call; on a
// cluster that only works if all of them hash to one slot, and the state
// must then be on the master that owns that slot — and only there.
func TestStudentStateLandsOnTheShardThatOwnsItsSlot(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	rdb := c.Client()
	defer rdb.Close()
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	const students = 300
	ops := scoreOps(students, 6, time.Now())
	res, err := store.Apply(ctx, noTerm{}, ops)
	if err != nil {
		t.Fatalf("apply on the cluster: %v", err)
	}
	for i, r := range res {
		if r.Status != state.Applied {
			t.Fatalf("student %d: status %v, want applied", i, r.Status)
		}
	}

	owners, err := c.SlotOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*redis.Client{}
	for _, a := range c.Addrs {
		nodes[a] = c.Node(a)
		defer nodes[a].Close()
	}
	perNode := map[string]int{}
	for _, op := range ops {
		student := op.Event.EventHeader().Student
		keys := state.StudentKeys(student)
		slot, err := rdb.ClusterKeySlot(ctx, keys[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys[1:] {
			if s, _ := rdb.ClusterKeySlot(ctx, k).Result(); s != slot {
				t.Fatalf("%s: key %s in slot %d, %s in slot %d: the hash tag does not hold them together", student, keys[0], slot, k, s)
			}
		}
		owner := owners[slot]
		perNode[owner]++
		live := state.LiveKey(student)
		for addr, node := range nodes {
			n, err := node.Exists(ctx, live).Result()
			if addr == owner {
				if err != nil || n != 1 {
					t.Errorf("%s: %s missing on its slot owner %s (n=%d, err=%v)", student, live, owner, n, err)
				}
				continue
			}
			// Any other master redirects to the owner.
			if err == nil || !strings.HasPrefix(err.Error(), "MOVED") || !strings.HasSuffix(err.Error(), owner) {
				t.Errorf("%s: node %s answered %v, want MOVED to %s", student, addr, err, owner)
			}
		}
	}
	for _, a := range c.Addrs {
		// An even split gives each of 3 shards about 100 of 300 students.
		if perNode[a] < students/6 {
			t.Errorf("shard %s holds %d of %d students: hash tags do not spread students", a, perNode[a], students)
		}
	}
	t.Logf("students per shard: %v", perNode)

	// Exactly-once effect holds across shards: a redelivered batch changes
	// nothing.
	again, err := store.Apply(ctx, noTerm{}, ops)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Status != state.Duplicate {
			t.Fatalf("redelivered event %d: status %v, want duplicate", i, r.Status)
		}
	}
}

func TestClassKeysOfASessionShareOneSlot(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	rdb := c.Client()
	defer rdb.Close()
	for _, session := range []string{"sess-1", "math-2026-03-02-a", "x"} {
		tiles, warn := state.TilesKey(session), state.ClassWarnKey(session)
		a, _ := rdb.ClusterKeySlot(ctx, tiles).Result()
		b, _ := rdb.ClusterKeySlot(ctx, warn).Result()
		if a != b {
			t.Errorf("session %s: %s slot %d, %s slot %d", session, tiles, a, warn, b)
		}
		// A MULTI over both keys is refused with CROSSSLOT unless they share
		// a slot; this is what the class stage relies on.
		_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, tiles, "s1", "{}")
			p.HSet(ctx, warn, "attention", "{}")
			return nil
		})
		if err != nil {
			t.Errorf("session %s: transaction over its keys: %v", session, err)
		}
	}
}

func TestStartClusterRefusesTooFewMasters(t *testing.T) {
	_, err := StartCluster(context.Background(), t.TempDir(), 2)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("StartCluster with 2 nodes: %v, want an error", err)
	}
}
