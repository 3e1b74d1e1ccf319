package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (any 127.x.y.z is local on Linux), so one test can
// be several client addresses.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// get asks path with tok from client and returns the status, Retry-After
// and the error reason.
func (h *harness) getFrom(c *http.Client, path, tok string) (int, string, string) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header.Get("Retry-After"), e.Reason
}

func (h *harness) dialFrom(c *http.Client, tok string) (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws://"+h.srv.Addr()+"/ws", &websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err == nil {
		conn.CloseNow()
		return http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		h.t.Fatalf("dial: %v", err)
		return 0, ""
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestRateLimitsRefuseOnlyTheNoisyTokenOrAddress: the limits (refilling
// one token per 100 s, so no refill happens during the test) refuse the
// request past a bucket's burst with 429, Retry-After and a reason naming
// the limit, count it by scope, and leave other tokens and other
// addresses untouched — on the API and on WebSocket connect.
func TestRateLimitsRefuseOnlyTheNoisyTokenOrAddress(t *testing.T) {
	slow := func(burst int) Rate { return Rate{PerSecond: 0.01, Burst: burst} }
	h := startHarness(t, Config{Limits: RateLimits{APIPerToken: slow(3), APIPerIP: slow(10), WSPerToken: slow(2), WSPerIP: slow(6)}}, nil)
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	tok := func() string { return h.token(Claims{Role: RoleAdmin}) }
	limited := func(scope string) float64 {
		return testutil.ToFloat64(h.srv.metrics.rateLimited.WithLabelValues(scope))
	}

	check := func(t *testing.T, what string, code int, retry, reason string, wantCode int, wantReason string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("%s: %d, want %d (%s)", what, code, wantCode, reason)
		}
		if wantCode != http.StatusTooManyRequests {
			return
		}
		if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 100 {
			t.Fatalf("%s: Retry-After %q, want 1..100 seconds", what, retry)
		}
		if wantReason != "" && !strings.Contains(reason, wantReason) {
			t.Fatalf("%s: reason %q, want it to name %q", what, reason, wantReason)
		}
	}

	t.Run("api per token", func(t *testing.T) {
		noisy, quiet := tok(), tok()
		for i := 0; i < 3; i++ {
			code, retry, reason := h.getFrom(one, "/api/v1/me", noisy)
			check(t, "noisy token within its burst", code, retry, reason, 200, "")
		}
		code, retry, reason := h.getFrom(one, "/api/v1/me", noisy)
		check(t, "noisy token past its burst", code, retry, reason, 429, "api_token")
		code, retry, reason = h.getFrom(one, "/api/v1/me", quiet)
		check(t, "another token from the same address", code, retry, reason, 200, "")
		if n := limited(scopeAPIToken); n != 1 {
			t.Fatalf("rate_limited_total{scope=api_token} = %v, want 1", n)
		}
	})
	t.Run("api per address", func(t *testing.T) {
		// 5 of the 10 requests of 127.0.0.1's bucket are spent above.
		for i := 0; i < 5; i++ {
			code, retry, reason := h.getFrom(one, "/api/v1/me", tok())
			check(t, "fresh tokens within the address's burst", code, retry, reason, 200, "")
		}
		code, retry, reason := h.getFrom(one, "/api/v1/me", tok())
		check(t, "a fresh token from the noisy address", code, retry, reason, 429, "api_ip")
		code, retry, reason = h.getFrom(one, "/api/v1/me", "")
		check(t, "no token from the noisy address", code, retry, reason, 429, "api_ip")
		code, retry, reason = h.getFrom(two, "/api/v1/me", tok())
		check(t, "another address", code, retry, reason, 200, "")
		if n := limited(scopeAPIIP); n != 2 {
			t.Fatalf("rate_limited_total{scope=api_ip} = %v, want 2", n)
		}
	})
	t.Run("websocket connect per token and per address", func(t *testing.T) {
		noisy := tok()
		for i := 0; i < 2; i++ {
			code, retry := h.dialFrom(one, noisy)
			check(t, "connect within the token's burst", code, retry, "", 101, "")
		}
		code, retry := h.dialFrom(one, noisy)
		check(t, "third connect with the token", code, retry, "", 429, "")
		for i := 0; i < 3; i++ {
			code, retry = h.dialFrom(one, tok())
			check(t, "other tokens within the address's burst", code, retry, "", 101, "")
		}
		code, retry = h.dialFrom(one, tok())
		check(t, "a fresh token from the noisy address", code, retry, "", 429, "")
		code, retry = h.dialFrom(two, tok())
		check(t, "another address", code, retry, "", 101, "")
		code, _, reason := h.getFrom(one, "/api/v1/me", tok())
		if code != 429 || !strings.Contains(reason, "api_ip") {
			t.Fatalf("the API bucket of 127.0.0.1 is its own: %d %s", code, reason)
		}
		if a, b := limited(scopeWSToken), limited(scopeWSIP); a != 1 || b != 1 {
			t.Fatalf("rate_limited_total ws_token %v ws_ip %v, want 1 and 1", a, b)
		}
	})
	problems, err := testutil.GatherAndLint(h.reg, "classpulse_dashboard_rate_limited_total")
	if err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
}

func TestRateFlagForm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		err  bool
	}{
		{"20/40", Rate{PerSecond: 20, Burst: 40}, false},
		{"0.5/1", Rate{PerSecond: 0.5, Burst: 1}, false},
		{"off", Rate{}, false},
		{"20", Rate{}, true},
		{"0/10", Rate{}, true},
		{"-1/10", Rate{}, true},
		{"NaN/10", Rate{}, true},
		{"10/0", Rate{}, true},
		{"ten/1", Rate{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var r Rate
			err := r.Set(tc.in)
			if (err != nil) != tc.err || r != tc.want {
				t.Fatalf("Set(%q) = %+v, %v; want %+v, error %v", tc.in, r, err, tc.want, tc.err)
			}
			if err == nil {
				var back Rate
				if err := back.Set(r.String()); err != nil || back != r {
					t.Fatalf("String %q does not parse back: %+v %v", r.String(), back, err)
				}
			}
		})
	}
}

