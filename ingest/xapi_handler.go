package ingest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/classpulse/classpulse/stream"
)

// XAPIPath is where XAPIHandler is meant to be mounted.
const XAPIPath = "/api/v1/xapi/statements"

// Publisher writes events and returns once the broker has acknowledged them
// (*stream.Producer with its default RequireAll).
type Publisher interface {
	Publish(ctx context.Context, events ...stream.Event) error
}

// XAPIConfig configures XAPIHandler. Sources is required; every other
// field documents its default.
type XAPIConfig struct {
	// Sources maps each source system's name (a valid id, e.g. "moodle")
	// to its secret. A source authenticates with SourceToken(name, secret).
	// Required: at least one.
	Sources map[string]string
	// Mapping is the verb/activity table. Default DefaultMapping().
	Mapping *Mapping
	// MaxBodyBytes bounds a request body. Default 4 MiB.
	MaxBodyBytes int64
	// MaxStatements bounds the statements of one request. Default 1000.
	MaxStatements int
	// PublishTimeout bounds the wait for the broker's acknowledgement.
	// Default 10s.
	PublishTimeout time.Duration
}

func (c *XAPIConfig) applyDefaults() {
	if c.Mapping == nil {
		c.Mapping = DefaultMapping()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.MaxStatements <= 0 {
		c.MaxStatements = 1000
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c *XAPIConfig) Validate() error {
	if len(c.Sources) == 0 {
		return errors.New("xapi: no sources configured (--xapi-sources name=secret,…)")
	}
	for name, secret := range c.Sources {
		if !stream.ValidIdent(name) || strings.Contains(name, ".") {
			return fmt.Errorf("xapi: source name %q must be letters, digits and -_:@ (no dots)", name)
		}
		if len(secret) < 16 {
			return fmt.Errorf("xapi: secret of source %q is shorter than 16 characters", name)
		}
	}
	return c.Mapping.Validate()
}

// ParseSources reads "name=secret" items, as given to --xapi-sources.
func ParseSources(items []string) (map[string]string, error) {
	m := map[string]string{}
	for _, it := range items {
		name, secret, ok := strings.Cut(it, "=")
		if !ok || name == "" || secret == "" {
			return nil, fmt.Errorf("xapi source %q: want name=secret", it)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("xapi source %q given twice", name)
		}
		m[name] = secret
	}
	return m, nil
}

// SourceToken is the bearer credential of a source system:
// "<name>.<hex HMAC-SHA256(secret, "classpulse-xapi:"+name)>". The server
// keeps only the secret; the token goes into the LMS's LRS settings, either
// as "Authorization: Bearer <token>" or as HTTP Basic auth with the name as
// user and the token as password (what most xAPI plugins offer).
func SourceToken(name, secret string) string {
	return name + "." + sourceMAC(name, secret)
}

func sourceMAC(name, secret string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("classpulse-xapi:" + name))
	return hex.EncodeToString(h.Sum(nil))
}

// XAPIHandler accepts xAPI statements at POST /api/v1/xapi/statements and
// publishes the clicks they map to. A statement is accepted only once its
// events are acknowledged by the broker; the 200 answer lists, per
// statement index, the event ids or the reason it was not mapped.
type XAPIHandler struct {
	cfg    XAPIConfig
	pub    Publisher
	logger *slog.Logger
	now    func() time.Time

	statements *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	authFail   prometheus.Counter
	publishDur prometheus.Histogram
}

// NewXAPIHandler builds the handler; reg may be nil (no metrics exported).
func NewXAPIHandler(cfg XAPIConfig, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) (*XAPIHandler, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("xapi: no publisher")
	}
	if logger == nil {
		logger = slog.Default()
	}
	f := promauto.With(reg)
	h := &XAPIHandler{
		cfg: cfg, pub: pub, logger: logger.With("component", "xapi"), now: time.Now,
		statements: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_ingest_xapi_statements_total",
			Help: "xAPI statements received, by source system and outcome (accepted, rejected).",
		}, []string{"source", "outcome"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "classpulse_ingest_xapi_rejected_total",
			Help: "xAPI statements not mapped to clicks, by source system and reason code.",
		}, []string{"source", "reason"}),
		authFail: f.NewCounter(prometheus.CounterOpts{
			Name: "classpulse_ingest_xapi_auth_failures_total",
			Help: "xAPI requests refused for a missing or wrong source credential.",
		}),
		publishDur: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "classpulse_ingest_xapi_publish_seconds",
			Help:    "Time from publishing a request's clicks to the broker's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	for name := range cfg.Sources {
		h.statements.WithLabelValues(name, "accepted")
		h.statements.WithLabelValues(name, "rejected")
		for _, c := range reasonCodes {
			h.rejected.WithLabelValues(name, c)
		}
	}
	return h, nil
}

