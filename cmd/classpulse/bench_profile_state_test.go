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

func TestBenchProfileStatePrintsFiguresLastAgainstTheGivenRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	var out bytes.Buffer
	if err := benchProfileState(context.Background(), []string{"--students", "60", "--clicks", "4", "--redis", r.Addr}, &out); err != nil {
		t.Fatalf("bench profile-state: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := regexp.MustCompile(`^profile-state students=60 rows=120 read_s=(\S+) profile_s=(\S+) predict_s=(\S+) write_s=(\S+) rewrite_s=(\S+) k=(\d+)$`).FindStringSubmatch(lines[len(lines)-1])
	if last == nil {
		t.Fatalf("last line %q does not have the fixed form\n%s", lines[len(lines)-1], out.String())
	}
	for _, f := range last[1:6] {
		if v, err := strconv.ParseFloat(f, 64); err != nil || v < 0 {
			t.Errorf("figure %q", f)
		}
	}
	// The same Redis now holds state: the benchmark refuses to write into it.
	err := benchProfileState(context.Background(), []string{"--students", "60", "--redis", r.Addr}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "give an empty one") {
		t.Fatalf("a non-empty Redis: err %v", err)
	}
	for _, args := range [][]string{{"--students", "2"}, {"--clicks", "0"}} {
		if err := benchProfileState(context.Background(), args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "must be in") {
			t.Errorf("%v: err %v, want a clear refusal", args, err)
		}
	}
}
