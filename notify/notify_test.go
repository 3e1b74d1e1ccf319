package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

const hookSecret = "webhook-secret-0123456789"

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func warning(student, category, level, st string) *stream.Warning {
	h := stream.NewHeader(student, time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
	return &stream.Warning{Header: h, Ref: h.ID, Category: category, Level: level, Rule: category + "_rule",
		Course: "MATH101", Reason: "study time below the requirement in 2 courses", Evidence: map[string]float64{"courses": 2}, State: st}
}

// smtpServer runs Debian's aiosmtpd on a loopback port, storing mail in a
// maildir, and returns its address and the maildir's new/ folder.
func smtpServer(t *testing.T) (string, string) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		t.Fatalf("python3-aiosmtpd is not installed (scripts/install-deps.sh python3-aiosmtpd): %v", err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "maildir")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testenv.WaitFor(t, 10*time.Second, "aiosmtpd listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, filepath.Join(dir, "new")
}

func readMail(t *testing.T, dir string) []*mail.Message {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []*mail.Message
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(f)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(m.Body)
		f.Close()
		dec, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
		m.Body = strings.NewReader(string(dec))
		out = append(out, m)
	}
	return out
}

func body(m *mail.Message) string { b, _ := io.ReadAll(m.Body); return string(b) }

func seedRoster(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	rdb.HSet(ctx, state.ProfileKey("s1"), "minor", "1", "guardians", "g1", "counsellors", "c1,c2")
	rdb.HSet(ctx, state.ProfileKey("s2"), "minor", "0", "guardians", "g2", "counsellors", "c1")
	rdb.HSet(ctx, ingest.ContactKey("c1"), "role", "counsellor", "email", "c1@school.edu")
	rdb.HSet(ctx, ingest.ContactKey("c2"), "role", "counsellor") // no address
	rdb.HSet(ctx, ingest.ContactKey("g1"), "role", "guardian", "email", "parent1@home.cn")
	rdb.HSet(ctx, ingest.ContactKey("g2"), "role", "guardian", "email", "parent2@home.cn")
}

