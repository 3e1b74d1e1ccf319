package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
)

// TestSIGHUPReloadsThePolicyAndKeepsTheLastGoodOne drives reloadOnHUP, the
// reload both the processor and the dashboard run: a changed file is put
// in force on SIGHUP, a broken one is refused and the last good policy
// stays.
func TestSIGHUPReloadsThePolicyAndKeepsTheLastGoodOne(t *testing.T) {
	// Our own subscription first, so a SIGHUP sent before reloadOnHUP has
	// subscribed cannot end the test process.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := string(rules.DefaultPolicyYAML())
	write(base)
	h, err := loadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Policy().Name; got != "default" {
		t.Fatalf("policy name %q, want default", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { done <- reloadOnHUP(ctx, h, path, slog.New(slog.NewTextHandler(&logs, nil))) }()

	hupUntil := func(what string, ok func() bool) {
		t.Helper()
		testenv.WaitFor(t, 10*time.Second, what, func() bool {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			return ok()
		})
	}
	cases := []struct {
		name, body, want string
	}{
		{"a changed file is put in force", strings.Replace(base, "name: default", "name: school-2027", 1), "school-2027"},
		{"a broken file keeps the last good policy", "version: 1\nname: [broken", "school-2027"},
		{"an unknown field keeps the last good policy", strings.Replace(base, "name: default", "name: x\nnmae: y", 1), "school-2027"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write(c.body)
			if c.want == h.Policy().Name {
				// Nothing may change: send a few and check it stays.
				for i := 0; i < 3; i++ {
					if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
					time.Sleep(100 * time.Millisecond)
				}
				if got := h.Policy().Name; got != c.want {
					t.Fatalf("policy %q after SIGHUP, want %q kept", got, c.want)
				}
				// The file was read and refused, not ignored.
				testenv.WaitFor(t, 5*time.Second, "a refused reload logged", func() bool {
					return strings.Contains(logs.String(), "policy reload failed")
				})
				logs.Reset()
				return
			}
			hupUntil("policy "+c.want+" in force", func() bool { return h.Policy().Name == c.want })
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("reloadOnHUP: %v", err)
	}
}

// syncBuffer is a bytes.Buffer the reload goroutine writes and the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
