package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// harness is a running Server on a free port over a real redis-server.
type harness struct {
	t     testing.TB
	srv   *Server
	rdb   *redis.Client
	redis *testenv.Redis
	reg   *prometheus.Registry
	pub   *recordingPublisher
	base  string
}

// recordingPublisher stands in only where a test needs no Kafka; the
// help-loop tests use the real producer against the embedded broker.
type recordingPublisher struct {
	mu     sync.Mutex
	events []stream.Event
}

func (p *recordingPublisher) Publish(_ context.Context, es ...stream.Event) error {
	for _, e := range es {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.events = append(p.events, es...)
	p.mu.Unlock()
	return nil
}

func startHarness(t testing.TB, cfg Config, pub Publisher) *harness {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	return startHarnessOn(t, cfg, pub, r, rdb)
}

func startHarnessOn(t testing.TB, cfg Config, pub Publisher, r *testenv.Redis, rdb *redis.Client, opts ...Option) *harness {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := &harness{t: t, redis: r, rdb: rdb, reg: reg}
	if pub == nil {
		h.pub = &recordingPublisher{}
		pub = h.pub
	}
	s, err := New(cfg, rdb, pub, logger, reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.srv = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Started():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	h.base = "http://" + s.Addr()
	testenv.WaitFor(t, 5*time.Second, "server ready", func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func (h *harness) token(c Claims) string {
	h.t.Helper()
	if c.Expires == 0 {
		c.Expires = time.Now().Add(time.Hour).Unix()
	}
	if c.Subject == "" {
		c.Subject = string(c.Role) + "1"
	}
	tok, err := h.srv.IssueToken(c)
	if err != nil {
		h.t.Fatalf("IssueToken: %v", err)
	}
	return tok
}

// dial opens a WebSocket as the holder of tok (no Origin header, as a
// non-browser client).
func (h *harness) dial(tok string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	if hdr == nil {
		hdr = http.Header{}
	}
	if tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+h.srv.Addr()+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if c != nil {
		c.SetReadLimit(1 << 20)
		h.t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func send(t testing.TB, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

type anyFrame struct {
	Type         string            `json:"type"`
	ID           string            `json:"id"`
	Channel      string            `json:"channel"`
	Last         string            `json:"last"`
	Code         int               `json:"code"`
	Reason       string            `json:"reason"`
	Warning      *stream.Warning   `json:"warning"`
	Tile         *stream.Tile      `json:"tile"`
	Tiles        []json.RawMessage `json:"tiles"`
	Intervention *stream.Intervention
}

// next reads frames until one has type typ.
func next(t testing.TB, c *websocket.Conn, typ string, timeout time.Duration) anyFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a %q frame: %v", typ, err)
		}
		var f anyFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// warning builds a valid warning event.
func warning(student, session, course, category, level string) *stream.Warning {
	w := &stream.Warning{
		Header: stream.NewHeader(student, time.Now()), Category: category, Level: level, Rule: "attention_low",
		Course: course, Session: session, Reason: "attention below 0.4 for 2 minutes",
		Evidence: map[string]float64{"attention": 0.31, "threshold": 0.4}, State: stream.StateRaised,
	}
	w.Ref = w.ID
	return w
}

// xaddWarning writes a warning to the live stream as the processor does.
func (h *harness) xaddWarning(w *stream.Warning) string {
	h.t.Helper()
	b, err := stream.Encode(w)
	if err != nil {
		h.t.Fatalf("encode: %v", err)
	}
	id, err := h.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: LiveWarnings, MaxLen: 100000, Approx: true, Values: map[string]any{"e": string(b)}}).Result()
	if err != nil {
		h.t.Fatalf("xadd: %v", err)
	}
	return id
}
