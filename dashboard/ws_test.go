package dashboard

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
)

func TestWarningFromLiveStreamReachesSubscriber(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	c, _, err := h.dial(h.token(Claims{Role: RoleInstructor, Classes: []string{"S1"}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
	next(t, c, "subscribed", 5*time.Second)
	h.xaddWarning(warning("s9", "S2", "C9", stream.CategoryEngagement, stream.LevelYellow)) // another class: not sent
	w := warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelYellow)
	id := h.xaddWarning(w)
	f := next(t, c, "warning", 5*time.Second)
	if f.ID != id || f.Warning.Ref != w.Ref || f.Warning.Student != "s1" {
		t.Fatalf("got frame id %s warning %+v, want id %s ref %s", f.ID, f.Warning, id, w.Ref)
	}
}

func TestTilesReachClassSubscribersWithSnapshot(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	ctx := context.Background()
	tile := func(student string, att float64) string {
		tl := &stream.Tile{Header: stream.NewHeader(student, time.Now()), Session: "S1", Course: "C1", Captured: true, Attention: att, FacePresent: true}
		b, err := stream.Encode(tl)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	h.rdb.HSet(ctx, TilesKey("S1"), "s1", tile("s1", 0.8))
	c, _, err := h.dial(h.token(Claims{Role: RoleInstructor, Classes: []string{"S1"}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, map[string]any{"op": "subscribe", "channel": "class:S1"})
	snap := next(t, c, "snapshot", 5*time.Second)
	if len(snap.Tiles) != 1 {
		t.Fatalf("snapshot has %d tiles, want 1", len(snap.Tiles))
	}
	// Publish until the subscription of the replica is in place.
	deadline := time.Now().Add(5 * time.Second)
	got := make(chan anyFrame, 1)
	go func() { got <- next(t, c, "tile", 5*time.Second) }()
	for {
		h.rdb.Publish(ctx, LiveTiles, tile("s2", 0.2))
		select {
		case f := <-got:
			if f.Tile.Student != "s2" || f.Tile.Attention != 0.2 {
				t.Fatalf("tile %+v", f.Tile)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no tile frame")
		}
	}
}

func TestReconnectResumesAfterLastSeenWarning(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	tok := h.token(Claims{Role: RoleAdmin})
	c, _, err := h.dial(tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
	next(t, c, "subscribed", 5*time.Second)
	h.xaddWarning(warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelYellow))
	last := next(t, c, "warning", 5*time.Second).ID
	c.CloseNow()

	// Raised while the client was away.
	var missed []string
	for i := 0; i < 5; i++ {
		missed = append(missed, h.xaddWarning(warning("s2", "S1", "C1", stream.CategoryEngagement, stream.LevelRed)))
	}
	c2, _, err := h.dial(tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c2, map[string]any{"op": "subscribe", "channel": "warnings", "after": last})
	for _, want := range missed {
		if f := next(t, c2, "warning", 5*time.Second); f.ID != want {
			t.Fatalf("resumed with %s, want %s", f.ID, want)
		}
	}
	ack := next(t, c2, "subscribed", 5*time.Second)
	if ack.Last != missed[len(missed)-1] {
		t.Fatalf("ack last %s, want %s", ack.Last, missed[len(missed)-1])
	}
	// And live ones follow without duplicates.
	id := h.xaddWarning(warning("s3", "S1", "C1", stream.CategoryEngagement, stream.LevelRed))
	if f := next(t, c2, "warning", 5*time.Second); f.ID != id {
		t.Fatalf("live after resume: %s, want %s", f.ID, id)
	}
}

// A catch-up longer than the send queue waits for room after each drain
// instead of dropping the client or losing warnings.
func TestCatchUpLongerThanTheSendQueueArrivesWhole(t *testing.T) {
	h := startHarness(t, Config{SendQueue: 2}, nil)
	var missed []string
	for range 40 {
		missed = append(missed, h.xaddWarning(warning("s2", "S1", "C1", stream.CategoryEngagement, stream.LevelRed)))
	}
	// The hub (which follows the stream from before Started) must have
	// read them before the client subscribes: live entries arriving during
	// a catch-up wait in a list as long as the send queue, and more of
	// them drop the client as too slow.
	testenv.WaitFor(t, 10*time.Second, "the hub read the live warnings", func() bool {
		return counterValue(t, h.reg, "classpulse_dashboard_live_messages_total", "kind", "warning") == 40
	})
	c, _, err := h.dial(h.token(Claims{Role: RoleAdmin}), nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, map[string]any{"op": "subscribe", "channel": "warnings", "after": "0-0"})
	for _, want := range missed {
		if f := next(t, c, "warning", 5*time.Second); f.ID != want {
			t.Fatalf("caught up with %s, want %s", f.ID, want)
		}
	}
	if ack := next(t, c, "subscribed", 5*time.Second); ack.Last != missed[len(missed)-1] {
		t.Fatalf("ack last %s, want %s", ack.Last, missed[len(missed)-1])
	}
}

func TestWebSocketRefusals(t *testing.T) {
	h := startHarness(t, Config{MaxMessageBytes: 1024}, nil)
	admin := h.token(Claims{Role: RoleAdmin})
	t.Run("unauthenticated", func(t *testing.T) {
		_, resp, err := h.dial("", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("want 401, got %v %v", resp, err)
		}
	})
	t.Run("forged token", func(t *testing.T) {
		other, _, _ := NewKeys("ephemeral")
		tok, _ := IssueToken(other, Claims{Subject: "x", Role: RoleAdmin, Expires: time.Now().Add(time.Hour).Unix()})
		_, resp, err := h.dial(tok, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("want 401, got %v %v", resp, err)
		}
	})
	t.Run("wrong origin", func(t *testing.T) {
		_, resp, err := h.dial(admin, http.Header{"Origin": {"http://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("want 403, got %v %v", resp, err)
		}
	})
	t.Run("own origin accepted", func(t *testing.T) {
		c, _, err := h.dial(admin, http.Header{"Origin": {"http://" + h.srv.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, map[string]any{"op": "ping"})
		next(t, c, "pong", 5*time.Second)
	})
	closeStatus := func(t *testing.T, c *websocket.Conn) websocket.StatusCode {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return websocket.CloseStatus(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		typ   websocket.MessageType
		frame string
		want  websocket.StatusCode
	}{
		{"oversized", websocket.MessageText, `{"op":"ping","channel":"` + strings.Repeat("x", 2000) + `"}`, websocket.StatusMessageTooBig},
		{"not json", websocket.MessageText, `{"op":`, websocket.StatusInvalidFramePayloadData},
		{"unknown op", websocket.MessageText, `{"op":"drop_table"}`, websocket.StatusInvalidFramePayloadData},
		{"unknown field", websocket.MessageText, `{"op":"ping","x":1}`, websocket.StatusInvalidFramePayloadData},
		{"bad channel", websocket.MessageText, `{"op":"subscribe","channel":"class:{evil}"}`, websocket.StatusInvalidFramePayloadData},
		{"binary", websocket.MessageBinary, `{"op":"ping"}`, websocket.StatusUnsupportedData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := h.dial(admin, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Write(ctx, tc.typ, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			if got := closeStatus(t, c); got != tc.want {
				t.Fatalf("close status %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("channel outside scope", func(t *testing.T) {
		c, _, err := h.dial(h.token(Claims{Role: RoleInstructor, Classes: []string{"S1"}}), nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, map[string]any{"op": "subscribe", "channel": "class:S2"})
		if f := next(t, c, "error", 5*time.Second); f.Code != 403 || !strings.Contains(f.Reason, "S2") {
			t.Fatalf("got %+v", f)
		}
	})
}

func TestSlowClientIsDroppedWithoutDelayingOthers(t *testing.T) {
	// More stalled clients than the writer pool has workers: each stuck
	// write is detached from the pool, so the fast client still gets every
	// warning.
	writers := newWriterPool().base
	for _, tc := range []struct {
		name string
		slow int
		cfg  Config
		// dropped: the slow clients are dropped during the run; with a
		// long write timeout and a deep queue they are still stuck in a
		// write at its end, and the fast one must not have waited for them.
		dropped bool
	}{
		{"one slow client", 1, Config{SendQueue: 128, WriteTimeout: 300 * time.Millisecond}, true},
		// Each stuck writer is detached after 20-30 ms and its replacement
		// may take the next slow client, so the fast one can wait two such
		// rounds while the unthrottled burst arrives: 128 frames filled in
		// that time on this machine (5 runs in 8 failed, before and after
		// the frame writer), 1024 leave room; the slow ones still go.
		{"more slow clients than writers", writers + 2, Config{SendQueue: 1024, WriteTimeout: 300 * time.Millisecond}, true},
		{"writers stuck on slow clients are replaced", writers + 2, Config{SendQueue: 1 << 16, WriteTimeout: time.Minute}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarness(t, tc.cfg, nil)
			tok := h.token(Claims{Role: RoleAdmin})
			subscribed := func() *websocket.Conn {
				c, _, err := h.dial(tok, nil)
				if err != nil {
					t.Fatal(err)
				}
				send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
				next(t, c, "subscribed", 5*time.Second)
				return c
			}
			for range tc.slow {
				subscribed() // never read again
			}
			fast := subscribed()
			if !tc.dropped {
				// Nothing is written for over a second: the pool's
				// supervisor goes idle, and the burst must wake it.
				time.Sleep(1500 * time.Millisecond)
			}

			// Large warnings fill the slow clients' socket buffers and then
			// their queues; the fast one must get every warning.
			ctx := context.Background()
			big := strings.Repeat("x", 1990)
			const n = 6000
			go func() {
				for i := 0; i < n; i++ {
					w := warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelYellow)
					w.Reason = big
					b, _ := stream.Encode(w)
					h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: LiveWarnings, Values: map[string]any{"e": string(b)}})
				}
			}()
			for i := 0; i < n; i++ {
				next(t, fast, "warning", 10*time.Second)
			}
			if !tc.dropped {
				return
			}
			testenv.WaitFor(t, 5*time.Second, "every slow client dropped", func() bool {
				return counterValue(t, h.reg, "classpulse_dashboard_websocket_disconnects_total", "reason", "slow") == float64(tc.slow)
			})
		})
	}
}

func TestCloseSessionsOfClosesOnlyThatUsersWebSockets(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	dialAs := func(sub string) *websocket.Conn {
		c, _, err := h.dial(h.token(Claims{Subject: sub, Role: RoleInstructor, Classes: []string{"S1"}}), nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
		next(t, c, "subscribed", 5*time.Second)
		return c
	}
	revoked := []*websocket.Conn{dialAs("u1"), dialAs("u1")}
	other := dialAs("u2")

	for _, tc := range []struct {
		subject string
		want    int
	}{
		{"nobody", 0},
		{"u1", 2},
		{"u1", 0}, // already closed
	} {
		if got := h.srv.CloseSessionsOf(tc.subject, "token revoked"); got != tc.want {
			t.Fatalf("CloseSessionsOf(%q) = %d, want %d", tc.subject, got, tc.want)
		}
	}
	for i, c := range revoked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		for err == nil {
			_, _, err = c.Read(ctx)
		}
		cancel()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "token revoked" {
			t.Fatalf("session %d of u1 ended with %v, want close 1008 \"token revoked\"", i, err)
		}
	}
	// Another user's session is untouched and still served.
	send(t, other, map[string]any{"op": "ping"})
	next(t, other, "pong", 5*time.Second)
	testenv.WaitFor(t, 5*time.Second, "revoked disconnects counted", func() bool {
		return counterValue(t, h.reg, "classpulse_dashboard_websocket_disconnects_total", "reason", "revoked") == 2
	})
}

// A client may send its first frame in the same write as the handshake,
// before it has read the 101 answer: those bytes reach net/http's buffer
// before the connection is handed to the WebSocket, and must not be lost.
func TestFrameSentWithTheHandshakeIsRead(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	conn, err := net.Dial("tcp", h.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := []byte(`{"op":"ping"}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))} // FIN text, masked, short length
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := "GET /ws HTTP/1.1\r\nHost: " + h.srv.Addr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Authorization: Bearer " + h.token(Claims{Role: RoleAdmin}) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		t.Fatalf("no frame after the handshake: %v", err)
	}
	if hdr[0] != 0x81 || hdr[1] >= 126 {
		t.Fatalf("frame header % x, want a short unmasked text frame", hdr)
	}
	body := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"pong"`) {
		t.Fatalf("answer %s, want a pong", body)
	}
}

// Data frames are encoded once and written past the library
// (frameWriter); a standard client must read them whole whatever the
// length form of their header, batched in one write, with the library's
// pings going out on the same connection meanwhile.
func TestEncodedFramesOfEveryLengthReachAStandardClientBetweenPings(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, 200000}
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	got := make(chan error, 1)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bufs := &wsBuffers{ResponseWriter: w}
		conn, err := websocket.Accept(bufs, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			got <- err
			return
		}
		defer conn.CloseNow()
		ctx := conn.CloseRead(context.Background()) // reads the pongs
		var dead atomic.Bool
		pings := make(chan error, 1)
		go func() {
			var err error
			for range 20 {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = conn.Ping(pctx)
				cancel()
				if err != nil {
					break
				}
			}
			pings <- err
		}()
		for _, n := range sizes { // one at a time, then all in one batch
			if err := bufs.fw.writeFrames([]*outFrame{{b: textFrame(payload(n))}}, &dead); err != nil {
				got <- err
				return
			}
		}
		var batch []*outFrame
		for _, n := range sizes {
			batch = append(batch, &outFrame{b: textFrame(payload(n))})
		}
		if err := bufs.fw.writeFrames(batch, &dead); err != nil {
			got <- err
			return
		}
		got <- <-pings
		<-ctx.Done()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for i := range 2 * len(sizes) {
		n := sizes[i%len(sizes)]
		typ, b, err := c.Read(ctx) // also answers the pings
		if err != nil {
			t.Fatalf("frame %d (%d bytes): %v", i, n, err)
		}
		if typ != websocket.MessageText || string(b) != string(payload(n)) {
			t.Fatalf("frame %d: type %v, %d bytes, want text of %d bytes", i, typ, len(b), n)
		}
	}
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	if err := <-got; err != nil {
		t.Fatalf("server side: %v", err)
	}
}

// Once a client is dead (the close frame may be on its way), no data frame
// is written after it.
func TestFrameWriterWritesNothingOnceDead(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fw := &frameWriter{conn: a}
	var dead atomic.Bool
	dead.Store(true)
	if err := fw.writeFrames([]*outFrame{{b: textFrame([]byte("x"))}}, &dead); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := b.Read(make([]byte, 16)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes (%v) from a dead client's connection, want none", n, err)
	}
}
