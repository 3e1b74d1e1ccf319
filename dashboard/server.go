package dashboard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// Publisher publishes events to Kafka; *stream.Producer satisfies it. Help
// loop steps posted to the API are published, never written to Redis
// directly: Kafka is the source of truth.
type Publisher interface {
	Publish(ctx context.Context, events ...stream.Event) error
}

// Server is the dashboard: HTTP API, pages and the WebSocket hub.
type Server struct {
	cfg      Config
	rdb      redis.UniversalClient
	pub      Publisher
	logger   *slog.Logger
	auditLog *slog.Logger
	keys     Keys
	store    *queue.Store
	students StudentReader
	xapi     http.Handler // the xAPI endpoint, mounted when set (WithXAPI)
	gatherer prometheus.Gatherer
	reg      prometheus.Registerer
	metrics  *metrics
	hub      *hub
	now      func() time.Time

	ran      atomic.Bool
	ready    atomic.Bool
	addrMu   sync.Mutex
	addr     net.Addr
	started  chan struct{}
	handler  http.Handler
	ephemKey bool
	// patterns are the route patterns routes registered, in order: the
	// authorisation matrix test requires a row for each.
	patterns []string
	limits   limiters
	proxies  []netip.Prefix
	revoked  revocations
	tlsConf  *tls.Config
}

type metrics struct {
	wsClients   prometheus.Gauge
	disconnects *prometheus.CounterVec
	wsRefused   *prometheus.CounterVec
	requests    *prometheus.CounterVec
	live        *prometheus.CounterVec
	redisErrors prometheus.Counter
	audits      *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		wsClients: f.NewGauge(prometheus.GaugeOpts{
			Name: "classpulse_dashboard_websocket_clients", Help: "WebSocket clients connected to this replica.",
		}),
		disconnects: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dashboard_websocket_disconnects_total", Help: "WebSocket disconnections by reason (client_closed, slow, oversized, malformed, shutdown, error, revoked).",
		}, []string{"reason"}),
		wsRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dashboard_websocket_refused_total", Help: "WebSocket connections or frames refused, by reason.",
		}, []string{"reason"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dashboard_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		live: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dashboard_live_messages_total", Help: "Live-feed entries read from Redis, by kind and outcome (ok, invalid).",
		}, []string{"kind", "outcome"}),
		redisErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_dashboard_redis_errors_total", Help: "Redis errors while following the live feed.",
		}),
		audits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dashboard_audit_records_total", Help: "Audit records (staff reads of a student, help-loop steps) by outcome: published to classpulse.audit.v1, failed, or unpublished (no Kafka producer).",
		}, []string{"outcome"}),
		rateLimited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_dashboard_rate_limited_total", Help: "Requests refused with 429, by limit scope (api_token, api_ip, ws_token, ws_ip).",
		}, []string{"scope"}),
	}
}

// Option changes how a Server is wired; for tests and embedding.
type Option func(*Server)

// WithStudentReader sets where per-student academic and live data comes
// from (the lead's stream/state implementation). Default: a reader over
// the live feed and the queue that has no academic data.
func WithStudentReader(r StudentReader) Option { return func(s *Server) { s.students = r } }

// WithClock sets the clock used for token expiry and events.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New builds a server. rdb is the Redis holding the live feed and the
// queue read model; pub (may be nil: help-loop posting then answers 503)
// publishes help-loop steps; reg registers the dashboard's metrics and, if
// it is also a prometheus.Gatherer (a *prometheus.Registry), is what
// /metrics serves (otherwise the default gatherer).
func New(cfg Config, rdb redis.UniversalClient, pub Publisher, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Server, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, errors.New("dashboard: a Redis client is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		rdb:      rdb,
		pub:      pub,
		logger:   logger.With("component", "dashboard"),
		auditLog: logger.With("component", "audit"),
		store:    queue.NewStore(rdb),
		reg:      reg,
		metrics:  newMetrics(reg),
		now:      time.Now,
		started:  make(chan struct{}),
	}
	if g, ok := reg.(prometheus.Gatherer); ok {
		s.gatherer = g
	} else {
		s.gatherer = prometheus.DefaultGatherer
	}
	if cfg.TokenKeys != "" {
		s.keys, _ = ParseKeys(cfg.TokenKeys)
	} else {
		k, _, err := NewKeys("ephemeral")
		if err != nil {
			return nil, fmt.Errorf("dashboard: making a signing key: %w", err)
		}
		s.keys, s.ephemKey = k, true
	}
	for _, o := range opts {
		o(s)
	}
	if s.students == nil {
		s.students = &liveStudentReader{rdb: rdb, store: s.store}
	}
	if err := s.loadTLS(); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	s.limits = newLimiters(cfg.Limits)
	s.proxies, _ = parseProxies(cfg.TrustedProxies)
	s.hub = newHub(s)
	s.handler = s.routes()
	return s, nil
}

