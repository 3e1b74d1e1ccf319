package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitClosed reads from c until the server closes it and returns the close
// status; it fails the test if that takes longer than within.
func waitClosed(t *testing.T, c *websocket.Conn, within time.Duration) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the WebSocket is still open after %v", within)
			}
			return websocket.CloseStatus(err)
		}
	}
}

// openSocket dials as tok and waits until the warnings subscription is
// acknowledged, so the connection is registered.
func openSocket(t *testing.T, h *harness, tok string) *websocket.Conn {
	t.Helper()
	c, _, err := h.dial(tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
	next(t, c, "subscribed", 5*time.Second)
	return c
}

func TestRevokingATokenRefusesItAndClosesItsWebSockets(t *testing.T) {
	// Two replicas on one Redis; the second never polls in this test's
	// time, so it learns of the revocation from the pub/sub notice.
	a := startHarness(t, Config{TokenKeys: testKeys}, nil)
	b := startHarnessOn(t, Config{TokenKeys: testKeys, RevocationPoll: time.Minute}, nil, a.redis, a.redis.Client(t))
	admin := a.token(Claims{Role: RoleAdmin, Subject: "root"})
	revoked := a.token(Claims{Role: RoleCounsellor, Subject: "c1", Students: []string{"s1"}})
	sameUser := a.token(Claims{Role: RoleCounsellor, Subject: "c1", Students: []string{"s1"}})
	onA, onB := openSocket(t, a, revoked), openSocket(t, b, revoked)

	code, m, body := a.do("POST", "/api/v1/admin/revocations", admin, `{"jti":"`+tokenID(t, a, revoked)+`","reason":"laptop stolen"}`)
	if code != 201 || m["by"] != "root" {
		t.Fatalf("revoke: %d %s", code, body)
	}
	for name, c := range map[string]*websocket.Conn{"replica a": onA, "replica b": onB} {
		if st := waitClosed(t, c, 10*time.Second); st != websocket.StatusPolicyViolation {
			t.Errorf("%s: close status %v, want 1008", name, st)
		}
	}
	for name, h := range map[string]*harness{"replica a": a, "replica b": b} {
		code, m, body := h.do("GET", "/api/v1/me", revoked, "")
		if code != 401 || !strings.Contains(m["reason"].(string), "revoked") {
			t.Errorf("%s: the revoked token got %d %s, want 401 naming the revocation", name, code, body)
		}
		if _, resp, err := h.dial(revoked, nil); err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("%s: a WebSocket with the revoked token was not refused 401 (%v)", name, err)
		}
		if code, _, body := h.do("GET", "/api/v1/me", sameUser, ""); code != 200 {
			t.Errorf("%s: the user's other token got %d %s, want 200", name, code, body)
		}
	}
	if code, _, body := a.do("GET", "/login?token="+revoked, "", ""); code != 401 {
		t.Errorf("signing in with the revoked token: %d %s", code, body)
	}
	code, m, body = a.do("GET", "/api/v1/admin/revocations", admin, "")
	if code != 200 || !strings.Contains(body, "laptop stolen") {
		t.Fatalf("revocation list: %d %s", code, body)
	}
	_ = m
}

func TestRevokingAUserRefusesEveryOlderTokenOnly(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	admin := h.token(Claims{Role: RoleAdmin, Subject: "root"})
	old1 := h.token(Claims{Role: RoleCounsellor, Subject: "c1", Students: []string{"s1"}})
	old2 := h.token(Claims{Role: RoleAdmin, Subject: "c1"})
	other := h.token(Claims{Role: RoleCounsellor, Subject: "c2", Students: []string{"s1"}})
	c := openSocket(t, h, old2)
	h.mustDo("POST", "/api/v1/admin/revocations", admin, `{"sub":"c1","reason":"role changed"}`, 201)
	if st := waitClosed(t, c, 10*time.Second); st != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v, want 1008", st)
	}
	// The new token for the user's new role, issued after the revocation.
	fresh := h.token(Claims{Role: RoleCounsellor, Subject: "c1", Students: []string{"s2"}, IssuedAt: time.Now().Add(2 * time.Second).Unix()})
	for _, tc := range []struct {
		name, tok string
		want      int
	}{
		{"older counsellor token", old1, 401},
		{"older admin token of the same user", old2, 401},
		{"another user", other, 200},
		{"token issued after the revocation", fresh, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, body := h.do("GET", "/api/v1/me", tc.tok, ""); code != tc.want {
				t.Fatalf("%d %s, want %d", code, body, tc.want)
			}
		})
	}
}

func TestRevocationPollClosesSocketsWhenTheNoticeIsLost(t *testing.T) {
	h := startHarness(t, Config{RevocationPoll: 200 * time.Millisecond}, nil)
	tok := h.token(Claims{Role: RoleStudent, Subject: "s1"})
	c := openSocket(t, h, tok)
	// Written straight to Redis without the pub/sub notice, as if the
	// notice was lost: the next poll must find it.
	b, _ := json.Marshal(Revocation{Subject: "s1", At: time.Now().Unix(), Until: time.Now().Add(time.Hour).Unix(), By: "ops"})
	if err := h.rdb.HSet(context.Background(), RevokedKey, "sub:s1", b).Err(); err != nil {
		t.Fatal(err)
	}
	if st := waitClosed(t, c, 5*time.Second); st != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v, want 1008", st)
	}
}

func TestRevocationRequestsAreChecked(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	admin := h.token(Claims{Role: RoleAdmin, Subject: "root"})
	for _, tc := range []struct{ name, body string }{
		{"neither jti nor sub", `{"reason":"x"}`},
		{"both jti and sub", `{"jti":"a","sub":"b"}`},
		{"sub with a brace", `{"sub":"a}b"}`},
		{"unknown field", `{"sub":"a","all":true}`},
		{"reason too long", `{"sub":"a","reason":"` + strings.Repeat("x", 201) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, body := h.do("POST", "/api/v1/admin/revocations", admin, tc.body); code != 400 {
				t.Fatalf("%d %s, want 400", code, body)
			}
		})
	}
	list, err := ListRevocations(context.Background(), h.rdb, time.Now())
	if err != nil || len(list) != 0 {
		t.Fatalf("refused requests stored revocations: %v %v", list, err)
	}
	// Expired entries are forgotten.
	if _, err := Revoke(context.Background(), h.rdb, Revocation{Subject: "gone", By: "root"}, time.Now().Add(-MaxTokenTTL-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if list, err := ListRevocations(context.Background(), h.rdb, time.Now()); err != nil || len(list) != 0 {
		t.Fatalf("an expired revocation is still listed: %v %v", list, err)
	}
	if n, _ := h.rdb.HLen(context.Background(), RevokedKey).Result(); n != 0 {
		t.Fatalf("the expired revocation is still in Redis (%d fields)", n)
	}
	if err := (&Revocation{By: "x"}).Validate(); err == nil || errors.Is(err, ErrBadToken) {
		t.Fatalf("Validate of an empty revocation = %v", err)
	}
}

// testKeys is a fixed signing key, so two replicas accept the same tokens.
const testKeys = "t1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
