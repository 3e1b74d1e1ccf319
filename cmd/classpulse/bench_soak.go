package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/cli"
	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/simulate"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

func init() {
	registerBench("soak", benchSoak)
	// The soak's broker runs in a child (this binary re-executed), so the
	// heap and RSS it samples are the classpulse components', not the
	// in-memory log of an embedded broker that keeps every event.
	registerBench("soak-broker", soakBroker)
}

// soakThroughput is the default saturated rate the soak runs at half of:
// `classpulse bench pipeline` measured 11,849–12,583 events/s on the
// reference machine (docs/performance.md).
const soakThroughput = 12000

const benchSoakSummary = "Soak: the processor (with its class stage), the dashboard with WebSocket clients on a class grid " +
	"and the warnings, and simulated classes of 40 students, all in this process, against the embedded broker " +
	"(in a child process) and a real redis-server, at a fixed event rate (default half of --throughput). Every --sample-every it " +
	"records the live heap (after a GC), the RSS and the goroutine count; after a warm-up it fits least-squares " +
	"slopes per minute, and it counts error-level log records of the run. Last line: soak for=D events=N " +
	"mem_slope_kb_per_min=X goroutine_slope_per_min=Y error_logs=Z (then rss_slope_kb_per_min, rate, processed, ws_frames)."

