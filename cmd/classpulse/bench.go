package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/classpulse/classpulse/internal/testenv"
)

// benchFunc runs one benchmark; it prints progress and, as its last line,
// the figures in the form its issue fixes ("pipeline events=… …").
type benchFunc func(ctx context.Context, args []string, out io.Writer) error

var benches = map[string]benchFunc{}

// registerBench adds `classpulse bench <name>`. Each benchmark lives in its
// own file beside the package it measures.
func registerBench(name string, f benchFunc) { benches[name] = f }

// benchRedis returns addr when it is given; when it is empty it starts a
// redis-server child in a temporary folder, says so on out (when out is
// not nil) and returns its address. stop ends the child and removes the
// folder.
func benchRedis(addr string, out io.Writer) (string, func(), error) {
	if addr != "" {
		return addr, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "classpulse-bench-redis-")
	if err != nil {
		return "", nil, err
	}
	srv, err := testenv.NewRedis(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if out != nil {
		fmt.Fprintf(out, "redis-server child on %s\n", srv.Addr)
	}
	return srv.Addr, func() { srv.Stop(); os.RemoveAll(dir) }, nil
}

func init() {
	register("bench", "run a benchmark: classpulse bench <name> [flags] (pipeline, fanout, soak, …)", func(ctx context.Context, args []string) error {
		names := make([]string, 0, len(benches))
		for n := range benches {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintf(os.Stderr, "Usage: classpulse bench <name> [flags]\nBenchmarks: %v\n", names)
			return nil
		}
		f, ok := benches[args[0]]
		if !ok {
			return fmt.Errorf("unknown benchmark %q (have %v)", args[0], names)
		}
		return f(ctx, args[1:], os.Stdout)
	})
}
