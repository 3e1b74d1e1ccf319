package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/classpulse/classpulse/stream"
	"github.com/redis/go-redis/v9"
)

// Revocation list, shared by every dashboard replica through Redis.
const (
	// RevokedKey is a hash of revocations: field "jti:<token id>" or
	// "sub:<subject>", value a Revocation as JSON.
	RevokedKey = "{auth}:revoked"
	// RevokedChannel carries the field of each new revocation, so replicas
	// apply it at once instead of at their next poll.
	RevokedChannel = "classpulse:auth:revoked"
	// MaxTokenTTL is the longest lifetime `classpulse token` issues; a
	// revocation is kept this long, after which every token it could
	// match has expired anyway.
	MaxTokenTTL = 90 * 24 * time.Hour
)

// Revocation refuses tokens: the one with token id JTI, or every token of
// Subject issued at or before At (so a user whose role changed gets a new
// token that works, while every older one stops). Exactly one of JTI and
// Subject is set.
type Revocation struct {
	JTI     string `json:"jti,omitempty"`
	Subject string `json:"sub,omitempty"`
	// At is when it was revoked (Unix seconds); Until when the entry may
	// be forgotten (At + MaxTokenTTL).
	At     int64  `json:"at"`
	Until  int64  `json:"until"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

func (r *Revocation) field() string {
	if r.JTI != "" {
		return "jti:" + r.JTI
	}
	return "sub:" + r.Subject
}

// Validate checks a revocation before it is stored.
func (r *Revocation) Validate() error {
	if (r.JTI == "") == (r.Subject == "") {
		return errors.New("name exactly one of jti (one token) or sub (every token of a user)")
	}
	for field, v := range map[string]string{"jti": r.JTI, "sub": r.Subject} {
		if v != "" && !validIdent(v) {
			return fmt.Errorf("%s %q: 1..64 letters, digits and -_.:@", field, v)
		}
	}
	if !validIdent(r.By) {
		return fmt.Errorf("by %q: 1..64 letters, digits and -_.:@", r.By)
	}
	if len(r.Reason) > 200 {
		return errors.New("reason longer than 200 bytes")
	}
	return nil
}

// Revoke stores a revocation in Redis and tells every replica. Each
// replica refuses matching tokens (401) from then on and closes the
// WebSockets opened with them within its RevocationPoll. `classpulse token
// revoke` and POST /api/v1/admin/revocations both call it.
func Revoke(ctx context.Context, rdb redis.UniversalClient, r Revocation, now time.Time) (Revocation, error) {
	r.At = now.Unix()
	r.Until = now.Add(MaxTokenTTL).Unix()
	if err := r.Validate(); err != nil {
		return r, err
	}
	b, _ := json.Marshal(r)
	if err := rdb.HSet(ctx, RevokedKey, r.field(), b).Err(); err != nil {
		return r, fmt.Errorf("storing the revocation: %w", err)
	}
	// A lost publish only delays the other replicas until their next poll.
	_ = rdb.Publish(ctx, RevokedChannel, r.field()).Err()
	return r, nil
}

// ListRevocations reads the revocation list, dropping (and deleting)
// entries past their Until.
func ListRevocations(ctx context.Context, rdb redis.UniversalClient, now time.Time) ([]Revocation, error) {
	m, err := rdb.HGetAll(ctx, RevokedKey).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the revocation list: %w", err)
	}
	out := make([]Revocation, 0, len(m))
	var stale []string
	for f, v := range m {
		var r Revocation
		if err := json.Unmarshal([]byte(v), &r); err != nil || r.field() != f {
			// Not ours or damaged: refuse nothing because of it, keep it
			// for an operator to look at.
			continue
		}
		if r.Until <= now.Unix() {
			stale = append(stale, f)
			continue
		}
		out = append(out, r)
	}
	if len(stale) > 0 {
		_ = rdb.HDel(ctx, RevokedKey, stale...).Err()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out, nil
}

// revocations is a replica's copy of the list, consulted on every request.
type revocations struct {
	mu  sync.RWMutex
	jti map[string]bool
	sub map[string]int64 // subject → revoked at (Unix seconds)
}

func (v *revocations) set(list []Revocation) {
	jti, sub := map[string]bool{}, map[string]int64{}
	for _, r := range list {
		if r.JTI != "" {
			jti[r.JTI] = true
		} else if r.At > sub[r.Subject] {
			sub[r.Subject] = r.At
		}
	}
	v.mu.Lock()
	v.jti, v.sub = jti, sub
	v.mu.Unlock()
}

// revoked reports whether c is refused, and why.
func (v *revocations) revoked(c *Claims) (bool, string) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.jti[c.ID] {
		return true, "token revoked"
	}
	if at, ok := v.sub[c.Subject]; ok && c.IssuedAt <= at {
		return true, "every token of this user issued before " + time.Unix(at, 0).UTC().Format(time.RFC3339) + " is revoked; sign in again"
	}
	return false, ""
}

