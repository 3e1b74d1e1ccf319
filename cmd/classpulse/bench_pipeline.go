package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/classpulse/classpulse/internal/cli"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

func init() { registerBench("pipeline", benchPipeline) }

const benchPipelineSummary = "Measure the stream processor on the embedded broker and a real redis-server: " +
	"the saturated drain rate of pre-produced events, then produce→applied latency paced at half that rate, " +
	"then redis-benchmark -P 16 on EVALSHA of a two-command script against the same Redis. " +
	"Last line: pipeline events=N events_per_s=R p50_ms=X.X p99_ms=Y.Y."

// benchPipeline runs `classpulse bench pipeline`.
func benchPipeline(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("bench pipeline", benchPipelineSummary)
	students := fs.Int("students", 10_000, "distinct students the events are spread over")
	events := fs.Int("events", 1_000_000, "events pre-produced for the saturated phase")
	redisAddr := fs.String("redis", "", "redis-server host:port to write to; it must be empty (FLUSHALL is run). Default: start a redis-server child on a free port")
	partitions := fs.Int("partitions", 8, "partitions per topic of the embedded broker")
	brokerLog := fs.String("broker-log", "", `folder the embedded broker writes its log to, as a Kafka broker's log.dirs; it must be empty or absent. Default: a temporary folder, removed at exit. "memory" keeps the log in the process's heap instead`)
	linger := fs.Duration("linger", 0, "how long the generator's Kafka client waits for more records of a partition before producing them (kgo.ProducerLinger); 0: it batches only what it is handed while a request is in flight. Counted in the latency: the produce time is stamped when a record is handed over")
	maxBatch := fs.Int("max-batch", 500, "processor MaxBatch")
	group := fs.Int("script-group", 0, "events per call of the apply script (processor --script-group; 0: its default)")
	members := fs.Int("members", 1, "group members the processor runs (processor --members)")
	parallel := fs.Int("parallel", 2, "goroutines decoding a batch and student groups applied concurrently (processor --parallel)")
	clickEvery := fs.Int("click-every", 5, "every Nth event is a study click, the others are score events (0: scores only)")
	latencyFor := fs.Duration("latency-duration", 10*time.Second, "length of the paced latency phase")
	paceFlag := fs.Float64("pace", 0, "events/s of the paced latency phase (0: half the saturated rate, as issue 3 defines it); to compare latency at one rate")
	classStage := fs.Bool("class-stage", false, "also run the class stage (tiles → class signals) in the processor")
	benchN := fs.Int("redis-benchmark-n", 1_000_000, "requests for the redis-benchmark comparison (0 skips it)")
	logLevel := fs.String("log-level", "warn", "log level of the processor")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the saturated phase to this file")
	memProfile := fs.String("memprofile", "", "write a Go heap profile at the end of the saturated phase to this file (-sample_index=alloc_space: what the phase allocated)")
	pacedProfile := fs.String("cpuprofile-paced", "", "write a CPU profile of the paced latency phase to this file")
	var procs gomaxprocs
	procs.register(fs)
	traceFile := fs.String("batch-trace", "", "write one line per batch applied in the paced phase to this file: when it was applied (unix ms), its events, its worst produce→applied latency (ms)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *students <= 0 || *events <= 0 || *partitions <= 0 || *maxBatch <= 0 || *parallel <= 0 || *clickEvery < 0 || *paceFlag < 0 || *linger < 0 {
		return errors.New("bench pipeline: --students, --events, --partitions, --max-batch and --parallel must be positive, --click-every, --pace and --linger not negative")
	}
	logger, err := config.NewLogger(os.Stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	if *paceFlag > 0 {
		// Refused now rather than after the saturated phase.
		if err := checkPace(*paceFlag, *students, *latencyFor); err != nil {
			return err
		}
	}
	logDir, err := benchBrokerLog(*brokerLog)
	if err != nil {
		return err
	}
	if *brokerLog == "" {
		// Removed after the broker closed (deferred calls run last first).
		defer os.RemoveAll(logDir)
	}
	addr, stopRedis, err := benchRedis(*redisAddr, out)
	if err != nil {
		return err
	}
	defer stopRedis()
	n, restoreProcs, err := procs.apply(addr, logger)
	if err != nil {
		return err
	}
	defer restoreProcs()
	fmt.Fprintf(out, "processor gomaxprocs=%d cpus=%d\n", n, runtime.NumCPU())
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("bench pipeline: redis %s: %w", addr, err)
	}
	if err := seedRoster(ctx, rdb, *students); err != nil {
		return err
	}
	broker, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: *partitions, DataDir: logDir}, nil)
	if err != nil {
		return err
	}
	defer broker.Close()
	brokers := []string{broker.Addr()}
	client, err := newBenchClient(brokers, *linger)
	if err != nil {
		return err
	}
	defer client.Close()

	gen := newBenchGen(*students, *clickEvery)
	// Phase 1: pre-produce every event, then time how fast the processor
	// drains them.
	start := time.Now()
	gen.base = time.Now().Add(-time.Duration(*events / *students + 1) * time.Second)
	if err := gen.produce(ctx, client, *events); err != nil {
		return err
	}
	fmt.Fprintf(out, "produced events=%d seconds=%.1f\n", *events, time.Since(start).Seconds())

	var (
		seen       atomic.Int64
		batches    atomic.Int64 // batches applied
		firstBatch atomic.Int64 // unix nanos of the first applied batch
		firstN     atomic.Int64 // its size
		lastBatch  atomic.Int64
		phase2     atomic.Int64 // unix nanos: messages produced after it count for latency
		mu         sync.Mutex
		lats       []float64
	)
	// The batch trace: where the paced phase's latency builds up (a
	// processor stall shows as a gap between batches, a backlog as rising
	// latencies in back-to-back full batches).
	var trace *bufio.Writer
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return fmt.Errorf("bench pipeline: --batch-trace: %w", err)
		}
		defer f.Close()
		trace = bufio.NewWriter(f)
		defer trace.Flush()
		fmt.Fprintln(trace, "# applied_unix_ms events max_latency_ms (paced phase, one line per applied batch)")
	}
	hook := func(batch []stream.Message, done time.Time) {
		if firstBatch.CompareAndSwap(0, done.UnixNano()) {
			firstN.Store(int64(len(batch)))
		}
		lastBatch.Store(done.UnixNano())
		seen.Add(int64(len(batch)))
		batches.Add(1)
		p2 := phase2.Load()
		if p2 == 0 {
			return
		}
		mu.Lock()
		if trace != nil {
			var worst time.Duration
			for _, m := range batch {
				worst = max(worst, done.Sub(m.Time))
			}
			fmt.Fprintf(trace, "%d %d %.1f\n", done.UnixMilli(), len(batch), float64(worst)/float64(time.Millisecond))
		}
		for _, m := range batch {
			if m.Time.UnixNano() >= p2 {
				lats = append(lats, float64(done.Sub(m.Time))/float64(time.Millisecond))
			}
		}
		mu.Unlock()
	}
	store, err := state.New(rdb, state.Config{Group: *group})
	if err != nil {
		return err
	}
	defer store.Close()
	// The processor publishes through a producer of its own, configured as
	// `classpulse processor` configures it.
	procProd, err := stream.NewProducer(stream.ProducerConfig{Brokers: brokers}, logger)
	if err != nil {
		return err
	}
	defer procProd.Close()
	reg := prometheus.NewRegistry()
	proc, err := processor.New(processor.Config{Brokers: brokers, MaxBatch: *maxBatch, Members: *members, Parallel: *parallel, NoClassStage: !*classStage, MaxSkew: benchMaxSkew},
		store, rules.NewHolder(rules.DefaultPolicy()), procProd, logger, reg, processor.WithBatchHook(hook))
	if err != nil {
		return err
	}
	stopProfile, err := cli.StartCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	pctx, stopProc := context.WithCancel(ctx)
	defer stopProc()
	cpu, err := startBenchCPU(ctx, rdb)
	if err != nil {
		return err
	}
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(pctx) }()
	waitCount := func(n int64, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for seen.Load() < n {
			select {
			case err := <-procDone:
				return fmt.Errorf("bench pipeline: processor stopped: %v", err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bench pipeline: only %d of %d events applied after %v", seen.Load(), n, limit)
			}
		}
		return nil
	}
	if err := waitCount(int64(*events), 30*time.Minute); err != nil {
		return err
	}
	// The clock starts at the first applied batch, so that joining the
	// consumer group is not counted; that first batch's messages are then
	// not counted either.
	drain := time.Duration(lastBatch.Load() - firstBatch.Load())
	if drain <= 0 {
		return fmt.Errorf("bench pipeline: all %d events came in one batch; use more --events than --max-batch", *events)
	}
	rate := float64(int64(*events)-firstN.Load()) / drain.Seconds()
	if err := stopProfile(); err != nil {
		return err
	}
	fmt.Fprintf(out, "saturated events=%d seconds=%.2f events_per_s=%.0f\n", *events, drain.Seconds(), rate)
	// How the processor took them: batches of what size, and how many
	// scores Redis refused as computed on a stale copy (each costs a
	// second round).
	fmt.Fprintf(out, "saturated batches=%d mean_batch=%.0f stale_scores=%d\n", batches.Load(), float64(*events)/float64(max(batches.Load(), 1)), store.StaleCopies())
	if err := cpu.report(ctx, out, "saturated", *events); err != nil {
		return err
	}
	if *memProfile != "" {
		if err := cli.WriteHeapProfile(*memProfile); err != nil {
			return err
		}
	}

	// Phase 2: paced at half the saturated rate; latency is produce → the
	// batch's full effect (state applied, warnings and tiles published).
	pace := rate / 2
	if *paceFlag > 0 {
		pace = *paceFlag
	}
	n2 := int(pace * latencyFor.Seconds())
	if err := checkPace(pace, *students, *latencyFor); err != nil {
		return err
	}
	// The school's edge clients encode their events on their own
	// machines: the paced events are encoded before the phase starts.
	paced, err := newPacedLog(gen.record, n2)
	if err != nil {
		return err
	}
	stopPaced, err := cli.StartCPUProfile(*pacedProfile)
	if err != nil {
		return err
	}
	defer stopPaced()
	phase2.Store(time.Now().UnixNano())
	before := seen.Load()
	if cpu, err = startBenchCPU(ctx, rdb); err != nil {
		return err
	}
	if err := benchPaced(ctx, client, paced, pace); err != nil {
		return err // the log stays mapped: the client may still hold its records
	}
	paced.free()
	if err := waitCount(before+int64(n2), 2*time.Minute); err != nil {
		return err
	}
	if err := cpu.report(ctx, out, "paced", n2); err != nil {
		return err
	}
	stopProc()
	if err := <-procDone; err != nil {
		return err
	}
	mu.Lock()
	sort.Float64s(lats)
	p50, p99 := quantile(lats, 0.50), quantile(lats, 0.99)
	mu.Unlock()
	fmt.Fprintf(out, "paced events=%d events_per_s=%.0f p50_ms=%.1f p99_ms=%.1f\n", n2, pace, p50, p99)

	if *benchN > 0 {
		rb, err := redisBenchmarkEvalsha(ctx, rdb, addr, *benchN, *students)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "redis-benchmark evalsha_hincrby_hset P=16 requests_per_s=%.0f pipeline_ratio=%.3f\n", rb, rate/rb)
	}
	fmt.Fprintf(out, "load_average %s\n", loadAverage())
	fmt.Fprintf(out, "pipeline events=%d events_per_s=%.0f p50_ms=%.1f p99_ms=%.1f\n", *events, rate, p50, p99)
	return nil
}

