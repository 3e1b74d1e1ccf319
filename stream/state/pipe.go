package state

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// orderedConnName is the CLIENT SETNAME of every ordered connection, so that
// operators (and the tests) can tell it apart in CLIENT LIST.
const orderedConnName = "classpulse-ordered"

// Limits of the reply parser, which is fed by the network.
const (
	maxBulkLen     = 512 << 20 // Redis's own proto-max-bulk-len default
	maxArrayLen    = 1 << 24
	maxReplyDepth  = 1000    // nesting of arrays in one reply
	maxLineLen     = 1 << 20 // simple string, error or length line
	maxPrealloc    = 1024    // elements of an array allocated before they arrive
	bulkPrealloc   = 64 << 10
	pipeReadBuffer = 32 << 10
	keepWriteBuf   = 1 << 20 // a larger write buffer is dropped after its send
)

// errProtocol is wrapped by every error of an unparseable reply.
var errProtocol = errors.New("protocol error")

// errClosedByClient is the cause of the flights failed by close.
var errClosedByClient = errors.New("closed by the client")

// orderedConn is one Redis connection on which batches of commands
// ("flights") are pipelined without waiting for one another: send writes a
// flight and returns at once, so the next flight can be written while Redis
// still executes the previous one and the replies of earlier flights are
// still on their way, and Redis never idles between batches. Go-redis's
// Pipeline.Exec, by contrast, holds its pooled connection until every reply
// of the batch has been read.
//
// Ordering: Redis executes the commands of one connection in the order they
// were written, and send writes each flight whole, after every earlier
// send's flight. So the commands of successive sends run in send order, and
// no other client's command is ever needed to keep per-student order.
// A single reader goroutine per live connection reads the replies in order
// and hands a flight of n commands the next n replies.
//
// Failure: a dial, write or read error, a read timeout while replies are
// outstanding, or an unparseable reply breaks the connection: it is closed
// and every flight written on it and not yet complete fails (whether each of
// its commands ran is then unknown). The next send dials afresh; flights
// written on the new connection are unaffected. An error reply of Redis is
// not a failure: it is a redisError value in that command's position.
//
// It speaks RESP2 (no HELLO), with AUTH, SELECT and CLIENT SETNAME on dial.
// The zero value is not usable: see newOrderedConn.
type orderedConn struct {
	addr, network string
	dialer        func(ctx context.Context, network, addr string) (net.Conn, error)
	tls           *tls.Config
	username      string
	password      string
	db            int
	dialTimeout   time.Duration
	readTimeout   time.Duration // <= 0: none
	writeTimeout  time.Duration // <= 0: none

	mu  sync.Mutex // serialises sends: encoding, dialing, enqueueing, writing
	cur *pipeConn  // nil until the first send, and after a break or close
	buf []byte     // the write buffer, reused by every send
}

// newOrderedConn returns a connection that dials lazily, on the first send,
// with opt's Addr (and Network, "tcp" when empty), Dialer (when set, used
// instead of a net.Dialer), DialTimeout (default 5s), TLSConfig (when set,
// tls.Client over the dialed conn, with ServerName from Addr when the config
// has none; not when the Dialer returned a *tls.Conn already, as go-redis's
// default Dialer, set in a client's Options(), does), Username/Password (AUTH when Password != ""; AUTH user pass when
// Username != "" too), DB (SELECT when != 0), ReadTimeout and WriteTimeout
// (go-redis v9's semantics: ReadTimeout 0 means 5s, WriteTimeout 0 means the
// ReadTimeout, and -1 or -2 means none). It speaks RESP2 (sends no HELLO).
// The other fields of opt are ignored. Given a client's Options(), which
// go-redis has normalised, the timeouts are the client's unless it had
// none: its "none" reads back as 0, taken here as the 5s default.
func newOrderedConn(opt *redis.Options) *orderedConn {
	if opt == nil {
		opt = &redis.Options{}
	}
	c := &orderedConn{
		addr:        opt.Addr,
		network:     opt.Network,
		dialer:      opt.Dialer,
		tls:         opt.TLSConfig,
		username:    opt.Username,
		password:    opt.Password,
		db:          opt.DB,
		dialTimeout: opt.DialTimeout,
	}
	if c.network == "" {
		c.network = "tcp"
	}
	if c.addr == "" && c.network == "tcp" {
		c.addr = "localhost:6379"
	}
	if c.dialTimeout <= 0 {
		c.dialTimeout = 5 * time.Second
	}
	if c.tls != nil && c.tls.ServerName == "" && !c.tls.InsecureSkipVerify {
		if host, _, err := net.SplitHostPort(c.addr); err == nil {
			c.tls = c.tls.Clone()
			c.tls.ServerName = host
		}
	}
	switch {
	case opt.ReadTimeout == 0:
		c.readTimeout = 5 * time.Second
	case opt.ReadTimeout > 0:
		c.readTimeout = opt.ReadTimeout
	}
	switch {
	case opt.WriteTimeout == 0:
		c.writeTimeout = c.readTimeout
	case opt.WriteTimeout > 0:
		c.writeTimeout = opt.WriteTimeout
	}
	return c
}

