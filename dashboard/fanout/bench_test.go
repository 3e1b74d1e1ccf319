package fanout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/classpulse/classpulse/internal/testenv"
)

// childArg makes the test binary the client process of Bench.
const childArg = "fanout-clients-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := Clients(context.Background(), os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBenchPrintsTheFixedLastLineWithEveryPushDelivered(t *testing.T) {
	r := testenv.StartRedis(t)
	var out bytes.Buffer
	err := Bench(context.Background(), []string{"--clients", "20", "--rate", "5", "--duration", "2s", "--redis", r.Addr}, &out, os.Args[0], []string{childArg})
	if err != nil {
		t.Fatalf("bench fanout: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := regexp.MustCompile(`^fanout clients=(\d+) msgs_per_s=(\d+) p99_ms=(\d+\.\d) rss_mb=(\d+\.\d)$`).FindStringSubmatch(lines[len(lines)-1])
	if last == nil {
		t.Fatalf("last line %q does not have the fixed form\n%s", lines[len(lines)-1], out.String())
	}
	n := func(i int) float64 { v, _ := strconv.ParseFloat(last[i], 64); return v }
	if n(1) != 20 || n(2) <= 0 || n(3) <= 0 || n(4) <= 0 {
		t.Errorf("figures %v", last[1:])
	}
	// Every warning written reached every client.
	m := regexp.MustCompile(`sent (\d+) warnings, (\d+) deliveries of (\d+) expected, 0 clients dropped`).FindStringSubmatch(out.String())
	if m == nil || m[2] != m[3] || m[1] == "0" {
		t.Errorf("not every push delivered:\n%s", out.String())
	}
}

func TestBenchRefusesNonsense(t *testing.T) {
	for _, args := range [][]string{{"--clients", "0"}, {"--rate", "0"}, {"--duration", "-1s"}, {"--clients", "50001"}} {
		err := Bench(context.Background(), args, &bytes.Buffer{}, os.Args[0], []string{childArg})
		if err == nil || !strings.Contains(err.Error(), "want 1 ≤ --clients") {
			t.Errorf("%v: err %v, want a clear refusal", args, err)
		}
	}
}
