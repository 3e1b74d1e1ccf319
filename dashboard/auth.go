package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Role is what a signed-in user is to classpulse.
type Role string

// The roles of issue 6.
const (
	RoleAdmin      Role = "admin"      // everything, including term summaries of every unit
	RoleInstructor Role = "instructor" // their classes: live grid, live signals, the class's warnings
	RoleCounsellor Role = "counsellor" // their assigned students (or units): queue, help loop
	RoleStudent    Role = "student"    // themself, released warnings only
	RoleGuardian   Role = "guardian"   // their own minor child, released warnings only
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleInstructor, RoleCounsellor, RoleStudent, RoleGuardian}

// Staff reports whether the role works on students (sees unreleased warnings).
func (r Role) Staff() bool { return r == RoleAdmin || r == RoleInstructor || r == RoleCounsellor }

// Claims are the signed contents of a token. The issuer (an admin running
// `classpulse token`, or the school's sign-on bridge) asserts the scopes;
// the server enforces them on every request and WebSocket channel.
type Claims struct {
	// Subject is the user's id: a staff id, or the student's own id for
	// the student role.
	Subject string `json:"sub"`
	Role    Role   `json:"role"`
	// Name is shown in the page header and recorded as nobody's authority.
	Name string `json:"name,omitempty"`
	// Classes an instructor teaches: live session ids or course ids.
	Classes []string `json:"classes,omitempty"`
	// Students a counsellor is assigned, or a guardian's minor child.
	Students []string `json:"students,omitempty"`
	// Units are teaching units a counsellor serves (all their students).
	Units []string `json:"units,omitempty"`
	// IssuedAt and Expires are Unix seconds.
	IssuedAt int64 `json:"iat"`
	Expires  int64 `json:"exp"`
	// ID makes every token distinct, for the audit log.
	ID string `json:"jti"`
}

// Validate checks that the claims name a role and the scope that role needs.
func (c *Claims) Validate() error {
	if !slices.Contains(Roles, c.Role) {
		return fmt.Errorf("role %q is not one of %v", c.Role, Roles)
	}
	if !validIdent(c.Subject) {
		return fmt.Errorf("sub %q: 1..64 letters, digits and -_.:@", c.Subject)
	}
	// The token id keys the per-token rate limit, revocation and every
	// audit record, so a token without one cannot be issued or accepted.
	if !validIdent(c.ID) {
		return fmt.Errorf("jti %q: 1..64 letters, digits and -_.:@ (the token id)", c.ID)
	}
	for _, list := range [][]string{c.Classes, c.Students, c.Units} {
		if len(list) > 1000 {
			return fmt.Errorf("more than 1000 scope entries")
		}
		for _, s := range list {
			if !validIdent(s) {
				return fmt.Errorf("scope entry %q: 1..64 letters, digits and -_.:@", s)
			}
		}
	}
	switch c.Role {
	case RoleInstructor:
		if len(c.Classes) == 0 {
			return fmt.Errorf("an instructor token needs at least one class")
		}
	case RoleCounsellor:
		if len(c.Students) == 0 && len(c.Units) == 0 {
			return fmt.Errorf("a counsellor token needs assigned students or units")
		}
	case RoleGuardian:
		if len(c.Students) != 1 {
			return fmt.Errorf("a guardian token names exactly one (minor) child")
		}
	}
	if len(c.Name) > 200 {
		return fmt.Errorf("name longer than 200 bytes")
	}
	if c.Expires <= c.IssuedAt {
		return fmt.Errorf("exp must be after iat")
	}
	return nil
}

// validIdent mirrors the id rule of stream events.
func validIdent(s string) bool { return stream.ValidIdent(s) }

// Keys are the HMAC keys tokens are signed with, by key id. The first key
// in Order signs new tokens; every key verifies, so keys can be rotated by
// adding a new one in front and dropping the old one after the longest TTL.
type Keys struct {
	Order  []string
	Secret map[string][]byte
}

// MinKeyBytes is the shortest accepted signing secret.
const MinKeyBytes = 32

// ParseKeys reads keys in the form "kid=hexsecret,kid2=hexsecret2" (the
// --token-keys flag and CLASSPULSE_TOKEN_KEYS).
func ParseKeys(s string) (Keys, error) {
	k := Keys{Secret: map[string][]byte{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kid, hexs, ok := strings.Cut(part, "=")
		if !ok || !validIdent(kid) || strings.Contains(kid, ".") {
			return Keys{}, fmt.Errorf("token key %q: want kid=hexsecret (kid: letters, digits, -_:@)", redactKey(part))
		}
		sec, err := hex.DecodeString(hexs)
		if err != nil {
			return Keys{}, fmt.Errorf("token key %q: secret is not hex", kid)
		}
		if len(sec) < MinKeyBytes {
			return Keys{}, fmt.Errorf("token key %q: secret has %d bytes, want at least %d", kid, len(sec), MinKeyBytes)
		}
		if _, dup := k.Secret[kid]; dup {
			return Keys{}, fmt.Errorf("token key %q given twice", kid)
		}
		k.Order = append(k.Order, kid)
		k.Secret[kid] = sec
	}
	if len(k.Order) == 0 {
		return Keys{}, fmt.Errorf("no token keys given")
	}
	return k, nil
}

func redactKey(s string) string {
	if kid, _, ok := strings.Cut(s, "="); ok {
		return kid + "=…"
	}
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}

// NewKeys returns one fresh random key with id kid, and its flag form.
func NewKeys(kid string) (Keys, string, error) {
	sec := make([]byte, MinKeyBytes)
	if _, err := rand.Read(sec); err != nil {
		return Keys{}, "", err
	}
	spec := kid + "=" + hex.EncodeToString(sec)
	k, err := ParseKeys(spec)
	return k, spec, err
}

// tokenPrefix versions the token format.
const tokenPrefix = "cp1"

// MaxTokenBytes bounds a token before any parsing.
const MaxTokenBytes = 16 << 10

// IssueToken signs claims with the first key. IssuedAt defaults to now and
// ID to a random value; Expires must be set.
func IssueToken(keys Keys, c Claims) (string, error) {
	if len(keys.Order) == 0 {
		return "", fmt.Errorf("issue token: no signing key")
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = time.Now().Unix()
	}
	if c.ID == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		c.ID = hex.EncodeToString(b)
	}
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	kid := keys.Order[0]
	signed := tokenPrefix + "." + kid + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(sign(keys.Secret[kid], signed)), nil
}

func sign(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// ParseToken verifies a token's signature with the key it names and checks
// its claims and expiry at now. Every failure wraps ErrBadToken or
// ErrExpired and says what is wrong without echoing the token.
func ParseToken(keys Keys, token string, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadToken, MaxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return nil, fmt.Errorf("%w: not a %s token", ErrBadToken, tokenPrefix)
	}
	key, ok := keys.Secret[parts[1]]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key id", ErrBadToken)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrBadToken)
	}
	if !hmac.Equal(sig, sign(key, parts[0]+"."+parts[1]+"."+parts[2])) {
		return nil, fmt.Errorf("%w: signature does not match", ErrBadToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrBadToken)
	}
	var c Claims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if now.Unix() >= c.Expires {
		return nil, fmt.Errorf("%w at %s", ErrExpired, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return &c, nil
}
