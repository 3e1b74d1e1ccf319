package state

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/internal/testenv"
)

// pipeRedis starts a redis-server and returns it with a go-redis client that
// speaks RESP2, the protocol orderedConn speaks.
func pipeRedis(t *testing.T) (*testenv.Redis, *redis.Client) {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2})
	t.Cleanup(func() { rdb.Close() })
	return r, rdb
}

func pipeConnFor(t *testing.T, opt *redis.Options) *orderedConn {
	t.Helper()
	c := newOrderedConn(opt)
	t.Cleanup(func() { c.close() })
	return c
}

// pipeWait waits for f, failing the test on a wait error.
func pipeWait(t *testing.T, f *flight) []any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vals, err := f.wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return vals
}

// pipeDo sends one flight and waits for it.
func pipeDo(t *testing.T, c *orderedConn, cmds ...[]any) []any {
	t.Helper()
	return pipeWait(t, c.send(context.Background(), cmds))
}

// pipeBlocked reports whether a flight is still outstanding, without
// waiting: wait with an ended ctx returns the result of a complete flight
// and ctx's error otherwise.
func pipeBlocked(f *flight) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.wait(ctx)
	return errors.Is(err, context.Canceled)
}

// pipeErrorReply stands for an error reply in compared values, whether
// go-redis's or ours.
type pipeErrorReply struct{ msg string }

func pipeNormalise(v any) any {
	switch v := v.(type) {
	case interface {
		error
		RedisError()
	}:
		return pipeErrorReply{v.Error()}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = pipeNormalise(e)
		}
		return out
	}
	return v
}

