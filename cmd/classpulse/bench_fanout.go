package main

import (
	"context"
	"io"
	"os"

	"github.com/classpulse/classpulse/dashboard/fanout"
)

func init() {
	// `classpulse bench fanout --clients 5000`: the server runs in this
	// process; the clients run in a child, this binary re-executed with the
	// hidden benchmark name "fanout-clients", so that rss_mb is the
	// server's alone.
	registerBench("fanout", func(ctx context.Context, args []string, out io.Writer) error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		return fanout.Bench(ctx, args, out, exe, []string{"bench", "fanout-clients"})
	})
	registerBench("fanout-clients", fanout.Clients)
}
