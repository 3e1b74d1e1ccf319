package fanout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/cli"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// usWrap keeps the send time within the range evidence numbers allow: the
// microsecond clock modulo about 28 hours, unwrapped by the receiver.
const usWrap = 1e11

// Result is what the client process reports back.
type Result struct {
	Clients   int     `json:"clients"`
	Received  int64   `json:"received"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
	Dropped   int     `json:"dropped"`
	ConnectMS float64 `json:"connect_ms"`
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, since
// each WebSocket is a file descriptor, and returns the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// Bench runs the benchmark. exe and clientArgs start the client process
// (the same binary, `bench fanout-clients`). The last line printed is
// "fanout clients=N msgs_per_s=M p99_ms=P rss_mb=R".
func Bench(ctx context.Context, args []string, out io.Writer, exe string, clientArgs []string) error {
	fs := flag.NewFlagSet("bench fanout", flag.ContinueOnError)
	clients := fs.Int("clients", 5000, "WebSocket clients")
	rate := fs.Int("rate", 10, "warnings written to the live stream per second (each goes to every client)")
	dur := fs.Duration("duration", 10*time.Second, "how long warnings are written")
	redisAddr := fs.String("redis", "", "Redis to use (default: start a redis-server on a free port)")
	memProfile := fs.String("memprofile", "", "write a heap profile of the server process at the end of the writing phase to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server process while warnings are written to this file")
	clientProfile := fs.String("client-cpuprofile", "", "write a CPU profile of the client process (from its ready to its end) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clients < 1 || *clients > 50000 || *rate < 1 || *rate > 10000 || *dur <= 0 || *dur > 10*time.Minute {
		return errors.New("want 1 ≤ --clients ≤ 50000, 1 ≤ --rate ≤ 10000, 0 < --duration ≤ 10m")
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 4096
	}
	limit, err := RaiseFileLimit()
	if err != nil {
		return fmt.Errorf("raising the open-file limit: %w", err)
	}
	if limit < uint64(*clients)+100 {
		return fmt.Errorf("open-file limit %d is below %d clients; raise the hard limit (ulimit -Hn)", limit, *clients)
	}
	ctx, cancel := context.WithTimeout(ctx, *dur+3*time.Minute)
	defer cancel()

	addr := *redisAddr
	if addr == "" {
		dir, err := os.MkdirTemp("", "classpulse-fanout-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		r, err := testenv.NewRedis(dir)
		if err != nil {
			return err
		}
		defer r.Stop()
		addr = r.Addr
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	srv, err := dashboard.New(dashboard.Config{Addr: "127.0.0.1:0"}, rdb, nil, logger, reg)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(sctx) }()
	select {
	case <-srv.Started():
	case err := <-runErr:
		return err
	}
	tok, err := srv.IssueToken(dashboard.Claims{Subject: "bench", Role: dashboard.RoleAdmin, Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		return err
	}

	cargs := append(clientArgs, "--url", "ws://"+srv.Addr()+"/ws", "--clients", strconv.Itoa(*clients),
		"--messages", strconv.Itoa(int(float64(*rate)*dur.Seconds())+10))
	if *clientProfile != "" {
		cargs = append(cargs, "--cpuprofile", *clientProfile)
	}
	cmd := exec.CommandContext(ctx, exe, cargs...)
	cmd.Env = append(os.Environ(), "CLASSPULSE_FANOUT_TOKEN="+tok)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the client process: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready") {
		return fmt.Errorf("client process did not get ready: %q %v", lines.Text(), lines.Err())
	}
	fmt.Fprintf(out, "fanout: %s; writing %d warnings/s for %v\n", lines.Text(), *rate, *dur)

	stopProfile, err := cli.StartCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	serverCPU0, clientCPU0 := cli.CPUSeconds(0), cli.CPUSeconds(cmd.Process.Pid)

	// Write warnings at the rate, sampling our own resident memory.
	var peakRSS int64
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	end := time.Now().Add(*dur)
	start := time.Now()
	sent := 0
	w := &stream.Warning{Category: stream.CategoryEngagement, Level: stream.LevelYellow, Rule: "attention_low",
		Course: "C1", Session: "S1", Reason: "attention below 0.4 for 2 minutes", State: stream.StateRaised}
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		w.Header = stream.NewHeader("s"+strconv.Itoa(sent%40), now)
		w.Ref = w.ID
		w.Evidence = map[string]float64{"attention": 0.3, "sent_us": float64(now.UnixMicro() % usWrap)}
		b, err := stream.Encode(w)
		if err != nil {
			return err
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: dashboard.LiveWarnings, MaxLen: 100000, Approx: true, Values: map[string]any{"e": string(b)}}).Err(); err != nil {
			return err
		}
		sent++
		if sent%(*rate/2+1) == 0 {
			peakRSS = max(peakRSS, rssBytes())
		}
	}
	elapsed := time.Since(start)
	peakRSS = max(peakRSS, rssBytes())
	serverCPU, clientCPU := cli.CPUSeconds(0)-serverCPU0, cli.CPUSeconds(cmd.Process.Pid)-clientCPU0
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if *memProfile != "" {
		if err := cli.WriteHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "fanout: server memory: heap in use %.1f MB, stacks %.1f MB, goroutines %d, runtime total %.1f MB\n",
		float64(ms.HeapInuse)/(1<<20), float64(ms.StackInuse)/(1<<20), runtime.NumGoroutine(), float64(ms.Sys-ms.HeapReleased)/(1<<20))
	fmt.Fprintf(out, "fanout: CPU while writing: server %.2f cores, client process %.2f cores\n",
		serverCPU/elapsed.Seconds(), clientCPU/elapsed.Seconds())
	time.Sleep(time.Second) // let the last pushes land
	// Read before the client process is told to end: its clients then
	// close their sockets, which the server counts as client_closed.
	dropped := disconnects(reg)
	_ = stdin.Close()
	if !lines.Scan() {
		return fmt.Errorf("client process gave no result: %v", lines.Err())
	}
	var res Result
	if err := json.Unmarshal(lines.Bytes(), &res); err != nil {
		return fmt.Errorf("client result %q: %w", lines.Text(), err)
	}
	if dropped != "" {
		fmt.Fprintf(out, "fanout: server-side disconnects during the run: %s\n", dropped)
	}
	want := int64(sent) * int64(*clients)
	fmt.Fprintf(out, "fanout: sent %d warnings, %d deliveries of %d expected, %d clients dropped, p50 %.1f ms, max %.1f ms, connect %.0f ms\n",
		sent, res.Received, want, res.Dropped, res.P50MS, res.MaxMS, res.ConnectMS)
	fmt.Fprintf(out, "fanout clients=%d msgs_per_s=%.0f p99_ms=%.1f rss_mb=%.1f\n",
		res.Clients-res.Dropped, float64(res.Received)/elapsed.Seconds(), res.P99MS, float64(peakRSS)/(1<<20))
	stop()
	<-runErr
	return nil
}

// disconnects summarises the server's WebSocket disconnects by reason.
func disconnects(g prometheus.Gatherer) string {
	mfs, err := g.Gather()
	if err != nil {
		return ""
	}
	var parts []string
	for _, mf := range mfs {
		if mf.GetName() != "classpulse_dashboard_websocket_disconnects_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && m.GetCounter().GetValue() > 0 {
					parts = append(parts, fmt.Sprintf("%s=%.0f", l.GetValue(), m.GetCounter().GetValue()))
				}
			}
		}
	}
	return strings.Join(parts, " ")
}

// rssBytes reads this process's resident set size from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
