package dashboard

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts a headless chromium with a fresh profile and returns a
// chromedp context for one tab; it is closed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium not installed at %s (make test installs it): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// run runs browser steps with a deadline.
func run(t *testing.T, ctx context.Context, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// get runs one browser action that returns a value, with a deadline.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func (h *harness) signIn(tok, next string) chromedp.Action[chromedp.Void] {
	return chromedp.Navigate(h.base + "/login?token=" + url.QueryEscape(tok) + "&next=" + url.QueryEscape(next))
}

func TestBrowserGridShowsLiveWarningWithoutReload(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	ctx := browser(t)
	tok := h.token(Claims{Role: RoleInstructor, Classes: []string{"S1"}})
	tile := &stream.Tile{Header: stream.NewHeader("s1", time.Now()), Session: "S1", Course: "C1", Captured: true, Attention: 0.9, FacePresent: true}
	b, _ := stream.Encode(tile)
	h.rdb.HSet(context.Background(), TilesKey("S1"), "s1", string(b))
	var marker string
	run(t, ctx, 30*time.Second,
		h.signIn(tok, "/?class=S1"),
		chromedp.WaitVisible(chromedp.CSS(`#status[data-live="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.tile[data-student="s1"]`)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](`window.__noReload = "still-here"`)(ctx, tg)
			return err
		}),
	)
	w := warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelRed)
	h.xaddWarning(w)
	run(t, ctx, 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#feed li[data-ref="`+w.Ref+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.tile.w-red[data-student="s1"]`)),
	)
	marker = get(t, ctx, chromedp.Evaluate[string](`window.__noReload`))
	if marker != "still-here" {
		t.Fatalf("the page was reloaded (marker %q)", marker)
	}
}

func TestBrowserStudentCannotOpenAnotherStudentsPage(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	ctx := browser(t)
	var text string
	run(t, ctx, 30*time.Second,
		h.signIn(h.token(Claims{Role: RoleStudent, Subject: "s1"}), "/student?id=s2"),
		chromedp.WaitVisible(chromedp.CSS(`#denied`)),
	)
	text = get(t, ctx, chromedp.Text(chromedp.CSS(`#main`)))
	if !strings.Contains(text, "s2 is not in your scope") {
		t.Fatalf("page says %q", text)
	}
	// Their own page opens.
	run(t, ctx, 15*time.Second,
		chromedp.Navigate(h.base+"/student?id=s1"),
		chromedp.WaitVisible(chromedp.CSS(`#title`)),
	)
	text = get(t, ctx, chromedp.Text(chromedp.CSS(`#title`)))
	if !strings.Contains(text, "s1") {
		t.Fatalf("own page title %q", text)
	}
}

func TestBrowserHelpLoopStepsAppearLiveForAnotherViewer(t *testing.T) {
	broker := testenv.StartBroker(t, 2)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	h := startHarness(t, Config{Brokers: []string{broker.Addr()}}, prod)

	w := warning("s1", "", "C1", stream.CategoryStudy, stream.LevelYellow)
	w.Rule, w.Reason = "study_time_low", "2 courses below the required study time"
	w.Evidence = map[string]float64{"courses_below": 2}
	if err := prod.Publish(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "warning projected into the queue", func() bool {
		_, err := h.srv.store.Get(context.Background(), w.Ref)
		return err == nil
	})

	counsellor := h.token(Claims{Role: RoleCounsellor, Subject: "c.wang", Students: []string{"s1"}})
	watcher := h.token(Claims{Role: RoleAdmin, Subject: "head"})
	a, b := browser(t), browser(t)
	form := `form[data-form="` + w.Ref + `"]`
	for _, bc := range []struct {
		ctx context.Context
		tok string
	}{{a, counsellor}, {b, watcher}} {
		run(t, bc.ctx, 30*time.Second,
			h.signIn(bc.tok, "/student?id=s1"),
			chromedp.WaitVisible(chromedp.CSS(`[data-warning="`+w.Ref+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-live="1"]`)),
		)
	}
	run(t, a, 30*time.Second,
		chromedp.SetValue(chromedp.CSS(form+` select[name="action"]`), "talk"),
		chromedp.SetValue(chromedp.CSS(form+` select[name="channel"]`), "phone"),
		chromedp.SetValue(chromedp.CSS(form+` textarea[name="notes"]`), "talked about the missing videos"),
		chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul[data-ref="`+w.Ref+`"] li[data-action="talk"]`)),
		chromedp.SetValue(chromedp.CSS(form+` select[name="action"]`), "plan"),
		chromedp.SetValue(chromedp.CSS(form+` textarea[name="tasks"]`), "watch unit 3\nmeet tutor"),
		chromedp.SetValue(chromedp.CSS(form+` input[name="due"]`), "2030-04-01"),
		chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)),
	)
	var planText string
	run(t, b, 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`ul[data-ref="`+w.Ref+`"] li[data-action="talk"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul[data-ref="`+w.Ref+`"] li[data-action="plan"]`)),
	)
	planText = get(t, b, chromedp.Text(chromedp.CSS(`ul[data-ref="`+w.Ref+`"] li[data-action="plan"]`)))
	if !strings.Contains(planText, "meet tutor") {
		t.Fatalf("plan as seen by the second browser: %q", planText)
	}
	rec, err := h.srv.store.Get(context.Background(), w.Ref)
	if err != nil || rec.Loop != "in_progress" {
		t.Fatalf("record after talk and plan: %+v %v", rec, err)
	}
}

// TestBrowserStudentPageShowsTheSessionSoFar: the student page over the
// processor's state (StateReader) shows, beside the last minutes' points,
// the means over the whole session so far — here 15 minutes, more than
// the 10-minute horizon the points reach back.
func TestBrowserStudentPageShowsTheSessionSoFar(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	store, err := state.New(rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	start := time.Now().Add(-15 * time.Minute).Truncate(time.Second)
	var ops []state.Op
	for i := 0; i < 900; i++ {
		att := 0.5
		if i%2 == 1 {
			att = 1
		}
		sc := &stream.Score{Header: stream.NewHeader("s1", start.Add(time.Duration(i)*time.Second)), Session: "S1", Course: "C1",
			WindowMS: 1000, Frames: 10, FaceRatio: 1, Attention: att, Model: "m",
			Learning: &stream.Learning{Engaged: 0.7, Confused: 0.2, Bored: 0.05, Frustrated: 0.05}}
		ops = append(ops, state.Op{Event: sc, Topic: stream.TopicScores, Offset: int64(i)})
	}
	if _, err := store.Apply(context.Background(), rules.DefaultPolicy(), ops); err != nil {
		t.Fatal(err)
	}
	sr, err := NewStateReader(rdb, state.Config{}, rules.NewHolder(rules.DefaultPolicy()), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startHarnessOn(t, Config{}, nil, r, rdb, WithStudentReader(sr))
	ctx := browser(t)
	run(t, ctx, 30*time.Second,
		h.signIn(h.token(Claims{Role: RoleAdmin, Subject: "admin"}), "/student?id=s1"),
		chromedp.WaitVisible(chromedp.CSS(`#session-totals`)),
	)
	text := get(t, ctx, chromedp.Text(chromedp.CSS(`#session-totals`)))
	t.Logf("session line: %q", text)
	for _, want := range []string{"15 ", "75%", "100%", "engaged 70%"} {
		if !strings.Contains(text, want) {
			t.Errorf("session line %q lacks %q", text, want)
		}
	}
}
