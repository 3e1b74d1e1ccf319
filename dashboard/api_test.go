package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
)

func (h *harness) do(method, path, tok, body string) (int, map[string]any, string) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// project applies events to the queue read model the way the projector
// does after reading them from Kafka.
func (h *harness) project(events ...stream.Event) {
	h.t.Helper()
	p, err := queue.NewProjector(queue.ProjectorConfig{Brokers: []string{"unused:9092"}}, h.rdb, nil, prometheus.NewRegistry())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range events {
		b, err := stream.Encode(e)
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := p.ApplyEvent(context.Background(), e.Topic(), b); err != nil {
			h.t.Fatal(err)
		}
	}
}

func TestAPIScopesAndFieldErrors(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	w := warning("s1", "", "C1", stream.CategoryGrade, stream.LevelYellow)
	w2 := warning("s2", "", "C1", stream.CategoryGrade, stream.LevelRed)
	h.project(w, w2)
	counsellor := h.token(Claims{Role: RoleCounsellor, Subject: "c1", Students: []string{"s1"}})
	student := h.token(Claims{Role: RoleStudent, Subject: "s1"})
	other := h.token(Claims{Role: RoleStudent, Subject: "s2"})
	for _, tc := range []struct {
		name, method, path, tok, body string
		code                          int
		field                         string
	}{
		{"no token", "GET", "/api/v1/warnings", "", "", 401, ""},
		{"counsellor sees own student's warning", "GET", "/api/v1/warnings/" + w.Ref, counsellor, "", 200, ""},
		{"counsellor not another's", "GET", "/api/v1/warnings/" + w2.Ref, counsellor, "", 403, ""},
		{"bad level filter", "GET", "/api/v1/warnings?level=purple", counsellor, "", 400, "level"},
		{"bad limit", "GET", "/api/v1/warnings?limit=-1", counsellor, "", 400, "limit"},
		{"student cannot see unconfirmed warning", "GET", "/api/v1/warnings/" + w.Ref, student, "", 403, ""},
		{"student cannot open another student", "GET", "/api/v1/students/s2", student, "", 403, ""},
		{"student cannot post steps", "POST", "/api/v1/warnings/" + w.Ref + "/steps", other, `{"action":"talk"}`, 403, ""},
		{"plan without due", "POST", "/api/v1/warnings/" + w.Ref + "/steps", counsellor, `{"action":"plan","tasks":["x"]}`, 400, "due"},
		{"talk without channel", "POST", "/api/v1/warnings/" + w.Ref + "/steps", counsellor, `{"action":"talk"}`, 400, "channel"},
		{"unknown field", "POST", "/api/v1/warnings/" + w.Ref + "/steps", counsellor, `{"action":"talk","mood":1}`, 400, "mood"},
		{"wrong type", "POST", "/api/v1/warnings/" + w.Ref + "/steps", counsellor, `{"action":7}`, 400, "action"},
		{"bad due", "POST", "/api/v1/warnings/" + w.Ref + "/steps", counsellor, `{"action":"plan","due":"soon"}`, 400, "due"},
		{"talk recorded", "POST", "/api/v1/warnings/" + w.Ref + "/steps", counsellor, `{"action":"talk","channel":"phone","notes":"ok"}`, 202, ""},
		{"summary needs a unit of theirs", "GET", "/api/v1/summary", counsellor, "", 403, ""},
		{"roster admin only", "PUT", "/api/v1/roster", counsellor, `[]`, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m, raw := h.do(tc.method, tc.path, tc.tok, tc.body)
			if code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, code, raw, tc.code)
			}
			if tc.field != "" && m["field"] != tc.field {
				t.Fatalf("field %v, want %q (%s)", m["field"], tc.field, raw)
			}
			if code >= 400 && m["reason"] == "" {
				t.Fatalf("error without a reason: %s", raw)
			}
		})
	}
	// Besides the talk, staff reads publish audit records; count the steps.
	steps := 0
	for _, e := range h.pub.events {
		if _, ok := e.(*stream.Intervention); ok {
			steps++
		}
	}
	if steps != 1 {
		t.Fatalf("published %d help-loop steps, want the one talk", steps)
	}
}