// benchSoak runs `classpulse bench soak`.
func benchSoak(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("bench soak", benchSoakSummary)
	dur := fs.Duration("for", 10*time.Minute, "how long the load runs")
	throughput := fs.Float64("throughput", soakThroughput, "the measured saturated events/s of `classpulse bench pipeline` on this machine")
	rate := fs.Float64("rate", 0, "events per second offered (default: half of --throughput)")
	every := fs.Duration("sample-every", 5*time.Second, "time between two samples of heap, RSS and goroutines")
	warmup := fs.Duration("warmup", 0, "samples before this are left out of the slopes (default: half of --for, at most 6m: the processor's in-memory live windows fill for 300 s of event time per student)")
	clients := fs.Int("clients", 4, "WebSocket clients on the first class's grid and the warnings")
	classSize := fs.Int("class-size", 40, "students per simulated class")
	redisAddr := fs.String("redis", "", "redis-server host:port to use; it must be empty (FLUSHALL is run). Default: a redis-server child on a free port")
	logLevel := fs.String("log-level", "warn", "log level of the components (error records are counted whatever the level)")
	memProfile := fs.String("memprofile", "", "write a heap profile (after a GC) to this file when the load ends, to see what a rising slope holds")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *rate == 0 {
		*rate = *throughput / 2
	}
	if *dur <= 0 || *rate <= 0 || *every <= 0 || *clients < 0 || *classSize <= 0 || *warmup < 0 {
		return errors.New("bench soak: --for, --rate (or --throughput), --sample-every and --class-size must be positive, --clients and --warmup not negative")
	}
	if *every > *dur/4 {
		return fmt.Errorf("bench soak: --sample-every %v leaves fewer than four samples in --for %v", *every, *dur)
	}
	if *warmup == 0 {
		*warmup = min(*dur/2, 6*time.Minute)
	}
	var errorLogs atomic.Int64
	var counting atomic.Bool
	base, err := config.NewLogger(os.Stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	logger := slog.New(errorCounter{Handler: base.Handler(), n: &errorLogs, on: &counting})

	addr, stopRedis, err := benchRedis(*redisAddr, nil)
	if err != nil {
		return err
	}
	defer stopRedis()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("bench soak: redis %s: %w", addr, err)
	}
	brokerAddr, stopBroker, err := startSoakBroker(ctx)
	if err != nil {
		return err
	}
	defer stopBroker()
	brokers := []string{brokerAddr}
	reg := prometheus.NewRegistry()
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: brokers}, logger)
	if err != nil {
		return err
	}
	defer prod.Close()
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		return err
	}
	defer store.Close()
	policy, err := loadPolicy("")
	if err != nil {
		return err
	}
	proc, err := processor.New(processor.Config{Brokers: brokers, Group: "soak"}, store, policy, prod, logger, reg)
	if err != nil {
		return err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return err
	}
	students, err := dashboard.NewStateReader(rdb, state.Config{}, policy, nil)
	if err != nil {
		return err
	}
	dash, err := dashboard.New(dashboard.Config{Addr: "127.0.0.1:" + strconv.Itoa(port), Brokers: brokers}, rdb, prod, logger, reg,
		dashboard.WithStudentReader(students))
	if err != nil {
		return err
	}
	// Classes of classSize students, one score per student per second plus
	// a click every 15 s: students ≈ rate / (0.95 captured + 1/15 clicks).
	total := max(1, int(math.Round(*rate/(0.95+1.0/15))))
	var classes []*simulate.Class
	for i := 0; i*(*classSize) < total; i++ {
		n := min(*classSize, total-i*(*classSize))
		c, err := simulate.New(simulate.Config{Students: n, Session: fmt.Sprintf("soak-%04d", i), Course: "soak",
			StudentPrefix: fmt.Sprintf("soak%04d-", i), Seed: uint64(i + 1)}, prod, logger)
		if err != nil {
			return err
		}
		classes = append(classes, c)
	}
	sent := func() int64 {
		var n int64
		for _, c := range classes {
			n += c.Sent()
		}
		return n
	}

	// Servers run until the end; the load and the clients stop first.
	sctx, stopServers := context.WithCancel(context.Background())
	defer stopServers()
	servers, _ := errgroup.WithContext(sctx)
	servers.Go(func() error { return proc.Run(sctx) })
	servers.Go(func() error { return dash.Run(sctx) })
	select {
	case <-dash.Started():
	case <-ctx.Done():
		stopServers()
		_ = servers.Wait()
		return ctx.Err()
	}
	fmt.Fprintf(out, "soak: %d classes, %d students, offered ~%.0f events/s for %v (redis %s, broker %s, dashboard %s)\n",
		len(classes), total, *rate, *dur, addr, brokerAddr, dash.Addr())
	tok, err := dash.IssueToken(dashboard.Claims{Subject: "soak", Role: dashboard.RoleAdmin, Name: "soak",
		Expires: time.Now().Add(*dur + time.Hour).Unix()})
	if err != nil {
		return err
	}

	lctx, stopLoad := context.WithTimeout(ctx, *dur)
	defer stopLoad()
	counting.Store(true)
	start := time.Now()
	var load sync.WaitGroup
	var frames atomic.Int64
	for _, c := range classes {
		load.Add(1)
		go func() {
			defer load.Done()
			if err := c.Run(lctx); err != nil {
				logger.Error("simulated class stopped", "err", err)
			}
		}()
	}
	for i := 0; i < *clients; i++ {
		load.Add(1)
		go func() {
			defer load.Done()
			soakClient(lctx, "ws://"+dash.Addr()+"/ws", tok, "class:soak-0000", &frames)
		}()
	}
	var samples []soakSample
	tick := time.NewTicker(*every)
	for done := false; !done; {
		select {
		case <-lctx.Done():
			done = true
		case <-tick.C:
			s := takeSample(time.Since(start))
			samples = append(samples, s)
			fmt.Fprintf(out, "t=%-6v heap_kb=%d rss_kb=%d goroutines=%d events=%d\n",
				s.at.Round(time.Second), s.heapKB, s.rssKB, s.goroutines, sent())
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	if *memProfile != "" {
		if err := cli.WriteHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	counting.Store(false)
	load.Wait()
	events := sent()
	processed := counterSum(reg, "classpulse_processor_events_total")
	stopServers()
	if err := servers.Wait(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var kept []soakSample
	for _, s := range samples {
		if s.at >= *warmup {
			kept = append(kept, s)
		}
	}
	if len(kept) < 3 {
		return fmt.Errorf("bench soak: only %d samples after the %v warm-up; lengthen --for or shorten --sample-every", len(kept), *warmup)
	}
	heap := slope(kept, func(s soakSample) float64 { return float64(s.heapKB) })
	rss := slope(kept, func(s soakSample) float64 { return float64(s.rssKB) })
	gor := slope(kept, func(s soakSample) float64 { return float64(s.goroutines) })
	fmt.Fprintf(out, "soak for=%v events=%d mem_slope_kb_per_min=%.1f goroutine_slope_per_min=%.2f error_logs=%d rss_slope_kb_per_min=%.1f rate=%.0f processed=%.0f ws_frames=%d\n",
		*dur, events, heap, gor, errorLogs.Load(), rss, float64(events)/elapsed.Seconds(), processed, frames.Load())
	return nil
}

// errorCounter counts error-level records while on is set, and hands every
// record on.
type errorCounter struct {
	slog.Handler
	n  *atomic.Int64
	on *atomic.Bool
}

func (h errorCounter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.Handler.Enabled(ctx, l)
}

func (h errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && h.on.Load() {
		h.n.Add(1)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h errorCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return errorCounter{Handler: h.Handler.WithAttrs(as), n: h.n, on: h.on}
}

func (h errorCounter) WithGroup(name string) slog.Handler {
	return errorCounter{Handler: h.Handler.WithGroup(name), n: h.n, on: h.on}
}

type soakSample struct {
	at            time.Duration
	heapKB, rssKB int64
	goroutines    int
}

// takeSample reads the live heap after a full GC (so the slope is of what
// is retained, not of garbage awaiting collection), the RSS and the
// goroutine count.
func takeSample(at time.Duration) soakSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return soakSample{at: at, heapKB: int64(ms.HeapAlloc >> 10), rssKB: rssKB(), goroutines: runtime.NumGoroutine()}
}

// rssKB is the process's resident set from /proc/self/statm (0 elsewhere).
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()) >> 10
}

// slope is the least-squares slope of y over the samples' time, per minute.
func slope(ss []soakSample, y func(soakSample) float64) float64 {
	var mx, my float64
	for _, s := range ss {
		mx += s.at.Minutes()
		my += y(s)
	}
	mx /= float64(len(ss))
	my /= float64(len(ss))
	var num, den float64
	for _, s := range ss {
		dx := s.at.Minutes() - mx
		num += dx * (y(s) - my)
		den += dx * dx
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// counterSum adds every series of the counter name in reg.
func counterSum(reg prometheus.Gatherer, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// soakClient is a dashboard WebSocket client on a class grid and the
// warnings: it reads every frame until ctx ends, reconnecting after a
// second when cut off, resuming the warnings after the last one seen.
func soakClient(ctx context.Context, url, tok, class string, frames *atomic.Int64) {
	last := ""
	for ctx.Err() == nil {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err == nil {
			c.SetReadLimit(1 << 20)
			sub := map[string]any{"op": "subscribe", "channel": "warnings", "backlog": 50}
			if last != "" {
				sub = map[string]any{"op": "subscribe", "channel": "warnings", "after": last}
			}
			for _, m := range []any{map[string]any{"op": "subscribe", "channel": class}, sub} {
				b, _ := json.Marshal(m)
				if err = c.Write(ctx, websocket.MessageText, b); err != nil {
					break
				}
			}
			for err == nil {
				var b []byte
				if _, b, err = c.Read(ctx); err == nil {
					frames.Add(1)
					var f struct{ Type, ID string }
					if json.Unmarshal(b, &f) == nil && f.Type == "warning" && f.ID != "" {
						last = f.ID
					}
				}
			}
			c.CloseNow()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// startSoakBroker runs `classpulse bench soak-broker` as a child on a free
// loopback port and waits until it accepts connections. stop ends it.
func startSoakBroker(ctx context.Context) (addr string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return "", nil, err
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(exe, "bench", "soak-broker", "--listen", addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The broker must not outlive a soak that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("bench soak: broker child: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, stop, nil
		}
		select {
		case <-exited:
			return "", nil, errors.New("bench soak: the broker child exited at start")
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("bench soak: broker child not listening on %s after 30 s", addr)
		}
	}
}

// soakBroker runs `classpulse bench soak-broker`: the embedded broker with
// every classpulse topic until interrupted.
func soakBroker(ctx context.Context, args []string, _ io.Writer) error {
	fs := newFlagSet("bench soak-broker", "the soak's embedded broker, run as its child")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	partitions := fs.Int("partitions", 8, "partitions per topic")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	b, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: *listen, Partitions: *partitions}, nil)
	if err != nil {
		return err
	}
	<-ctx.Done()
	b.Close()
	return nil
}