// benchCPU is where the CPU of a phase goes: this process (the processor,
// the embedded broker and, in the paced phase, the generator) and Redis.
// Per event, it tells two builds apart where the rate is lost in the noise
// of a shared machine.
type benchCPU struct {
	rdb            *redis.Client
	process, redis float64
}

func startBenchCPU(ctx context.Context, rdb *redis.Client) (benchCPU, error) {
	r, err := state.ServerCPU(ctx, rdb)
	return benchCPU{rdb: rdb, process: cli.CPUSeconds(0), redis: r}, err
}

// report prints "<phase> cpu_us_per_event process=P redis=R".
func (c benchCPU) report(ctx context.Context, out io.Writer, phase string, events int) error {
	r, err := state.ServerCPU(ctx, c.rdb)
	if err != nil {
		return err
	}
	per := func(s float64) float64 { return s * 1e6 / float64(events) }
	_, err = fmt.Fprintf(out, "%s cpu_us_per_event process=%.1f redis=%.1f\n", phase, per(cli.CPUSeconds(0)-c.process), per(r-c.redis))
	return err
}

// benchMaxSkew is the processor's limit on event times ahead of its clock
// in the bench (the processor's default).
const benchMaxSkew = 5 * time.Minute

// checkPace refuses a paced phase that would run the students' event times
// near benchMaxSkew ahead of the clock. Each student scores about once a
// second, as in class; a pace above that moves their event times ahead,
// and past the processor's skew limit events go to the DLQ instead of the
// state: the phase would measure the DLQ.
func checkPace(pace float64, students int, d time.Duration) error {
	n := int(pace * d.Seconds())
	ahead := time.Duration(float64(n)/float64(students)*float64(time.Second)) - d
	if ahead > benchMaxSkew-time.Minute {
		return fmt.Errorf("bench pipeline: %d paced events over %d students move each student's event time about %v ahead of the clock, "+
			"near the processor's %v limit past which events go to the DLQ; use more --students, a lower --pace or a shorter --latency-duration",
			n, students, ahead.Round(time.Second), benchMaxSkew)
	}
	return nil
}

