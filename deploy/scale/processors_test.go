package scale

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// The scale run of docs/operations.md: 3 `classpulse processor` processes
// in one consumer group against one (embedded, Kafka-protocol) broker and
// the 3-node Redis Cluster, compared with 1 process on the same events,
// then one of the 3 stopped mid-stream to show its partitions move.
// Minutes long, so only under CLASSPULSE_SCALE=1 (make deploy-scale).
func TestScaleThreeProcessorsAgainstOne(t *testing.T) {
	if os.Getenv("CLASSPULSE_SCALE") == "" {
		t.Skip("the scale run takes minutes: make deploy-scale (CLASSPULSE_SCALE=1)")
	}
	const (
		partitions = 12
		students   = 2000
		perStudent = 50
		events     = students * perStudent
		extra      = students * 5
	)
	bin := buildClasspulse(t)
	cluster := startCluster(t)
	broker, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: partitions}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	start := time.Now()
	publishScores(t, broker.Addr(), students, perStudent, start)
	t.Logf("published %d score events for %d students in %v", events, students, time.Since(start).Round(time.Millisecond))

	ctx := context.Background()
	one := runGroup(t, bin, broker.Addr(), cluster, "scale-1", 1)
	r1 := one.waitCount(t, events, 5*time.Minute)
	one.stopAll(t)
	if err := cluster.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}

	three := runGroup(t, bin, broker.Addr(), cluster, "scale-3", 3)
	r3 := three.waitCount(t, events, 5*time.Minute)
	assign := groupAssignment(t, broker.Addr(), "scale-3", 3, partitions)
	t.Logf("partitions of %s per group member (from the broker): %v", stream.TopicScores, assign)
	for _, addr := range cluster.Addrs {
		node := cluster.Node(addr)
		n, err := node.DBSize(ctx).Result()
		node.Close()
		if err != nil || n == 0 {
			t.Errorf("shard %s holds no keys after the run (n=%d, err=%v)", addr, n, err)
		}
		t.Logf("shard %s: %d keys", addr, n)
	}

	owners, err := cluster.SlotOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rdb := cluster.Client()
	defer rdb.Close()
	for i := 0; i < students; i += 37 {
		live := state.LiveKey(fmt.Sprintf("s%05d", i))
		slot, err := rdb.ClusterKeySlot(ctx, live).Result()
		if err != nil {
			t.Fatal(err)
		}
		node := cluster.Node(owners[slot])
		n, err := node.Exists(ctx, live).Result()
		node.Close()
		if err != nil || n != 1 {
			t.Errorf("%s not on its slot owner %s after the run (n=%d, err=%v)", live, owners[slot], n, err)
		}
	}

	// Rebalance: stop one member; the two left must take its partitions
	// and apply everything published afterwards.
	before := three.countOf(t, 0) + three.countOf(t, 1)
	three.stop(t, 2)
	publishScores(t, broker.Addr(), students, 5, time.Now())
	deadline := time.Now().Add(3 * time.Minute)
	for three.countOf(t, 0)+three.countOf(t, 1)-before < extra {
		if time.Now().After(deadline) {
			t.Fatalf("after stopping one processor, the other two applied %d of %d new events", three.countOf(t, 0)+three.countOf(t, 1)-before, extra)
		}
		time.Sleep(200 * time.Millisecond)
	}
	after := groupAssignment(t, broker.Addr(), "scale-3", 2, partitions)
	t.Logf("after stopping one processor, partitions per member: %v", after)
	three.stopAll(t)

	t.Logf("scale processors=1 events=%d events_per_s=%.0f wall=%v", events, r1.rate, r1.wall.Round(time.Millisecond))
	t.Logf("scale processors=3 events=%d events_per_s=%.0f wall=%v ratio=%.2f", events, r3.rate, r3.wall.Round(time.Millisecond), r3.rate/r1.rate)
}

func buildClasspulse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "classpulse")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/classpulse")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/classpulse: %v\n%s", err, out)
	}
	return bin
}

