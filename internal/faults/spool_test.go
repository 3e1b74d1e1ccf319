package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/spool"
)

// The model set and a demo photo come from `make models`.
const (
	modelDir  = "../../models"
	demoPhoto = "../../build/npm/node_modules/@vladmandic/face-api/demo/sample1.jpg"
)

// envDuration reads a duration override such as CLASSPULSE_FAULT_BROKER_AWAY.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// brokerOnAddr is the embedded broker on a fixed address with its log on
// disk, so it can go away and come back where the clients expect it with
// everything it had accepted.
type brokerOnAddr struct {
	addr, dir string
	b         *stream.EmbeddedBroker
}

func startBrokerOnAddr(t *testing.T) *brokerOnAddr {
	t.Helper()
	br := &brokerOnAddr{addr: restartableAddr(t), dir: t.TempDir()}
	br.start(t)
	t.Cleanup(br.stop)
	return br
}

// restartableAddr is a free loopback address below the kernel's
// ephemeral port range. A port the kernel hands out (freeAddr) can, while
// its listener is away, become the source port of some client's connect,
// or of a client retrying that very address (a TCP self-connect), and stay
// taken: CI once failed to bring the broker back on it for 10 s.
func restartableAddr(t *testing.T) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 100 {
		addr := "127.0.0.1:" + strconv.Itoa(10000+rand.IntN(low-10000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

func (br *brokerOnAddr) start(t *testing.T) {
	t.Helper()
	var err error
	// The port was free a moment ago; a client's reconnect cannot hold it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		br.b, err = stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: br.addr, Partitions: 2, DataDir: br.dir}, nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("broker on %s: %v", br.addr, err)
	}
}

// stop closes the broker: its port refuses connections and every client
// connection is cut.
func (br *brokerOnAddr) stop() {
	if br.b != nil {
		br.b.Close()
		br.b = nil
	}
}

// readAll returns every message of every topic the broker holds, in
// partition order.
func readAll(t *testing.T, addr string) []kafka.Message {
	t.Helper()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range parts {
		lc, err := kafka.DialLeader(context.Background(), "tcp", addr, p.Topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := lc.ReadOffsets()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: p.Topic, Partition: p.ID, MaxWait: 50 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				r.Close()
				t.Fatalf("%s/%d: %v", p.Topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// spooled lists the ids of the events a spool folder holds undelivered, in
// order. The writer must be dead: a spool has one owner.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	s, err := spool.Open(spool.Config{Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.Next(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range b.Messages {
		e, err := stream.Decode(m.Topic, m.Value)
		if err != nil {
			t.Fatalf("spooled record does not decode: %v", err)
		}
		ids = append(ids, e.EventHeader().ID)
	}
	return ids
}

// delivered is what the broker holds, decoded.
type delivered struct {
	events []stream.Event
	pos    map[string]int // event id → index in events (broker order per partition)
}

func decodeAll(t *testing.T, msgs []kafka.Message) *delivered {
	t.Helper()
	d := &delivered{pos: map[string]int{}}
	dups := 0
	for _, m := range msgs {
		e, err := stream.Decode(m.Topic, m.Value)
		if err != nil {
			t.Fatalf("%s offset %d: %v", m.Topic, m.Offset, err)
		}
		id := e.EventHeader().ID
		if _, ok := d.pos[id]; ok {
			dups++
			continue
		}
		d.pos[id] = len(d.events)
		d.events = append(d.events, e)
	}
	if dups > 0 {
		t.Errorf("%d events delivered twice", dups)
	}
	return d
}

// stream groups one producer's events by topic and key, in broker order:
// the scores and clicks of one student of one session or course.
func (d *delivered) stream(keep func(stream.Event) (string, bool)) map[string][]stream.Event {
	out := map[string][]stream.Event{}
	for _, e := range d.events {
		if k, ok := keep(e); ok {
			out[e.Topic()+"/"+e.Key()+"/"+k] = append(out[e.Topic()+"/"+e.Key()+"/"+k], e)
		}
	}
	return out
}

// inOrder fails unless every stream's timestamps rise strictly in broker
// order: each source stamps one score (and at most one click) per student
// per tick, so an event delivered out of order shows as a step back.
func inOrder(t *testing.T, who string, streams map[string][]stream.Event) int {
	t.Helper()
	n := 0
	for k, es := range streams {
		for i := 1; i < len(es); i++ {
			if !es[i].EventHeader().TS.After(es[i-1].EventHeader().TS.Time) {
				t.Errorf("%s %s: event %d stamped %v after one stamped %v: out of order", who, k, i,
					es[i].EventHeader().TS.Time, es[i-1].EventHeader().TS.Time)
				break
			}
		}
		n += len(es)
	}
	return n
}

// allDelivered fails for any spooled id the broker does not hold or holds
// out of the spool's order.
func (d *delivered) allDelivered(t *testing.T, who string, ids []string) {
	t.Helper()
	last, missing := -1, 0
	for _, id := range ids {
		p, ok := d.pos[id]
		if !ok {
			missing++
			continue
		}
		if p < last && d.events[p].Topic() == d.events[last].Topic() && d.events[p].Key() == d.events[last].Key() {
			t.Errorf("%s: spooled event %s delivered before an event spooled ahead of it", who, id)
		}
		last = p
	}
	if missing > 0 {
		t.Errorf("%s: %d of the %d events its spool held at the kill never reached the broker", who, missing, len(ids))
	}
}

// writeClip makes a 2 s MJPEG clip of a demo photo with ffmpeg: the edge's
// camera.
func writeClip(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(modelDir, "manifest.json")); err != nil {
		t.Fatalf("no model set (run `make models` first): %v", err)
	}
	clip := filepath.Join(t.TempDir(), "camera.avi")
	out, err := exec.Command("ffmpeg", "-loglevel", "error", "-loop", "1", "-i", demoPhoto, "-t", "2", "-r", "10",
		"-vf", "scale=640:480", "-c:v", "mjpeg", "-q:v", "5", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg (scripts/install-deps.sh installs it; `make models` fetches the photo): %v\n%s", err, out)
	}
	return clip
}

// TestBrokerAwayEdgeAndSimulatorSpoolThenDeliverInOrder takes the broker
// away for 30 s (CLASSPULSE_FAULT_BROKER_AWAY) while the real edge worker
// captures a looping clip and two real simulators publish. Half-way
// through the outage the edge and one simulator are killed with SIGKILL
// and started again. When the broker is back on the same address, with the
// log it had:
//
//   - every event the killed processes' spools held reaches the broker,
//     in the order it was spooled, and so do the events made during the
//     outage (the edge's scores stamped while the broker was away);
//   - per student, scores and clicks arrive in time order, none twice;
//   - the second simulator, whose spool is bounded to 64 KiB, dropped the
//     oldest events and counted them: appended = delivered + dropped, its
//     spool never exceeded the bound, and its newest events were kept.
func TestBrokerAwayEdgeAndSimulatorSpoolThenDeliverInOrder(t *testing.T) {
	away := envDuration("CLASSPULSE_FAULT_BROKER_AWAY", 30*time.Second)
	const smallSpool = 64 << 10
	clip := writeClip(t)
	br := startBrokerOnAddr(t)
	dir := t.TempDir()
	edgeState := filepath.Join(dir, "edge")
	simSpool, smallSpoolDir := filepath.Join(dir, "sim-spool"), filepath.Join(dir, "small-spool")
	edgeLog, simLog, smallLog := filepath.Join(dir, "edge.log"), filepath.Join(dir, "sim.log"), filepath.Join(dir, "small.log")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, edgeBinary, "consent", "--student", "edge-1", "--answer", "camera",
		"--state-dir", edgeState, "--brokers", br.addr, "--log-level", "warn").CombinedOutput(); err != nil {
		t.Fatalf("edge consent: %v\n%s", err, out)
	}
	startEdge := func() *child {
		addr := freeAddr(t)
		return startChild(t, edgeLog, addr, edgeBinary, "run", "--student", "edge-1", "--session", "fault-edge", "--course", "law",
			"--source", clip, "--loop", "--fps", "5", "--model-dir", modelDir, "--state-dir", edgeState,
			"--brokers", br.addr, "--metrics-addr", addr, "--log-level", "warn")
	}
	startSim := func(session, spoolDir, logPath string, more ...string) *child {
		addr := freeAddr(t)
		return startChild(t, logPath, addr, binary, append([]string{"simulate", "--brokers", br.addr, "--session", session,
			"--course", session, "--spool-dir", spoolDir, "--metrics-addr", addr, "--log-level", "warn"}, more...)...)
	}
	edge := startEdge()
	sim := startSim("fault-sim", simSpool, simLog, "--students", "6", "--tick", "200ms", "--click-every", "1s")
	small := startSim("fault-small", smallSpoolDir, smallLog, "--students", "20", "--tick", "100ms", "--click-every", "1h",
		"--spool-max-bytes", fmt.Sprint(smallSpool))
	procs := map[string]*child{"edge": edge, "simulator": sim, "bounded simulator": small}
	logs := map[string]string{"edge": edgeLog, "simulator": simLog, "bounded simulator": smallLog}
	alive := func() {
		t.Helper()
		for name, c := range procs {
			if c.Exited() {
				t.Fatalf("%s exited by itself:\n%s", name, tail(logs[name], 30))
			}
		}
	}
	waitDelivering := func() bool {
		alive()
		for _, c := range procs {
			if c.metric("classpulse_spool_delivered_records_total", "") <= 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(60 * time.Second); !waitDelivering(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			for name, c := range procs {
				t.Logf("%s: delivered %v\n%s", name, c.metric("classpulse_spool_delivered_records_total", ""), tail(logs[name], 10))
			}
			t.Fatal("the three sources did not all deliver within 60 s while the broker was up")
		}
	}

	br.stop()
	down := time.Now()
	t.Logf("broker stopped for %v", away)
	time.Sleep(away / 2)
	alive()
	// Kill the edge and a simulator while their spools hold the outage so
	// far; read what the spools hold; start them again on the same spools.
	var held = map[string][]string{}
	for name, dir := range map[string]string{"edge": filepath.Join(edgeState, "spool"), "simulator": simSpool} {
		procs[name].Kill()
		held[name] = spooled(t, dir)
		t.Logf("%s killed with %d events in its spool", name, len(held[name]))
		if len(held[name]) == 0 {
			t.Fatalf("%s spooled nothing in %v without a broker", name, away/2)
		}
	}
	procs["edge"], procs["simulator"] = startEdge(), startSim("fault-sim", simSpool, simLog, "--students", "6", "--tick", "200ms", "--click-every", "1s")
	time.Sleep(time.Until(down.Add(away)))
	alive()
	dropped := small.metric("classpulse_spool_dropped_records_total", `reason="full"`)
	if size := small.metric("classpulse_spool_size_bytes", ""); size > smallSpool || size <= 0 {
		t.Errorf("bounded spool holds %v bytes, bound %d", size, smallSpool)
	}
	if dropped <= 0 {
		t.Fatalf("bounded simulator dropped nothing in a %v outage (spool %d bytes)", away, smallSpool)
	}
	up := time.Now()
	br.start(t)
	t.Logf("broker back after %v; bounded spool dropped %.0f events", up.Sub(down).Round(time.Millisecond), dropped)

	testenv.WaitFor(t, 60*time.Second, "every spool drained to the returned broker", func() bool {
		alive()
		for _, c := range procs {
			if c.metric("classpulse_spool_pending_records", "") != 0 {
				return false
			}
		}
		return true
	})
	drained := time.Now()
	// The bounded simulator lost only what it counted as dropped: appended =
	// delivered + dropped + pending, read from one scrape (it keeps
	// appending, so a scrape between two counter updates is retried).
	var books string
	testenv.WaitFor(t, 10*time.Second, "the bounded spool's books to balance", func() bool {
		page, ok := small.scrape()
		if !ok {
			return false
		}
		app, del := sample(page, "classpulse_spool_appended_records_total", ""), sample(page, "classpulse_spool_delivered_records_total", "")
		drop, pend := sample(page, "classpulse_spool_dropped_records_total", ""), sample(page, "classpulse_spool_pending_records", "")
		books = fmt.Sprintf("appended %.0f = delivered %.0f + dropped %.0f + pending %.0f", app, del, drop, pend)
		return app == del+drop+pend
	})
	t.Logf("bounded simulator: %s", books)
	// Stop the sources so the broker's log is final, then read it.
	for _, c := range procs {
		c.Kill()
	}
	d := decodeAll(t, readAll(t, br.addr))
	for name, ids := range held {
		d.allDelivered(t, name, ids)
	}
	bySource := func(source string) func(stream.Event) (string, bool) {
		return func(e stream.Event) (string, bool) {
			switch x := e.(type) {
			case *stream.Score:
				return x.Session, x.Session == source
			case *stream.Click:
				return x.Course, x.Course == source
			}
			return "", false
		}
	}
	edgeScores := d.stream(bySource("fault-edge"))
	inOrder(t, "edge", edgeScores)
	inOrder(t, "simulator", d.stream(bySource("fault-sim")))
	smallStreams := d.stream(bySource("fault-small"))
	inOrder(t, "bounded simulator", smallStreams)

	// The edge's scores stamped while the broker was away were spooled and
	// delivered (less the time it was dead: killed, started, models loaded).
	during := 0
	for _, es := range edgeScores {
		for _, e := range es {
			if ts := e.EventHeader().TS.Time; ts.After(down) && ts.Before(up) {
				during++
			}
		}
	}
	if want := int(away.Seconds()) / 3; during < want {
		t.Errorf("%d edge scores stamped during the %v outage reached the broker, want at least %d", during, away, want)
	}
	// The bounded simulator dropped the oldest events and kept the newest:
	// each student's scores have a hole of more than 2 s that opens when
	// the broker went away and closes in the second half of the outage or
	// later (delivery resumes some seconds after the broker is back: the
	// client's retry backoff). While that first delivery is on its way the
	// spool may still be full and drop the oldest again, so later holes are
	// allowed between the broker's return and the spool drained, and none
	// after. A spool dropping the newest instead would keep the outage's
	// start.
	for k, es := range smallStreams {
		if !strings.HasPrefix(k, stream.TopicScores) {
			continue
		}
		var holes []string
		ok := true
		for i := 1; i < len(es); i++ {
			from, to := es[i-1].EventHeader().TS.Time, es[i].EventHeader().TS.Time
			if to.Sub(from) <= 2*time.Second {
				continue
			}
			holes = append(holes, fmt.Sprintf("%v..%v", from.Sub(down).Round(time.Millisecond), to.Sub(down).Round(time.Millisecond)))
			if len(holes) == 1 {
				ok = ok && from.After(down.Add(-2*time.Second)) && from.Before(down.Add(time.Second)) && to.After(down.Add(away/2))
			} else {
				ok = ok && from.After(up) && to.Before(drained)
			}
		}
		if !ok || len(holes) == 0 {
			t.Errorf("bounded simulator %s: holes in its scores (relative to the broker going away) %v; want one from the outage's start to its second half or later, and after it none but between the broker's return (%v) and the spool drained (%v)",
				k, holes, up.Sub(down).Round(time.Millisecond), drained.Sub(down).Round(time.Millisecond))
		}
	}
}