// benchGen makes a realistic mix: per-second score events of a live class
// and study clicks, students round-robin so every partition is busy. Each
// student's first event is its camera consent, as the capture client
// records it before the camera starts.
type benchGen struct {
	// base is the ts of every student's first second; each score moves its
	// student one second on, in both phases, as a live class does.
	base                 time.Time
	students, clickEvery int
	next                 int
	sec                  []int64 // per student: seconds already used
	consented            []bool
}

func newBenchGen(students, clickEvery int) *benchGen {
	return &benchGen{students: students, clickEvery: clickEvery, sec: make([]int64, students), consented: make([]bool, students)}
}

// seedRoster writes every bench student's roster profile, as the roster
// import does before a term: the apply script reads it for every score.
func seedRoster(ctx context.Context, rdb *redis.Client, students int) error {
	pipe := rdb.Pipeline()
	for s := range students {
		pipe.HSet(ctx, state.ProfileKey("bench-"+strconv.Itoa(s)), "class", "bench-class-"+strconv.Itoa(s/40),
			"minor", "0", "under_14", "0", "wants_degree", "1")
		if s%1000 == 999 || s == students-1 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("bench pipeline: roster: %w", err)
			}
		}
	}
	return nil
}

// record returns the next event as a Kafka record; its ts is base plus
// the student's own second counter. The record's timestamp, from which
// latency is measured, is set when it is handed to the client.
func (g *benchGen) record() (*kgo.Record, error) {
	i := g.next
	g.next++
	s := i % g.students
	id := "bench-" + strconv.Itoa(s)
	ts := func() time.Time { return g.base.Add(time.Duration(g.sec[s]) * time.Second) }
	var e stream.Event
	if !g.consented[s] {
		g.consented[s] = true
		e = &stream.Consent{Header: stream.NewHeader(id, ts()), Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "bench-1"}
	} else if g.clickEvery > 0 && i%g.clickEvery == g.clickEvery-1 {
		e = &stream.Click{Header: stream.NewHeader(id, ts()), Course: "course-" + strconv.Itoa(s%7),
			Kind: "study", DurationS: 30}
	} else {
		g.sec[s]++
		att := 0.4 + 0.5*math.Abs(math.Sin(float64(i)))
		e = &stream.Score{Header: stream.NewHeader(id, ts()),
			Session: "bench-session-" + strconv.Itoa(s/40), Course: "course-" + strconv.Itoa(s%7),
			WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: att, Model: "bench",
			Emotions: &stream.Emotions{Neutral: 0.6, Happy: 0.2, Sad: 0.05, Angry: 0.05, Fearful: 0.03, Disgusted: 0.02, Surprised: 0.05},
			Learning: &stream.Learning{Engaged: att, Confused: 0.1, Bored: 0.1, Frustrated: 0.05}}
	}
	b, err := stream.Encode(e)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: e.Topic(), Key: []byte(id), Value: b}, nil
}

