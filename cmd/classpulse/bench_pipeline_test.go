package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/classpulse/classpulse/internal/testenv"
)

func TestBenchPipelinePrintsFiguresLastAgainstTheGivenRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	var out bytes.Buffer
	err := benchPipeline(context.Background(), []string{"--students", "50", "--events", "3000", "--redis", r.Addr,
		"--latency-duration", "1s", "--redis-benchmark-n", "20000", "--log-level", "error"}, &out)
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
	if !strings.Contains(out.String(), "redis-benchmark evalsha_hincrby_hset P=16 requests_per_s=") {
		t.Errorf("no redis-benchmark comparison in\n%s", out.String())
	}
}

func TestBenchPipelineRefusesNonsenseSizes(t *testing.T) {
	for _, args := range [][]string{{"--events", "0"}, {"--students", "-1"}, {"--click-every", "-2"}} {
		if err := benchPipeline(context.Background(), args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("%v: err %v, want a clear refusal", args, err)
		}
	}
}
