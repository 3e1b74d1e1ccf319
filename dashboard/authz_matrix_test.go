package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
	"github.com/coder/websocket"
)

// The principals of the authorisation matrix. The "in" principals have
// student s1 (unit U1, live in session S1 of course C1) in their scope; the
// "out" principals have the same role with a scope that misses s1.
var matrixPrincipals = map[string]Claims{
	"admin":          {Role: RoleAdmin, Subject: "a1"},
	"instructor":     {Role: RoleInstructor, Subject: "i1", Classes: []string{"S1"}},
	"instructor_out": {Role: RoleInstructor, Subject: "i2", Classes: []string{"S9"}},
	"counsellor":     {Role: RoleCounsellor, Subject: "c1", Students: []string{"s1"}, Units: []string{"U1"}},
	"counsellor_out": {Role: RoleCounsellor, Subject: "c2", Students: []string{"s2"}, Units: []string{"U2"}},
	"student":        {Role: RoleStudent, Subject: "s1"},
	"student_out":    {Role: RoleStudent, Subject: "s2"},
	"guardian":       {Role: RoleGuardian, Subject: "g1", Students: []string{"s1"}},
	"guardian_out":   {Role: RoleGuardian, Subject: "g2", Students: []string{"s2"}},
}

// anonymous is the matrix's name for a request without a token.
const anonymous = "anonymous"

var (
	everyone  = []string{anonymous, "admin", "instructor", "instructor_out", "counsellor", "counsellor_out", "student", "student_out", "guardian", "guardian_out"}
	signedIn  = everyone[1:]
	seesS1    = []string{"admin", "instructor", "counsellor", "student", "guardian"}
	worksOnS1 = []string{"admin", "counsellor"}
)

// routeRow is what the design says about one route pattern: which
// principals may use it (everyone else gets 403, or 401 without a token),
// and for list routes, which of the allowed ones see s1's warning in it.
type routeRow struct {
	method, path, body string
	// public routes need no token and answer everyone alike.
	public bool
	// tokenInQuery: the route takes the token in ?token= (sign-in).
	tokenInQuery bool
	allow        []string
	// sees, when set, lists the allowed principals whose answer mentions
	// s1's warning; the others must get an answer without it.
	sees []string
	// wantCode is the status an allowed request gets (default 200).
	wantCode int
}

// matrixRoutes has one row per route pattern the server registers; a
// route added without a row here fails TestAuthorisationMatrix.
func matrixRoutes(ref string) map[string]routeRow {
	stepBody := `{"action":"talk","channel":"face_to_face","notes":"matrix"}`
	return map[string]routeRow{
		"GET /healthz":                      {method: "GET", path: "/healthz", public: true},
		"GET /readyz":                       {method: "GET", path: "/readyz", public: true},
		"GET /metrics":                      {method: "GET", path: "/metrics", public: true},
		"GET /login":                        {method: "GET", path: "/login", tokenInQuery: true, allow: signedIn, wantCode: http.StatusSeeOther},
		"POST /logout":                      {method: "POST", path: "/logout", public: true, wantCode: http.StatusNoContent},
		"GET /ws":                           {method: "GET", path: "/ws", allow: signedIn, wantCode: http.StatusSwitchingProtocols},
		"GET /static/":                      {method: "GET", path: "/static/app.js", public: true},
		"GET /{$}":                          {method: "GET", path: "/", public: true},
		"GET /student":                      {method: "GET", path: "/student?id=s1", public: true},
		"GET /queue":                        {method: "GET", path: "/queue", public: true},
		"GET /notice":                       {method: "GET", path: "/notice?ref=" + ref, public: true},
		"GET /summary":                      {method: "GET", path: "/summary", public: true},
		"GET /api/v1/me":                    {method: "GET", path: "/api/v1/me", allow: signedIn},
		"GET /api/v1/classes/{class}/tiles": {method: "GET", path: "/api/v1/classes/S1/tiles", allow: []string{"admin", "instructor"}},
		"GET /api/v1/students/{id}":         {method: "GET", path: "/api/v1/students/s1", allow: seesS1},
		"GET /api/v1/warnings": {method: "GET", path: "/api/v1/warnings",
			allow: []string{"admin", "counsellor", "counsellor_out", "student", "student_out", "guardian", "guardian_out"},
			sees:  []string{"admin", "counsellor", "student", "guardian"}},
		"GET /api/v1/warnings/{ref}":         {method: "GET", path: "/api/v1/warnings/" + ref, allow: seesS1},
		"GET /api/v1/warnings/{ref}/reasons": {method: "GET", path: "/api/v1/warnings/" + ref + "/reasons", allow: seesS1},
		"POST /api/v1/warnings/{ref}/steps":  {method: "POST", path: "/api/v1/warnings/" + ref + "/steps", body: stepBody, allow: worksOnS1, wantCode: http.StatusAccepted},
		"GET /api/v1/warnings/{ref}/notice":  {method: "GET", path: "/api/v1/warnings/" + ref + "/notice", allow: seesS1},
		"GET /api/v1/summary":                {method: "GET", path: "/api/v1/summary?unit=U1", allow: []string{"admin", "counsellor"}},
		"PUT /api/v1/roster":                 {method: "PUT", path: "/api/v1/roster", body: `[{"student":"s1","unit":"U1","class":"S1"}]`, allow: []string{"admin"}},
		"POST /api/v1/admin/revocations":     {method: "POST", path: "/api/v1/admin/revocations", body: `{"sub":"nobody-x","reason":"matrix"}`, allow: []string{"admin"}, wantCode: http.StatusCreated},
		"GET /api/v1/admin/revocations":      {method: "GET", path: "/api/v1/admin/revocations", allow: []string{"admin"}},
		"/api/":                              {method: "GET", path: "/api/v1/no-such-route", allow: signedIn, wantCode: http.StatusNotFound},

		// Help plans, deliveries and reports (issue 9).
		"GET /api/v1/warnings/{ref}/plan":       {method: "GET", path: "/api/v1/warnings/" + ref + "/plan", allow: worksOnS1},
		"GET /api/v1/warnings/{ref}/deliveries": {method: "GET", path: "/api/v1/warnings/" + ref + "/deliveries", allow: worksOnS1},
		"GET /api/v1/reports/effectiveness":     {method: "GET", path: "/api/v1/reports/effectiveness?term=2026-autumn", allow: []string{"admin", "counsellor", "counsellor_out"}},
		"GET /effectiveness":                    {method: "GET", path: "/effectiveness", public: true},
	}
}

