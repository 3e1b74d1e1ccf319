package spool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// kafka-go's Transport keeps idle connections after Writer.Close; they are
// the producer's, not the spool's (reported to the stream package owner).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"))
}

func msg(i int) Message {
	return Message{Topic: stream.TopicScores, Key: []byte("s1"), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
}

func open(t *testing.T, cfg Config) (*Spool, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := Open(cfg, nil, reg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

func drainAll(t *testing.T, s *Spool) []int {
	t.Helper()
	b, err := s.Next(1 << 20)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	var got []int
	for _, m := range b.Messages {
		var n int
		if _, err := fmt.Sscanf(string(m.Value), `{"n":%d}`, &n); err != nil {
			t.Fatalf("record %q: %v", m.Value, err)
		}
		got = append(got, n)
	}
	return got
}

func wantSeq(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d records %v, want %d..%d", len(got), got, from, to-1)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("record %d is %d, want %d (order broken)", i, n, from+i)
		}
	}
}

func TestSpoolKeepsOrderAcrossRestartAndSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 1 << 10, NoSync: true}
	s, _ := open(t, cfg)
	for i := 0; i < 200; i++ {
		if err := s.Append(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("want several segments at 1 KiB each, got %d", len(segs))
	}
	s2, _ := open(t, cfg)
	if s2.Pending() != 200 {
		t.Fatalf("pending after restart = %d, want 200", s2.Pending())
	}
	wantSeq(t, drainAll(t, s2), 0, 200)
}

func TestSpoolAckSurvivesRestart(t *testing.T) {
	tests := []struct {
		name      string
		acked     int
		segBytes  int64
		wantFirst int
	}{
		{"within one segment", 4, 1 << 16, 4},
		{"across segments", 150, 1 << 10, 150},
		{"everything", 200, 1 << 10, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: tc.segBytes, NoSync: true}
			s, _ := open(t, cfg)
			for i := 0; i < 200; i++ {
				if err := s.Append(msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			b, err := s.Next(tc.acked)
			if err != nil {
				t.Fatal(err)
			}
			s.Ack(b)
			s.Close()
			s2, _ := open(t, cfg)
			wantSeq(t, drainAll(t, s2), tc.wantFirst, 200)
			// Appends after a restart continue the order.
			if err := s2.Append(msg(200)); err != nil {
				t.Fatal(err)
			}
			wantSeq(t, drainAll(t, s2), tc.wantFirst, 201)
		})
	}
}

