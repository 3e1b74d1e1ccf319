package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classpulse/classpulse/stream"
	"github.com/coder/websocket"
)

// Channel kinds a client may subscribe to.
const (
	chanWarnings = "warnings" // warnings the principal may see, resumable
	chanClass    = "class"    // class:<session or course>: tiles
	chanStudent  = "student"  // student:<id>: help-loop steps, releases
)

// Disconnect reasons, the label values of the disconnects metric.
const (
	reasonClosed    = "client_closed"
	reasonSlow      = "slow"
	reasonOversized = "oversized"
	reasonMalformed = "malformed"
	reasonShutdown  = "shutdown"
	reasonError     = "error"
	reasonRevoked   = "revoked"
)

func splitChannel(ch string) (kind, arg string) {
	kind, arg, _ = strings.Cut(ch, ":")
	return kind, arg
}

// clientMsg is a frame a client sends (docs/api.md).
type clientMsg struct {
	Op      string `json:"op"`
	Channel string `json:"channel,omitempty"`
	After   string `json:"after,omitempty"`
	Backlog int    `json:"backlog,omitempty"`
}

// parseClientMsg decodes and checks one client frame strictly.
func parseClientMsg(b []byte) (*clientMsg, error) {
	var m clientMsg
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object of op, channel, after, backlog: %v", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	switch m.Op {
	case "subscribe", "unsubscribe":
		kind, arg := splitChannel(m.Channel)
		switch kind {
		case chanWarnings:
			if arg != "" {
				return nil, errors.New("channel: \"warnings\" takes no argument")
			}
		case chanClass, chanStudent:
			if !validIdent(arg) {
				return nil, fmt.Errorf("channel: %q needs an id (letters, digits, -_.:@)", kind+":")
			}
		default:
			return nil, fmt.Errorf("channel: %q is not warnings, class:<id> or student:<id>", m.Channel)
		}
	case "ping":
	case "":
		return nil, errors.New("op: required")
	default:
		return nil, fmt.Errorf("op: %q is not subscribe, unsubscribe or ping", m.Op)
	}
	if m.After != "" {
		if _, err := parseStreamID(m.After); err != nil {
			return nil, fmt.Errorf("after: %v", err)
		}
	}
	if m.Backlog < 0 || m.Backlog > 1000 {
		return nil, errors.New("backlog: out of range 0..1000")
	}
	return &m, nil
}

type pendingFrame struct {
	id   streamID
	data *outFrame
}

// client is one WebSocket connection. The handler goroutine reads; frames
// to send wait in the client's queue until a worker of the hub's writer
// pool writes them (writers.go): there is no goroutine per client for
// writing. Whoever kills the client closes the connection; the reader then
// returns and removes it from the hub.
type client struct {
	s    *Server
	conn *websocket.Conn
	fw   *frameWriter // writes the connection (data and control frames)
	p    *Principal

	// The send queue: at most cfg.SendQueue frames; scheduled while the
	// client is on the writer pool's run queue or being drained.
	qmu       sync.Mutex
	q         []*outFrame
	spare     []*outFrame
	scheduled bool
	// room is signalled after each drain while roomWanted (a catch-up
	// waiting for room in the queue).
	room       chan struct{}
	roomWanted atomic.Bool

	// writeStart is when the write in progress began (Unix ns), 0 when
	// idle; the hub's watchdog drops a client stuck past the deadline.
	writeStart atomic.Int64
	// nextPing is when the watchdog pings the client next (Unix ns).
	nextPing atomic.Int64

	// ctx is the client's context for Redis calls: it ends with the client.
	ctx    context.Context
	cancel context.CancelFunc

	killOnce sync.Once
	reason   string
	dead     chan struct{} // closed when killed, just after gone is set
	gone     atomic.Bool

	mu         sync.Mutex
	catchingUp bool
	pending    []pendingFrame
	lastWarn   streamID
}

func (c *client) isDead() bool { return c.gone.Load() }

// kill disconnects the client at once, without a close handshake that a
// slow reader could stall.
func (c *client) kill(reason string) {
	c.killOnce.Do(func() {
		c.reason = reason
		c.gone.Store(true)
		close(c.dead)
		_ = c.conn.CloseNow()
	})
}

// enqueue offers a frame without blocking; a full queue drops the client.
func (c *client) enqueue(f *outFrame) { c.enqueueTo(f, nil) }

