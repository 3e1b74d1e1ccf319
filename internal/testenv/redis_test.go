package testenv

import (
	"context"
	"strings"
	"testing"
)

// TestRedisOnAPortAnotherServerHoldsIsRefused: a redis-server that cannot
// bind its port (another test's server took it) must not pass for
// started because the other one answers there; the tests would share data.
func TestRedisOnAPortAnotherServerHoldsIsRefused(t *testing.T) {
	first := StartRedis(t)
	if err := first.Client(t).Set(context.Background(), "owner", "first", 0).Err(); err != nil {
		t.Fatal(err)
	}
	second := &Redis{Addr: first.Addr, dir: t.TempDir()}
	err := second.Start()
	if err == nil {
		second.Stop()
		t.Fatal("a second redis-server on a taken port was reported as started")
	}
	if !strings.Contains(err.Error(), "another redis-server") && !strings.Contains(err.Error(), "did not come up") {
		t.Fatalf("error %v", err)
	}
	// The first server is untouched.
	if v, err := first.Client(t).Get(context.Background(), "owner").Result(); err != nil || v != "first" {
		t.Fatalf("first server after the attempt: %q, %v", v, err)
	}
}
