package dashboard

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTripAndRejections(t *testing.T) {
	keys, _, err := NewKeys("k1")
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := NewKeys("k1")
	now := time.Now()
	good := Claims{Subject: "t.li", Role: RoleInstructor, Classes: []string{"C1"}, Expires: now.Add(time.Hour).Unix()}
	tok, err := IssueToken(keys, good)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseToken(keys, tok, now)
	if err != nil || c.Subject != "t.li" || c.Role != RoleInstructor || c.Classes[0] != "C1" {
		t.Fatalf("round trip: %+v %v", c, err)
	}
	forged, _ := IssueToken(other, good)
	parts := strings.Split(tok, ".")
	for _, tc := range []struct {
		name, tok string
		at        time.Time
		want      error
		says      string
	}{
		{"other key", forged, now, ErrBadToken, "signature"},
		{"expired", tok, now.Add(2 * time.Hour), ErrExpired, "expired"},
		{"tampered payload", parts[0] + "." + parts[1] + "." + parts[2] + "x." + parts[3], now, ErrBadToken, ""},
		{"unknown key id", parts[0] + ".k2." + parts[2] + "." + parts[3], now, ErrBadToken, "unknown key"},
		{"not a token", "hello", now, ErrBadToken, "not a cp1 token"},
		{"huge", strings.Repeat("a", MaxTokenBytes+1), now, ErrBadToken, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToken(keys, tc.tok, tc.at)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

func TestClaimsNeedTheScopeOfTheirRole(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	for _, tc := range []struct {
		name string
		c    Claims
		ok   bool
	}{
		{"instructor without class", Claims{Subject: "a", Role: RoleInstructor, Expires: exp}, false},
		{"counsellor without students or units", Claims{Subject: "a", Role: RoleCounsellor, Expires: exp}, false},
		{"counsellor with unit", Claims{Subject: "a", Role: RoleCounsellor, Units: []string{"U1"}, Expires: exp}, true},
		{"guardian of two", Claims{Subject: "a", Role: RoleGuardian, Students: []string{"s1", "s2"}, Expires: exp}, false},
		{"unknown role", Claims{Subject: "a", Role: "root", Expires: exp}, false},
		{"brace in subject", Claims{Subject: "{a}", Role: RoleStudent, Expires: exp}, false},
		{"student", Claims{Subject: "s1", Role: RoleStudent, Expires: exp}, true},
		{"token id of one dash", Claims{Subject: "s1", Role: RoleStudent, Expires: exp, ID: "-"}, true},
		{"token id with a brace", Claims{Subject: "s1", Role: RoleStudent, Expires: exp, ID: "a}"}, false},
		{"token id missing", Claims{Subject: "s1", Role: RoleStudent, Expires: exp, ID: "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.IssuedAt == 0 {
				tc.c.IssuedAt = time.Now().Unix()
			}
			switch tc.c.ID {
			case "":
				tc.c.ID = "j1"
			case "none":
				tc.c.ID = ""
			}
			if err := tc.c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParseKeysRejectsWeakOrMalformedKeys(t *testing.T) {
	for _, spec := range []string{"", "k1", "k1=zz", "k1=00ff", "k.1=" + strings.Repeat("ab", 32), "k1=" + strings.Repeat("ab", 32) + ",k1=" + strings.Repeat("cd", 32)} {
		if _, err := ParseKeys(spec); err == nil {
			t.Errorf("ParseKeys(%q) accepted", spec)
		}
	}
	k, err := ParseKeys("new=" + strings.Repeat("ab", 32) + ", old=" + strings.Repeat("cd", 32))
	if err != nil || k.Order[0] != "new" || len(k.Secret) != 2 {
		t.Fatalf("two keys: %+v %v", k, err)
	}
}

func FuzzParseToken(f *testing.F) {
	keys, _, _ := NewKeys("k1")
	tok, _ := IssueToken(keys, Claims{Subject: "s1", Role: RoleStudent, Expires: time.Now().Add(time.Hour).Unix()})
	f.Add(tok)
	f.Add("cp1.k1.e30.AAAA")
	f.Add("cp1..." + strings.Repeat(".", 10))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseToken(keys, s, time.Now())
		if err == nil && c.Validate() != nil {
			t.Fatalf("accepted invalid claims %+v", c)
		}
		if err != nil && !errors.Is(err, ErrBadToken) && !errors.Is(err, ErrExpired) {
			t.Fatalf("error %v wraps neither ErrBadToken nor ErrExpired", err)
		}
	})
}

func FuzzParseClientMsg(f *testing.F) {
	for _, s := range []string{`{"op":"subscribe","channel":"warnings","after":"1-0"}`, `{"op":"ping"}`, `{"op":"subscribe","channel":"class:S1"}`, `{`, `[]`, `{"op":"subscribe","channel":"student:"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseClientMsg(b)
		if err != nil {
			return
		}
		if m.Op != "ping" {
			kind, arg := splitChannel(m.Channel)
			if kind != chanWarnings && !validIdent(arg) {
				t.Fatalf("accepted channel %q", m.Channel)
			}
		}
		if m.After != "" {
			if _, err := parseStreamID(m.After); err != nil {
				t.Fatalf("accepted after %q", m.After)
			}
		}
	})
}
