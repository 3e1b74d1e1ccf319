package dashboard

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed web
var webFS embed.FS

// pages maps page paths to their embedded files. Pages need no sign-in to
// load (they hold no data); everything they show comes from the API and
// the WebSocket, which do.
var pages = map[string]string{
	"/":              "web/index.html",
	"/student":       "web/student.html",
	"/queue":         "web/queue.html",
	"/notice":        "web/notice.html",
	"/summary":       "web/summary.html",
	"/effectiveness": "web/effectiveness.html",
}

// routes builds the handler: every route is instrumented with its pattern
// (never a raw path, which could carry a student id) and status code.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		route := pattern
		if _, p, ok := strings.Cut(pattern, " "); ok {
			route = p
		}
		s.patterns = append(s.patterns, pattern)
		mux.Handle(pattern, s.instrument(route, h))
	}
	handle("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	handle("GET /readyz", s.handleReady)
	handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	handle("GET /login", s.handleLogin)
	handle("POST /logout", s.handleLogout)
	handle("GET /ws", s.authed(s.serveWS))

	static, _ := fs.Sub(webFS, "web")
	fileServer := http.FileServerFS(static)
	handle("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.StripPrefix("/static", fileServer).ServeHTTP(w, r)
	})
	for path, file := range pages {
		pattern := "GET " + path
		if path == "/" {
			pattern = "GET /{$}"
		}
		handle(pattern, func(w http.ResponseWriter, r *http.Request) {
			b, err := webFS.ReadFile(file)
			if err != nil {
				http.Error(w, "page missing from the build", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			_, _ = w.Write(b)
		})
	}
	s.apiRoutes(handle)
	return mux
}

// statusWriter records the status code for the requests metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying writer (for Hijack).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		code := sw.code
		if code == 0 {
			// A hijacked WebSocket connection: the upgrade succeeded.
			code = http.StatusSwitchingProtocols
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	})
}

// apiError is the body of every error answer.
type apiError struct {
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, field, reason string) {
	writeJSON(w, code, apiError{Error: strings.ToLower(strings.ReplaceAll(http.StatusText(code), " ", "_")), Field: field, Reason: reason})
}

// deny answers 401 or 403 with the reason and writes it to the audit log.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, p *Principal, code int, reason string) {
	s.audit(p, r.Method+" "+r.URL.Path, reason, r.RemoteAddr)
	if r.URL.Path == "/ws" {
		s.metrics.wsRefused.WithLabelValues(strconv.Itoa(code)).Inc()
	}
	writeErr(w, code, "", reason)
}

// authenticate returns the principal of a request, or the reason it has none.
func (s *Server) authenticate(r *http.Request) (*Principal, string) {
	tok := bearer(r)
	if tok == "" {
		return nil, "no token: sign in with /login?token=… or send Authorization: Bearer"
	}
	c, err := ParseToken(s.keys, tok, s.now())
	if err != nil {
		return nil, err.Error()
	}
	if bad, why := s.revoked.revoked(c); bad {
		return nil, why
	}
	return &Principal{Claims: *c}, ""
}

// authed wraps a handler that needs a signed-in user: it checks the Origin
// of browser requests (403), the token (401), and, for state-changing
// requests, that the body is JSON, which a cross-site form cannot send.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, reason := originAllowed(r, s.cfg.AllowedOrigins); !ok {
			s.deny(w, r, nil, http.StatusForbidden, reason)
			return
		}
		if !s.limitIP(w, r) {
			return
		}
		p, reason := s.authenticate(r)
		if p == nil {
			s.deny(w, r, nil, http.StatusUnauthorized, reason)
			return
		}
		if !s.limitToken(w, r, p) {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				writeErr(w, http.StatusUnsupportedMediaType, "Content-Type", "send application/json")
				return
			}
		}
		h(w, r, p)
	}
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeErr(w, http.StatusServiceUnavailable, "", "not started or shutting down")
		return
	}
	if err := s.rdb.Ping(r.Context()).Err(); err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", "redis: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "websocket_clients": s.hub.clientCount()})
}

// handleLogin turns a token in the URL into an HttpOnly session cookie and
// redirects to the page for the role, so the token leaves the address bar.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.limitIP(w, r) {
		return
	}
	tok := r.URL.Query().Get("token")
	if tok == "" {
		s.deny(w, r, nil, http.StatusUnauthorized, "no token in the sign-in link")
		return
	}
	c, err := ParseToken(s.keys, tok, s.now())
	if err != nil {
		s.deny(w, r, nil, http.StatusUnauthorized, err.Error())
		return
	}
	if bad, why := s.revoked.revoked(c); bad {
		s.deny(w, r, &Principal{Claims: *c}, http.StatusUnauthorized, why)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: tok, Path: "/", HttpOnly: true, Secure: s.cfg.SecureCookie || s.tlsConf != nil,
		SameSite: http.SameSiteLaxMode, Expires: time.Unix(c.Expires, 0),
	})
	next := r.URL.Query().Get("next")
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		next = homeFor(c)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// homeFor is where a role lands after sign-in.
func homeFor(c *Claims) string {
	switch c.Role {
	case RoleCounsellor:
		return "/queue"
	case RoleStudent:
		return "/student?id=" + c.Subject
	case RoleGuardian:
		return "/student?id=" + c.Students[0]
	}
	return "/"
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if ok, reason := originAllowed(r, s.cfg.AllowedOrigins); !ok {
		s.deny(w, r, nil, http.StatusForbidden, reason)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	w.WriteHeader(http.StatusNoContent)
}

// decodeBody reads a JSON body strictly into v; the error names the field.
func decodeBody(r *http.Request, limit int64, v any) (field string, err error) {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &te):
			return te.Field, errors.New("wrong type: want " + te.Type.String())
		case errors.As(err, &mbe):
			return "", errors.New("body larger than " + strconv.FormatInt(limit, 10) + " bytes")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return f, errors.New("unknown field")
		}
		return "", errors.New("body is not valid JSON: " + err.Error())
	}
	if dec.More() {
		return "", errors.New("trailing data after the JSON object")
	}
	return "", nil
}