// authenticate returns the source name of a valid credential, or "".
func (h *XAPIHandler) authenticate(r *http.Request) string {
	var name, mac string
	if user, pass, ok := r.BasicAuth(); ok {
		name, mac = user, pass
		if n, m, ok := strings.Cut(pass, "."); ok && n == user {
			mac = m
		}
	} else if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		name, mac, _ = strings.Cut(strings.TrimSpace(tok), ".")
	}
	secret, ok := h.cfg.Sources[name]
	if !ok || mac == "" {
		return ""
	}
	if !hmac.Equal([]byte(mac), []byte(sourceMAC(name, secret))) {
		return ""
	}
	return name
}

// StatementResult is one element of the answer, in request order.
type StatementResult struct {
	Index  int      `json:"index"`
	ID     string   `json:"id,omitempty"`
	Events []string `json:"events,omitempty"`
	Code   string   `json:"code,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// XAPIResponse is the 200 answer.
type XAPIResponse struct {
	Accepted   int               `json:"accepted"`
	Rejected   int               `json:"rejected"`
	Statements []StatementResult `json:"statements"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Experience-API-Version", "1.0.3")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, kind, reason string) {
	writeJSON(w, code, map[string]string{"error": kind, "reason": reason})
}

// ServeHTTP implements http.Handler.
func (h *XAPIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeErr(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST statements here")
		return
	}
	source := h.authenticate(r)
	if source == "" {
		h.authFail.Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="classpulse-xapi", Basic realm="classpulse-xapi"`)
		writeErr(w, http.StatusUnauthorized, "unauthorized", "missing or wrong source credential")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", h.cfg.MaxBodyBytes))
			return
		}
		writeErr(w, http.StatusBadRequest, "bad_request", "reading body: "+err.Error())
		return
	}
	stmts, errs, err := DecodeStatements(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if len(stmts) > h.cfg.MaxStatements {
		writeErr(w, http.StatusRequestEntityTooLarge, "too_many_statements", fmt.Sprintf("%d statements, at most %d per request", len(stmts), h.cfg.MaxStatements))
		return
	}
	now := h.now()
	resp := XAPIResponse{Statements: make([]StatementResult, len(stmts))}
	var events []stream.Event
	reasons := map[string]int{}
	for i := range stmts {
		res := &resp.Statements[i]
		res.Index, res.ID = i, stmts[i].ID
		err := errs[i]
		var clicks []*stream.Click
		if err == nil {
			clicks, err = h.cfg.Mapping.Map(source, &stmts[i], now)
		}
		if err != nil {
			var se *StatementError
			if !errors.As(err, &se) {
				se = &StatementError{Code: CodeMalformed, Reason: err.Error()}
			}
			res.Code, res.Reason = se.Code, se.Reason
			resp.Rejected++
			reasons[se.Code]++
			continue
		}
		for _, c := range clicks {
			res.Events = append(res.Events, c.ID)
			events = append(events, c)
		}
		resp.Accepted++
	}
	if len(events) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.PublishTimeout)
		start := time.Now()
		err := h.pub.Publish(ctx, events...)
		cancel()
		if err != nil {
			h.logger.Error("publishing xapi clicks failed; the source should retry", "source", source, "events", len(events), "err", err)
			w.Header().Set("Retry-After", "5")
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "the event log did not acknowledge the statements; nothing was accepted, retry the same request")
			return
		}
		h.publishDur.Observe(time.Since(start).Seconds())
	}
	h.statements.WithLabelValues(source, "accepted").Add(float64(resp.Accepted))
	h.statements.WithLabelValues(source, "rejected").Add(float64(resp.Rejected))
	codes := make([]string, 0, len(reasons))
	for c, n := range reasons {
		h.rejected.WithLabelValues(source, c).Add(float64(n))
		codes = append(codes, c)
	}
	if resp.Rejected > 0 {
		sort.Strings(codes)
		h.logger.Warn("xapi statements rejected", "source", source, "rejected", resp.Rejected, "accepted", resp.Accepted, "codes", strings.Join(codes, ","))
	}
	writeJSON(w, http.StatusOK, resp)
}