// newBenchClient is the generator's Kafka client. It stands for the
// school's thousands of edge clients, which run on their own machines, so
// it costs the machine under test as little as it can: franz-go's client,
// like stream.Producer, but handed records without waiting for each
// acknowledgement, with a buffer for a whole phase. Like every classpulse
// producer, it keys records by student, partitions them as Kafka's own
// client does (murmur2) and does not compress them.
func newBenchClient(brokers []string, linger time.Duration) (*kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(linger), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: kafka client: %w", err)
	}
	return cl, nil
}

// benchProduce hands records to the client, stamping each with the time
// it was handed over; the first produce error is returned by wait.
type benchProduce struct {
	cl    *kgo.Client
	mu    sync.Mutex
	first error
}

func (p *benchProduce) send(ctx context.Context, r *kgo.Record, at time.Time) {
	r.Timestamp = at
	p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			p.mu.Lock()
			if p.first == nil {
				p.first = err
			}
			p.mu.Unlock()
		}
	})
}

func (p *benchProduce) wait(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first != nil {
		return fmt.Errorf("bench pipeline: produce: %w", p.first)
	}
	return nil
}

// produce publishes n events as fast as the broker takes them.
func (g *benchGen) produce(ctx context.Context, cl *kgo.Client, n int) error {
	p := &benchProduce{cl: cl}
	for range n {
		r, err := g.record()
		if err != nil {
			return err
		}
		p.send(ctx, r, time.Now())
	}
	return p.wait(ctx)
}

