package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

func TestBenchPipelinePrintsFiguresLastAgainstTheGivenRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	var out bytes.Buffer
	trace := filepath.Join(t.TempDir(), "trace")
	logDir := filepath.Join(t.TempDir(), "broker")
	procs := runtime.GOMAXPROCS(0)
	err := benchPipeline(context.Background(), []string{"--students", "50", "--events", "3000", "--redis", r.Addr,
		"--latency-duration", "1s", "--pace", "2000", "--redis-benchmark-n", "20000", "--log-level", "error", "--batch-trace", trace,
		"--broker-log", logDir, "--linger", "1ms"}, &out)
	if err != nil {
		t.Fatalf("bench pipeline: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := regexp.MustCompile(`^pipeline events=3000 events_per_s=(\d+) p50_ms=(\d+\.\d) p99_ms=(\d+\.\d)$`).FindStringSubmatch(lines[len(lines)-1])
	if last == nil {
		t.Fatalf("last line %q does not have the fixed form\n%s", lines[len(lines)-1], out.String())
	}
	rate, _ := strconv.Atoi(last[1])
	p50, _ := strconv.ParseFloat(last[2], 64)
	p99, _ := strconv.ParseFloat(last[3], 64)
	if rate <= 0 || p50 <= 0 || p99 < p50 {
		t.Errorf("figures rate=%d p50=%v p99=%v", rate, p50, p99)
	}
	// The processor left the local redis-server a core, and gave it back.
	want := procs
	if procs >= 2 && os.Getenv("GOMAXPROCS") == "" {
		want = procs - 1
	}
	if line := fmt.Sprintf("processor gomaxprocs=%d cpus=%d\n", want, runtime.NumCPU()); !strings.Contains(out.String(), line) {
		t.Errorf("no line %q in\n%s", line, out.String())
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after the bench, %d before", got, procs)
	}
	if !strings.Contains(out.String(), "redis-benchmark evalsha_hincrby_hset P=16 requests_per_s=") {
		t.Errorf("no redis-benchmark comparison in\n%s", out.String())
	}
	// Each phase says where its CPU went, per event.
	for _, phase := range []string{"saturated", "paced"} {
		m := regexp.MustCompile(`(?m)^` + phase + ` cpu_us_per_event process=(\d+\.\d) redis=(\d+\.\d)$`).FindStringSubmatch(out.String())
		if m == nil {
			t.Errorf("no %s CPU line in\n%s", phase, out.String())
			continue
		}
		proc, _ := strconv.ParseFloat(m[1], 64)
		red, _ := strconv.ParseFloat(m[2], 64)
		if proc <= 0 || red <= 0 {
			t.Errorf("%s CPU per event: process %v µs, redis %v µs", phase, proc, red)
		}
	}
	// The batch trace accounts for every event of the paced phase.
	paced := regexp.MustCompile(`(?m)^paced events=(\d+) `).FindStringSubmatch(out.String())
	b, err := os.ReadFile(trace)
	if paced == nil || err != nil {
		t.Fatalf("paced line %v, trace %v", paced, err)
	}
	sum := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[1])
		if len(f) != 3 || err != nil || n <= 0 {
			t.Fatalf("trace line %q", line)
		}
		sum += n
	}
	if want, _ := strconv.Atoi(paced[1]); sum != want {
		t.Errorf("trace holds %d events, the paced phase %d", sum, want)
	}
	// The broker kept its log in the folder given, in files.
	var logged int64
	filepath.WalkDir(logDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				logged += info.Size()
			}
		}
		return nil
	})
	if logged < 3000*100 {
		t.Errorf("the broker's log folder holds %d bytes for 3000+ events", logged)
	}
}