// enqueueTo is enqueue for a broadcast: when later is not nil, a client
// that needs a writer is appended to it instead of scheduled at once, and
// the caller schedules them all together (writerPool.scheduleAll).
func (c *client) enqueueTo(f *outFrame, later *[]*client) {
	switch c.tryEnqueue(f, later) {
	case queueFull:
		c.kill(reasonSlow)
	}
}

type enqueueResult int

const (
	queued enqueueResult = iota
	queueFull
	queueDead
)

// tryEnqueue appends f to the send queue if there is room, and hands the
// client to the writer pool (or to later) if it is not there already.
func (c *client) tryEnqueue(f *outFrame, later *[]*client) enqueueResult {
	c.qmu.Lock()
	if c.isDead() {
		c.qmu.Unlock()
		return queueDead
	}
	if len(c.q) >= c.s.cfg.SendQueue {
		c.qmu.Unlock()
		return queueFull
	}
	c.q = append(c.q, f)
	sched := !c.scheduled
	c.scheduled = true
	c.qmu.Unlock()
	if sched {
		if later != nil {
			*later = append(*later, c)
		} else {
			c.s.hub.writers.schedule(c)
		}
	}
	return queued
}

// offerWarning enqueues a live warning unless it was already sent (during
// a catch-up); while catching up, it is held and sent after the catch-up.
func (c *client) offerWarning(id streamID, frame *outFrame, later *[]*client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.catchingUp {
		if len(c.pending) >= c.s.cfg.SendQueue {
			c.kill(reasonSlow)
			return
		}
		c.pending = append(c.pending, pendingFrame{id, frame})
		return
	}
	if !c.lastWarn.less(id) {
		return
	}
	c.lastWarn = id
	c.enqueueTo(frame, later)
}

// ping checks that the peer is alive: a ping without its pong within the
// write timeout drops the client. It runs on its own short-lived goroutine
// (started by the watchdog) so that no writer waits for a round trip.
func (c *client) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
	defer cancel()
	if err := c.conn.Ping(ctx); err != nil {
		c.kill(reasonSlow)
	}
}

// readLoop handles client frames until the connection ends. Reads carry
// no context (a cancellable one costs a timer registration per read): a
// kill closes the connection, which ends the read. A frame's handling,
// which may call Redis, runs on a short-lived goroutine so that this
// long-lived one keeps a small stack.
func (c *client) readLoop() {
	defer c.cancel()
	for {
		typ, b, err := c.conn.Read(context.Background())
		if err != nil {
			switch {
			case websocket.CloseStatus(err) == websocket.StatusMessageTooBig || strings.Contains(err.Error(), "read limited"):
				c.s.audit(c.p, "ws", "oversized frame", "")
				c.kill(reasonOversized)
			default:
				c.kill(reasonClosed) // a no-op when the server killed it first
			}
			return
		}
		if typ != websocket.MessageText {
			c.refuse(websocket.StatusUnsupportedData, "binary frames are not accepted")
			return
		}
		m, err := parseClientMsg(b)
		if err != nil {
			c.s.metrics.wsRefused.WithLabelValues(reasonMalformed).Inc()
			c.refuse(websocket.StatusInvalidFramePayloadData, "malformed frame: "+err.Error())
			return
		}
		done := make(chan error, 1)
		go func() { done <- c.handle(c.ctx, m) }()
		if err := <-done; err != nil {
			c.kill(reasonError)
			return
		}
	}
}

// refuse closes the connection with a status and reason the client sees.
func (c *client) refuse(code websocket.StatusCode, reason string) {
	c.closeWith(reasonMalformed, code, reason, false)
}

// closeWith disconnects the client with a close handshake carrying code
// and reason (cut to what a close frame holds); label is the disconnects
// metric reason. In the background, the handshake (bounded to a few
// seconds by the library) does not hold up the caller. It reports whether
// this call closed the client (false: it was already going).
func (c *client) closeWith(label string, code websocket.StatusCode, reason string, background bool) bool {
	closed := false
	c.killOnce.Do(func() {
		closed = true
		c.reason = label
		c.gone.Store(true)
		close(c.dead)
		if len(reason) > 120 {
			reason = reason[:120]
		}
		if background {
			go func() { _ = c.conn.Close(code, reason) }()
		} else {
			_ = c.conn.Close(code, reason)
		}
	})
	return closed
}

