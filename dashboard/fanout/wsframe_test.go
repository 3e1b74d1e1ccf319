package fanout

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// frame encodes one server frame (no mask, the shortest length form).
func frame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	b := []byte{b0}
	switch {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type parsed struct {
	op      byte
	payload string
}

// parseAll feeds stream to a parser chunk bytes at a time (all at once
// when chunk is 0) and returns what it parsed up to the first error.
func parseAll(stream []byte, chunk, max int) ([]parsed, error) {
	p := newFrameParser(16, max)
	var out []parsed
	for len(stream) > 0 {
		sp := p.space()
		n := len(sp)
		if chunk > 0 {
			n = min(n, chunk)
		}
		n = copy(sp[:n], stream)
		p.filled(n)
		stream = stream[n:]
		for {
			op, payload, ok, err := p.next()
			if err != nil {
				return out, err
			}
			if !ok {
				break
			}
			out = append(out, parsed{op, string(payload)})
		}
	}
	return out, nil
}

func TestFrameParserSplitsMessagesAndRefusesProtocolViolations(t *testing.T) {
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70000)
	tests := []struct {
		name    string
		stream  []byte
		want    []parsed
		wantErr string // part of the error; "" for none
	}{
		{"one short text frame", frame(true, opText, []byte(`{"a":1}`)), []parsed{{opText, `{"a":1}`}}, ""},
		{"empty text frame", frame(true, opText, nil), []parsed{{opText, ""}}, ""},
		{"16-bit length", frame(true, opText, []byte(long)), []parsed{{opText, long}}, ""},
		{"64-bit length", frame(true, opBinary, []byte(huge)), []parsed{{opBinary, huge}}, ""},
		{"several frames in a row", cat(frame(true, opText, []byte("a")), frame(true, opText, []byte(long)), frame(true, opText, []byte("c"))),
			[]parsed{{opText, "a"}, {opText, long}, {opText, "c"}}, ""},
		{"fragments are joined", cat(frame(false, opText, []byte("he")), frame(false, opContinuation, []byte("ll")), frame(true, opContinuation, []byte("o"))),
			[]parsed{{opText, "hello"}}, ""},
		{"control frames between fragments come first", cat(frame(false, opText, []byte("he")), frame(true, opPing, []byte("p")), frame(true, opContinuation, []byte("llo")), frame(true, opText, []byte("next"))),
			[]parsed{{opPing, "p"}, {opText, "hello"}, {opText, "next"}}, ""},
		{"ping pong close", cat(frame(true, opPing, nil), frame(true, opPong, []byte("x")), frame(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'})),
			[]parsed{{opPing, ""}, {opPong, "x"}, {opClose, "\x03\xe8bye"}}, ""},
		{"masked server frame", []byte{0x81, 0x81, 1, 2, 3, 4, 'a'}, nil, "masked"},
		{"reserved bit", cat(frame(true, opText, []byte("a")), []byte{0xc1, 0x01, 'a'}), []parsed{{opText, "a"}}, "reserved bits"},
		{"reserved data opcode", []byte{0x83, 0x00}, nil, "reserved opcode"},
		{"reserved control opcode", []byte{0x8b, 0x00}, nil, "reserved opcode"},
		{"fragmented control frame", []byte{0x09, 0x00}, nil, "control frame"},
		{"control frame over 125 bytes", frame(true, opPing, []byte(long)), nil, "control frame"},
		{"continuation without a message", frame(true, opContinuation, []byte("a")), nil, "without a message"},
		{"new message inside a fragmented one", cat(frame(false, opText, []byte("a")), frame(true, opText, []byte("b"))), nil, "inside a fragmented"},
		{"16-bit length that fits 7 bits", []byte{0x81, 126, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e'}, nil, "shortest form"},
		{"64-bit length that fits 16 bits", []byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, nil, "64-bit length"},
		{"64-bit length with the top bit set", []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, nil, "64-bit length"},
		{"message over the limit", frame(true, opText, []byte(strings.Repeat("z", 2000))), nil, "over 1024 bytes"},
		{"fragments over the limit", cat(frame(false, opText, []byte(strings.Repeat("z", 600))), frame(true, opContinuation, []byte(strings.Repeat("z", 600)))), nil, "over 1024 bytes"},
		{"close with a 1-byte body", frame(true, opClose, []byte{3}), nil, "1-byte body"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 7, 100} {
			t.Run(fmt.Sprintf("%s/chunk %d", tt.name, chunk), func(t *testing.T) {
				max := 100000
				if strings.Contains(tt.name, "limit") {
					max = 1024
				}
				got, err := parseAll(tt.stream, chunk, max)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("parsed %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// What the client writes is a masked frame a server unmasks to the
// payload (RFC 6455 section 5.3).
func TestClientFramesAreMaskedAndUnmaskToThePayload(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 0xffff, 0x10000} {
		payload := bytes.Repeat([]byte("k"), n)
		b := appendClientFrame(nil, opText, payload)
		if b[0] != 0x81 || b[1]&0x80 == 0 {
			t.Fatalf("%d bytes: header % x, want FIN text, masked", n, b[:2])
		}
		hl, l := 2, int(b[1]&0x7f)
		switch l {
		case 126:
			hl, l = 4, int(binary.BigEndian.Uint16(b[2:]))
		case 127:
			hl, l = 10, int(binary.BigEndian.Uint64(b[2:]))
		}
		key, body := b[hl:hl+4], b[hl+4:]
		if l != n || len(body) != n {
			t.Fatalf("%d bytes: length %d, body %d", n, l, len(body))
		}
		for i := range body {
			body[i] ^= key[i&3]
		}
		if !bytes.Equal(body, payload) {
			t.Fatalf("%d bytes: unmasked body differs", n)
		}
	}
}

func TestAcceptKeyIsTheRFCExample(t *testing.T) {
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept key %s", got)
	}
}

func TestSentUSReadsDigitsAndOtherNumberForms(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`{"evidence":{"attention":0.3,"sent_us":12345678901}}`, 12345678901, true},
		{`{"sent_us":1.5e3,"x":1}`, 1500, true},
		{`{"sent_us":42}`, 42, true},
		{`{"sent_us":}`, 0, false},
		{`{"sent_us":12`, 0, false},
		{`{"other":1}`, 0, false},
	}
	for _, tt := range tests {
		got, ok := sentUS([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("sentUS(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// Against a standard server (coder/websocket): the client's handshake and
// subscribe frame are accepted, it answers a ping, records a warning sent
// in fragments, and answers the server's close.
func TestBenchClientAgainstAStandardServer(t *testing.T) {
	serverDone := make(chan error, 1)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serverDone <- func() error {
			if r.Header.Get("Authorization") != "Bearer tok" {
				return errors.New("no token")
			}
			conn, err := websocket.Accept(w, r, nil)
			if err != nil {
				return err
			}
			defer conn.CloseNow()
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			if _, b, err := conn.Read(ctx); err != nil || !strings.Contains(string(b), `"subscribe"`) {
				return fmt.Errorf("subscribe frame %s: %v", b, err)
			}
			if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribed","channel":"warnings"}`)); err != nil {
				return err
			}
			rctx := conn.CloseRead(ctx) // reads the pong and the close answer
			if err := conn.Ping(rctx); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			mw, err := conn.Writer(rctx, websocket.MessageText)
			if err != nil {
				return err
			}
			sent := time.Now().UnixMicro() % usWrap
			for _, part := range []string{`{"type":"warning","warning":{"evidence":`, fmt.Sprintf(`{"sent_us":%d}}}`, sent)} {
				if _, err := mw.Write([]byte(part)); err != nil {
					return err
				}
			}
			if err := mw.Close(); err != nil {
				return err
			}
			return conn.Close(websocket.StatusNormalClosure, "bye")
		}()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	u, _ := url.Parse("ws://" + ln.Addr().String() + "/ws")
	addr, _ := net.ResolveTCPAddr("tcp", u.Host)
	bc := &benchConn{fd: -1}
	defer bc.close()
	if err := bc.open(context.Background(), addr, u, "tok"); err != nil {
		t.Fatalf("open: %v", err)
	}
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.add(bc); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	polled := make(chan error, 1)
	go func() { polled <- p.run(&stop) }()
	if err := <-serverDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	stop.Store(true)
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
	if len(bc.lats) != 1 || bc.lats[0] > 10e6 {
		t.Errorf("latencies %v, want one under 10 s", bc.lats)
	}
	if bc.err == nil || !strings.Contains(bc.err.Error(), "closed by the server: 03 e8") {
		t.Errorf("client error %v, want the server's close (1000)", bc.err)
	}
}

// FuzzFrameParser: any byte stream, fed whole or in pieces of any size,
// parses to the same messages and error without panicking, and whatever
// it parses is within the limit.
func FuzzFrameParser(f *testing.F) {
	f.Add(frame(true, opText, []byte("hello")), uint8(1))
	f.Add(cat(frame(false, opText, []byte("he")), frame(true, opPing, nil), frame(true, opContinuation, []byte("llo"))), uint8(3))
	f.Add(frame(true, opBinary, bytes.Repeat([]byte("b"), 300)), uint8(0))
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, uint8(2))
	f.Add(frame(true, opClose, []byte{3, 0xe8, 'x'}), uint8(5))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		const max = 4096
		whole, werr := parseAll(stream, 0, max)
		pieces, perr := parseAll(stream, int(chunk), max)
		if fmt.Sprint(whole) != fmt.Sprint(pieces) || fmt.Sprint(werr) != fmt.Sprint(perr) {
			t.Fatalf("whole: %q %v; in pieces of %d: %q %v", whole, werr, chunk, pieces, perr)
		}
		for _, m := range whole {
			if len(m.payload) > max || (m.op >= opClose && len(m.payload) > 125) {
				t.Fatalf("message of %d bytes (op %#x) passed", len(m.payload), m.op)
			}
		}
	})
}