// 50 students cannot make 40,000 events in a second of class: their event
// times would run minutes ahead of the clock, into the DLQ.
func TestBenchPipelineRefusesAPaceThatOutrunsTheStudentsClock(t *testing.T) {
	r := testenv.StartRedis(t)
	err := benchPipeline(context.Background(), []string{"--students", "50", "--events", "3000", "--redis", r.Addr,
		"--latency-duration", "1s", "--pace", "40000", "--redis-benchmark-n", "0", "--log-level", "error"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "ahead of the clock") {
		t.Errorf("err %v, want a refusal of the pace", err)
	}
}

func TestBenchPipelineRefusesABrokerLogFolderInUse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := benchPipeline(context.Background(), []string{"--broker-log", dir, "--redis", "127.0.0.1:1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("err %v, want a refusal of a folder in use", err)
	}
}

func TestBenchPipelineRefusesNonsenseSizes(t *testing.T) {
	for _, args := range [][]string{{"--events", "0"}, {"--students", "-1"}, {"--click-every", "-2"}, {"--linger", "-1ms"}} {
		if err := benchPipeline(context.Background(), args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("%v: err %v, want a clear refusal", args, err)
		}
	}
}

// The generator's client must put a student's events where classpulse's
// producers put them (the Java client's murmur2, of which kafka-go's
// Murmur2Balancer is an independent copy; stream tests hold the producer
// to it), or the bench would measure a key layout the product never writes.
func TestBenchClientPartitionsLikeTheProducers(t *testing.T) {
	var balancer kafka.Murmur2Balancer
	sticky := kgo.StickyKeyPartitioner(nil).ForTopic(stream.TopicScores)
	for _, n := range []int{1, 8, 24} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for s := range 2000 {
			key := []byte("bench-" + strconv.Itoa(s))
			want := balancer.Balance(kafka.Message{Key: key}, parts...)
			if got := sticky.Partition(&kgo.Record{Key: key}, n); got != want {
				t.Fatalf("%d partitions, key %s: franz-go partition %d, classpulse producers %d", n, key, got, want)
			}
		}
	}
}

// The paced phase's events, kept outside the Go heap, are the records
// handed to it byte for byte, across the log's chunk boundaries.
func TestPacedLogHoldsItsRecordsAcrossChunks(t *testing.T) {
	const n = 40_000 // values of 20 to 1,000 bytes, ~20 MB: more than one 16 MiB chunk
	var given []*kgo.Record
	i := 0
	next := func() (*kgo.Record, error) {
		v := bytes.Repeat([]byte{byte('a' + i%26)}, 20+(i*7919)%981)
		r := &kgo.Record{Topic: []string{stream.TopicScores, stream.TopicClicks}[i%2], Key: []byte("k" + strconv.Itoa(i%300)), Value: v}
		given = append(given, r)
		i++
		return r, nil
	}
	l, err := newPacedLog(next, n)
	if err != nil {
		t.Fatal(err)
	}
	defer l.free()
	if len(l.chunks) < 2 {
		t.Fatalf("%d records in %d chunk(s); the test means to cross a boundary", n, len(l.chunks))
	}
	for i, w := range given {
		got := l.record(i)
		if got.Topic != w.Topic || !bytes.Equal(got.Key, w.Key) || !bytes.Equal(got.Value, w.Value) {
			t.Fatalf("record %d: %s %s %d bytes, want %s %s %d bytes", i, got.Topic, got.Key, len(got.Value), w.Topic, w.Key, len(w.Value))
		}
		if cap(got.Value) != len(got.Value) {
			t.Fatalf("record %d: value can grow into the next one's bytes", i)
		}
	}
	if _, err := newPacedLog(func() (*kgo.Record, error) { return nil, errors.New("generator broke") }, 1); err == nil {
		t.Error("newPacedLog kept going after its source failed")
	}
}

func TestBenchClientLingersAsAsked(t *testing.T) {
	for _, want := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		cl, err := newBenchClient([]string{"127.0.0.1:1"}, want)
		if err != nil {
			t.Fatal(err)
		}
		if got := cl.OptValue(kgo.ProducerLinger).(time.Duration); got != want {
			t.Errorf("--linger %v: the client lingers %v", want, got)
		}
		cl.Close()
	}
}