// send writes cmds (each a command and its arguments) in one buffered
// write, in order, after every earlier send's commands, and returns at once
// without waiting for replies. It never blocks on replies of earlier
// flights. A write or dial error, or an argument of an unsupported type, is
// reported by the returned flight's wait (a dial/write error also breaks the
// connection). An unsupported argument fails the flight before anything of
// it is written, and the connection stays usable. ctx bounds dialing only.
// It is safe for concurrent use, but callers that need order call it in
// order; a send waits for a concurrent send's dial.
func (c *orderedConn) send(ctx context.Context, cmds [][]any) *flight {
	return c.sendEncoded(ctx, len(cmds), func(buf []byte) ([]byte, error) {
		for i, cmd := range cmds {
			var err error
			if buf, err = appendCommand(buf, cmd); err != nil {
				return buf, fmt.Errorf("state: redis command %d%s: %w", i, cmdName(cmd), err)
			}
		}
		return buf, nil
	})
}

// sendEncoded is send for n commands that encode appends to a buffer in
// RESP (appendCommand, or appendArrayHeader and appendArg): a caller with
// its own layout of commands encodes them without building [][]any. An
// encode error fails the flight before anything of it is written.
func (c *orderedConn) sendEncoded(ctx context.Context, n int, encode func(buf []byte) ([]byte, error)) *flight {
	f := &flight{vals: make([]any, n)}
	if n == 0 {
		f.done = true
		return f
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	buf, err := encode(c.buf[:0])
	if err != nil {
		c.buf = buf[:0]
		f.done, f.err = true, err
		return f
	}
	c.buf = buf
	if cap(c.buf) > keepWriteBuf {
		defer func() { c.buf = nil }()
	}

	// A connection can break between sends; then this flight (not written
	// yet) goes to a fresh one.
	for attempt := 0; ; attempt++ {
		if c.cur == nil {
			pc, err := c.dial(ctx)
			if err != nil {
				f.done, f.err = true, fmt.Errorf("state: redis connection: %w", err)
				return f
			}
			c.cur = pc
		}
		if c.cur.enqueue(f) {
			break
		}
		broken := c.cur
		c.cur = nil
		if attempt == 1 {
			f.done, f.err = true, fmt.Errorf("state: redis connection: %w", broken.cause())
			return f
		}
	}

	// The flight is queued before it is written, so the reader can take its
	// replies while a long write is still going on.
	pc := c.cur
	if c.writeTimeout > 0 {
		if err := pc.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			pc.fail(err)
			c.cur = nil
			return f
		}
	}
	if _, err := pc.nc.Write(c.buf); err != nil {
		pc.fail(err) // fails f too
		c.cur = nil
	}
	return f
}

// close closes the connection; outstanding flights fail; later sends redial.
func (c *orderedConn) close() error {
	c.mu.Lock()
	pc := c.cur
	c.cur = nil
	c.mu.Unlock()
	if pc == nil {
		return nil
	}
	return pc.fail(errClosedByClient)
}

// dial connects, authenticates, selects the DB and names the connection,
// within DialTimeout and ctx, and starts the reader.
func (c *orderedConn) dial(ctx context.Context) (*pipeConn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if c.dialer != nil {
		nc, err = c.dialer(ctx, c.network, c.addr)
		if err == nil && nc == nil {
			err = errors.New("dialer returned no connection")
		}
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, c.network, c.addr)
	}
	if err != nil {
		return nil, err
	}
	// A Dialer may speak TLS itself: go-redis's own (the Dialer of a
	// client's Options()) does when TLSConfig is set.
	if _, isTLS := nc.(*tls.Conn); c.tls != nil && !isTLS {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", c.addr, err)
		}
		nc = tc
	}
	br := bufio.NewReaderSize(nc, pipeReadBuffer)
	if err := c.handshake(ctx, nc, br); err != nil {
		nc.Close()
		return nil, err
	}
	pc := &pipeConn{
		nc:          nc,
		br:          br,
		readTimeout: c.readTimeout,
		wake:        make(chan struct{}, 1),
		dead:        make(chan struct{}),
	}
	go pc.readLoop()
	return pc, nil
}

