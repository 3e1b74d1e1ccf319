package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/testenv"
)

// TestDashboardCommandServesHTTPSWithRateLimitsFromTheEnvironment runs
// `classpulse dashboard` with --tls-cert/--tls-key and the per-token API
// limit from CLASSPULSE_RATE_API_TOKEN: it answers over HTTPS, refuses the
// third request of a token with 429, and exits 0 when stopped.
func TestDashboardCommandServesHTTPSWithRateLimitsFromTheEnvironment(t *testing.T) {
	files := testenv.NewTLS(t)
	r := testenv.StartRedis(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	keys, spec, err := dashboard.NewKeys("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLASSPULSE_RATE_API_TOKEN", "0.01/2")
	t.Setenv("CLASSPULSE_TOKEN_KEYS", spec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dashboard", "--addr", addr, "--redis", r.Addr, "--brokers", "127.0.0.1:1", "--no-queue",
			"--tls-cert", files.Cert, "--tls-key", files.Key, "--log-level", "warn"})
	}()
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	testenv.WaitFor(t, 20*time.Second, "the dashboard ready over HTTPS", func() bool {
		resp, err := client.Get("https://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tok, err := dashboard.IssueToken(keys, dashboard.Claims{Role: dashboard.RoleAdmin, Subject: "a1", Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 200, 429} {
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dashboard exited %d, want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dashboard did not stop")
	}
}

func TestDashboardCommandRefusesBadSecurityFlags(t *testing.T) {
	files := testenv.NewTLS(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"missing Kafka CA file", []string{"--kafka-tls-ca", files.CA + ".gone"}},
		{"missing Redis CA file", []string{"--redis-tls-ca", files.CA + ".gone"}},
		{"bad rate", []string{"--rate-ws-ip", "fast"}},
		{"certificate without key", []string{"--tls-cert", files.Cert}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"dashboard", "--addr", "127.0.0.1:0", "--redis", "127.0.0.1:1", "--brokers", "127.0.0.1:1", "--log-level", "error"}, tc.args...)
			if code := run(context.Background(), args); code == 0 {
				t.Fatal("dashboard started")
			}
		})
	}
}