// Keys returns the keys the server verifies tokens with; IssueToken with
// them mints tokens this server accepts (the demo's admin sign-in).
func (s *Server) Keys() Keys { return s.keys }

// IssueToken mints a token this server accepts.
func (s *Server) IssueToken(c Claims) (string, error) { return IssueToken(s.keys, c) }

// SignInURL returns the URL that signs a browser in with token (once Run
// has started; before, it uses the configured address).
func (s *Server) SignInURL(token string) string {
	return s.scheme() + "://" + s.Addr() + "/login?token=" + token
}

// Handler returns the HTTP handler, for embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the listening address once Run has bound it (the configured
// address before).
func (s *Server) Addr() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	if s.addr == nil {
		return s.cfg.Addr
	}
	return s.addr.String()
}

// Started is closed once Run is listening.
func (s *Server) Started() <-chan struct{} { return s.started }

// Run listens on Addr, follows the live feed (and, with Brokers, projects
// the queue) and serves until ctx ends, then shuts down gracefully: new
// connections are refused, WebSocket clients are closed, requests in
// flight get ShutdownTimeout. It returns nil on a clean shutdown and may
// be called once.
func (s *Server) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return errors.New("dashboard: Run called twice")
	}
	ln, err := s.listen()
	if err != nil {
		return fmt.Errorf("dashboard: listen %s: %w", s.cfg.Addr, err)
	}
	s.addrMu.Lock()
	s.addr = ln.Addr()
	s.addrMu.Unlock()
	if s.ephemKey {
		s.logger.Warn("no --token-keys given: tokens are signed with a key that lives only in this process")
	}
	s.logger.Info("dashboard listening", "addr", ln.Addr().String())
	// The live tails start at the stream heads read now, before Started, so
	// an entry added after the server reported itself started is always
	// pushed live (not skipped as "already there" by a late first read).
	// On an error the tail reads the head itself, as after a Redis restart.
	warnHead, _ := lastStreamID(ctx, s.rdb, LiveWarnings)
	stepHead, _ := lastStreamID(ctx, s.rdb, LiveInterventions)
	s.refreshRevocations(ctx)
	close(s.started)

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("dashboard: serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.ready.Store(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		s.hub.closeAll()
		if err := srv.Shutdown(sctx); err != nil {
			s.logger.Warn("graceful shutdown cut short", "err", err)
			_ = srv.Close()
		}
		return nil
	})
	onErr := func() { s.metrics.redisErrors.Inc() }
	g.Go(func() error {
		streamTail(gctx, s.rdb, LiveWarnings, warnHead, s.logger, onErr, func(id string, e []byte) { s.hub.onWarning(gctx, id, e) })
		return nil
	})
	g.Go(func() error {
		streamTail(gctx, s.rdb, LiveInterventions, stepHead, s.logger, onErr, func(id string, e []byte) { s.hub.onIntervention(gctx, id, e) })
		return nil
	})
	g.Go(func() error { s.followTiles(gctx); return nil })
	g.Go(func() error { s.followRevocations(gctx); return nil })
	g.Go(func() error { s.hub.watchdog(gctx, 30*time.Second); return nil })
	if len(s.cfg.Brokers) > 0 {
		p, err := queue.NewProjector(queue.ProjectorConfig{Brokers: s.cfg.Brokers, TLS: s.cfg.KafkaTLS, Group: s.cfg.QueueGroup}, s.rdb, s.logger, s.reg)
		if err != nil {
			return err
		}
		g.Go(func() error { return p.Run(gctx) })
	}
	s.ready.Store(true)
	return g.Wait()
}

// followTiles subscribes to the tiles channel; go-redis resubscribes after
// a Redis restart.
func (s *Server) followTiles(ctx context.Context) {
	ps := s.rdb.Subscribe(ctx, LiveTiles)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelSize(4096))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			s.hub.onTile(s.stripTile([]byte(m.Payload)))
		}
	}
}