func TestEmailGoesToRolesOverRealSMTP(t *testing.T) {
	ctx := context.Background()
	addr, maildir := smtpServer(t)
	rdb := redisClient(t)
	seedRoster(t, rdb)
	d, err := New(Config{
		Brokers: []string{"127.0.0.1:1"},
		Routes:  []Route{{Categories: []string{"study"}, Roles: []string{"counsellor", "guardian"}, Channel: ChannelEmail}},
		SMTP:    SMTPConfig{Addr: addr, From: "classpulse@school.edu"},
	}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	minor := warning("s1", "study", "yellow", "raised")
	adult := warning("s2", "study", "red", "raised")
	for _, w := range []*stream.Warning{minor, adult, warning("s1", "grade", "red", "raised")} {
		if err := d.Notify(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for _, m := range readMail(t, maildir) {
		subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		got[m.Header.Get("To")+" "+subj] = body(m)
	}
	want := []string{
		"c1@school.edu classpulse: yellow study warning raised",
		"parent1@home.cn classpulse: yellow study warning raised",
		"c1@school.edu classpulse: red study warning raised",
	}
	if len(got) != len(want) {
		t.Fatalf("mails %v, want %v (no guardian mail for the adult s2, none for the grade warning)", keys(got), want)
	}
	for _, w := range want {
		if !strings.Contains(got[w], "study time below the requirement") {
			t.Errorf("mail %q missing or without the reason: %q", w, got[w])
		}
	}
	as, err := Attempts(ctx, rdb, "s1", minor.Ref)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, a := range as {
		outcomes[a.Outcome]++
	}
	// c2 has no e-mail address: that is recorded, not silently dropped.
	if outcomes["delivered"] != 2 || outcomes["skipped"] != 1 {
		t.Fatalf("attempts of s1's warning %+v", as)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// receiver is a webhook endpoint that fails its first `fail` calls.
type receiver struct {
	mu     sync.Mutex
	fail   int
	code   int
	calls  int
	bodies [][]byte
	hdrs   []http.Header
	reply  string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.fail {
		http.Error(w, "receiver down on purpose", r.code)
		return
	}
	r.bodies = append(r.bodies, b)
	h := req.Header.Clone()
	h.Set("X-Url", req.URL.String())
	r.hdrs = append(r.hdrs, h)
	if r.reply != "" {
		_, _ = io.WriteString(w, r.reply)
	}
}

func webhookDispatcher(t *testing.T, rdb *redis.Client, routes []Route, opts ...Option) *Dispatcher {
	t.Helper()
	d, err := New(Config{
		Brokers: []string{"127.0.0.1:1"}, Routes: routes, WebhookSecret: hookSecret,
		MaxAttempts: 3, BackoffMin: Duration(5 * time.Millisecond), BackoffMax: Duration(20 * time.Millisecond),
	}, rdb, nil, prometheus.NewRegistry(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWebhookRetriesWithBackoffThenDelivers(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	rec := &receiver{fail: 2, code: 503}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d := webhookDispatcher(t, rdb, []Route{{To: []string{srv.URL + "/hook"}, Channel: ChannelWebhook}})
	w := warning("s1", "study", "red", "raised")
	if err := d.Notify(ctx, w); err != nil {
		t.Fatal(err)
	}
	if rec.calls != 3 || len(rec.bodies) != 1 {
		t.Fatalf("receiver saw %d calls, %d accepted; want 3 and 1", rec.calls, len(rec.bodies))
	}
	h := rec.hdrs[0]
	if want := Signature(hookSecret, h.Get("X-Classpulse-Timestamp"), rec.bodies[0]); h.Get("X-Classpulse-Signature") != want {
		t.Fatalf("signature %q, want %q", h.Get("X-Classpulse-Signature"), want)
	}
	var payload struct {
		Type    string         `json:"type"`
		Warning stream.Warning `json:"warning"`
	}
	if err := json.Unmarshal(rec.bodies[0], &payload); err != nil || payload.Type != "warning" || payload.Warning.Ref != w.Ref {
		t.Fatalf("payload %s: %v", rec.bodies[0], err)
	}
	as, _ := Attempts(ctx, rdb, "s1", w.Ref)
	var seq []string
	for _, a := range as {
		seq = append(seq, fmt.Sprintf("%d:%s", a.Try, a.Outcome))
	}
	if strings.Join(seq, " ") != "1:failed 2:failed 3:delivered" || !strings.Contains(as[0].Error, "503") {
		t.Fatalf("attempts %v (%+v)", seq, as)
	}
	// A redelivered warning (crash before commit) is not sent twice.
	if err := d.Notify(ctx, w); err != nil || rec.calls != 3 {
		t.Fatalf("redelivery sent again: calls %d, err %v", rec.calls, err)
	}
}

func TestWebhookDeadLettersAfterMaxAttempts(t *testing.T) {
	for _, c := range []struct {
		name      string
		code      int
		wantCalls int
	}{
		{"server errors are retried up to the limit", 500, 3},
		{"a 4xx answer is permanent", 410, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := redisClient(t)
			rec := &receiver{fail: 100, code: c.code}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			d := webhookDispatcher(t, rdb, []Route{{To: []string{srv.URL}, Channel: ChannelWebhook}})
			w := warning("s1", "grade", "yellow", "raised")
			if err := d.Notify(ctx, w); err != nil {
				t.Fatal(err)
			}
			if rec.calls != c.wantCalls {
				t.Fatalf("%d calls, want %d", rec.calls, c.wantCalls)
			}
			dead, _ := rdb.LRange(ctx, DeadLetterKey, 0, -1).Result()
			if len(dead) != 1 || !strings.Contains(dead[0], w.Ref) {
				t.Fatalf("dead letters %v", dead)
			}
			as, _ := Attempts(ctx, rdb, "s1", w.Ref)
			if last := as[len(as)-1]; last.Outcome != "dead" || last.Try != c.wantCalls {
				t.Fatalf("last attempt %+v", last)
			}
			if v := testutil.ToFloat64(d.deliveries.WithLabelValues(ChannelWebhook, "dead")); v != 1 {
				t.Fatalf("dead counter %v", v)
			}
		})
	}
}

func TestGroupBotsGetTheirFormats(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	wecom := &receiver{reply: `{"errcode":0,"errmsg":"ok"}`}
	ding := &receiver{reply: `{"errcode":0,"errmsg":"ok"}`}
	feishu := &receiver{reply: `{"code":0,"msg":"success"}`}
	feishuBad := &receiver{reply: `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`}
	var urls []string
	for _, r := range []*receiver{wecom, ding, feishu, feishuBad} {
		s := httptest.NewServer(r)
		defer s.Close()
		urls = append(urls, s.URL+"/bot?key=k")
	}
	now := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	d, err := New(Config{
		Brokers: []string{"127.0.0.1:1"},
		Routes: []Route{
			{To: []string{urls[0]}, Channel: ChannelWeCom},
			{To: []string{urls[1]}, Channel: ChannelDingTalk},
			{To: []string{urls[2], urls[3]}, Channel: ChannelFeishu},
		},
		BotSecrets:  map[string]string{urls[1]: "SECdingding", urls[2]: "feishu-secret"},
		MaxAttempts: 2, BackoffMin: Duration(time.Millisecond),
	}, rdb, nil, nil, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	w := warning("s1", "study", "red", "escalated")
	if err := d.Notify(ctx, w); err != nil {
		t.Fatal(err)
	}
	var wc struct {
		MsgType  string            `json:"msgtype"`
		Markdown map[string]string `json:"markdown"`
	}
	if json.Unmarshal(wecom.bodies[0], &wc); wc.MsgType != "markdown" || !strings.Contains(wc.Markdown["content"], "study time below") {
		t.Fatalf("wecom body %s", wecom.bodies[0])
	}
	if json.Unmarshal(ding.bodies[0], &wc); wc.MsgType != "markdown" || wc.Markdown["title"] == "" {
		t.Fatalf("dingtalk body %s", ding.bodies[0])
	}
	u := ding.hdrs[0].Get("X-Url")
	if !strings.Contains(u, "timestamp=1740992400000") || !strings.Contains(u, "sign=") || !strings.Contains(u, "key=k") {
		t.Fatalf("dingtalk url %s lacks its signature", u)
	}
	var fs struct {
		MsgType   string            `json:"msg_type"`
		Content   map[string]string `json:"content"`
		Timestamp string            `json:"timestamp"`
		Sign      string            `json:"sign"`
	}
	if json.Unmarshal(feishu.bodies[0], &fs); fs.MsgType != "text" || fs.Timestamp != "1740992400" || fs.Sign == "" {
		t.Fatalf("feishu body %s", feishu.bodies[0])
	}
	// A bot that answers 200 with an error code has not delivered.
	as, _ := Attempts(ctx, rdb, "s1", w.Ref)
	dead := 0
	for _, a := range as {
		if a.Outcome == "dead" && strings.Contains(a.Error, "19021") {
			dead++
		}
	}
	if dead != 1 || len(feishuBad.bodies) != 2 {
		t.Fatalf("feishu error code not treated as a failure: %+v", as)
	}
}

func TestQuietHoursHoldAndDigestsFold(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	set(time.Date(2025, 3, 3, 23, 30, 0, 0, sh)) // quiet
	d, err := New(Config{
		Brokers: []string{"127.0.0.1:1"}, WebhookSecret: hookSecret,
		QuietStart: "22:00", QuietEnd: "07:00", Timezone: "Asia/Shanghai", DigestInterval: Duration(time.Hour),
		Routes: []Route{
			{To: []string{srv.URL + "/held"}, Channel: ChannelWebhook},
			{To: []string{srv.URL + "/digest"}, Channel: ChannelWebhook, Digest: true, MinLevel: "info"},
			{To: []string{srv.URL + "/duty"}, Channel: ChannelWebhook, MinLevel: "red", IgnoreQuietHours: true},
		},
	}, rdb, nil, nil, WithClock(func() time.Time { return *now.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	red := warning("s1", "study", "red", "raised")
	yellow := warning("s2", "grade", "yellow", "raised")
	for _, w := range []*stream.Warning{red, yellow} {
		if err := d.Notify(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	paths := func() []string {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var ps []string
		for _, h := range rec.hdrs {
			ps = append(ps, h.Get("X-Url"))
		}
		return ps
	}
	if p := paths(); len(p) != 1 || p[0] != "/duty" {
		t.Fatalf("during quiet hours sent %v, want only the red one to the duty hook", p)
	}
	if err := d.Flush(ctx); err != nil || len(paths()) != 1 {
		t.Fatalf("flush before quiet hours end sent %v (%v)", paths(), err)
	}
	set(time.Date(2025, 3, 4, 7, 1, 0, 0, sh))
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p := paths()
	later := append([]string(nil), p[1:]...)
	sort.Strings(later)
	if len(p) != 4 || strings.Join(later, " ") != "/digest /held /held" {
		t.Fatalf("after quiet hours sent %v, want two held messages and one digest", p)
	}
	var dg struct {
		Type     string           `json:"type"`
		Warnings []stream.Warning `json:"warnings"`
	}
	di := slices.Index(p, "/digest")
	if err := json.Unmarshal(rec.bodies[di], &dg); err != nil || dg.Type != "digest" || len(dg.Warnings) != 2 {
		t.Fatalf("digest %s", rec.bodies[di])
	}
	as, _ := Attempts(ctx, rdb, "s2", yellow.Ref)
	var seq []string
	for _, a := range as {
		seq = append(seq, a.Outcome)
	}
	digests := 0
	for _, a := range as {
		if a.Outcome == "delivered" && a.Digest == 2 {
			digests++
		}
	}
	if strings.Join(seq, ",") != "held,digest,delivered,delivered" || digests != 1 {
		t.Fatalf("attempts of the yellow warning %v", seq)
	}
	if n, _ := rdb.ZCard(ctx, dueKey).Result(); n != 0 {
		t.Fatalf("%d pending keys left", n)
	}
}

func TestConfigValidateNamesTheRoute(t *testing.T) {
	for _, c := range []struct {
		name  string
		route Route
		want  string
	}{
		{"unknown channel", Route{To: []string{"a@b"}, Channel: "pigeon"}, "pigeon"},
		{"nobody", Route{Channel: ChannelWeCom}, "nobody"},
		{"roles on a bot", Route{Roles: []string{"counsellor"}, Channel: ChannelFeishu}, "group bots"},
		{"instructor role", Route{Roles: []string{"instructor"}, Channel: ChannelEmail}, "instructor"},
		{"bad level", Route{To: []string{"https://x"}, Channel: ChannelWeCom, MinLevel: "purple"}, "purple"},
		{"email without smtp", Route{To: []string{"a@b"}, Channel: ChannelEmail}, "smtp"},
		{"webhook without secret", Route{To: []string{"https://x"}, Channel: ChannelWebhook}, "secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Brokers: []string{"b:9092"}, Routes: []Route{c.route}}
			cfg.applyDefaults()
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), "route 0") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want route 0 and %q", err, c.want)
			}
		})
	}
}

func TestRunConsumesWarningsInItsOwnGroup(t *testing.T) {
	b := testenv.StartBroker(t, 2)
	rdb := redisClient(t)
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	d, err := New(Config{
		Brokers: []string{b.Addr()}, WebhookSecret: hookSecret, FlushEvery: Duration(50 * time.Millisecond),
		Routes: []Route{{To: []string{srv.URL}, Channel: ChannelWebhook}},
	}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{b.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := warning("s7", "degree", "red", "raised")
	if err := p.Publish(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testenv.WaitFor(t, 30*time.Second, "warning delivered by Run", func() bool {
		as, _ := Attempts(context.Background(), rdb, "s7", w.Ref)
		return len(as) == 1 && as[0].Outcome == "delivered"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	if err := d.Run(context.Background()); err == nil {
		t.Fatal("second Run did not fail")
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	rdb := redisClient(t)
	_, err := New(Config{Brokers: []string{"b:9092"}, WebhookSecret: hookSecret,
		Routes: []Route{{To: []string{"https://x"}, Channel: ChannelWebhook}}}, rdb, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Fatalf("lint: %v %v", err, probs)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func TestFlushInterruptedByShutdownKeepsHeldMessages(t *testing.T) {
	rdb := redisClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
		cancel()                           // shutdown arrives while the receiver is answering
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer srv.Close()
	now := time.Date(2025, 3, 3, 23, 0, 0, 0, time.UTC)
	d := webhookDispatcher(t, rdb, []Route{{To: []string{srv.URL}, Channel: ChannelWebhook}},
		WithClock(func() time.Time { return now }))
	d.cfg.quietStart, d.cfg.quietEnd = 22*60, 7*60
	w := warning("s1", "study", "red", "raised")
	if err := d.Notify(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Hour)
	if err := d.Flush(ctx); err == nil {
		t.Fatal("interrupted flush returned nil")
	}
	key := pendingKey(ChannelWebhook, srv.URL)
	if n, _ := rdb.LLen(context.Background(), key).Result(); n != 1 {
		t.Fatalf("%d held messages after the interrupted flush, want 1", n)
	}
	if n, _ := rdb.ZCard(context.Background(), dueKey).Result(); n != 1 {
		t.Fatalf("due index has %d keys, want 1", n)
	}
}

func TestLoadConfigReadsTheDocumentedExample(t *testing.T) {
	cfg, err := LoadConfig("testdata/routes.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Brokers, cfg.WebhookSecret = []string{"b:9092"}, hookSecret
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 4 || time.Duration(cfg.DigestInterval) != time.Hour || cfg.quietStart != 22*60 || cfg.Routes[0].States[0] != "raised" {
		t.Fatalf("config %+v", cfg)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"routes":[],"quiet_hours":"22-7"}`), 0o600)
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "quiet_hours") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}
