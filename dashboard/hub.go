package dashboard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/classpulse/classpulse/stream"
	"github.com/coder/websocket"
)

// hub routes the live feed to connected clients. It holds the subscription
// indexes and the writer pool; each client holds its own send queue and
// resume position. The hub never blocks on a client: a client whose queue
// is full is dropped.
type hub struct {
	s         *Server
	logger    *slog.Logger
	writers   *writerPool
	pingEvery time.Duration // first ping of a new client
	roster    rosterByClass // the class roster, for not-captured tiles

	mu          sync.RWMutex
	closing     bool // shutdown: no new clients
	clients     map[*client]struct{}
	warnSubs    map[*client]struct{}
	classSubs   map[string]map[*client]struct{}
	studentSubs map[string]map[*client]struct{}
}

func newHub(s *Server) *hub {
	return &hub{
		s:           s,
		logger:      s.logger.With("component", "hub"),
		writers:     newWriterPool(),
		pingEvery:   30 * time.Second,
		clients:     map[*client]struct{}{},
		warnSubs:    map[*client]struct{}{},
		classSubs:   map[string]map[*client]struct{}{},
		studentSubs: map[string]map[*client]struct{}{},
	}
}

// add registers a client; false once the hub is shutting down.
func (h *hub) add(c *client) bool {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return false
	}
	h.clients[c] = struct{}{}
	n := len(h.clients)
	h.mu.Unlock()
	h.s.metrics.wsClients.Set(float64(n))
	return true
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	delete(h.warnSubs, c)
	for k, set := range h.classSubs {
		if _, ok := set[c]; ok {
			delete(set, c)
			if len(set) == 0 {
				delete(h.classSubs, k)
			}
		}
	}
	for k, set := range h.studentSubs {
		if _, ok := set[c]; ok {
			delete(set, c)
			if len(set) == 0 {
				delete(h.studentSubs, k)
			}
		}
	}
	n := len(h.clients)
	h.mu.Unlock()
	h.s.metrics.wsClients.Set(float64(n))
}

func (h *hub) subscribeWarnings(c *client) {
	h.mu.Lock()
	h.warnSubs[c] = struct{}{}
	h.mu.Unlock()
}

func addTo(m map[string]map[*client]struct{}, key string, c *client) {
	set := m[key]
	if set == nil {
		set = map[*client]struct{}{}
		m[key] = set
	}
	set[c] = struct{}{}
}

func removeFrom(m map[string]map[*client]struct{}, key string, c *client) {
	if set := m[key]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(m, key)
		}
	}
}

func (h *hub) unsubscribe(c *client, channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kind, arg := splitChannel(channel)
	switch kind {
	case chanWarnings:
		delete(h.warnSubs, c)
	case chanClass:
		removeFrom(h.classSubs, arg, c)
	case chanStudent:
		removeFrom(h.studentSubs, arg, c)
	}
}

// clientCount reports the connected clients.
func (h *hub) clientCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// watchdog drops clients whose write has been stuck longer than the write
// timeout, and pings each client every pingEvery (counted from when it
// connected, so pings are spread out) so that dead peers are found. One
// goroutine does this for all clients; each ping waits for its pong on a
// goroutine of its own.
func (h *hub) watchdog(ctx context.Context, pingEvery time.Duration) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var cs []*client
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			limit := now.Add(-h.s.cfg.WriteTimeout).UnixNano()
			h.mu.RLock()
			cs = cs[:0]
			for c := range h.clients {
				cs = append(cs, c)
			}
			h.mu.RUnlock()
			for _, c := range cs {
				if st := c.writeStart.Load(); st != 0 && st < limit {
					c.kill(reasonSlow)
				} else if np := c.nextPing.Load(); np <= now.UnixNano() {
					c.nextPing.Store(now.Add(pingEvery).UnixNano())
					go c.ping()
				}
			}
			clear(cs)
		}
	}
}

// principals returns the principal of every open WebSocket (one per
// connection), e.g. to find the connections of revoked tokens.
func (h *hub) principals() []*Principal {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*Principal, 0, len(h.clients))
	for c := range h.clients {
		out = append(out, c.p)
	}
	return out
}

// CloseSessionsOf closes every open WebSocket of the user subject (the
// sub claim of the token the connection was opened with, Principal.Subject)
// and returns how many it closed. Each client receives close status 1008
// (policy violation) with reason as its close reason (cut to 120 bytes;
// keep it short and free of secrets, e.g. "token revoked"), and is counted
// under classpulse_dashboard_websocket_disconnects_total{reason="revoked"}.
// It does not wait for the close handshakes (each bounded to a few seconds
// by the WebSocket library) and never blocks on a slow client. It is safe
// to call from any goroutine at any time, including before Run or after
// shutdown (it then returns 0). Token revocation calls it; a connection the
// user opens afterwards is refused or accepted by authentication as usual.
func (s *Server) CloseSessionsOf(subject, reason string) int {
	h := s.hub
	h.mu.RLock()
	var cs []*client
	for c := range h.clients {
		if c.p.Subject == subject {
			cs = append(cs, c)
		}
	}
	h.mu.RUnlock()
	n := 0
	for _, c := range cs {
		if c.closeWith(reasonRevoked, websocket.StatusPolicyViolation, reason, true) {
			n++
		}
	}
	if n > 0 {
		s.logger.Info("closed the WebSockets of a user", "sub", subject, "closed", n, "reason", reason)
	}
	return n
}

// closeAll disconnects every client at shutdown and refuses new ones.
func (h *hub) closeAll() {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.mu.RLock()
	cs := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	h.mu.RUnlock()
	for _, c := range cs {
		c.kill(reasonShutdown)
	}
	h.writers.close()
}