// matrixChannels has one row per WebSocket channel kind in channelRules.
// For the warnings feed, sees lists who is sent s1's warning from the
// backlog (everyone may subscribe; each warning is filtered).
var matrixChannels = map[string]struct {
	channel string
	allow   []string
	sees    []string
}{
	chanWarnings: {"warnings", signedIn, seesS1},
	chanClass:    {"class:S1", []string{"admin", "instructor"}, nil},
	chanStudent:  {"student:s1", seesS1, nil},
}

// matrixFixture puts s1 in the roster (unit U1), live in session S1, with
// a grade warning that staff confirmed (so released to s1) and a notice.
func matrixFixture(t *testing.T, h *harness) *stream.Warning {
	t.Helper()
	ctx := context.Background()
	if err := queue.NewStore(h.rdb).SetRoster(ctx, []queue.RosterEntry{{Student: "s1", Unit: "U1", Class: "S1"}, {Student: "s2", Unit: "U2"}}); err != nil {
		t.Fatal(err)
	}
	tile := &stream.Tile{Header: stream.NewHeader("s1", time.Now()), Session: "S1", Course: "C1", Captured: true, Attention: 0.5, FacePresent: true}
	b, err := stream.Encode(tile)
	if err != nil {
		t.Fatal(err)
	}
	h.rdb.HSet(ctx, TilesKey("S1"), "s1", string(b))
	w := warning("s1", "S1", "C1", stream.CategoryGrade, stream.LevelYellow)
	step := func(action string) *stream.Intervention {
		return &stream.Intervention{Header: stream.NewHeader("s1", time.Now()), Warning: w.Ref, Action: action, By: "c1"}
	}
	h.project(w, step(stream.ActionConfirm), step(stream.ActionNotice))
	h.xaddWarning(w)
	return w
}