// publishScores publishes perStudent per-second score events for each
// student, the last at now.
func publishScores(t *testing.T, broker string, students, perStudent int, now time.Time) {
	t.Helper()
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	batch := make([]stream.Event, 0, 1000)
	for j := 0; j < perStudent; j++ {
		ts := now.Add(-time.Duration(perStudent-1-j) * time.Second)
		for i := 0; i < students; i++ {
			batch = append(batch, &stream.Score{
				Header:  stream.NewHeader(fmt.Sprintf("s%05d", i), ts),
				Session: fmt.Sprintf("sess-%d", i/40), Course: "calculus",
				WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: 0.3 + 0.6*float64((i+j)%10)/10,
				Model: "scale-test",
			})
			if len(batch) == cap(batch) {
				if err := p.Publish(ctx, batch...); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	if len(batch) > 0 {
		if err := p.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
}

// group is k processor processes of one consumer group.
type group struct {
	procs   []*exec.Cmd
	metrics []string
	started time.Time
}

func runGroup(t *testing.T, bin, broker string, c *Cluster, name string, k int) *group {
	t.Helper()
	g := &group{started: time.Now()}
	for i := 0; i < k; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		logf, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.log", name, i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "processor",
			"--brokers", broker, "--redis", strings.Join(c.Addrs, ","), "--redis-cluster",
			"--group", name, "--metrics-addr", addr, "--no-class-stage", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			logf.Close()
			if t.Failed() {
				log, _ := os.ReadFile(logf.Name())
				t.Logf("%s:\n%s", logf.Name(), tail(string(log), 2000))
			}
		})
		g.procs = append(g.procs, cmd)
		g.metrics = append(g.metrics, "http://"+addr+"/metrics")
	}
	return g
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// scrapeClient keeps no idle connections, so no transport goroutine
// outlives the test (goleak in TestMain).
var scrapeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// scrape returns the samples of one process's /metrics whose name is
// metric, keyed by their label string. A process not (yet) serving gives
// nothing.
func scrape(url, metric string) map[string]float64 {
	out := map[string]float64{}
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) {
			continue
		}
		rest := line[len(metric):]
		labels := ""
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			labels, rest = rest[1:end], rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out[labels] = v
		}
	}
	return out
}

// countOf is how many input events process i has handled, any outcome.
func (g *group) countOf(t *testing.T, i int) int {
	var n float64
	for _, v := range scrape(g.metrics[i], "classpulse_processor_events_total") {
		n += v
	}
	return int(n)
}

type result struct {
	rate float64
	wall time.Duration
}

// waitCount waits until the group has handled want events and returns the
// rate from the first handled event to the last, and the wall time from
// process start.
func (g *group) waitCount(t *testing.T, want int, timeout time.Duration) result {
	t.Helper()
	var first time.Time
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for i := range g.procs {
			n += g.countOf(t, i)
		}
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= want {
			now := time.Now()
			return result{rate: float64(n) / now.Sub(first).Seconds(), wall: now.Sub(g.started)}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processors handled %d of %d events in %v", len(g.procs), n, want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupAssignment asks the broker how the scores partitions of group are
// split over its members, waiting until the group has members members and
// the assignment covers every partition exactly once (a rebalance may be in
// flight). It returns the sorted partition lists, one per member.
func groupAssignment(t *testing.T, broker, group string, members, partitions int) [][]int {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 5 * time.Second, Transport: transport}
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil || len(resp.Groups) != 1 {
			last = fmt.Sprintf("describe groups: %v", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		g := resp.Groups[0]
		var out [][]int
		seen := map[int]int{}
		for _, m := range g.Members {
			var ps []int
			for _, tp := range m.MemberAssignments.Topics {
				if tp.Topic == stream.TopicScores {
					ps = append(ps, tp.Partitions...)
				}
			}
			sort.Ints(ps)
			for _, p := range ps {
				seen[p]++
			}
			out = append(out, ps)
		}
		ok := len(g.Members) == members && len(seen) == partitions
		for _, n := range seen {
			ok = ok && n == 1
		}
		for _, ps := range out {
			ok = ok && len(ps) > 0
		}
		if ok {
			sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
			return out
		}
		last = fmt.Sprintf("state %s, %d members, assignment %v", g.GroupState, len(g.Members), out)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("group %s never settled on %d members covering %d partitions once: %s", group, members, partitions, last)
	return nil
}

// stop sends SIGTERM to process i and waits for a clean exit.
func (g *group) stop(t *testing.T, i int) {
	t.Helper()
	p := g.procs[i]
	if p.ProcessState != nil {
		return
	}
	_ = p.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("processor %d exited after SIGTERM: %v", i, err)
		}
	case <-time.After(45 * time.Second):
		_ = p.Process.Kill()
		<-done
		t.Errorf("processor %d did not stop within 45 s of SIGTERM", i)
	}
}

func (g *group) stopAll(t *testing.T) {
	for i := range g.procs {
		g.stop(t, i)
	}
}