// Frames the server sends (docs/api.md).
type warningFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Warning json.RawMessage `json:"warning"`
}

type tileFrame struct {
	Type string          `json:"type"`
	Tile json.RawMessage `json:"tile"`
}

type interventionFrame struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Intervention json.RawMessage `json:"intervention"`
}

// outFrame is one message as a complete WebSocket frame (header and
// payload), encoded once and shared by every client it goes to.
type outFrame struct{ b []byte }

func newFrame(v any) *outFrame { return &outFrame{b: textFrame(mustJSON(v))} }

// textFrame encodes payload as one unfragmented text frame from a server
// (RFC 6455 section 5.2: FIN, opcode 1, no mask, the shortest length form).
func textFrame(payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n <= 125:
		b = make([]byte, 2, 2+n)
		b[1] = byte(n)
	case n <= 0xffff:
		b = make([]byte, 4, 4+n)
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10, 10+n)
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[0] = 0x81 // FIN, text
	return append(b, payload...)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only frames of raw, already validated JSON and plain structs are
		// marshalled here; failure is a programming error.
		panic(err)
	}
	return b
}

// onWarning fans one entry of the live warnings stream out. It runs on the
// single reader goroutine, so entries reach every client in stream order.
func (h *hub) onWarning(ctx context.Context, id string, raw []byte) {
	var w stream.Warning
	if err := stream.DecodeInto(raw, &w); err != nil {
		h.s.metrics.live.WithLabelValues("warning", "invalid").Inc()
		h.logger.Warn("invalid warning on the live stream, skipped", "stream_id", id, "err", err)
		return
	}
	sid, err := parseStreamID(id)
	if err != nil {
		return
	}
	h.s.metrics.live.WithLabelValues("warning", "ok").Inc()
	frame := newFrame(warningFrame{Type: "warning", ID: id, Warning: raw})
	v := h.s.visibility(ctx, &w)
	h.mu.RLock()
	targets := make([]*client, 0, len(h.warnSubs))
	for c := range h.warnSubs {
		targets = append(targets, c)
	}
	h.mu.RUnlock()
	sched := make([]*client, 0, len(targets))
	for _, c := range targets {
		if v.visibleTo(c.p) {
			c.offerWarning(sid, frame, &sched)
		}
	}
	h.writers.scheduleAll(sched)
}

// onTile sends one tile to the clients watching its session or course.
func (h *hub) onTile(raw []byte) {
	var t stream.Tile
	if err := stream.DecodeInto(raw, &t); err != nil {
		h.s.metrics.live.WithLabelValues("tile", "invalid").Inc()
		h.logger.Debug("invalid tile on the live channel, skipped", "err", err)
		return
	}
	h.s.metrics.live.WithLabelValues("tile", "ok").Inc()
	if r, ok := h.s.students.(tileRecorder); ok {
		r.record(&t)
	}
	frame := newFrame(tileFrame{Type: "tile", Tile: raw})
	h.mu.RLock()
	a, b := h.classSubs[t.Session], h.classSubs[t.Course]
	targets := make([]*client, 0, len(a)+len(b))
	for c := range a {
		targets = append(targets, c)
	}
	for c := range b {
		if _, dup := a[c]; !dup {
			targets = append(targets, c)
		}
	}
	h.mu.RUnlock()
	sched := make([]*client, 0, len(targets))
	for _, c := range targets {
		c.enqueueTo(frame, &sched)
	}
	h.writers.scheduleAll(sched)
}

// studentActions are the help-loop steps a student or guardian sees on a
// released warning; assignment and escalation are staff business.
var studentActions = map[string]bool{
	stream.ActionConfirm: true, stream.ActionNotice: true, stream.ActionPlan: true,
	stream.ActionFollowUp: true, stream.ActionClose: true,
}

// onIntervention sends a help-loop step to everyone viewing the student it
// concerns; a confirmation also releases the warning to the student's own
// connections.
func (h *hub) onIntervention(ctx context.Context, id string, raw []byte) {
	var iv stream.Intervention
	if err := stream.DecodeInto(raw, &iv); err != nil {
		h.s.metrics.live.WithLabelValues("intervention", "invalid").Inc()
		h.logger.Warn("invalid intervention on the live stream, skipped", "stream_id", id, "err", err)
		return
	}
	h.s.metrics.live.WithLabelValues("intervention", "ok").Inc()
	frame := newFrame(interventionFrame{Type: "intervention", ID: id, Intervention: raw})
	h.mu.RLock()
	targets := make([]*client, 0, len(h.studentSubs[iv.Student])+4)
	for c := range h.studentSubs[iv.Student] {
		targets = append(targets, c)
	}
	var warnTargets []*client
	if iv.Action == stream.ActionConfirm {
		for c := range h.warnSubs {
			if (c.p.Role == RoleStudent || c.p.Role == RoleGuardian) && c.p.CanSeeStudent(iv.Student, "", false) {
				warnTargets = append(warnTargets, c)
			}
		}
	}
	h.mu.RUnlock()
	released := -1 // unknown until a student or guardian needs it
	isReleased := func() bool {
		if released < 0 {
			released = 0
			if ok, _ := h.s.released(ctx, iv.Warning); ok {
				released = 1
			}
		}
		return released == 1
	}
	for _, c := range targets {
		if c.p.Role.Staff() || (studentActions[iv.Action] && isReleased()) {
			c.enqueue(frame)
		}
	}
	if len(warnTargets) > 0 && isReleased() {
		rec, err := h.s.store.Get(ctx, iv.Warning)
		if err == nil && len(rec.Warning) > 0 {
			rf := newFrame(warningFrame{Type: "released", Warning: rec.Warning})
			for _, c := range warnTargets {
				c.enqueue(rf)
			}
		}
	}
}