func TestSpoolDropsOldestWhenFullAndCountsThem(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), MaxBytes: 8 << 10, SegmentBytes: 2 << 10, NoSync: true}
	s, reg := open(t, cfg)
	for i := 0; i < 1000; i++ {
		if err := s.Append(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := drainAll(t, s)
	if len(got) == 0 || got[len(got)-1] != 999 {
		t.Fatalf("newest record must survive, got tail %v", got[max(0, len(got)-3):])
	}
	wantSeq(t, got, 1000-len(got), 1000)
	dropped := testutil.ToFloat64(s.m.dropped.WithLabelValues("full"))
	if int(dropped)+len(got) != 1000 {
		t.Fatalf("dropped %v + kept %d != 1000 appended", dropped, len(got))
	}
	var size int64
	files, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.seg"))
	for _, f := range files {
		st, _ := os.Stat(f)
		size += st.Size()
	}
	if size > cfg.MaxBytes {
		t.Fatalf("spool uses %d bytes on disk, limit %d", size, cfg.MaxBytes)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Fatalf("metric lint: %v %v", err, probs)
	}
}

func TestSpoolCutsTornTailAndKeepsGoodRecords(t *testing.T) {
	tests := []struct {
		name string
		tail []byte
	}{
		{"half a header", []byte{0, 0}},
		{"header without body", []byte{0, 0, 0, 20, 1, 2, 3, 4}},
		{"bad checksum", append([]byte{0, 0, 0, 4, 9, 9, 9, 9}, 1, 'x', 0, 0)},
		{"absurd length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, NoSync: true}
			s, _ := open(t, cfg)
			for i := 0; i < 5; i++ {
				if err := s.Append(msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			f, err := os.OpenFile(filepath.Join(dir, segName(1)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.tail)
			f.Close()
			s2, _ := open(t, cfg)
			if got := testutil.ToFloat64(s2.m.dropped.WithLabelValues("corrupt")); got != 1 {
				t.Fatalf("corrupt count = %v, want 1", got)
			}
			if err := s2.Append(msg(5)); err != nil {
				t.Fatal(err)
			}
			wantSeq(t, drainAll(t, s2), 0, 6)
		})
	}
}

func TestSpoolRejectsBadRecordsWithClearErrors(t *testing.T) {
	s, _ := open(t, Config{Dir: t.TempDir(), NoSync: true})
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"empty topic", Message{Value: []byte("x")}, nil},
		{"oversized value", Message{Topic: "t", Value: make([]byte, MaxRecordBytes)}, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Append(tc.m)
			if err == nil {
				t.Fatal("Append accepted a bad record")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if s.Pending() != 0 {
		t.Fatalf("rejected records were stored: %d pending", s.Pending())
	}
}

func TestSpoolRunRetriesInOrderUntilPublishSucceeds(t *testing.T) {
	s, _ := open(t, Config{Dir: t.TempDir(), NoSync: true, BatchSize: 7, MaxBackoff: 20 * time.Millisecond})
	var mu sync.Mutex
	var got []int
	fails := 3
	publish := func(_ context.Context, ms []Message) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return errors.New("broker unreachable")
		}
		for _, m := range ms {
			n, _ := strconv.Atoi(string(m.Value[5 : len(m.Value)-1]))
			got = append(got, n)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx, publish) }()
	for i := 0; i < 50; i++ {
		if err := s.Append(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "all 50 delivered", func() bool { return s.Pending() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Run(context.Background(), publish); err == nil {
		t.Fatal("second Run must fail")
	}
	mu.Lock()
	defer mu.Unlock()
	wantSeq(t, got, 0, 50)
}

// TestSpoolDeliversToBrokerWhenItReturns spools events while no broker
// listens, then starts the embedded broker on that address and reads the
// events back over the Kafka protocol, in order.
func TestSpoolDeliversToBrokerWhenItReturns(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{addr}, WriteTimeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, _ := open(t, Config{Dir: t.TempDir(), NoSync: true, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx, Publisher(p)) }()
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		ev := &stream.Consent{Header: stream.NewHeader("stu-1", start.Add(time.Duration(i)*time.Second)),
			Scope: stream.ScopeCamera, Granted: i%2 == 0, PolicyVersion: "p" + strconv.Itoa(i)}
		m, err := FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(m); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // let at least one publish attempt fail
	if s.Pending() != 20 {
		t.Fatalf("pending = %d with no broker, want 20", s.Pending())
	}
	b, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: addr, Partitions: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testenv.WaitFor(t, 30*time.Second, "spool drained to the broker", func() bool { return s.Pending() == 0 })
	cancel()
	<-done

	var seen []string
	var mu sync.Mutex
	cctx, ccancel := context.WithCancel(context.Background())
	defer ccancel()
	c, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: []string{addr}, Group: "spool-test", Topics: []string{stream.TopicConsent}},
		func(_ context.Context, batch []stream.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				ev, err := stream.Decode(m.Topic, m.Value)
				if err != nil {
					return err
				}
				seen = append(seen, ev.(*stream.Consent).PolicyVersion)
			}
			return nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cdone := make(chan error)
	go func() { cdone <- c.Run(cctx) }()
	testenv.WaitFor(t, 30*time.Second, "20 consent events read back", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 20 })
	ccancel()
	<-cdone
	for i, v := range seen[:20] {
		if v != "p"+strconv.Itoa(i) {
			t.Fatalf("event %d has policy %s: order broken (%v)", i, v, seen)
		}
	}
}

func TestSpoolPublishAppendsEventsInOrderOrNothing(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	good := func(i int) stream.Event {
		return &stream.Consent{Header: stream.NewHeader("stu-1", at.Add(time.Duration(i)*time.Second)),
			Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "p" + strconv.Itoa(i)}
	}
	bad := &stream.Consent{Header: stream.NewHeader("stu-1", at), Scope: "microphone", PolicyVersion: "p"}
	tests := []struct {
		name   string
		events []stream.Event
		want   []string // policy versions read back; nil: refused
	}{
		{"batch kept in order", []stream.Event{good(0), good(1), good(2)}, []string{"p0", "p1", "p2"}},
		{"one invalid event refuses the batch", []stream.Event{good(0), bad, good(2)}, nil},
		{"batch larger than a segment split over segments", func() []stream.Event {
			var es []stream.Event
			for i := 0; i < 60; i++ {
				es = append(es, good(i))
			}
			return es
		}(), func() []string {
			var vs []string
			for i := 0; i < 60; i++ {
				vs = append(vs, "p"+strconv.Itoa(i))
			}
			return vs
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t, Config{Dir: t.TempDir(), NoSync: true, MaxBytes: 64 << 10, SegmentBytes: 4 << 10})
			err := s.Publish(context.Background(), tc.events...)
			if (err != nil) != (tc.want == nil) {
				t.Fatalf("Publish err = %v", err)
			}
			b, err := s.Next(100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range b.Messages {
				ev, err := stream.Decode(m.Topic, m.Value)
				if err != nil {
					t.Fatal(err)
				}
				if string(m.Key) != "stu-1" {
					t.Fatalf("key %q", m.Key)
				}
				got = append(got, ev.(*stream.Consent).PolicyVersion)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && tc.want == nil) {
				t.Fatalf("read back %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSpoolFlushWaitsForDeliveryOrGivesUp(t *testing.T) {
	tests := []struct {
		name      string
		broker    bool
		wantEmpty bool
	}{
		{"delivered", true, true},
		{"broker away: gives up at the deadline, records kept", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t, Config{Dir: t.TempDir(), NoSync: true, MaxBackoff: 20 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() {
				done <- s.Run(ctx, func(context.Context, []Message) error {
					if !tc.broker {
						return errors.New("broker unreachable")
					}
					return nil
				})
			}()
			for i := 0; i < 10; i++ {
				if err := s.Append(msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			fctx, fcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			empty := s.Flush(fctx)
			fcancel()
			cancel()
			<-done
			if empty != tc.wantEmpty || (s.Pending() == 0) != tc.wantEmpty {
				t.Fatalf("Flush = %v with %d pending, want empty=%v", empty, s.Pending(), tc.wantEmpty)
			}
		})
	}
}

// TestSpoolDeliveredCountMatchesAckedBatchesAcrossSegments acks batches
// that start deep in one segment and end early in a later one, with and
// without a drop while they were in flight: the delivered and dropped
// counters must add up to what was appended, never run backwards.
func TestSpoolDeliveredCountMatchesAckedBatchesAcrossSegments(t *testing.T) {
	tests := []struct {
		name    string
		batches []int
		flood   int // records appended while the last batch is in flight
	}{
		{"spanning batches", []int{30, 25, 40, 17}, 0},
		{"drop while a spanning batch is in flight", []int{30, 25}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t, Config{Dir: t.TempDir(), MaxBytes: 8 << 10, SegmentBytes: 1 << 10, NoSync: true})
			for i := 0; i < 120; i++ {
				if err := s.Append(msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			appended := 120
			for i, n := range tc.batches {
				b, err := s.Next(n)
				if err != nil {
					t.Fatal(err)
				}
				if i == len(tc.batches)-1 {
					for k := 0; k < tc.flood; k++ {
						if err := s.Append(msg(appended)); err != nil {
							t.Fatal(err)
						}
						appended++
					}
				}
				s.Ack(b)
			}
			delivered := testutil.ToFloat64(s.m.delivered)
			dropped := testutil.ToFloat64(s.m.dropped.WithLabelValues("full"))
			if got := int(delivered+dropped) + s.Pending(); got != appended {
				t.Fatalf("delivered %v + dropped %v + pending %d = %d, appended %d", delivered, dropped, s.Pending(), got, appended)
			}
			if tc.flood == 0 && int(delivered) != 30+25+40+17 {
				t.Fatalf("delivered %v, acked %d", delivered, 30+25+40+17)
			}
		})
	}
}
