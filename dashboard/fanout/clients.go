package fanout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Clients is the client side, run in its own process: it connects N
// WebSocket clients subscribed to warnings, prints "ready", records the
// latency of every warning from its sent_us evidence to receipt, and when
// its stdin closes prints a Result as JSON.
func Clients(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench fanout-clients", flag.ContinueOnError)
	url := fs.String("url", "", "ws:// URL of the dashboard")
	n := fs.Int("clients", 5000, "clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok := os.Getenv("CLASSPULSE_FANOUT_TOKEN")
	if *url == "" || tok == "" {
		return errors.New("fanout-clients is started by `classpulse bench fanout`")
	}
	if _, err := RaiseFileLimit(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	// One transport for all dials; each upgrade hijacks its own connection.
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true}}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []uint32 // microseconds
		received atomic.Int64
		dropped  atomic.Int64
		ready    sync.WaitGroup
		sem      = make(chan struct{}, 64)
		conns    struct {
			sync.Mutex
			list []*websocket.Conn
		}
	)
	t0 := time.Now()
	var dialErr atomic.Value
	for i := 0; i < *n; i++ {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			var c *websocket.Conn
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
				c, _, err = websocket.Dial(dctx, *url, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: httpc})
				dcancel()
				if err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				<-sem
				dialErr.Store(err)
				dropped.Add(1)
				ready.Done()
				return
			}
			defer c.CloseNow()
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err = c.Write(wctx, websocket.MessageText, []byte(`{"op":"subscribe","channel":"warnings"}`))
			if err == nil {
				_, _, err = c.Read(wctx) // the "subscribed" ack
			}
			wcancel()
			<-sem
			ready.Done()
			if err != nil {
				dropped.Add(1)
				return
			}
			conns.Lock()
			conns.list = append(conns.list, c)
			conns.Unlock()
			// Reads carry no context deadline (a cancellable context costs
			// a timer registration per read on a context shared by every
			// client); the end of the run closes the connections instead.
			local := make([]uint32, 0, 256)
			buf := make([]byte, 4096)
			for {
				_, r, err := c.Reader(context.Background())
				n := 0
				for err == nil {
					if n == len(buf) {
						buf = append(buf, make([]byte, len(buf))...)
					}
					var m int
					m, err = r.Read(buf[n:])
					n += m
				}
				if err != io.EOF {
					if ctx.Err() == nil {
						dropped.Add(1)
					}
					break
				}
				now := time.Now().UnixMicro()
				if sent, ok := sentUS(buf[:n]); ok {
					d := ((now%usWrap - sent) + usWrap) % usWrap
					local = append(local, uint32(min(d, 1<<31)))
					received.Add(1)
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	ready.Wait()
	connect := time.Since(t0)
	if v := dialErr.Load(); v != nil {
		fmt.Fprintf(os.Stderr, "fanout-clients: some dials failed, e.g. %v\n", v)
	}
	fmt.Fprintf(out, "ready clients=%d connected_in=%v\n", *n-int(dropped.Load()), connect.Round(time.Millisecond))
	// Run until the parent closes our stdin.
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	cancel()
	conns.Lock()
	for _, c := range conns.list {
		_ = c.CloseNow()
	}
	conns.Unlock()
	wg.Wait()
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))]) / 1000
	}
	res := Result{Clients: *n, Received: received.Load(), P50MS: pct(0.5), P99MS: pct(0.99), Dropped: int(dropped.Load()), ConnectMS: float64(connect.Milliseconds())}
	if len(lats) > 0 {
		res.MaxMS = float64(lats[len(lats)-1]) / 1000
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(out, string(b))
	return nil
}

// sentUS finds the sent_us evidence in a warning frame without decoding it.
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
	f, err := strconv.ParseFloat(string(b[:j]), 64)
	if err != nil {
		return 0, false
	}
	return int64(f), true
}
