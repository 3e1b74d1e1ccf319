package fanout

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/classpulse/classpulse/internal/cli"
)

// Clients is the client side, run in its own process: it connects N
// WebSocket clients subscribed to warnings, prints "ready", records the
// latency of every warning from its sent_us evidence to receipt, and when
// its stdin closes prints a Result as JSON.
//
// It is a measuring instrument, so it spends as little CPU per message as
// a correct client can: each client does the opening handshake itself on a
// socket of its own, and then a few poller goroutines (one per CPU) wait
// for their clients' sockets with epoll and read each ready socket once
// into its frameParser. A message costs one read system call, with no
// goroutine switch, reader, context, channel or lock, and its latency goes
// into storage the client allocated before the run.
func Clients(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench fanout-clients", flag.ContinueOnError)
	rawURL := fs.String("url", "", "ws:// URL of the dashboard")
	n := fs.Int("clients", 5000, "clients")
	expect := fs.Int("messages", 100, "messages each client expects (storage is allocated for them before the run)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process from ready to the end to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok := os.Getenv("CLASSPULSE_FANOUT_TOKEN")
	if *rawURL == "" || tok == "" {
		return errors.New("fanout-clients is started by `classpulse bench fanout`")
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Scheme != "ws" {
		return fmt.Errorf("--url %q: want ws://host:port/path", *rawURL)
	}
	addr, err := net.ResolveTCPAddr("tcp", u.Host)
	if err != nil {
		return err
	}
	if _, err := RaiseFileLimit(); err != nil {
		return err
	}
	pollers := make([]*poller, max(1, runtime.GOMAXPROCS(0)))
	for i := range pollers {
		if pollers[i], err = newPoller(); err != nil {
			return err
		}
	}

	var (
		wg      sync.WaitGroup
		dropped atomic.Int64
		sem     = make(chan struct{}, 64)
		dialErr atomic.Value
		conns   = make([]*benchConn, *n)
	)
	t0 := time.Now()
	for i := range conns {
		bc := &benchConn{fd: -1, lats: make([]uint32, 0, max(*expect, 1))}
		conns[i] = bc
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				if err = bc.open(ctx, addr, u, tok); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err == nil {
				err = pollers[i%len(pollers)].add(bc)
			}
			if err != nil {
				dialErr.Store(err)
				dropped.Add(1)
			}
		}()
	}
	wg.Wait()
	connect := time.Since(t0)
	if v := dialErr.Load(); v != nil {
		fmt.Fprintf(os.Stderr, "fanout-clients: some clients failed to connect, e.g. %v\n", v)
	}
	var stop atomic.Bool
	for _, p := range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(&stop); err != nil {
				fmt.Fprintf(os.Stderr, "fanout-clients: poller: %v\n", err)
			}
		}()
	}
	stopProfile, err := cli.StartCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	fmt.Fprintf(out, "ready clients=%d connected_in=%v\n", *n-int(dropped.Load()), connect.Round(time.Millisecond))
	// Run until the parent closes our stdin.
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	stop.Store(true)
	wg.Wait()
	if err := stopProfile(); err != nil {
		return err
	}
	var lats []uint32
	var received int64
	for _, bc := range conns {
		lats = append(lats, bc.lats...)
		received += int64(len(bc.lats))
		if bc.err != nil {
			dropped.Add(1)
			fmt.Fprintf(os.Stderr, "fanout-clients: a client was dropped: %v\n", bc.err)
		}
		bc.close()
	}
	for _, p := range pollers {
		syscall.Close(p.epfd)
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))]) / 1000
	}
	res := Result{Clients: *n, Received: received, P50MS: pct(0.5), P99MS: pct(0.99), Dropped: int(dropped.Load()), ConnectMS: float64(connect.Milliseconds())}
	if len(lats) > 0 {
		res.MaxMS = float64(lats[len(lats)-1]) / 1000
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(out, string(b))
	return nil
}

// benchConn is one client of the client process. After open, only its
// poller's goroutine touches it until the pollers have stopped.
type benchConn struct {
	fd   int // -1 when closed
	p    *frameParser
	lats []uint32 // latency of each warning received, µs
	out  []byte   // a frame to send (pong, close)
	err  error    // why the server or the connection ended it
}

// fdIO reads and writes a socket in blocking mode with the timeouts set
// on it (SO_RCVTIMEO, SO_SNDTIMEO), for the handshake.
type fdIO int

