package main

import (
	"context"
	"testing"
)

func TestDemoRunsHeadlessAndExitsZeroWhenTimeIsUp(t *testing.T) {
	code := run(context.Background(), []string{"demo", "--for", "6s", "--students", "5",
		"--addr", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--warmup", "10s", "--log-level", "warn"})
	if code != 0 {
		t.Fatalf("demo exited %d, want 0", code)
	}
}

func TestCommandLineExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"help"}, 0},
		{"no command", nil, 0},
		{"unknown command", []string{"frobnicate"}, 2},
		{"flag help", []string{"processor", "--help"}, 0},
		{"bad flag", []string{"simulate", "--students", "many"}, 1},
		{"invalid simulate config", []string{"simulate", "--students", "-3"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := run(context.Background(), c.args); got != c.want {
				t.Fatalf("exit %d, want %d", got, c.want)
			}
		})
	}
}