// handshake sends AUTH, SELECT and CLIENT SETNAME in one write and reads
// their replies. An error reply of AUTH or SELECT fails the dial; one of
// CLIENT SETNAME (e.g. an ACL user without +client) is ignored.
func (c *orderedConn) handshake(ctx context.Context, nc net.Conn, br *bufio.Reader) error {
	var cmds [][]any
	var names []string
	if c.password != "" {
		if c.username != "" {
			cmds = append(cmds, []any{"AUTH", c.username, c.password})
		} else {
			cmds = append(cmds, []any{"AUTH", c.password})
		}
		names = append(names, "AUTH")
	}
	if c.db != 0 {
		cmds = append(cmds, []any{"SELECT", c.db})
		names = append(names, "SELECT")
	}
	cmds = append(cmds, []any{"CLIENT", "SETNAME", orderedConnName})
	names = append(names, "")

	var buf []byte
	for _, cmd := range cmds {
		buf, _ = appendCommand(buf, cmd) // only supported types
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := nc.SetDeadline(dl); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err := func() error {
		if _, err := nc.Write(buf); err != nil {
			return err
		}
		var first error
		for _, name := range names {
			v, err := readReply(br)
			if err != nil {
				return err
			}
			if e, ok := v.(redisError); ok && name != "" && first == nil {
				first = fmt.Errorf("%s: %w", name, e)
			}
		}
		return first
	}()
	if !stop() && err == nil {
		err = ctx.Err() // the deadline may have been set in the past
	}
	if err != nil {
		return err
	}
	return nc.SetDeadline(time.Time{})
}

// pipeConn is one live network connection of an orderedConn and the FIFO of
// the flights written on it whose replies are outstanding.
type pipeConn struct {
	nc          net.Conn
	br          *bufio.Reader // read by readLoop only (after the handshake)
	readTimeout time.Duration

	mu    sync.Mutex
	queue []*flight // written (or being written), not complete; head first
	err   error     // why the connection broke; nil while it is live

	wake chan struct{} // a flight was queued (capacity 1)
	dead chan struct{} // closed when the connection broke
}

// enqueue appends f to the flights awaiting replies; false when the
// connection already broke.
func (pc *pipeConn) enqueue(f *flight) bool {
	pc.mu.Lock()
	if pc.err != nil {
		pc.mu.Unlock()
		return false
	}
	pc.queue = append(pc.queue, f)
	pc.mu.Unlock()
	select {
	case pc.wake <- struct{}{}:
	default:
	}
	return true
}

func (pc *pipeConn) cause() error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.err
}

// fail breaks the connection for cause (the first cause wins): it closes
// the network connection and fails every queued flight. It returns the
// error of closing, on the first call only.
func (pc *pipeConn) fail(cause error) error {
	pc.mu.Lock()
	if pc.err != nil {
		pc.mu.Unlock()
		return nil
	}
	pc.err = cause
	q := pc.queue
	pc.queue = nil
	close(pc.dead)
	pc.mu.Unlock()
	err := pc.nc.Close()
	werr := fmt.Errorf("state: redis connection: %w", cause)
	for _, f := range q {
		f.finish(werr)
	}
	return err
}

// readLoop reads the replies of the queued flights, in order, until the
// connection breaks. It reads the replies of a flight whose waiter gave up
// like any other, so the stream stays in sync. The read deadline is set
// only while replies are outstanding: an idle connection does not time out.
func (pc *pipeConn) readLoop() {
	for {
		pc.mu.Lock()
		if pc.err != nil {
			pc.mu.Unlock()
			return
		}
		var f *flight
		if len(pc.queue) > 0 {
			f = pc.queue[0]
		}
		pc.mu.Unlock()
		if f == nil {
			select {
			case <-pc.wake:
			case <-pc.dead:
				return
			}
			continue
		}
		for i := range f.vals {
			if pc.readTimeout > 0 {
				if err := pc.nc.SetReadDeadline(time.Now().Add(pc.readTimeout)); err != nil {
					pc.fail(err)
					return
				}
			}
			v, err := readReply(pc.br)
			if err != nil {
				if err == io.EOF {
					err = fmt.Errorf("closed by the server: %w", err)
				}
				pc.fail(err)
				return
			}
			f.vals[i] = v
		}
		pc.mu.Lock()
		if pc.err != nil { // broken meanwhile: f failed already
			pc.mu.Unlock()
			return
		}
		pc.queue[0] = nil
		pc.queue = pc.queue[1:]
		pc.mu.Unlock()
		f.finish(nil)
	}
}

