package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
)

// TestMain lets the test binary stand in for classpulse when a benchmark
// re-executes itself (os.Executable) for a child such as the soak's broker.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "bench" && os.Args[2] == "soak-broker" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:])
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestBenchSoakShortRunPrintsSlopesAndNoErrorLogs(t *testing.T) {
	r := testenv.StartRedis(t)
	var out bytes.Buffer
	err := benchSoak(context.Background(), []string{"--for", "20s", "--rate", "200", "--sample-every", "1s",
		"--warmup", "4s", "--clients", "2", "--redis", r.Addr, "--log-level", "error"}, &out)
	if err != nil {
		t.Fatalf("bench soak: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := regexp.MustCompile(`^soak for=20s events=(\d+) mem_slope_kb_per_min=(-?\d+\.\d) goroutine_slope_per_min=(-?\d+\.\d\d) error_logs=(\d+) ` +
		`rss_slope_kb_per_min=(-?\d+\.\d) rate=(\d+) processed=(\d+) ws_frames=(\d+)$`).FindStringSubmatch(lines[len(lines)-1])
	if last == nil {
		t.Fatalf("last line %q does not have the fixed form\n%s", lines[len(lines)-1], out.String())
	}
	n := func(i int) float64 { v, _ := strconv.ParseFloat(last[i], 64); return v }
	if n(4) != 0 {
		t.Errorf("%v error-level log records during the soak", n(4))
	}
	// 200 events/s offered for 20 s; the clock of a loaded machine may lose
	// some ticks, never most.
	if events, rate := n(1), n(6); events < 2000 || rate < 100 {
		t.Errorf("events=%v rate=%v for 200 events/s over 20 s", events, rate)
	}
	if n(7) <= 0 || n(8) <= 0 {
		t.Errorf("processed=%v ws_frames=%v: the processor or the dashboard clients saw nothing", n(7), n(8))
	}
	samples := strings.Count(out.String(), "\nt=")
	if samples < 15 {
		t.Errorf("%d samples in 20 s at one a second", samples)
	}
}

func TestBenchSoakRefusesNonsense(t *testing.T) {
	for _, args := range [][]string{{"--for", "0s"}, {"--rate", "-5"}, {"--clients", "-1"}, {"--for", "10s", "--sample-every", "5s"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := benchSoak(ctx, args, &bytes.Buffer{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "bench soak:") {
			t.Errorf("%v: err %v, want a clear refusal", args, err)
		}
	}
}

func TestSlopeIsTheLeastSquaresFit(t *testing.T) {
	tests := []struct {
		name string
		y    []float64 // one sample a minute
		want float64
	}{
		{"flat", []float64{5, 5, 5, 5}, 0},
		{"rising 10 a minute", []float64{0, 10, 20, 30}, 10},
		{"noise around a fall of 2", []float64{10, 7, 6, 5, 2}, -1.8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ss []soakSample
			for i, v := range tc.y {
				ss = append(ss, soakSample{at: time.Duration(i) * time.Minute, heapKB: int64(v)})
			}
			if got := slope(ss, func(s soakSample) float64 { return float64(s.heapKB) }); got < tc.want-1e-9 || got > tc.want+1e-9 {
				t.Fatalf("slope = %v, want %v", got, tc.want)
			}
		})
	}
}