// TestAuthorisationMatrix asks every route, page and WebSocket channel as
// every role, in and out of scope, and without a token, and compares the
// answer with the design's table. A route the server registers without a
// row (or a row for a route that is gone) fails the test.
func TestAuthorisationMatrix(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	w := matrixFixture(t, h)
	rows := matrixRoutes(w.Ref)

	var missing, stale []string
	for _, p := range h.srv.patterns {
		if _, ok := rows[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range rows {
		if !slices.Contains(h.srv.patterns, p) {
			stale = append(stale, p)
		}
	}
	if len(missing) > 0 || len(stale) > 0 {
		t.Fatalf("the matrix and the route table differ: routes without a row %v; rows without a route %v", missing, stale)
	}
	for kind := range channelRules {
		if _, ok := matrixChannels[kind]; !ok {
			t.Fatalf("WebSocket channel kind %q has no matrix row", kind)
		}
	}

	tokens := map[string]string{}
	for name, c := range matrixPrincipals {
		tokens[name] = h.token(c)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ask := func(row routeRow, who, origin, contentType string) (int, string) {
		t.Helper()
		path := row.path
		if row.tokenInQuery && who != anonymous {
			path += "?token=" + url.QueryEscape(tokens[who])
		}
		req, _ := http.NewRequest(row.method, h.base+path, strings.NewReader(row.body))
		if who != anonymous && !row.tokenInQuery {
			req.Header.Set("Authorization", "Bearer "+tokens[who])
		}
		if row.body != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if row.wantCode == http.StatusSwitchingProtocols {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s as %s: %v", row.method, path, who, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return resp.StatusCode, ""
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	patterns := make([]string, 0, len(rows))
	for p := range rows {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	for _, pattern := range patterns {
		row := rows[pattern]
		if row.wantCode == 0 {
			row.wantCode = http.StatusOK
		}
		for _, who := range everyone {
			t.Run(pattern+"/"+who, func(t *testing.T) {
				code, body := ask(row, who, "", "application/json")
				want := http.StatusForbidden
				switch {
				case row.public || slices.Contains(row.allow, who):
					want = row.wantCode
				case who == anonymous:
					want = http.StatusUnauthorized
				}
				if code != want {
					t.Fatalf("%s %s as %s: %d, want %d (%s)", row.method, row.path, who, code, want, body)
				}
				if row.sees != nil && code == http.StatusOK {
					if got, wantSee := strings.Contains(body, w.Ref), slices.Contains(row.sees, who); got != wantSee {
						t.Fatalf("%s as %s: mentions s1's warning %v, want %v: %s", row.path, who, got, wantSee, body)
					}
				}
				if row.public && strings.Contains(body, w.Ref) {
					t.Fatalf("public route %s carries s1's warning", row.path)
				}
			})
		}
		if row.public || row.tokenInQuery {
			continue
		}
		// The browser defences hold on every signed-in route, even for admins.
		t.Run(pattern+"/foreign origin", func(t *testing.T) {
			if code, body := ask(row, "admin", "https://evil.example", "application/json"); code != http.StatusForbidden {
				t.Fatalf("admin from a foreign origin: %d, want 403 (%s)", code, body)
			}
		})
		if row.body != "" {
			t.Run(pattern+"/form body", func(t *testing.T) {
				if code, body := ask(row, "admin", "", "application/x-www-form-urlencoded"); code != http.StatusUnsupportedMediaType {
					t.Fatalf("admin posting a form: %d, want 415 (%s)", code, body)
				}
			})
		}
	}

	kinds := make([]string, 0, len(matrixChannels))
	for k := range matrixChannels {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		ch := matrixChannels[kind]
		for _, who := range signedIn {
			t.Run("ws "+ch.channel+"/"+who, func(t *testing.T) {
				c, _, err := h.dial(tokens[who], nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				msg := map[string]any{"op": "subscribe", "channel": ch.channel}
				if ch.sees != nil {
					msg["backlog"] = 100
				}
				send(t, c, msg)
				var f anyFrame
				sawS1 := false
				for f.Type != "subscribed" && f.Type != "error" {
					f = nextOf(t, c, 5*time.Second, "subscribed", "error", "warning")
					if f.Type == "warning" && f.Warning != nil && f.Warning.Ref == w.Ref {
						sawS1 = true
					}
				}
				if ch.sees != nil && sawS1 != slices.Contains(ch.sees, who) {
					t.Fatalf("%s as %s: sent s1's warning %v, want %v", ch.channel, who, sawS1, slices.Contains(ch.sees, who))
				}
				if allowed := slices.Contains(ch.allow, who); allowed != (f.Type == "subscribed") {
					t.Fatalf("subscribe %s as %s: %s %d %s, want allowed=%v", ch.channel, who, f.Type, f.Code, f.Reason, allowed)
				}
				if f.Type == "error" && f.Code != http.StatusForbidden {
					t.Fatalf("refusal code %d, want 403", f.Code)
				}
			})
		}
	}
	t.Run("ws unknown channel kind is refused", func(t *testing.T) {
		if reason := h.srv.channelDenied(context.Background(), &Principal{Claims: matrixPrincipals["admin"]}, "everything", ""); reason == "" {
			t.Fatal("a channel kind without a rule was allowed")
		}
	})
}

// nextOf reads frames until one has one of the types.
func nextOf(t testing.TB, c *websocket.Conn, timeout time.Duration, types ...string) anyFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a %v frame: %v", types, err)
		}
		var f anyFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if slices.Contains(types, f.Type) {
			return f
		}
	}
}