// flight is the commands of one send and, once complete, their replies.
type flight struct {
	mu   sync.Mutex
	done bool
	ch   chan struct{} // made by the first wait that blocks; closed when done
	vals []any         // one per command; written by the reader until done
	err  error
}

// finish completes the flight (the first call wins).
func (f *flight) finish(err error) {
	f.mu.Lock()
	if !f.done {
		f.done, f.err = true, err
		if f.ch != nil {
			close(f.ch)
		}
	}
	f.mu.Unlock()
}

func (f *flight) result() ([]any, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.vals, nil
}

// wait blocks until every reply of the flight has been read, the connection
// broke, or ctx ended. It returns one value per command, shaped like
// go-redis's (*redis.Cmd).Val() with RESP2: integer -> int64; bulk and
// simple string -> string; nil bulk string and nil array -> nil; array ->
// []any (nested); an error reply -> a redisError in that position (not a
// wait error). The error is non-nil only when the flight could not be
// written (an unsupported argument, a dial or write error), the connection
// broke before every reply came (then whether each command ran is unknown),
// or ctx ended (ctx.Err(); a complete flight returns its result even then).
// wait may be called more than once and from any goroutine; all calls that
// do not end by ctx see the same result.
func (f *flight) wait(ctx context.Context) ([]any, error) {
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return f.result()
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	ch := f.ch
	f.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		f.mu.Lock()
		done := f.done
		f.mu.Unlock()
		if !done {
			return nil, ctx.Err()
		}
	}
	return f.result()
}

// redisError is an error reply of Redis, e.g. "NOSCRIPT No matching
// script. Please use EVAL.". Like go-redis's own, it has a RedisError
// method, so callers can treat both alike.
type redisError string

func (e redisError) Error() string { return string(e) }

// RedisError marks e as an error reply of the server (as go-redis does).
func (redisError) RedisError() {}

// cmdName is " (NAME)" for error messages, or "" when the command has no
// string name.
func cmdName(cmd []any) string {
	if len(cmd) > 0 {
		if s, ok := cmd[0].(string); ok && len(s) <= 32 {
			return " (" + s + ")"
		}
	}
	return ""
}

// appendCommand appends cmd as a RESP array of bulk strings, encoding the
// arguments as go-redis does. On an unsupported argument it returns an
// error (and buf holds part of the command).
func appendCommand(buf []byte, cmd []any) ([]byte, error) {
	if len(cmd) == 0 {
		// Redis answers nothing to an empty array: the replies would
		// no longer match the flights.
		return buf, errors.New("empty command")
	}
	buf = appendArrayHeader(buf, len(cmd))
	for i, a := range cmd {
		var err error
		if buf, err = appendArg(buf, a); err != nil {
			return buf, fmt.Errorf("argument %d has %w", i, err)
		}
	}
	return buf, nil
}

// appendArrayHeader starts a command of n arguments (n > 0).
func appendArrayHeader(buf []byte, n int) []byte {
	buf = append(buf, '*')
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, '\r', '\n')
}

// appendArg appends one argument as a bulk string, formatted as go-redis
// formats it.
func appendArg(buf []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case string:
		buf = appendBulkString(buf, v)
	case []byte:
		buf = appendBulk(buf, v)
	case int:
		buf = appendBulkInt(buf, int64(v))
	case int64:
		buf = appendBulkInt(buf, v)
	case int32:
		buf = appendBulkInt(buf, int64(v))
	case uint64:
		var num [24]byte
		buf = appendBulk(buf, strconv.AppendUint(num[:0], v, 10))
	case float64:
		var num [32]byte
		buf = appendBulk(buf, strconv.AppendFloat(num[:0], v, 'f', -1, 64))
	case bool:
		if v {
			buf = appendBulkString(buf, "1")
		} else {
			buf = appendBulkString(buf, "0")
		}
	case nil:
		buf = appendBulkString(buf, "")
	default:
		return buf, fmt.Errorf("unsupported type %T", a)
	}
	return buf, nil
}

func appendBulkInt(buf []byte, v int64) []byte {
	var num [24]byte
	return appendBulk(buf, strconv.AppendInt(num[:0], v, 10))
}

