// Command classpulse is the pure-Go server binary: the stream processor, the
// dashboard, the simulator, the offline replay, the benchmarks and the
// all-in-one demo. See `classpulse help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/classpulse/classpulse/internal/cli"
)

var commands = cli.Set{
	Name:   "classpulse",
	Title:  "classpulse — live engagement monitoring and academic early warning",
	Footer: "Every flag can also be set by an environment variable: --redis → CLASSPULSE_REDIS, --max-batch → CLASSPULSE_MAX_BATCH.",
	Out:    os.Stderr,
}

// register adds a subcommand; each lives in its own file.
func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands.Register(name, summary, run)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int { return commands.Run(ctx, args) }