func TestOrderedConnRepliesHaveGoRedisShapes(t *testing.T) {
	r, rdb := pipeRedis(t)
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	ctx := context.Background()
	big := strings.Repeat("0123456789", 20000) // larger than the read buffer
	cases := []struct {
		name  string
		setup [][]any
		cmd   []any
	}{
		{"simple string", nil, []any{"SET", "k", "v"}},
		{"PONG simple string", nil, []any{"PING"}},
		{"bulk string", [][]any{{"SET", "k", "v"}}, []any{"GET", "k"}},
		{"missing key is nil", nil, []any{"GET", "missing"}},
		{"integer", [][]any{{"SET", "n", "41"}}, []any{"INCR", "n"}},
		{"array of bulk strings", [][]any{{"HSET", "h", "a", "1", "b", "2"}}, []any{"HGETALL", "h"}},
		{"nested table from Lua", nil, []any{"EVAL", "return {1, 'two', false, {3, 'four', {}}}", 0}},
		{"empty array", nil, []any{"LRANGE", "missing", 0, -1}},
		{"nil array", nil, []any{"BLPOP", "missing", 0.01}},
		{"error reply", nil, []any{"NOSUCHCOMMAND", "x"}},
		{"error reply inside an array", nil, []any{"EVAL", "return {1, redis.error_reply('ERR boom')}", 0}},
		{"status reply from Lua", nil, []any{"EVAL", "return redis.status_reply('FINE')", 0}},
		{"bulk string larger than the read buffer", [][]any{{"SET", "big", big}}, []any{"GET", "big"}},
		{"empty bulk string", [][]any{{"SET", "e", ""}}, []any{"GET", "e"}},
		{"arguments of every supported type", nil, []any{
			"EVAL", "return ARGV", 0,
			"s", []byte("b\r\nytes"), 7, int64(-8), int32(9), uint64(1 << 63), 2.5, 1e21, true, false, nil,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reset := func() {
				t.Helper()
				if err := rdb.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				for _, cmd := range tc.setup {
					if err := rdb.Do(ctx, cmd...).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			reset()
			cmd := rdb.Do(ctx, tc.cmd...)
			want := cmd.Val()
			if err := cmd.Err(); err != nil && err != redis.Nil {
				want = err
			}
			reset()
			got := pipeDo(t, c, tc.cmd)
			if len(got) != 1 {
				t.Fatalf("got %d replies, want 1", len(got))
			}
			if !reflect.DeepEqual(pipeNormalise(got[0]), pipeNormalise(want)) {
				t.Errorf("orderedConn: %#v\ngo-redis:    %#v", got[0], want)
			}
			if _, isErr := want.(error); isErr {
				if _, ok := got[0].(redisError); !ok {
					t.Errorf("error reply is %T, want redisError", got[0])
				}
			}
		})
	}
}

func TestOrderedConnKeepsOrderAcrossFlights(t *testing.T) {
	r, rdb := pipeRedis(t)
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	const flights, per = 200, 50
	fs := make([]*flight, flights)
	for i := range fs {
		cmds := make([][]any, per)
		for j := range cmds {
			cmds[j] = []any{"RPUSH", "list", i*per + j}
		}
		fs[i] = c.send(context.Background(), cmds)
	}
	for i, f := range fs {
		vals := pipeWait(t, f)
		for j, v := range vals {
			if want := int64(i*per + j + 1); v != want {
				t.Fatalf("flight %d reply %d = %#v, want %d", i, j, v, want)
			}
		}
	}
	list, err := rdb.LRange(context.Background(), "list", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != flights*per {
		t.Fatalf("list has %d elements, want %d", len(list), flights*per)
	}
	for i, s := range list {
		if s != strconv.Itoa(i) {
			t.Fatalf("list[%d] = %q", i, s)
		}
	}
}

// The first flight's BLPOP holds the connection in Redis until the test
// pushes to the gate, so the second send returning proves it did not wait
// for the first flight's replies, and Redis runs the second flight only
// after the first.
func TestOrderedConnSendsWhileAnEarlierFlightIsOutstanding(t *testing.T) {
	r, rdb := pipeRedis(t)
	ctx := context.Background()
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	first := c.send(ctx, [][]any{{"BLPOP", "gate", 0}, {"RPUSH", "order", "first"}})
	second := c.send(ctx, [][]any{{"RPUSH", "order", "second"}})
	if !pipeBlocked(first) || !pipeBlocked(second) {
		t.Fatal("a flight completed before the gate opened")
	}
	if n := rdb.LLen(ctx, "order").Val(); n != 0 {
		t.Fatalf("order has %d elements before the gate opened", n)
	}
	if err := rdb.RPush(ctx, "gate", "open").Err(); err != nil {
		t.Fatal(err)
	}
	want := []any{[]any{"gate", "open"}, int64(1)}
	if got := pipeWait(t, first); !reflect.DeepEqual(got, want) {
		t.Errorf("first = %#v, want %#v", got, want)
	}
	if got := pipeWait(t, second); !reflect.DeepEqual(got, []any{int64(2)}) {
		t.Errorf("second = %#v", got)
	}
	if got := rdb.LRange(ctx, "order", 0, -1).Val(); !reflect.DeepEqual(got, []string{"first", "second"}) {
		t.Errorf("order = %q", got)
	}
}

func TestOrderedConnBrokenConnectionFailsOutstandingFlights(t *testing.T) {
	cases := []struct {
		name        string
		readTimeout time.Duration
		newServer   bool // the client ids start again
		breakIt     func(t *testing.T, r *testenv.Redis, rdb *redis.Client, id int64)
		wantErr     error
	}{
		{
			name: "killed by CLIENT KILL",
			breakIt: func(t *testing.T, r *testenv.Redis, rdb *redis.Client, id int64) {
				if err := rdb.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:      "server restarted",
			newServer: true,
			breakIt: func(t *testing.T, r *testenv.Redis, rdb *redis.Client, id int64) {
				r.Stop()
				if err := r.Start(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:        "read timeout",
			readTimeout: 100 * time.Millisecond,
			breakIt:     func(*testing.T, *testenv.Redis, *redis.Client, int64) {},
			wantErr:     os.ErrDeadlineExceeded,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, rdb := pipeRedis(t)
			ctx := context.Background()
			c := pipeConnFor(t, &redis.Options{Addr: r.Addr, ReadTimeout: tc.readTimeout})
			id := pipeDo(t, c, []any{"CLIENT", "ID"})[0].(int64)
			blocked := c.send(ctx, [][]any{{"BLPOP", "gate", 0}})
			queued := c.send(ctx, [][]any{{"SET", "after", "1"}})
			tc.breakIt(t, r, rdb, id)
			for name, f := range map[string]*flight{"blocked": blocked, "queued": queued} {
				vals, err := f.wait(ctx)
				if err == nil || !strings.HasPrefix(err.Error(), "state: redis connection: ") {
					t.Errorf("%s flight: %#v, %v; want a connection error", name, vals, err)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("%s flight: %v, want %v", name, err, tc.wantErr)
				}
			}
			if n := rdb.Exists(ctx, "after").Val(); n != 0 {
				t.Error("the flight after the blocked one ran")
			}
			got := pipeDo(t, c, []any{"CLIENT", "ID"}, []any{"SET", "k", "v"})
			if !tc.newServer && got[0] == id {
				t.Errorf("still on connection %d", id)
			}
			if got[1] != "OK" {
				t.Errorf("SET on the new connection: %#v", got[1])
			}
		})
	}
}

func TestOrderedConnIsNamedAndIdleConnectionDoesNotTimeOut(t *testing.T) {
	r, rdb := pipeRedis(t)
	const timeout = 50 * time.Millisecond
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr, ReadTimeout: timeout})
	id := pipeDo(t, c, []any{"CLIENT", "ID"})[0]
	list := rdb.ClientList(context.Background()).Val()
	if !strings.Contains(list, fmt.Sprintf("id=%d ", id)) || !strings.Contains(list, "name="+orderedConnName+" ") {
		t.Errorf("connection %d not named %s in\n%s", id, orderedConnName, list)
	}
	time.Sleep(4 * timeout)
	if again := pipeDo(t, c, []any{"CLIENT", "ID"})[0]; again != id {
		t.Errorf("idle connection %d was replaced by %d", id, again)
	}
}

func TestOrderedConnRefusesUnsupportedArgumentsBeforeWriting(t *testing.T) {
	r, _ := pipeRedis(t)
	ctx := context.Background()
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	id := pipeDo(t, c, []any{"CLIENT", "ID"})[0]
	cases := []struct {
		name    string
		cmds    [][]any
		wantErr string
	}{
		{"unsupported type", [][]any{{"SET", "a", "1"}, {"SET", "b", time.Second}}, "state: redis command 1 (SET): argument 2 has unsupported type time.Duration"},
		{"float32", [][]any{{"SET", "a", "1"}, {"SET", "b", float32(1)}}, "argument 2 has unsupported type float32"},
		{"empty command", [][]any{{"SET", "a", "1"}, {}}, "state: redis command 1: empty command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := c.send(ctx, tc.cmds).wait(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("wait = %#v, %v; want an error with %q", vals, err, tc.wantErr)
			}
			got := pipeDo(t, c, []any{"CLIENT", "ID"}, []any{"EXISTS", "a", "b"})
			if want := []any{id, int64(0)}; !reflect.DeepEqual(got, want) {
				t.Errorf("next flight = %#v, want %#v (same connection, nothing of the refused flight ran)", got, want)
			}
		})
	}
	if vals := pipeDo(t, c); vals == nil || len(vals) != 0 {
		t.Errorf("empty flight = %#v, want an empty []any", vals)
	}
}

func TestOrderedConnWaitEndsWithItsContextAndTheStreamStaysInSync(t *testing.T) {
	r, rdb := pipeRedis(t)
	ctx := context.Background()
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	blocked := c.send(ctx, [][]any{{"BLPOP", "gate", 0}, {"GET", "k"}})

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := blocked.wait(cancelled); err != context.Canceled {
		t.Errorf("wait with a cancelled ctx: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := blocked.wait(short); err != context.DeadlineExceeded {
		t.Errorf("wait past the ctx deadline: %v", err)
	}

	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, "gate", "open").Err(); err != nil {
		t.Fatal(err)
	}
	got := pipeDo(t, c, []any{"SET", "k", "after"}, []any{"GET", "k"})
	if want := []any{"OK", "after"}; !reflect.DeepEqual(got, want) {
		t.Errorf("later flight = %#v, want %#v", got, want)
	}
	// The flight given up on was read all the same, and a second wait sees it.
	if got, want := pipeWait(t, blocked), []any{[]any{"gate", "open"}, "before"}; !reflect.DeepEqual(got, want) {
		t.Errorf("given-up flight = %#v, want %#v", got, want)
	}
	if _, err := blocked.wait(cancelled); err != nil {
		t.Errorf("wait of a complete flight with an ended ctx: %v", err)
	}
}

func TestOrderedConnAuthenticatesAndSelectsTheDB(t *testing.T) {
	r, rdb := pipeRedis(t)
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"ACL", "SETUSER", "alice", "on", ">alicepw", "~*", "&*", "+@all"},
		{"CONFIG", "SET", "requirepass", "s3cret"},
	} {
		if err := rdb.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	admin := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, Password: "s3cret"})
	t.Cleanup(func() {
		admin.Do(ctx, "CONFIG", "SET", "requirepass", "")
		admin.Close()
	})
	cases := []struct {
		name     string
		opt      redis.Options
		wantErr  string // of wait
		wantRepl string // error reply of SET
	}{
		{name: "password", opt: redis.Options{Password: "s3cret", DB: 3}},
		{name: "username and password", opt: redis.Options{Username: "alice", Password: "alicepw", DB: 5}},
		{name: "password and DB 0", opt: redis.Options{Password: "s3cret"}},
		{name: "wrong password", opt: redis.Options{Password: "wrong", DB: 3}, wantErr: "state: redis connection: AUTH: WRONGPASS"},
		{name: "no password", opt: redis.Options{}, wantRepl: "NOAUTH"},
		{name: "no password and a DB", opt: redis.Options{DB: 3}, wantErr: "state: redis connection: SELECT: NOAUTH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			opt.Addr = r.Addr
			c := pipeConnFor(t, &opt)
			key := "key of " + tc.name
			vals, err := c.send(ctx, [][]any{{"SET", key, "v"}}).wait(ctx)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("wait = %#v, %v; want an error %q...", vals, err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.wantRepl != "":
				if e, ok := vals[0].(redisError); !ok || !strings.HasPrefix(string(e), tc.wantRepl) {
					t.Fatalf("SET = %#v, want an error reply %q...", vals[0], tc.wantRepl)
				}
				return
			}
			for db := 0; db < 6; db++ {
				n, err := admin.Do(ctx, "EVAL", "redis.call('SELECT', ARGV[1]); return redis.call('EXISTS', KEYS[1])", 1, key, db).Int64()
				if err != nil {
					t.Fatal(err)
				}
				if want := db == opt.DB; (n == 1) != want {
					t.Errorf("key in DB %d: %v, want %v", db, n == 1, want)
				}
			}
		})
	}
}