func TestClientIPTrustsForwardedForOnlyFromTrustedProxies(t *testing.T) {
	s := &Server{}
	var err error
	if s.proxies, err = parseProxies([]string{"10.0.0.0/8", "192.168.1.1"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, want string
	}{
		{"direct client", "203.0.113.5:5000", "", "203.0.113.5"},
		{"untrusted peer cannot claim another address", "203.0.113.5:5000", "198.51.100.1", "203.0.113.5"},
		{"trusted proxy names the client", "10.1.2.3:80", "198.51.100.1", "198.51.100.1"},
		{"spoofed first hop is skipped", "10.1.2.3:80", "6.6.6.6, 198.51.100.1", "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:80", "198.51.100.1, 192.168.1.1", "198.51.100.1"},
		{"trusted proxy without header", "10.1.2.3:80", "", "10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := s.clientIP(r); got != tc.want {
				t.Fatalf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := parseProxies([]string{"not-an-address"}); err == nil {
		t.Fatal("a malformed proxy was accepted")
	}
}

func TestLimiterForgetsIdleKeysAndBoundsMemory(t *testing.T) {
	l := newLimiter(Rate{PerSecond: 1, Burst: 1})
	t0 := time.Unix(1000, 0)
	for i := 0; i < maxBucketKeys; i++ {
		l.allow(strconv.Itoa(i), t0)
	}
	// Every bucket is busy: a new key shares the overflow bucket.
	if ok, _ := l.allow("new", t0); !ok {
		t.Fatal("the first overflow request was refused")
	}
	if len(l.byKey) != maxBucketKeys+1 {
		t.Fatalf("%d keys, want %d (the overflow bucket added)", len(l.byKey), maxBucketKeys+1)
	}
	// Later, the idle buckets are full again and are forgotten.
	if ok, _ := l.allow("later", t0.Add(2*time.Second)); !ok {
		t.Fatal("a new key after the idle ones refilled was refused")
	}
	if len(l.byKey) != 1 {
		t.Fatalf("%d keys after forgetting the idle ones, want 1", len(l.byKey))
	}
}

// FuzzClientIP: whatever a client puts in X-Forwarded-For, the address the
// limits key on is the peer or one of the hops it named behind a trusted
// proxy — never anything else, never a panic — and an untrusted peer is
// always itself.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.2.3:80", "198.51.100.1, 192.168.1.1")
	f.Add("203.0.113.5:5000", "6.6.6.6")
	f.Add("[::ffff:10.0.0.1]:1", ",,, ,")
	f.Add("10.0.0.1", "::1, 10.0.0.2, not-an-address")
	s := &Server{}
	s.proxies, _ = parseProxies([]string{"10.0.0.0/8", "192.168.1.1"})
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := s.clientIP(r)
		peer, _, err := net.SplitHostPort(remote)
		if err != nil {
			peer = remote
		}
		if !s.trusted(peer) {
			if got != peer {
				t.Fatalf("untrusted peer %q keyed as %q", peer, got)
			}
			return
		}
		if got == peer {
			return
		}
		for _, h := range strings.Split(xff, ",") {
			if strings.TrimSpace(h) == got {
				return
			}
		}
		t.Fatalf("clientIP(%q, %q) = %q: neither the peer nor a hop", remote, xff, got)
	})
}

// BenchmarkLimiterAllow is the rate limits' cost per request: one bucket
// lookup and refill under the limiter's lock, with 10,000 keys in use.
func BenchmarkLimiterAllow(b *testing.B) {
	l := newLimiter(Rate{PerSecond: 1e6, Burst: 1e6})
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.allow(keys[i%len(keys)], now)
			i++
		}
	})
}
