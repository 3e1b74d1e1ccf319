package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportSourceFromCommandLineBeatsTheEnvironment: --events and --redis
// are alternatives; one given on the command line wins over the other set
// in the environment, and two on the command line are refused.
func TestExportSourceFromCommandLineBeatsTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	lines := `{"topic":"classpulse.grades.v1","event":{"v":1,"id":"g1","ts":"2026-11-23T01:00:00.000Z","student":"s1","course":"calculus","term":"2026-autumn","score":72,"passed":true}}
`
	if err := os.WriteFile(events, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "features.csv")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"--events with CLASSPULSE_REDIS in the environment", map[string]string{"CLASSPULSE_REDIS": "127.0.0.1:1"},
			[]string{"export", "features", "--events", events, "--out", out, "--log-level", "warn"}, 0},
		{"both on the command line", nil,
			[]string{"export", "features", "--events", events, "--redis", "127.0.0.1:1", "--out", out}, 1},
		{"neither", nil, []string{"export", "features", "--out", out}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			os.Remove(out)
			if got := run(context.Background(), c.args); got != c.want {
				t.Fatalf("exit %d, want %d", got, c.want)
			}
			if c.want != 0 {
				return
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if rows := strings.Split(strings.TrimSpace(string(b)), "\n"); len(rows) != 2 || !strings.Contains(rows[1], "s1") {
				t.Fatalf("features CSV:\n%s", b)
			}
		})
	}
}
