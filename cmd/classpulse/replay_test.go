package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplayCommandWritesWarningsAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	lines := `{"topic":"grades","event":{"v":1,"id":"g1","ts":"2026-11-23T01:00:00.000Z","student":"s1","course":"calculus","term":"2026-autumn","score":40,"passed":false}}
this line is not an event
{"v":1,"id":"g2","ts":"2026-11-23T01:00:01.000Z","student":"s1","course":"law","term":"2026-autumn","score":40,"passed":false}
`
	if err := os.WriteFile(events, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPolicy, []byte("version: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "warnings.jsonl")
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"replays a file", []string{"replay", "--in", events, "--out", out, "--log-level", "warn"}, 0},
		{"needs --in", []string{"replay", "--out", out}, 1},
		{"missing events file", []string{"replay", "--in", filepath.Join(dir, "nope.jsonl")}, 1},
		{"refuses a bad policy", []string{"replay", "--in", events, "--policy", badPolicy}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := run(context.Background(), c.args); got != c.want {
				t.Fatalf("exit %d, want %d", got, c.want)
			}
		})
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(got) != 1 || !strings.Contains(got[0], `"rule":"grade"`) || !strings.Contains(got[0], `"level":"yellow"`) {
		t.Fatalf("warnings file:\n%s\nwant one grade yellow warning", b)
	}
}