func TestOrderedConnConcurrentSendsKeepEachSendersOrder(t *testing.T) {
	r, rdb := pipeRedis(t)
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	const senders, flights = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("counter:%d", s)
			fs := make([]*flight, flights)
			for i := range fs {
				fs[i] = c.send(context.Background(), [][]any{{"INCR", key}, {"INCR", key}})
			}
			for i, f := range fs {
				vals, err := f.wait(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if want := []any{int64(2*i + 1), int64(2*i + 2)}; !reflect.DeepEqual(vals, want) {
					errs <- fmt.Errorf("sender %d flight %d = %v, want %v", s, i, vals, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := rdb.Get(context.Background(), "counter:0").Val(); n != strconv.Itoa(2*flights) {
		t.Errorf("counter:0 = %s", n)
	}
}

func TestOrderedConnCloseFailsOutstandingFlightsAndLaterSendsRedial(t *testing.T) {
	r, _ := pipeRedis(t)
	ctx := context.Background()
	c := pipeConnFor(t, &redis.Options{Addr: r.Addr})
	blocked := c.send(ctx, [][]any{{"BLPOP", "gate", 0}})
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := blocked.wait(ctx); err == nil || !strings.Contains(err.Error(), "state: redis connection: closed by the client") {
		t.Errorf("outstanding flight after close: %v", err)
	}
	if got := pipeDo(t, c, []any{"PING"}); got[0] != "PONG" {
		t.Errorf("PING after close = %#v", got)
	}
}

func TestOrderedConnSpeaksTLS(t *testing.T) {
	addr, files := testenv.StartRedisTLS(t, "no")
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	client := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tc})
	t.Cleanup(func() { client.Close() })
	for _, tc := range []struct {
		name string
		opt  *redis.Options
	}{
		{"TLSConfig", &redis.Options{Addr: addr, TLSConfig: tc}},
		// go-redis's Dialer, set by NewClient, dials TLS itself.
		{"a client's Options", client.Options()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pipeConnFor(t, tc.opt)
			if got := pipeDo(t, c, []any{"PING"}); got[0] != "PONG" {
				t.Errorf("PING = %#v", got)
			}
		})
	}
}

func TestOrderedConnDialErrorIsReportedByWait(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := pipeConnFor(t, &redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	_, err = c.send(context.Background(), [][]any{{"PING"}}).wait(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "state: redis connection: dial tcp") {
		t.Errorf("wait = %v, want a dial error", err)
	}
}

func TestPipeEncodingDoesNotAllocate(t *testing.T) {
	cmd := []any{"EVALSHA", "0123456789abcdef0123456789abcdef01234567", 1, "{s:st1}", int64(42), 3.25, true, []byte("x"), uint64(7), int32(-1), nil}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = appendCommand(buf[:0], cmd)
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("appendCommand allocates %v times", allocs)
	}
	want := "*11\r\n$7\r\nEVALSHA\r\n$40\r\n0123456789abcdef0123456789abcdef01234567\r\n$1\r\n1\r\n$7\r\n{s:st1}\r\n" +
		"$2\r\n42\r\n$4\r\n3.25\r\n$1\r\n1\r\n$1\r\nx\r\n$1\r\n7\r\n$2\r\n-1\r\n$0\r\n\r\n"
	if string(buf) != want {
		t.Errorf("encoded %q\nwant    %q", buf, want)
	}
}

// pipeEncodeReply encodes a value of readReply's shapes canonically (every
// string as a bulk string).
func pipeEncodeReply(buf []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(buf, "$-1\r\n"...)
	case string:
		return appendBulkString(buf, v)
	case int64:
		return append(strconv.AppendInt(append(buf, ':'), v, 10), '\r', '\n')
	case redisError:
		return append(append(append(buf, '-'), v...), '\r', '\n')
	case []any:
		buf = append(strconv.AppendInt(append(buf, '*'), int64(len(v)), 10), '\r', '\n')
		for _, e := range v {
			buf = pipeEncodeReply(buf, e)
		}
		return buf
	}
	panic(fmt.Sprintf("pipeEncodeReply: %T", v))
}

