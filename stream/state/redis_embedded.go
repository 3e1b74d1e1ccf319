package state

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// EmbeddedRedis is an in-process Redis-protocol server (miniredis, with Lua)
// for `classpulse demo`. It keeps everything in memory; the tests use a real
// redis-server instead.
type EmbeddedRedis struct {
	m *miniredis.Miniredis
}

// StartEmbeddedRedis listens on addr ("127.0.0.1:0" picks a free port).
// The caller owns it and must Close it.
func StartEmbeddedRedis(addr string, logger *slog.Logger) (*EmbeddedRedis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis on %s: %w", addr, err)
	}
	if logger != nil {
		logger.Info("embedded Redis-protocol server listening", "component", "redis", "addr", m.Addr())
	}
	return &EmbeddedRedis{m: m}, nil
}

// Addr is the host:port clients connect to.
func (e *EmbeddedRedis) Addr() string { return e.m.Addr() }

// Run advances the server's clock every second so key expiry works as on
// a real server (miniredis only expires keys when told time has passed).
func (e *EmbeddedRedis) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			e.m.FastForward(time.Second)
		}
	}
}

// Close stops the server.
func (e *EmbeddedRedis) Close() { e.m.Close() }