func appendBulk(buf, b []byte) []byte {
	buf = append(buf, '$')
	buf = strconv.AppendInt(buf, int64(len(b)), 10)
	buf = append(buf, '\r', '\n')
	buf = append(buf, b...)
	return append(buf, '\r', '\n')
}

func appendBulkString(buf []byte, s string) []byte {
	buf = append(buf, '$')
	buf = strconv.AppendInt(buf, int64(len(s)), 10)
	buf = append(buf, '\r', '\n')
	buf = append(buf, s...)
	return append(buf, '\r', '\n')
}

// readReply reads one RESP2 reply: an integer as int64, a bulk or simple
// string as string, a nil bulk string or nil array as nil, an array as
// []any, an error reply as a redisError value. The error is an I/O error
// (io.EOF before the reply, io.ErrUnexpectedEOF inside it) or wraps
// errProtocol. Lengths from the input are bounded and never allocated for
// before the data arrives (beyond small caps).
func readReply(r *bufio.Reader) (any, error) {
	return readReplyDepth(r, 0)
}

func readReplyDepth(r *bufio.Reader, depth int) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	switch line[0] {
	case '+':
		if string(line[1:]) == "OK" {
			return "OK", nil
		}
		return string(line[1:]), nil
	case '-':
		return redisError(line[1:]), nil
	case ':':
		n, ok := parseInt(line[1:])
		if !ok {
			return nil, fmt.Errorf("%w: bad integer reply %s", errProtocol, quoteLine(line))
		}
		return n, nil
	case '$':
		n, err := parseLen(line, maxBulkLen)
		if err != nil || n < 0 {
			return nil, err
		}
		return readBulk(r, n)
	case '*':
		n, err := parseLen(line, maxArrayLen)
		if err != nil || n < 0 {
			return nil, err
		}
		if depth >= maxReplyDepth {
			return nil, fmt.Errorf("%w: arrays nested deeper than %d", errProtocol, maxReplyDepth)
		}
		arr := make([]any, 0, min(n, maxPrealloc))
		for i := 0; i < n; i++ {
			v, err := readReplyDepth(r, depth+1)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	return nil, fmt.Errorf("%w: unexpected reply type in %s", errProtocol, quoteLine(line))
}

// readLine returns the next line without its CRLF; it is never empty. It
// may point into r's buffer, valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > maxLineLen {
				return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, maxLineLen)
			}
			line, err = r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %s not of a type and CRLF", errProtocol, quoteLine(line))
	}
	return line[:len(line)-2], nil
}

// parseLen parses the length of a bulk string or array line: -1 (nil) or
// 0..limit.
func parseLen(line []byte, limit int64) (int, error) {
	n, ok := parseInt(line[1:])
	if !ok || n < -1 {
		return 0, fmt.Errorf("%w: bad length in %s", errProtocol, quoteLine(line))
	}
	if n > limit {
		kind := "bulk string"
		if line[0] == '*' {
			kind = "array"
		}
		return 0, fmt.Errorf("%w: %s length %d exceeds %d", errProtocol, kind, n, limit)
	}
	return int(n), nil
}

// parseInt parses an optional '-' and decimal digits, refusing overflow.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// readBulk reads n bytes and a CRLF. Data larger than r's buffer is
// gathered as it arrives, so a forged length costs no memory up front.
func readBulk(r *bufio.Reader, n int) (any, error) {
	if n+2 <= r.Size() {
		p, err := r.Peek(n + 2)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if p[n] != '\r' || p[n+1] != '\n' {
			return nil, fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errProtocol, n)
		}
		s := string(p[:n])
		_, _ = r.Discard(n + 2)
		return s, nil
	}
	var sb strings.Builder
	sb.Grow(min(n, bulkPrealloc))
	for rem := n; rem > 0; {
		p, err := r.Peek(min(rem, r.Size()))
		sb.Write(p)
		_, _ = r.Discard(len(p))
		rem -= len(p)
		if err != nil && rem > 0 {
			return nil, unexpectedEOF(err)
		}
	}
	p, err := r.Peek(2)
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	if p[0] != '\r' || p[1] != '\n' {
		return nil, fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errProtocol, n)
	}
	_, _ = r.Discard(2)
	return sb.String(), nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// quoteLine quotes (the start of) a reply line for an error message.
func quoteLine(line []byte) string {
	if len(line) > 32 {
		return strconv.Quote(string(line[:32])) + "..."
	}
	return strconv.Quote(string(line))
}