func pipeRead(data string, size int) (any, error) {
	return readReply(bufio.NewReaderSize(strings.NewReader(data), size))
}

func TestPipeReadReply(t *testing.T) {
	deep := strings.Repeat("*1\r\n", maxReplyDepth+1) + ":1\r\n"
	cases := []struct {
		name    string
		in      string
		want    any
		wantErr error
	}{
		{"simple string", "+OK\r\n", "OK", nil},
		{"empty simple string", "+\r\n", "", nil},
		{"error", "-ERR bad\r\n", redisError("ERR bad"), nil},
		{"integer", ":-42\r\n", int64(-42), nil},
		{"min integer", ":-9223372036854775808\r\n", int64(-1 << 63), nil},
		{"bulk", "$5\r\nhe\r\no\r\n", "he\r\no", nil},
		{"empty bulk", "$0\r\n\r\n", "", nil},
		{"nil bulk", "$-1\r\n", nil, nil},
		{"nil array", "*-1\r\n", nil, nil},
		{"empty array", "*0\r\n", []any{}, nil},
		{"nested array", "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-E x\r\n", []any{int64(1), []any{"a", nil}, redisError("E x")}, nil},
		{"long line", "+" + strings.Repeat("x", 100) + "\r\n", strings.Repeat("x", 100), nil},
		{"long bulk", "$100\r\n" + strings.Repeat("y", 100) + "\r\n", strings.Repeat("y", 100), nil},
		{"nothing", "", nil, io.EOF},
		{"truncated line", "+OK", nil, io.ErrUnexpectedEOF},
		{"truncated bulk", "$5\r\nab", nil, io.ErrUnexpectedEOF},
		{"truncated long bulk", "$100\r\n" + strings.Repeat("y", 50), nil, io.ErrUnexpectedEOF},
		{"truncated array", "*2\r\n:1\r\n", nil, io.ErrUnexpectedEOF},
		{"bare LF", "+OK\n", nil, errProtocol},
		{"empty line", "\r\n", nil, errProtocol},
		{"unknown type", "%1\r\n", nil, errProtocol},
		{"bad integer", ":12a\r\n", nil, errProtocol},
		{"empty integer", ":\r\n", nil, errProtocol},
		{"integer overflow", ":9223372036854775808\r\n", nil, errProtocol},
		{"bulk without CRLF", "$2\r\nabc\r\n", nil, errProtocol},
		{"long bulk without CRLF", "$100\r\n" + strings.Repeat("y", 101) + "\r\n", nil, errProtocol},
		{"negative bulk length", "$-2\r\n", nil, errProtocol},
		{"bulk too long", "$536870913\r\n", nil, errProtocol},
		{"array too long", "*16777217\r\n", nil, errProtocol},
		{"array nested too deep", deep, nil, errProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pipeRead(tc.in, 16)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("readReply = %#v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("readReply = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

// Lengths at the limits, with no data behind them, cost no memory.
func TestPipeReadReplyDoesNotAllocateForForgedLengths(t *testing.T) {
	for _, in := range []string{"$536870912\r\n", "*16777216\r\n", "*16777216\r\n*16777216\r\n$536870912\r\nab"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := pipeRead(in, 4096)
		runtime.ReadMemStats(&after)
		if err != io.ErrUnexpectedEOF {
			t.Errorf("%q: %v", in, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%q: allocated %d bytes", in, n)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":0\r\n", ":-9223372036854775808\r\n", "$3\r\nabc\r\n", "$0\r\n\r\n",
		"$-1\r\n", "*-1\r\n", "*0\r\n", "*2\r\n*1\r\n:1\r\n$-1\r\n", "*3\r\n+a\r\n-b\r\n$1\r\nc\r\n",
		"", "+OK", "$5\r\nab", "*2\r\n:1\r\n", "$2\r\nabc\r\n", ":1x\r\n", "%2\r\n", "\r\n", "*-5\r\n",
		"$536870913\r\n", "*16777216\r\n", "$40\r\n" + strings.Repeat("z", 40) + "\r\n", "*1\r\n*1\r\n*1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := readReply(bufio.NewReaderSize(bytes.NewReader(data), 16))
		if err != nil {
			if v != nil {
				t.Fatalf("value %#v with error %v", v, err)
			}
			return
		}
		enc := pipeEncodeReply(nil, v) // panics on a value of another shape
		v2, err := readReply(bufio.NewReaderSize(bytes.NewReader(enc), 16))
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %#v via %q: %#v, %v", v, enc, v2, err)
		}
	})
}
