package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream/state"
)

func TestImportCommand(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("roster.csv", "student,class,unit,minor,guardian\ns1,C1,U1,1,g1\ns2,C2,U1,0,\n")
	bad := write("bad.csv", "student,class,minor\ns1,C1,1\ns2,C 2,perhaps\n")
	for _, c := range []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
		keys    int64
	}{
		{"dry run of a bad file reports rows and writes nothing", []string{"--kind", "roster", "--dry-run", bad}, "1 of 2 rows are bad", `"column": "minor"`, 0},
		{"real run of a bad file refuses", []string{"--kind", "roster", bad}, "nothing was written", `"row": 3`, 0},
		{"dry run of a good file writes nothing", []string{"--kind", "roster", "--dry-run", good}, "", `"valid": 2`, 0},
		{"unknown kind", []string{"--kind", "timetable", good}, "kind", "", 0},
		{"no file", []string{"--kind", "roster"}, "one file", "", 0},
		{"good file is imported", []string{"--kind", "roster", good}, "", `"written": true`, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := importCmd(context.Background(), append([]string{"--redis", r.Addr}, c.args...), &out)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			if !strings.Contains(out.String(), c.wantOut) {
				t.Fatalf("output %s lacks %s", out.String(), c.wantOut)
			}
			// Two profiles plus the dashboard's roster hash and unit index.
			if n, _ := rdb.DBSize(context.Background()).Result(); c.keys == 0 && n != 0 || c.keys != 0 && n < 3 {
				t.Fatalf("%d keys in Redis", n)
			}
		})
	}
	if m, _ := rdb.HGetAll(context.Background(), state.ProfileKey("s1")).Result(); m["minor"] != "1" || m["guardians"] != "g1" || m["class"] != "C1" {
		t.Fatalf("profile of s1 %v", m)
	}
	var rep ingest.Report
	var out bytes.Buffer
	if err := importCmd(context.Background(), []string{"--redis", r.Addr, "--kind", "roster", good}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Valid != 2 {
		t.Fatalf("report %s: %v", out.String(), err)
	}
}

func TestXAPICommandServesTheEndpoint(t *testing.T) {
	b := testenv.StartBroker(t, 1)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	secret := "moodle-secret-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runXAPI(ctx, []string{"--brokers", b.Addr(), "--listen", addr, "--xapi-sources", "moodle=" + secret})
	}()
	stmt := `{"id":"st-1","actor":{"account":{"homePage":"https://lms","name":"s1"}},` +
		`"verb":{"id":"http://adlnet.gov/expapi/verbs/attempted"},` +
		`"object":{"id":"https://lms/quiz/1","definition":{"type":"http://adlnet.gov/expapi/activities/assessment"}},` +
		`"context":{"contextActivities":{"parent":{"id":"https://lms/course/view.php?id=LAW1","definition":{"type":"http://adlnet.gov/expapi/activities/course"}}}}}`
	var resp *http.Response
	testenv.WaitFor(t, 10*time.Second, "xapi endpoint answering", func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+ingest.XAPIPath, strings.NewReader(stmt))
		req.SetBasicAuth("moodle", ingest.SourceToken("moodle", secret))
		var err error
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"accepted":1`) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	m, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if !strings.Contains(string(mb), `classpulse_ingest_xapi_statements_total{outcome="accepted",source="moodle"} 1`) {
		t.Fatalf("metrics lack the accepted statement:\n%s", mb)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("xapi returned %v after cancel", err)
	}
}

func TestDashboardMountsTheXAPIEndpoint(t *testing.T) {
	b := testenv.StartBroker(t, 1)
	r := testenv.StartRedis(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	secret := "canvas-secret-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDashboard(ctx, []string{"--brokers", b.Addr(), "--redis", r.Addr, "--addr", addr, "--no-queue", "--xapi-sources", "canvas=" + secret})
	}()
	stmt := `{"id":"st-2","actor":{"account":{"homePage":"https://lms","name":"s1"}},` +
		`"verb":{"id":"http://adlnet.gov/expapi/verbs/attempted"},` +
		`"object":{"id":"https://lms/quiz/1","definition":{"type":"http://adlnet.gov/expapi/activities/assessment"}},` +
		`"context":{"contextActivities":{"parent":{"id":"https://lms/course/view.php?id=LAW1","definition":{"type":"http://adlnet.gov/expapi/activities/course"}}}}}`
	post := func(user, pass string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+ingest.XAPIPath, strings.NewReader(stmt))
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	testenv.WaitFor(t, 10*time.Second, "dashboard answering", func() bool { code, _ := post("x", "y"); return code != 0 })
	if code, body := post("canvas", ingest.SourceToken("canvas", secret)); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("statement through the dashboard: %d %s", code, body)
	}
	if code, body := post("canvas", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong source token: %d %s", code, body)
	}
	m, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{`classpulse_ingest_xapi_statements_total{outcome="accepted",source="canvas"} 1`,
		`classpulse_dashboard_http_requests_total{code="200",route="/api/v1/xapi/statements"} 1`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("dashboard metrics lack %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dashboard returned %v after cancel", err)
	}
}
