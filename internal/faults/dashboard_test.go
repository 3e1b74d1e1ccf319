package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const chromiumPath = "/usr/bin/chromium"

// startDashboard starts `classpulse dashboard` on addr and waits until it
// answers HTTP.
func startDashboard(t *testing.T, addr, redisAddr, broker, keys, logPath string) *child {
	t.Helper()
	c := startChild(t, logPath, "", binary, "dashboard", "--addr", addr, "--redis", redisAddr, "--brokers", broker,
		"--token-keys", keys, "--log-level", "warn")
	cl := http.Client{Timeout: time.Second}
	testenv.WaitFor(t, 30*time.Second, "the dashboard to answer", func() bool {
		if c.Exited() {
			t.Fatalf("dashboard exited:\n%s", tail(logPath, 30))
		}
		resp, err := cl.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return c
}

// raise writes a warning to the live stream as the processor does and
// returns its event id.
func raise(t *testing.T, rdb *redis.Client, n int) string {
	t.Helper()
	w := &stream.Warning{Header: stream.NewHeader(fmt.Sprintf("stu-%03d", n%7), time.Now()), Category: "engagement",
		Level: "yellow", Rule: "attention_low", Course: "law", Session: "F1", Reason: fmt.Sprintf("warning %d", n),
		Evidence: map[string]float64{"attention": 0.3}, State: stream.StateRaised}
	w.Ref = w.ID
	b, err := stream.Encode(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: state.LiveWarnings, MaxLen: state.LiveMaxLen, Approx: true,
		Values: []any{"e", b}}).Err(); err != nil {
		t.Fatal(err)
	}
	return w.ID
}

// wsClient is a Go dashboard client that reconnects with exponential
// backoff and jitter and resumes the warnings after the last stream id it
// saw, as the page's CP.Live does.
type wsClient struct {
	mu       sync.Mutex
	got      []string // warning event ids, in arrival order
	attempts int
	subs     int // warnings subscriptions confirmed
	last     string
}

func (w *wsClient) run(ctx context.Context, addr, tok string) {
	attempt := 0
	for ctx.Err() == nil {
		w.mu.Lock()
		w.attempts++
		last := w.last
		w.mu.Unlock()
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err == nil {
			attempt = 0
			c.SetReadLimit(1 << 20)
			sub := map[string]any{"op": "subscribe", "channel": "warnings", "backlog": 50}
			if last != "" {
				sub = map[string]any{"op": "subscribe", "channel": "warnings", "after": last}
			}
			b, _ := json.Marshal(sub)
			err = c.Write(ctx, websocket.MessageText, b)
			for err == nil {
				var f struct {
					Type, ID, Last string
					Channel        string
					Warning        struct{ ID string }
				}
				if _, b, err = c.Read(ctx); err == nil && json.Unmarshal(b, &f) == nil {
					w.mu.Lock()
					switch {
					case f.Type == "warning" && f.ID != "":
						w.last = f.ID
						w.got = append(w.got, f.Warning.ID)
					case f.Type == "subscribed" && f.Channel == "warnings":
						w.subs++
						if f.Last != "" {
							w.last = f.Last
						}
					}
					w.mu.Unlock()
				}
			}
			c.CloseNow()
		}
		d := min(500*time.Millisecond<<min(attempt, 5), 10*time.Second)
		attempt++
		select {
		case <-ctx.Done():
		case <-time.After(d/2 + rand.N(d/2)):
		}
	}
}

func (w *wsClient) ids() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// browser starts headless chromium; the context is one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium not installed at %s (scripts/install-deps.sh installs it): %v", chromiumPath, err)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()))
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func evaluate[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

// TestDashboardRestartClientsResumeWarningsNoneLostNoneTwice kills the
// `classpulse dashboard` process (SIGKILL) while a Go WebSocket client and
// the page's own client (CP.Live of app.js, in headless chromium) are
// subscribed to the warnings, raises warnings while it is down, and starts
// it again on the same address. Both clients reconnect by themselves and
// end with every warning, in the order raised, none twice. The page
// reconnects with backoff (a handful of attempts over the outage, not a
// tight loop) and its delays are jittered.
func TestDashboardRestartClientsResumeWarningsNoneLostNoneTwice(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	broker := testenv.StartBroker(t, 1)
	keys, spec, err := dashboard.NewKeys("k1")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dashboard.IssueToken(keys, dashboard.Claims{Subject: "fault-admin", Role: dashboard.RoleAdmin, Name: "Fault admin",
		Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	addr, logPath := freeAddr(t), filepath.Join(t.TempDir(), "dashboard.log")
	dash := startDashboard(t, addr, r.Addr, broker.Addr(), spec, logPath)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var goClient wsClient
	done := make(chan struct{})
	go func() { goClient.run(ctx, addr, tok); close(done) }()
	defer func() { cancel(); <-done }()

	page := browser(t)
	tctx, tcancel := context.WithTimeout(page, 30*time.Second)
	if err := chromedp.Do(tctx, chromedp.Navigate("http://"+addr+"/login?token="+url.QueryEscape(tok)+"&next=/summary")); err != nil {
		t.Fatalf("browser sign-in: %v", err)
	}
	tcancel()
	// Count the page's connection attempts, then start a CP.Live of our
	// own on the warnings.
	evaluate[bool](t, page, `(() => {
		const W = window.WebSocket; window.__opens = [];
		window.WebSocket = function (u, p) { window.__opens.push(Date.now()); return new W(u, p); };
		window.WebSocket.prototype = W.prototype;
		window.__got = []; window.__subs = 0;
		window.__live = new CP.Live((f) => {
			if (f.type === "warning") window.__got.push(f.warning.id);
			if (f.type === "subscribed" && f.channel === "warnings") window.__subs++;
		});
		window.__live.subscribe("warnings");
		return true; })()`)
	pageIDs := func() []string { return evaluate[[]string](t, page, `window.__got.slice()`) }
	testenv.WaitFor(t, 15*time.Second, "both clients subscribed", func() bool {
		goClient.mu.Lock()
		ok := goClient.subs > 0
		goClient.mu.Unlock()
		return ok && evaluate[int](t, page, `window.__subs`) > 0
	})

	var want []string
	have := func(n int) func() bool {
		return func() bool { return len(goClient.ids()) >= n && len(pageIDs()) >= n }
	}
	for i := 0; i < 5; i++ {
		want = append(want, raise(t, rdb, len(want)))
	}
	testenv.WaitFor(t, 15*time.Second, "the first 5 warnings live", have(5))

	dash.Kill()
	downAt := time.Now()
	opensBefore := evaluate[int](t, page, `window.__opens.length`)
	for i := 0; i < 10; i++ {
		want = append(want, raise(t, rdb, len(want)))
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Until(downAt.Add(6 * time.Second)))
	opensDown := evaluate[int](t, page, `window.__opens.length`) - opensBefore
	dash = startDashboard(t, addr, r.Addr, broker.Addr(), spec, logPath)
	t.Logf("dashboard down %v; the page tried %d reconnects meanwhile", time.Since(downAt).Round(time.Millisecond), opensDown)
	testenv.WaitFor(t, 30*time.Second, "the 10 warnings raised while the dashboard was down", have(15))
	for i := 0; i < 5; i++ {
		want = append(want, raise(t, rdb, len(want)))
	}
	testenv.WaitFor(t, 15*time.Second, "5 more warnings live after the restart", have(20))
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	if dash.Exited() {
		t.Fatalf("the restarted dashboard exited:\n%s", tail(logPath, 30))
	}

	for name, got := range map[string][]string{"Go client": goClient.ids(), "page": pageIDs()} {
		if !slices.Equal(got, want) {
			t.Errorf("%s received %d warnings %v\nwant %d in order %v", name, len(got), got, len(want), want)
		}
	}
	// 6 s down with 0.5 s doubling: about 4 attempts; a client without
	// backoff would make dozens, one that gave up none.
	if opensDown < 2 || opensDown > 8 {
		t.Errorf("the page made %d connection attempts in 6 s of outage; want backoff (2..8)", opensDown)
	}
	delays := evaluate[[]float64](t, page, `Array.from({length: 40}, (_, i) => CP.reconnectDelay(i % 8))`)
	distinct := map[float64]bool{}
	for i, d := range delays {
		base := min(500*float64(int(1)<<(i%8)), 10000)
		if d < base/2 || d > base {
			t.Errorf("reconnectDelay(%d) = %v, want within [%v, %v]", i%8, d, base/2, base)
		}
		distinct[d] = true
	}
	if len(distinct) < 30 {
		t.Errorf("reconnectDelay gave %d distinct values of 40: no jitter", len(distinct))
	}
}