// refreshRevocations reloads the list and closes the WebSockets of every
// revoked token. On a Redis error the last list stays in force.
func (s *Server) refreshRevocations(ctx context.Context) {
	list, err := ListRevocations(ctx, s.rdb, s.now())
	if err != nil {
		if ctx.Err() == nil {
			s.metrics.redisErrors.Inc()
			s.logger.Warn("revocation list not refreshed; the last one stays in force", "err", err)
		}
		return
	}
	s.revoked.set(list)
	closed := map[string]bool{}
	// The hub knows every open WebSocket and its principal.
	for _, p := range s.hub.principals() {
		if bad, _ := s.revoked.revoked(&p.Claims); bad && !closed[p.Subject] {
			closed[p.Subject] = true
			n := s.CloseSessionsOf(p.Subject, "token revoked")
			s.auditLog.Info("closed the WebSockets of a revoked token", "sub", p.Subject, "role", string(p.Role), "jti", p.ID, "closed", n)
		}
	}
}

// followRevocations keeps the replica's list current: at start, on every
// message on RevokedChannel, and every RevocationPoll in case a message
// was missed (go-redis resubscribes after a Redis restart).
func (s *Server) followRevocations(ctx context.Context) {
	ps := s.rdb.Subscribe(ctx, RevokedChannel)
	defer ps.Close()
	ch := ps.Channel()
	t := time.NewTicker(s.cfg.RevocationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
		s.refreshRevocations(ctx)
	}
}

// revocationBody is the body of POST /api/v1/admin/revocations.
type revocationBody struct {
	JTI     string `json:"jti,omitempty"`
	Subject string `json:"sub,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func (s *Server) apiRevoke(w http.ResponseWriter, r *http.Request, p *Principal) {
	if p.Role != RoleAdmin {
		s.deny(w, r, p, http.StatusForbidden, "only admins revoke tokens")
		return
	}
	var body revocationBody
	if field, err := decodeBody(r, s.cfg.maxBodyBytes(), &body); err != nil {
		writeErr(w, http.StatusBadRequest, field, err.Error())
		return
	}
	rev := Revocation{JTI: body.JTI, Subject: body.Subject, By: p.Subject, Reason: body.Reason}
	if err := rev.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, "", err.Error())
		return
	}
	rev, err := Revoke(r.Context(), s.rdb, rev, s.now())
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	// The reason is free text from the request: it goes to the audit
	// topic and the revocation list, never to the log.
	s.auditLog.Info("token revoked", "by", p.Subject, "by_jti", p.ID, "revoked", rev.field())
	s.record(r.Context(), p, stream.AuditRevoke, "", rev.field(), rev.Reason)
	// This replica applies it now; the others on the published message.
	s.refreshRevocations(r.Context())
	writeJSON(w, http.StatusCreated, rev)
}

func (s *Server) apiRevocations(w http.ResponseWriter, r *http.Request, p *Principal) {
	if p.Role != RoleAdmin {
		s.deny(w, r, p, http.StatusForbidden, "only admins see the revocation list")
		return
	}
	list, err := ListRevocations(r.Context(), s.rdb, s.now())
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revocations": list})
}
