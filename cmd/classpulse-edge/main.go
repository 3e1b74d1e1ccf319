// Command classpulse-edge is the consented capture client: it reads a
// camera or a video file, scores faces on the machine with OpenCV, and
// publishes one summary event per second. See `classpulse-edge help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/classpulse/classpulse/internal/cli"
)

var commands = cli.Set{
	Name:   "classpulse-edge",
	Title:  "classpulse-edge — consented capture client (no image ever leaves the machine)",
	Footer: "Every flag can also be set by an environment variable: --model-dir → CLASSPULSE_MODEL_DIR.",
	Out:    os.Stderr,
}

// register adds a subcommand ("consent revoke" style names are two words).
func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands.Register(name, summary, run)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int { return commands.Run(ctx, args) }