// audit records a denial or a sensitive action: who, what, why.
func (s *Server) audit(p *Principal, what, reason, remote string) {
	attrs := []any{"what", what, "reason", reason}
	if p != nil {
		attrs = append(attrs, "sub", p.Subject, "role", string(p.Role), "jti", p.ID)
	}
	if remote != "" {
		attrs = append(attrs, "remote", remote)
	}
	s.auditLog.Info("denied", attrs...)
}

// released reports whether staff confirmed the warning ref and its
// category is one that is released to students.
func (s *Server) released(ctx context.Context, ref string) (bool, error) {
	rec, err := s.store.Get(ctx, ref)
	if err != nil {
		return false, err
	}
	return rec.Confirmed && slices.Contains(s.cfg.ReleaseCategories, rec.Category), nil
}

// warningVis decides, for one warning, who sees it; the student's unit and
// the release state are looked up at most once, and only when needed.
type warningVis struct {
	s    *Server
	ctx  context.Context
	w    *stream.Warning
	unit *string
	rel  int8
}

func (s *Server) visibility(ctx context.Context, w *stream.Warning) *warningVis {
	return &warningVis{s: s, ctx: ctx, w: w, rel: -1}
}

func (v *warningVis) studentUnit() string {
	if v.unit == nil {
		u, _ := v.s.store.Unit(v.ctx, v.w.Student)
		v.unit = &u
	}
	return *v.unit
}

func (v *warningVis) visibleTo(p *Principal) bool {
	if v.s.hideEmotions() && emotionDerived(v.w.Rule, v.w.Evidence) {
		return false
	}
	unit := ""
	if p.Role == RoleCounsellor && len(p.Units) > 0 && !slices.Contains(p.Students, v.w.Student) {
		unit = v.studentUnit()
	}
	return p.warningVisible(v.w, unit, func() bool {
		if v.rel < 0 {
			v.rel = 0
			if !slices.Contains(v.s.cfg.ReleaseCategories, v.w.Category) {
				return false
			}
			if ok, _ := v.s.released(v.ctx, v.w.Ref); ok {
				v.rel = 1
			}
		}
		return v.rel == 1
	})
}

// rangeAfter calls fn for live warnings after id, at most limit of them.
func (s *Server) rangeAfter(ctx context.Context, after string, limit int, fn func(id string, raw []byte) error) error {
	start := "(" + after
	for n := 0; n < limit; {
		page := min(500, limit-n)
		ms, err := s.rdb.XRangeN(ctx, LiveWarnings, start, "+", int64(page)).Result()
		if err != nil {
			return fmt.Errorf("catch-up: %w", err)
		}
		for _, m := range ms {
			e, _ := m.Values["e"].(string)
			if err := fn(m.ID, []byte(e)); err != nil {
				return err
			}
		}
		n += len(ms)
		if len(ms) < page {
			return nil
		}
		start = "(" + ms[len(ms)-1].ID
	}
	return nil
}

// lastN calls fn for the last n live warnings, oldest first.
func (s *Server) lastN(ctx context.Context, n int, fn func(id string, raw []byte) error) error {
	ms, err := s.rdb.XRevRangeN(ctx, LiveWarnings, "+", "-", int64(n)).Result()
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	for i := len(ms) - 1; i >= 0; i-- {
		e, _ := ms[i].Values["e"].(string)
		if err := fn(ms[i].ID, []byte(e)); err != nil {
			return err
		}
	}
	return nil
}

// channelDenied returns why p may not subscribe to a channel, or "". A
// channel kind without a rule in channelRules is refused.
func (s *Server) channelDenied(ctx context.Context, p *Principal, kind, arg string) string {
	rule, ok := channelRules[kind]
	if !ok {
		return "unknown channel"
	}
	reason := rule(ctx, s, p, arg)
	if reason == "" && kind == chanStudent {
		s.recordRead(ctx, p, arg, "ws student:<id>")
	}
	return reason
}

// inInstructorClass reports whether student has a live tile in one of the
// instructor's classes.
func (s *Server) inInstructorClass(ctx context.Context, p *Principal, student string) bool {
	for _, c := range p.Classes {
		if ok, err := s.rdb.HExists(ctx, TilesKey(c), student).Result(); err == nil && ok {
			return true
		}
	}
	return false
}

// bearer extracts the token from the Authorization header or the cookie.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return c.Value
	}
	return ""
}

const cookieName = "classpulse_session"
