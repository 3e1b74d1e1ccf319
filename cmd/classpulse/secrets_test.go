package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/simulate"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/processor"
	"github.com/classpulse/classpulse/stream/state"
)

// lockedBuffer collects the log output of every component of the run.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoSecretInLogsOrMetricsOfAFullRun runs the demo's parts in one
// process — broker, processor, dashboard (with the queue projector), a
// simulated class — over a real redis-server with debug logging, then
// signs in, uses, misuses and revokes tokens and posts API bodies carrying
// a marker. Neither the logs of every part nor the /metrics body may hold
// a token (or its signed payload or signature), the signing key, or the
// marker.
func TestNoSecretInLogsOrMetricsOfAFullRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a full run")
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	broker, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: 2}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	rdb := testenv.StartRedis(t).Client(t)
	brokers := []string{broker.Addr()}
	keys, keySpec, err := dashboard.NewKeys("k1")
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: brokers}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	policy, err := loadPolicy("")
	if err != nil {
		t.Fatal(err)
	}
	proc, err := processor.New(processor.Config{Brokers: brokers}, store, policy, prod, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	dash, err := dashboard.New(dashboard.Config{Addr: "127.0.0.1:0", TokenKeys: keySpec, Brokers: brokers, Limits: dashboard.DefaultRateLimits()}, rdb, prod, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	class, err := simulate.New(simulate.Config{Students: 5, Session: "S1", Warmup: 10 * time.Second}, prod, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error { return dash.Run(gctx) })
	g.Go(func() error { return class.Run(gctx) })
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := g.Wait(); err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	<-dash.Started()
	base := "http://" + dash.Addr()
	student := class.Students()[0].ID

	marker := "MARKER-" + hex.EncodeToString([]byte(t.Name()))[:16]
	issue := func(c dashboard.Claims) string {
		c.Expires = time.Now().Add(time.Hour).Unix()
		tok, err := dashboard.IssueToken(keys, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := issue(dashboard.Claims{Role: dashboard.RoleAdmin, Subject: "root"})
	counsellor := issue(dashboard.Claims{Role: dashboard.RoleCounsellor, Subject: "c1", Students: []string{student}})
	pupil := issue(dashboard.Claims{Role: dashboard.RoleStudent, Subject: student})
	revoked := issue(dashboard.Claims{Role: dashboard.RoleInstructor, Subject: "i1", Classes: []string{"S1"}})
	expired, err := dashboard.IssueToken(keys, dashboard.Claims{Role: dashboard.RoleAdmin, Subject: "old", IssuedAt: time.Now().Add(-2 * time.Hour).Unix(), Expires: time.Now().Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tampered := counsellor[:len(counsellor)-4] + "AAAA"
	tokens := []string{admin, counsellor, pupil, revoked, expired, tampered}

	call := func(method, path, tok, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	// A warning on the student, projected into the queue, to post steps on.
	w := &stream.Warning{
		Header: stream.NewHeader(student, time.Now()), Category: stream.CategoryGrade, Level: stream.LevelYellow, Rule: "grade_low",
		Course: "C1", Reason: "a failed course", Evidence: map[string]float64{"failed": 1}, State: stream.StateRaised,
	}
	w.Ref = w.ID
	if err := prod.Publish(ctx, w); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the warning in the queue", func() bool {
		_, err := queue.NewStore(rdb).Get(ctx, w.Ref)
		return err == nil
	})

	for _, tok := range tokens {
		call("GET", "/api/v1/me", tok, "")
		call("GET", "/api/v1/students/"+student, tok, "")
		call("GET", "/login?token="+url.QueryEscape(tok), "", "")
		call("GET", "/api/v1/warnings?student="+student, tok, "")
	}
	steps := "/api/v1/warnings/" + w.Ref + "/steps"
	for _, body := range []string{
		`{"action":"talk","channel":"phone","notes":"` + marker + `"}`,
		`{"action":"plan","tasks":["` + marker + `"],"due":"2030-01-01"}`,
		`{"action":"talk","channel":"phone","` + marker + `":1}`,
		`{"action":"` + marker + `"}`,
		`{"action":"talk","notes":` + `"` + marker + `",`,
		marker,
	} {
		call("POST", steps, counsellor, body)
		call("POST", steps, pupil, body)
	}
	call("PUT", "/api/v1/roster", admin, `[{"student":"`+student+`","name":"`+marker+`"}]`)
	call("PUT", "/api/v1/roster", admin, `[{"student":"`+marker+`}"}]`)

	// WebSockets: a good one, one sending a marker, a revoked one.
	dial := func(tok string) *websocket.Conn {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		c, _, err := websocket.Dial(dctx, "ws://"+dash.Addr()+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return c
	}
	wsSend := func(c *websocket.Conn, v string) {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		_ = c.Write(wctx, websocket.MessageText, []byte(v))
	}
	good := dial(counsellor)
	defer good.CloseNow()
	wsSend(good, `{"op":"subscribe","channel":"student:`+student+`"}`)
	noisy := dial(pupil)
	wsSend(noisy, `{"op":"`+marker+`"}`)
	wsSend(noisy, `{"op":"subscribe","channel":"class:`+marker+`"}`)
	noisy.CloseNow()
	gone := dial(revoked)
	claims, err := dashboard.ParseToken(keys, revoked, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code := call("POST", "/api/v1/admin/revocations", admin, `{"jti":"`+claims.ID+`","reason":"`+marker+`"}`); code != 201 {
		t.Fatalf("revocation: %d", code)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	for {
		if _, _, err := gone.Read(rctx); err != nil {
			break
		}
	}
	rcancel()
	call("GET", "/api/v1/me", revoked, "")

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	time.Sleep(2 * time.Second) // let the simulated class and the processor log a while longer
	stop()

	out := logs.String()
	// The run really logged what the check is about: audit lines naming
	// token ids, the refusals, the revocation.
	for _, want := range []string{"component=audit", "jti=" + claims.ID, "token revoked", "component=dashboard", "component=processor"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the run's log has no %q; the check below would prove nothing\n%s", want, tail(out, 4000))
		}
	}
	secrets := map[string]string{"marker": marker}
	for i, tok := range tokens {
		parts := strings.Split(tok, ".")
		secrets["token "+string(rune('A'+i))] = tok
		secrets["signed payload of token "+string(rune('A'+i))] = parts[2]
		secrets["signature of token "+string(rune('A'+i))] = parts[3]
	}
	for kid, sec := range keys.Secret {
		secrets["signing key "+kid] = hex.EncodeToString(sec)
	}
	for what, s := range secrets {
		for where, text := range map[string]string{"logs": out, "metrics": string(metrics)} {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("the %s hold the %s: …%s…", where, what, text[max(0, i-200):min(len(text), i+len(s)+50)])
			}
		}
	}
	var lines int
	for range strings.SplitSeq(out, "\n") {
		lines++
	}
	t.Logf("checked %d log lines and %d bytes of metrics for %d secrets", lines, len(metrics), len(secrets))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
