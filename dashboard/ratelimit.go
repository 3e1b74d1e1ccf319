package dashboard

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a token bucket's refill rate and size: PerSecond requests a
// second on average, bursts of up to Burst. The zero Rate is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// String is the flag form: "<per second>/<burst>", or "off".
func (r Rate) String() string {
	if r.PerSecond <= 0 {
		return "off"
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/" + strconv.Itoa(r.Burst)
}

// Set parses the flag form, e.g. "20/40" (20 a second, bursts of 40) or
// "off"; it makes *Rate a flag.Value.
func (r *Rate) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "off" {
		*r = Rate{}
		return nil
	}
	ps, bs, ok := strings.Cut(s, "/")
	per, err1 := strconv.ParseFloat(ps, 64)
	burst, err2 := strconv.Atoi(bs)
	if !ok || err1 != nil || err2 != nil || math.IsNaN(per) || per <= 0 || per > 1e6 || burst < 1 || burst > 1e6 {
		return fmt.Errorf("rate %q: want <per second>/<burst>, e.g. 20/40 (per second in (0, 1e6], burst 1..1e6), or off", s)
	}
	*r = Rate{PerSecond: per, Burst: burst}
	return nil
}

// RateLimits are the request limits of one replica, each a token bucket
// per key. The zero value limits nothing (tests, benchmarks and embedders
// that front the server themselves); `classpulse dashboard` starts with
// DefaultRateLimits. A school's users often share one public address
// (NAT), so the per-address limits are well above the per-token ones.
type RateLimits struct {
	// APIPerToken limits API requests per token (by its jti).
	APIPerToken Rate
	// APIPerIP limits API requests and sign-ins, with a token or not, per
	// client address.
	APIPerIP Rate
	// WSPerToken limits WebSocket connects per token.
	WSPerToken Rate
	// WSPerIP limits WebSocket connects per client address.
	WSPerIP Rate
}

// DefaultRateLimits are the limits `classpulse dashboard` starts with:
// 20 API requests a second per token (bursts of 40), 500 per address
// (1000); 1 WebSocket connect a second per token (bursts of 10: a
// reconnecting page with backoff stays well inside), 50 per address (500,
// so a school behind one NAT address can open its pages at 8:00).
func DefaultRateLimits() RateLimits {
	return RateLimits{
		APIPerToken: Rate{PerSecond: 20, Burst: 40},
		APIPerIP:    Rate{PerSecond: 500, Burst: 1000},
		WSPerToken:  Rate{PerSecond: 1, Burst: 10},
		WSPerIP:     Rate{PerSecond: 50, Burst: 500},
	}
}

// Rate-limit scopes, the label values of classpulse_dashboard_rate_limited_total.
const (
	scopeAPIToken = "api_token"
	scopeAPIIP    = "api_ip"
	scopeWSToken  = "ws_token"
	scopeWSIP     = "ws_ip"
)

// maxBucketKeys bounds the keys one limiter remembers. Past it, idle
// buckets (which are full again) are forgotten; if every bucket is busy,
// new keys share one overflow bucket rather than growing memory.
const maxBucketKeys = 100000

// limiter is a set of token buckets by key. It is safe for concurrent use.
type limiter struct {
	rate  Rate
	mu    sync.Mutex
	byKey map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate) *limiter {
	if r.PerSecond <= 0 {
		return nil
	}
	return &limiter{rate: r, byKey: map[string]*bucket{}}
}

// allow takes one token from key's bucket at now. When the bucket is
// empty it returns false and how long until a token is there.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.byKey[key]
	if b == nil {
		if len(l.byKey) >= maxBucketKeys {
			l.forgetIdle(now)
		}
		if len(l.byKey) >= maxBucketKeys {
			key = "\x00overflow"
			b = l.byKey[key]
		}
		if b == nil {
			b = &bucket{tokens: float64(l.rate.Burst), last: now}
			l.byKey[key] = b
		}
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(float64(l.rate.Burst), b.tokens+dt*l.rate.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate.PerSecond * float64(time.Second))
	return false, wait
}

// forgetIdle drops the buckets that have refilled completely: forgetting
// them changes nothing.
func (l *limiter) forgetIdle(now time.Time) {
	full := time.Duration(float64(l.rate.Burst) / l.rate.PerSecond * float64(time.Second))
	for k, b := range l.byKey {
		if now.Sub(b.last) >= full {
			delete(l.byKey, k)
		}
	}
}

// limiters are the four buckets sets of a server.
type limiters struct {
	apiToken, apiIP, wsToken, wsIP *limiter
}

func newLimiters(c RateLimits) limiters {
	return limiters{apiToken: newLimiter(c.APIPerToken), apiIP: newLimiter(c.APIPerIP), wsToken: newLimiter(c.WSPerToken), wsIP: newLimiter(c.WSPerIP)}
}

// limitIP applies the per-address limit of the request's kind (WebSocket
// connect or API); on refusal it has answered 429.
func (s *Server) limitIP(w http.ResponseWriter, r *http.Request) bool {
	l, scope := s.limits.apiIP, scopeAPIIP
	if r.URL.Path == "/ws" {
		l, scope = s.limits.wsIP, scopeWSIP
	}
	ok, wait := l.allow(s.clientIP(r), s.now())
	if !ok {
		s.tooMany(w, r, scope, "too many requests from your address", wait)
	}
	return ok
}

// limitToken applies the per-token limit; on refusal it has answered 429.
func (s *Server) limitToken(w http.ResponseWriter, r *http.Request, p *Principal) bool {
	l, scope := s.limits.apiToken, scopeAPIToken
	if r.URL.Path == "/ws" {
		l, scope = s.limits.wsToken, scopeWSToken
	}
	ok, wait := l.allow(p.ID, s.now())
	if !ok {
		s.tooMany(w, r, scope, "too many requests with your token", wait)
	}
	return ok
}

func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, scope, reason string, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	s.metrics.rateLimited.WithLabelValues(scope).Inc()
	if r.URL.Path == "/ws" {
		s.metrics.wsRefused.WithLabelValues(strconv.Itoa(http.StatusTooManyRequests)).Inc()
	}
	s.logger.Debug("rate limited", "scope", scope, "route", r.Pattern, "retry_after_s", secs)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeErr(w, http.StatusTooManyRequests, "", fmt.Sprintf("%s (%s limit); retry after %ds", reason, scope, secs))
}

// clientIP is the address a request came from: the peer, or, when the
// peer is a trusted proxy (Config.TrustedProxies), the nearest address in
// X-Forwarded-For that is not a trusted proxy.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.proxies) == 0 || !s.trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if !s.trusted(h) {
			return h
		}
		host = h
	}
	return host
}

func (s *Server) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseProxies reads Config.TrustedProxies: CIDR prefixes or single addresses.
func parseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dashboard: trusted proxy %q: want an address or CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