// benchBrokerLog returns the folder the bench's broker logs to ("" keeps
// the log in memory). A broker that keeps a million events in the Go heap
// (kfake's in-memory files) makes every garbage collection and fresh page
// of the process dearer, which a real broker, whose log is in files, does
// not cost the processor: with 1M events first, paced at 17,000/s, the
// p99 was 104-106 ms in memory against 60-71 ms with a log folder
// (docs/performance.md).
func benchBrokerLog(flag string) (string, error) {
	switch flag {
	case "memory":
		return "", nil
	case "":
		dir, err := os.MkdirTemp("", "classpulse-bench-broker-")
		if err != nil {
			return "", fmt.Errorf("bench pipeline: broker log folder: %w", err)
		}
		return dir, nil
	}
	entries, err := os.ReadDir(flag)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("bench pipeline: --broker-log: %w", err)
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("bench pipeline: --broker-log %s is not empty; the bench needs a fresh log", flag)
	}
	return flag, nil
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// benchScript is the reference for the scripting limit: two commands on
// one hashed key, the least a per-student apply script can do.
const benchScript = `redis.call('HINCRBY', KEYS[1], 'n', 1) redis.call('HSET', KEYS[1], 'last', ARGV[1]) return 1`

// redisBenchmarkEvalsha runs redis-benchmark -P 16 on EVALSHA of
// benchScript over as many hashed keys as there are students and returns
// its requests per second.
func redisBenchmarkEvalsha(ctx context.Context, rdb *redis.Client, addr string, n, keys int) (float64, error) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		return 0, fmt.Errorf("bench pipeline: redis-benchmark not installed (Debian package redis-tools): %w", err)
	}
	sha, err := rdb.ScriptLoad(ctx, benchScript).Result()
	if err != nil {
		return 0, err
	}
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-P", "16", "-n", strconv.Itoa(n),
		"-r", strconv.Itoa(keys), "--csv", "EVALSHA", sha, "1", "{s:__rand_int__}:bench", "x")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w\n%s", err, b)
	}
	// CSV: a header line, then "EVALSHA …","<rps>",… .
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 || !strings.HasPrefix(f[0], `"EVALSHA`) {
			continue
		}
		return strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
	}
	return 0, fmt.Errorf("redis-benchmark: no rate in its output:\n%s", b)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