func TestWarningReachesStudentOnlyAfterConfirmation(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	w := warning("s1", "", "C1", stream.CategoryStudy, stream.LevelYellow)
	live := warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelRed)
	h.project(w, live)
	student := h.token(Claims{Role: RoleStudent, Subject: "s1"})
	_, m, _ := h.do("GET", "/api/v1/warnings", student, "")
	if m["total"].(float64) != 0 {
		t.Fatalf("student sees unconfirmed warnings: %v", m)
	}
	c, _, err := h.dial(student, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
	next(t, c, "subscribed", 5*time.Second)

	confirm := &stream.Intervention{Header: stream.NewHeader("s1", time.Now()), Warning: w.Ref, Action: stream.ActionConfirm, By: "c1"}
	h.project(confirm)
	if f := next(t, c, "released", 10*time.Second); f.Warning.Ref != w.Ref {
		t.Fatalf("released %+v", f.Warning)
	}
	_, m, raw := h.do("GET", "/api/v1/warnings", student, "")
	if m["total"].(float64) != 1 || !strings.Contains(raw, w.Ref) || strings.Contains(raw, live.Ref) {
		t.Fatalf("after confirmation the student sees %s", raw)
	}
	code, m, _ := h.do("GET", "/api/v1/warnings/"+w.Ref+"/reasons", student, "")
	if code != 200 || m["reason"] != w.Reason {
		t.Fatalf("reasons: %d %v", code, m)
	}
	// A live signal can never be released.
	admin := h.token(Claims{Role: RoleAdmin})
	if code, m, _ := h.do("POST", "/api/v1/warnings/"+live.Ref+"/steps", admin, `{"action":"confirm"}`); code != 400 || m["field"] != "action" {
		t.Fatalf("confirming a live signal: %d %v", code, m)
	}
}

func TestNoticeSerialAndSummaryCSV(t *testing.T) {
	h := startHarness(t, Config{SchoolName: "Open University"}, nil)
	admin := h.token(Claims{Role: RoleAdmin})
	if code, _, raw := h.do("PUT", "/api/v1/roster", admin, `[{"student":"s1","unit":"U1","class":"K1","name":"李雷"},{"student":"s2","unit":"U1","name":"=cmd()"}]`); code != 200 {
		t.Fatalf("roster: %s", raw)
	}
	w1 := warning("s1", "", "C1", stream.CategoryGrade, stream.LevelYellow)
	w2 := warning("s2", "", "C2", stream.CategoryStudy, stream.LevelRed)
	h.project(w1, w2)
	if code, _, _ := h.do("GET", "/api/v1/warnings/"+w1.Ref+"/notice", admin, ""); code != 409 {
		t.Fatalf("notice before a notice step: %d", code)
	}
	n1 := &stream.Intervention{Header: stream.NewHeader("s1", time.Now()), Warning: w1.Ref, Action: stream.ActionNotice, By: "c1"}
	n2 := &stream.Intervention{Header: stream.NewHeader("s2", time.Now()), Warning: w2.Ref, Action: stream.ActionNotice, By: "c1"}
	h.project(n1, n2, n1) // n1 redelivered: same serial, no new number
	_, a, _ := h.do("GET", "/api/v1/warnings/"+w1.Ref+"/notice", admin, "")
	_, b, _ := h.do("GET", "/api/v1/warnings/"+w2.Ref+"/notice", admin, "")
	year := time.Now().UTC().Format("2006")
	if a["serial"] != year+"-000001" || b["serial"] != year+"-000002" {
		t.Fatalf("serials %v %v", a["serial"], b["serial"])
	}
	code, _, csv := h.do("GET", "/api/v1/summary?unit=U1&format=csv", admin, "")
	if code != 200 {
		t.Fatalf("csv: %d %s", code, csv)
	}
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "\ufeff序号 No") || !strings.Contains(lines[1], "李雷") || !strings.Contains(lines[1], "学习成绩预警") || !strings.Contains(lines[2], "'=cmd()") {
		t.Fatalf("csv:\n%s", csv)
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	if code, _, _ := h.do("GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _, _ := h.do("GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	h.do("GET", "/api/v1/students/s1", "", "")
	_, _, body := h.do("GET", "/metrics", "", "")
	for _, want := range []string{"classpulse_dashboard_websocket_clients", `classpulse_dashboard_http_requests_total{code="401",route="/api/v1/students/{id}"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	h.redis.Stop()
	testenv.WaitFor(t, 5*time.Second, "readyz 503 with Redis down", func() bool {
		code, _, _ := h.do("GET", "/readyz", "", "")
		return code == 503
	})
}

func FuzzStepBody(f *testing.F) {
	f.Add([]byte(`{"action":"plan","tasks":["a"],"due":"2030-01-01"}`))
	f.Add([]byte(`{"action":"talk","channel":"phone"}`))
	f.Add([]byte(`{"action":"close","result":"helped"}`))
	rec := &queue.Record{Ref: "r1", Student: "s1", Category: stream.CategoryStudy}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, _ := http.NewRequest("POST", "/", strings.NewReader(string(b)))
		var body stepBody
		if _, err := decodeBody(req, 64<<10, &body); err != nil {
			return
		}
		iv, _, err := stepEvent(&body, rec, "c1", time.Now())
		if err != nil {
			return
		}
		if _, err := stream.Encode(iv); err != nil {
			t.Fatalf("accepted a step that does not encode: %v", err)
		}
	})
}
