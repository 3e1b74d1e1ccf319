package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
)

func TestFollowupCommandRunsAndRefusesBadRoutes(t *testing.T) {
	b := testenv.StartBroker(t, 1)
	r := testenv.StartRedis(t)
	bad := filepath.Join(t.TempDir(), "routes.json")
	if err := os.WriteFile(bad, []byte(`{"routes":[{"channel":"email","states":["followup"],"to":["a@b"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runFollowup(context.Background(), []string{"--brokers", b.Addr(), "--redis", r.Addr, "--routes", bad, "--listen", ""})
	if err == nil || !strings.Contains(err.Error(), `state "followup" is not one of`) {
		t.Fatalf("bad routing file: err = %v", err)
	}

	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runFollowup(ctx, []string{"--brokers", b.Addr(), "--redis", r.Addr, "--listen", addr, "--every", "50ms"})
	}()
	testenv.WaitFor(t, 10*time.Second, "a follow-up pass measured on /metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), "classpulse_helploop_tick_duration_seconds_count")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("followup returned %v after cancel", err)
	}
}
