package faults

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// binary and edgeBinary are the classpulse and classpulse-edge
// executables TestMain builds.
var binary, edgeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "classpulse-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "classpulse")
	edgeBinary = filepath.Join(dir, "classpulse-edge")
	for _, b := range []struct{ out, pkg string }{
		{binary, "github.com/classpulse/classpulse/cmd/classpulse"},
		{edgeBinary, "github.com/classpulse/classpulse/cmd/classpulse-edge"},
	} {
		build := exec.Command("go", "build", "-o", b.out, b.pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", b.pkg+":", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	// Every child process, server and client a test started must be gone.
	// kafka-go's Transport keeps idle connections after Writer.Close; they
	// are the producer's (stream package), as stream/spool notes too.
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
			goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// envInt reads a size override, so a developer can run the full
// sizes without CI paying for them.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// child is one process of a built binary. The test owns it: Kill or the
// test's cleanup ends it.
type child struct {
	cmd         *exec.Cmd
	done        chan struct{}
	metricsAddr string
}

// freeAddr returns a loopback host:port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// startChild starts bin with args, appending its output to logPath.
// metricsAddr is where it serves /metrics ("" if it does not).
func startChild(t *testing.T, logPath, metricsAddr, bin string, args ...string) *child {
	t.Helper()
	c := &child{done: make(chan struct{}), metricsAddr: metricsAddr}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s %s: %v", filepath.Base(bin), args[0], err)
	}
	go func() { _ = c.cmd.Wait(); logf.Close(); close(c.done) }()
	t.Cleanup(c.Kill)
	return c
}

// startProcessor starts `classpulse processor` on broker and redis in
// consumer group group, appending its output to logPath.
func startProcessor(t *testing.T, broker, redisAddr, group, logPath string) *child {
	t.Helper()
	addr := freeAddr(t)
	level := os.Getenv("CLASSPULSE_FAULT_LOG_LEVEL")
	if level == "" {
		level = "warn"
	}
	return startChild(t, logPath, addr, binary, "processor", "--brokers", broker, "--redis", redisAddr, "--group", group,
		"--metrics-addr", addr, "--no-class-stage", "--log-level", level)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (c *child) Kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// Exited reports whether the process ended by itself.
func (c *child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// readyz returns the status code of GET /readyz, or 0 when the process
// does not answer.
func (c *child) readyz() int {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + c.metricsAddr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// duplicates scrapes the process's /metrics for the events it skipped as
// already applied (redeliveries after a kill); -1 when it does not answer.
func (c *child) duplicates() float64 {
	return c.metric("classpulse_processor_events_total", `outcome="duplicate"`)
}

// metric scrapes the process's /metrics and sums the samples of name whose
// labels contain match ("" matches all); -1 when it does not answer.
func (c *child) metric(name, match string) float64 {
	page, ok := c.scrape()
	if !ok {
		return -1
	}
	return sample(page, name, match)
}

// scrape returns the process's /metrics page; false when it does not answer.
func (c *child) scrape() (string, bool) {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + c.metricsAddr + "/metrics")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// sample sums the samples of name in a /metrics page whose labels contain
// match ("" matches all).
func sample(page, name, match string) float64 {
	var sum float64
	for _, line := range strings.Split(page, "\n") {
		series, _, _ := strings.Cut(line, " ")
		if (series == name || strings.HasPrefix(series, name+"{")) && strings.Contains(series, match) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// workload is a fixed set of events with deterministic ids, spread over
// students: clicks (study time and behaviour counts) and scores (live
// buckets and rolling windows), and the totals the clicks must add up to.
type workload struct {
	events    []stream.Event
	students  []string
	clicks    int
	wantCount map[string]int64   // clicks per student
	wantStudy map[string]float64 // study seconds per student
}

// kinds cycles study with two other behaviours, so both the study-time
// sums (HINCRBYFLOAT) and the behaviour counts (HINCRBY) are exercised; an
// empty kind is a score event.
var kinds = []string{stream.KindStudy, stream.KindQuiz, "", stream.KindStudy, stream.KindResource}

func newWorkload(t *testing.T, n, students int) *workload {
	t.Helper()
	w := &workload{wantCount: map[string]int64{}, wantStudy: map[string]float64{}}
	for s := 0; s < students; s++ {
		w.students = append(w.students, fmt.Sprintf("stu-%03d", s))
	}
	start := time.Now().UTC().Add(-time.Minute)
	for i := 0; i < n; i++ {
		student := w.students[i%students]
		h := stream.Header{V: stream.Version, ID: fmt.Sprintf("fault-%07d", i), TS: stream.At(start.Add(time.Duration(i) * time.Millisecond)), Student: student}
		var e stream.Event
		if kind := kinds[i%len(kinds)]; kind == "" {
			e = &stream.Score{Header: h, Session: "F1", Course: "law", WindowMS: 1000, Frames: 10,
				FaceRatio: float64(i%3) / 2, Attention: float64(i%11) / 10, Model: "faults-1"}
		} else {
			c := &stream.Click{Header: h, Course: "law", Kind: kind}
			if kind == stream.KindStudy {
				c.DurationS = float64(1 + i%7)
				w.wantStudy[student] += c.DurationS
			}
			w.wantCount[student]++
			w.clicks++
			e = c
		}
		if err := e.Validate(); err != nil {
			t.Fatal(err)
		}
		w.events = append(w.events, e)
	}
	return w
}

// publish sends the workload in batches of batch every pace, from a
// goroutine; the channel yields the first error (or nil) when done.
func (w *workload) publish(ctx context.Context, prod *stream.Producer, batch int, pace time.Duration) <-chan error {
	out := make(chan error, 1)
	go func() {
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for i := 0; i < len(w.events); i += batch {
			end := min(i+batch, len(w.events))
			if err := prod.Publish(ctx, w.events[i:end]...); err != nil {
				out <- fmt.Errorf("publish events %d..%d: %w", i, end, err)
				return
			}
			select {
			case <-ctx.Done():
				out <- ctx.Err()
				return
			case <-tick.C:
			}
		}
		out <- nil
	}()
	return out
}

// digest is every study, weekly study, click, DTTW window and live field of every student of the
// workload: the academic state the processor derives from clicks and the
// live buckets and rolling windows it derives from scores.
func (w *workload) digest(ctx context.Context, rdb *redis.Client) (map[string]string, error) {
	pipe := rdb.Pipeline()
	var cmds []*redis.MapStringStringCmd
	for _, s := range w.students {
		tag := state.StudentTag(s)
		cmds = append(cmds, pipe.HGetAll(ctx, tag+":study"), pipe.HGetAll(ctx, tag+":clicks"), pipe.HGetAll(ctx, tag+":live"), pipe.HGetAll(ctx, state.DTTWKey(s)), pipe.HGetAll(ctx, state.WeeksKey(s)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	d := map[string]string{}
	for i, c := range cmds {
		for f, v := range c.Val() {
			d[fmt.Sprintf("%s/%d/%s", w.students[i/5], i%5, f)] = v
		}
	}
	return d, nil
}

// totals sums a digest into clicks and study seconds per student, from the
// per-term fields (k| counts every click once, t| every study second once).
func (w *workload) totals(d map[string]string) (count map[string]int64, study map[string]float64, all int64) {
	count, study = map[string]int64{}, map[string]float64{}
	for k, v := range d {
		parts := strings.SplitN(k, "/", 3)
		switch {
		case parts[1] == "1" && strings.HasPrefix(parts[2], "k|"):
			n, _ := strconv.ParseInt(v, 10, 64)
			count[parts[0]] += n
			all += n
		case parts[1] == "0" && strings.HasPrefix(parts[2], "t|"):
			f, _ := strconv.ParseFloat(v, 64)
			study[parts[0]] += f
		}
	}
	return count, study, all
}

// counted reads the clicks Redis has counted, per student and in all.
func (w *workload) counted(rdb *redis.Client, timeout time.Duration) (map[string]int64, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d, err := w.digest(ctx, rdb)
	if err != nil {
		return nil, 0, err
	}
	count, _, all := w.totals(d)
	return count, all, nil
}

// applied returns how many clicks Redis has counted so far; it fails the
// test at once if that is more than were sent (a double count).
func (w *workload) applied(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	_, all, err := w.counted(rdb, 2*time.Second)
	if err != nil {
		return -1 // Redis away; the caller keeps polling
	}
	if all > int64(w.clicks) {
		t.Fatalf("double count: %d clicks counted, %d sent", all, w.clicks)
	}
	return all
}

// waitAll polls until every event is counted, or fails after timeout
// naming how many are missing.
func (w *workload) waitAll(t *testing.T, rdb *redis.Client, timeout time.Duration, logPath string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var n int64
	for time.Now().Before(deadline) {
		if n = w.applied(t, rdb); n == int64(w.clicks) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	keepLog(t, logPath)
	t.Fatalf("lost events: %d of %d clicks counted after %v\n%s\nprocessor log tail:\n%s", n, w.clicks, timeout, w.missing(rdb), tail(logPath, 30))
}

// missing names the students whose clicks fall short, by how many, and
// the last offsets their state records as applied.
func (w *workload) missing(rdb *redis.Client) string {
	count, _, err := w.counted(rdb, 5*time.Second)
	if err != nil {
		return "digest: " + err.Error()
	}
	var b strings.Builder
	for _, s := range w.students {
		if short := w.wantCount[s] - count[s]; short != 0 {
			offs, _ := rdb.HGetAll(context.Background(), state.StudentTag(s)+":off").Result()
			fmt.Fprintf(&b, "%s: %d clicks short; last applied offsets %v\n", s, short, offs)
		}
	}
	return b.String()
}

// keepLog copies a failed run's processor log into CLASSPULSE_FAULT_KEEP
// (a folder), when set, so that a debug-level log outlives the test.
func keepLog(t *testing.T, logPath string) {
	dir := os.Getenv("CLASSPULSE_FAULT_KEEP")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(logPath)
	if err == nil {
		dst := filepath.Join(dir, fmt.Sprintf("%s-%d-%s", t.Name(), time.Now().Unix(), filepath.Base(logPath)))
		err = os.WriteFile(dst, b, 0o644)
		t.Logf("processor log kept in %s", dst)
	}
	if err != nil {
		t.Logf("keeping the log: %v", err)
	}
}

// compare waits (up to 20 s) for the trailing score events to land, until
// the faulty and the clean run hold the same state, then checks it.
func (w *workload) compare(t *testing.T, faulty, clean *redis.Client) {
	t.Helper()
	ctx := context.Background()
	var got, want map[string]string
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		if got, err = w.digest(ctx, faulty); err != nil {
			t.Fatal(err)
		}
		if want, err = w.digest(ctx, clean); err != nil {
			t.Fatal(err)
		}
		if maps.Equal(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	lives := 0
	for k := range want {
		if strings.Contains(k, "/2/") {
			lives++
		}
	}
	if lives == 0 {
		t.Fatal("no live-window fields in the clean run: the scores were not applied")
	}
	w.check(t, got, want)
}

// check compares the final state with the workload's totals and with the
// clean run's digest, field by field.
func (w *workload) check(t *testing.T, got, clean map[string]string) {
	t.Helper()
	count, study, _ := w.totals(got)
	for _, s := range w.students {
		if count[s] != w.wantCount[s] {
			t.Errorf("%s: %d clicks counted, %d sent", s, count[s], w.wantCount[s])
		}
		if study[s] != w.wantStudy[s] {
			t.Errorf("%s: %.0f study seconds, %.0f sent", s, study[s], w.wantStudy[s])
		}
	}
	if len(got) != len(clean) {
		t.Errorf("state has %d fields, the clean run %d", len(got), len(clean))
	}
	diffs := 0
	for k, v := range clean {
		if got[k] != v && diffs < 10 {
			t.Errorf("%s = %q, clean run %q", k, got[k], v)
			diffs++
		}
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func newProducer(t *testing.T, broker string) *stream.Producer {
	t.Helper()
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return prod
}