func (f fdIO) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(f), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f fdIO) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := syscall.Write(int(f), p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// open connects, does the opening handshake (RFC 6455 section 4.1),
// subscribes to warnings and waits for the "subscribed" answer; the socket
// is then non-blocking, for its poller.
func (bc *benchConn) open(ctx context.Context, addr *net.TCPAddr, u *url.URL, tok string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa4 := &syscall.SockaddrInet4{Port: addr.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = syscall.AF_INET6
		sa6 := &syscall.SockaddrInet6{Port: addr.Port}
		copy(sa6.Addr[:], addr.IP.To16())
		sa = sa6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	bc.fd = fd
	ok := false
	defer func() {
		if !ok {
			bc.close()
		}
	}()
	tv := syscall.NsecToTimeval(int64(20 * time.Second))
	for _, opt := range []int{syscall.SO_RCVTIMEO, syscall.SO_SNDTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
			return err
		}
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		return err
	}
	for {
		if err = syscall.Connect(fd, sa); err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	if _, err := io.WriteString(fdIO(fd), req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(fdIO(fd), 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake: %s", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return errors.New("handshake: not a WebSocket upgrade for our key")
	}
	// What the server sent after its answer is the start of the frames.
	bc.p = newFrameParser(2048, 1<<20)
	rest, _ := br.Peek(br.Buffered())
	for len(rest) > 0 {
		m := copy(bc.p.space(), rest)
		bc.p.filled(m)
		rest = rest[m:]
	}
	if _, err := fdIO(fd).Write(appendClientFrame(nil, opText, []byte(`{"op":"subscribe","channel":"warnings"}`))); err != nil {
		return err
	}
	for subscribed := false; !subscribed; {
		m, err := fdIO(fd).Read(bc.p.space())
		if err != nil {
			return err
		}
		bc.p.filled(m)
		if err := bc.handle(func(op byte, payload []byte) {
			subscribed = subscribed || op == opText && bytes.Contains(payload, []byte(`"subscribed"`))
		}); err != nil {
			return err
		}
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		return err
	}
	ok = true
	return nil
}

// acceptKey is the Sec-WebSocket-Accept a server answers key with (RFC
// 6455 section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// handle passes every complete message parsed so far to fn, answering
// pings; a close from the server is answered and returned as an error.
func (bc *benchConn) handle(fn func(op byte, payload []byte)) error {
	for {
		op, payload, ok, err := bc.p.next()
		if err != nil || !ok {
			return err
		}
		switch op {
		case opText, opBinary:
			fn(op, payload)
		case opPing:
			if err := bc.send(opPong, payload); err != nil {
				return err
			}
		case opClose:
			code := payload[:min(2, len(payload))]
			_ = bc.send(opClose, code)
			return fmt.Errorf("closed by the server: % x %q", code, payload[len(code):])
		}
	}
}

// send writes one masked frame (a pong or close answer). Such a short
// frame fits an idle socket's buffer; a full one fails the client.
func (bc *benchConn) send(op byte, payload []byte) error {
	bc.out = appendClientFrame(bc.out[:0], op, payload)
	_, err := fdIO(bc.fd).Write(bc.out)
	return err
}

func (bc *benchConn) close() {
	if bc.fd >= 0 {
		syscall.Close(bc.fd)
		bc.fd = -1
	}
}

// poller reads the sockets of its clients as epoll reports them readable
// (level-triggered: one read per report; what a read leaves is reported
// again).
type poller struct {
	epfd  int
	conns []*benchConn // by the epoll event's Fd field
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{epfd: epfd}, nil
}

var pollPause = time.Millisecond

var pollerMu sync.Mutex // add runs on the dialing goroutines

func (p *poller) add(bc *benchConn) error {
	pollerMu.Lock()
	defer pollerMu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(len(p.conns))}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, bc.fd, &ev); err != nil {
		return err
	}
	p.conns = append(p.conns, bc)
	return nil
}

// run reads until stop is set (checked every 100 ms while idle). A client
// whose connection fails or is closed by the server is taken out and keeps
// its error (it counts as dropped).
func (p *poller) run(stop *atomic.Bool) error {
	events := make([]syscall.EpollEvent, 256)
	var now int64
	record := func(bc *benchConn) func(op byte, payload []byte) {
		return func(op byte, payload []byte) {
			if op != opText {
				return
			}
			if sent, ok := sentUS(payload); ok {
				d := ((now%usWrap - sent) + usWrap) % usWrap
				bc.lats = append(bc.lats, uint32(min(d, 1<<31)))
			}
		}
	}
	handlers := make([]func(byte, []byte), len(p.conns))
	for i, bc := range p.conns {
		handlers[i] = record(bc)
	}
	for !stop.Load() {
		n, err := syscall.EpollWait(p.epfd, events, 100)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			bc := p.conns[ev.Fd]
			if bc.fd < 0 {
				continue
			}
			m, err := syscall.Read(bc.fd, bc.p.space())
			if err == syscall.EAGAIN || err == syscall.EINTR {
				continue
			}
			now = time.Now().UnixMicro()
			if err == nil && m == 0 {
				err = io.EOF
			}
			if err == nil {
				bc.p.filled(m)
				err = bc.handle(handlers[ev.Fd])
			}
			if err != nil {
				bc.err = err // the run's end closes sockets only after the pollers stop
				bc.close()   // also takes it out of the epoll set
			}
		}
		if n < len(events) && pollPause > 0 {
			time.Sleep(pollPause)
		}
	}
	return nil
}

// sentUS finds the sent_us evidence in a warning frame without decoding
// it. JSON writes the whole number of microseconds as digits; any other
// form is parsed as a float.
func sentUS(b []byte) (int64, bool) {
	i := bytes.Index(b, []byte(`"sent_us":`))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(`"sent_us":`):]
	j := bytes.IndexAny(b, ",}")
	if j < 0 {
		return 0, false
	}
	b = b[:j]
	var v int64
	for k, c := range b {
		if c < '0' || c > '9' || k >= 18 {
			f, err := strconv.ParseFloat(string(b), 64)
			if err != nil {
				return 0, false
			}
			return int64(f), true
		}
		v = v*10 + int64(c-'0')
	}
	return v, len(b) > 0
}
