package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server child process on a loopback port, in its own
// temporary folder. Stop and Start keep the port, so clients reconnect to
// the same address after a restart.
type Redis struct {
	Addr string
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (the Debian package; `make test` installs
// it) and stops it when the test ends. Extra args are passed on, e.g.
// "--appendonly", "yes".
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	r, err := NewRedis(t.TempDir(), args...)
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// NewRedis starts redis-server in dir on a free port. The caller owns it
// and must Stop it.
func NewRedis(dir string, args ...string) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server not installed (run `make test-deps`): %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, args: args}
		if lastErr = r.Start(); lastErr == nil {
			return r, nil
		}
	}
	return nil, lastErr
}

// Start (re)starts the server on its port and waits until it answers PING.
func (r *Redis) Start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	args := append([]string{
		"--port", port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
	}, r.args...)
	cmd := exec.Command("redis-server", args...)
	logf, err := os.Create(filepath.Join(r.dir, "redis.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start redis-server: %w", err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	r.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		var info string
		info, err = c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			// The answer must come from this server: when the port was
			// taken meanwhile by another test's redis-server, this one
			// failed to bind, and the test would share the other's data.
			if !strings.Contains(info, "process_id:"+strconv.Itoa(cmd.Process.Pid)+"\r\n") {
				err = fmt.Errorf("port %s answered by another redis-server", port)
				break
			}
			return nil
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Stop()
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return fmt.Errorf("redis-server on %s did not come up: %v\n%s", r.Addr, err, log)
}

// Stop kills the server and waits until its port is free.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", r.Addr, 50*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	r.cmd = nil
}

// Client returns a go-redis client for the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