type ackFrame struct {
	Type    string `json:"type"`
	Channel string `json:"channel,omitempty"`
	Last    string `json:"last,omitempty"`
	Code    int    `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

type snapshotFrame struct {
	Type    string            `json:"type"`
	Channel string            `json:"channel"`
	Tiles   []json.RawMessage `json:"tiles"`
}

func (c *client) handle(ctx context.Context, m *clientMsg) error {
	h := c.s.hub
	switch m.Op {
	case "ping":
		c.enqueue(newFrame(ackFrame{Type: "pong"}))
		return nil
	case "unsubscribe":
		h.unsubscribe(c, m.Channel)
		c.enqueue(newFrame(ackFrame{Type: "unsubscribed", Channel: m.Channel}))
		return nil
	}
	kind, arg := splitChannel(m.Channel)
	if reason := c.s.channelDenied(ctx, c.p, kind, arg); reason != "" {
		c.s.audit(c.p, "ws subscribe "+m.Channel, reason, "")
		c.enqueue(newFrame(ackFrame{Type: "error", Channel: m.Channel, Code: 403, Reason: reason}))
		return nil
	}
	switch kind {
	case chanWarnings:
		last, err := c.catchUp(ctx, m)
		if err != nil {
			return err
		}
		// After a catch-up the queue may be full: wait for room as the
		// catch-up did rather than drop the client.
		if err := c.sendBlocking(ctx, newFrame(ackFrame{Type: "subscribed", Channel: m.Channel, Last: last})); err != nil {
			return err
		}
	case chanClass:
		h.mu.Lock()
		addTo(h.classSubs, arg, c)
		h.mu.Unlock()
		snap := snapshotFrame{Type: "snapshot", Channel: m.Channel, Tiles: []json.RawMessage{}}
		if tiles, err := c.s.classTiles(ctx, arg); err != nil {
			c.s.logger.Warn("reading class tiles", "class", arg, "err", err)
		} else {
			snap.Tiles = tiles
		}
		c.enqueue(newFrame(ackFrame{Type: "subscribed", Channel: m.Channel}))
		c.enqueue(newFrame(snap))
	case chanStudent:
		h.mu.Lock()
		addTo(h.studentSubs, arg, c)
		h.mu.Unlock()
		c.enqueue(newFrame(ackFrame{Type: "subscribed", Channel: m.Channel}))
	}
	return nil
}

// catchUp subscribes the client to live warnings and first sends what it
// missed: entries after m.After, or the last m.Backlog entries. Live
// entries arriving meanwhile are held and sent after, without duplicates.
// It returns the id of the last entry sent.
func (c *client) catchUp(ctx context.Context, m *clientMsg) (string, error) {
	c.mu.Lock()
	c.catchingUp = m.After != "" || m.Backlog > 0
	c.mu.Unlock()
	c.s.hub.subscribeWarnings(c)
	if !c.catchingUp {
		return "", nil
	}
	var sent streamID
	if m.After != "" {
		sent, _ = parseStreamID(m.After)
	}
	send := func(id string, raw []byte) error {
		sid, err := parseStreamID(id)
		if err != nil || !sent.less(sid) {
			return nil
		}
		sent = sid
		var w stream.Warning
		if stream.DecodeInto(raw, &w) != nil {
			return nil
		}
		if !c.s.visibility(ctx, &w).visibleTo(c.p) {
			return nil
		}
		return c.sendBlocking(ctx, newFrame(warningFrame{Type: "warning", ID: id, Warning: raw}))
	}
	var err error
	if m.After != "" {
		err = c.s.rangeAfter(ctx, m.After, c.s.cfg.CatchUpLimit, send)
	} else {
		err = c.s.lastN(ctx, m.Backlog, send)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.catchingUp = false
	if sent.less(c.lastWarn) {
		sent = c.lastWarn
	}
	c.lastWarn = sent
	for _, p := range c.pending {
		if c.lastWarn.less(p.id) {
			c.lastWarn = p.id
			c.enqueue(p.data)
		}
	}
	c.pending = nil
	if err != nil {
		return "", err
	}
	return c.lastWarn.String(), nil
}

// sendBlocking queues a catch-up frame, waiting (within the write timeout)
// for room: a catch-up may be longer than the queue.
func (c *client) sendBlocking(ctx context.Context, f *outFrame) error {
	// Set before the first try: a drain after a try that found the queue
	// full sees it and signals room.
	c.roomWanted.Store(true)
	defer c.roomWanted.Store(false)
	var t *time.Timer
	for {
		switch c.tryEnqueue(f, nil) {
		case queued:
			if t != nil {
				t.Stop()
			}
			return nil
		case queueDead:
			return errors.New("client gone")
		}
		if t == nil {
			t = time.NewTimer(c.s.cfg.WriteTimeout)
			defer t.Stop()
		}
		select {
		case <-c.room:
		case <-c.dead:
			return errors.New("client gone")
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			c.kill(reasonSlow)
			return errors.New("client too slow for catch-up")
		}
	}
}

// serveWS upgrades an authenticated request to a WebSocket client. The
// handler returns once the client is set up: its reads continue on a
// goroutine of its own (readLoop), so that net/http's connection state,
// the request and the handler's deep stack are not kept for the life of
// every WebSocket (docs/performance.md, "Dashboard fan-out").
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, p *Principal) {
	bufs := &wsBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(bufs, r, &websocket.AcceptOptions{
		// The Origin was checked (and audit-logged) by the auth middleware
		// against the server's own origin and AllowedOrigins.
		InsecureSkipVerify: true,
		// Frames are small JSON; per-message deflate would cost a
		// compressor per connection and CPU per frame per client.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.metrics.wsRefused.WithLabelValues("handshake").Inc()
		return
	}
	conn.SetReadLimit(s.cfg.MaxMessageBytes)
	c := &client{s: s, conn: conn, fw: bufs.fw, p: p, room: make(chan struct{}, 1), dead: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(r.Context()))
	c.nextPing.Store(time.Now().Add(s.hub.pingEvery).UnixNano())
	if !s.hub.add(c) {
		c.cancel()
		c.kill(reasonShutdown)
		s.metrics.disconnects.WithLabelValues(c.reason).Inc()
		return
	}
	go func() {
		c.readLoop()
		s.hub.remove(c)
		s.metrics.disconnects.WithLabelValues(c.reason).Inc()
	}()
}

// wsReadBuffer is the read buffer of a WebSocket: clients send only short
// control frames (subscribe, ping), and a larger frame is still read whole.
// wsWriteBuffer is the library's write buffer, which now carries only the
// handshake and control frames (ping, pong, close, each < 140 bytes): data
// frames are encoded once per broadcast (outFrame) and written by the
// client's frameWriter past the library.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 512
)

// wsBuffers hands the WebSocket library small buffers in place of
// net/http's 4 KiB ones (freed with net/http's connection state once the
// handler returns), and a frameWriter under its write buffer.
type wsBuffers struct {
	http.ResponseWriter
	fw *frameWriter // set by Hijack
}

func (w *wsBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent right after the handshake may already be in
	// net/http's buffer: they go into the new buffer, where the library
	// looks for them (it replaces the buffer's source with the connection).
	early, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(wsReadBuffer, len(early)))
	if len(early) > 0 {
		if _, err := br.Peek(len(early)); err != nil {
			return nil, nil, err
		}
	}
	w.fw = &frameWriter{conn: conn}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.fw, wsWriteBuffer)), nil
}

func (w *wsBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// frameWriter owns the writing side of a WebSocket's connection. The
// library's write buffer flushes into Write: the handshake response and
// control frames (ping, pong, close), each flushed whole in one Write
// since it fits the buffer and the buffer holds nothing else. The writer
// pool writes data frames, already encoded as complete WebSocket frames
// (outFrame), with writeFrames: a client's queued frames go to the socket
// in one write (another every corkLimit bytes). Both hold mu for the whole
// write, so a frame is never split by or interleaved with a control frame.
type frameWriter struct {
	conn net.Conn
	mu   sync.Mutex
}

// corkLimit bounds the bytes of one write of several frames.
const corkLimit = 64 << 10

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn.Write(p)
}

// writeFrames writes complete frames in order, nothing once dead is set.
// A close frame is written by the library only after the client is marked
// dead (closeWith), through Write, so no data frame follows it.
func (w *frameWriter) writeFrames(frames []*outFrame, dead *atomic.Bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if dead.Load() {
		return nil
	}
	if len(frames) == 1 {
		_, err := w.conn.Write(frames[0].b)
		return err
	}
	bp := corkBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for i, f := range frames {
		buf = append(buf, f.b...)
		if len(buf) >= corkLimit || i == len(frames)-1 {
			if _, err = w.conn.Write(buf); err != nil {
				break
			}
			buf = buf[:0]
		}
	}
	if cap(buf) <= corkLimit+4096 {
		*bp = buf[:0]
		corkBufs.Put(bp)
	}
	return err
}
