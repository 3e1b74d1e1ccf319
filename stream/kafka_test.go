package stream_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

func TestProducerIsTunedForSafetyAndLatency(t *testing.T) {
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{"127.0.0.1:1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.RequiredAcks() != kgo.AllISRAcks() {
		t.Errorf("RequiredAcks = %v, want all in-sync replicas: fewer loses acknowledged warnings with a broker", p.RequiredAcks())
	}
	if p.Linger() != 0 {
		t.Errorf("Linger = %v; a linger timer delays every warning by its length", p.Linger())
	}
}

// With no broker to reach, Publish fails within about its write timeout,
// with an error that says so, instead of holding its caller.
func TestProducerFailsWithinItsWriteTimeoutWhenNoBrokerAnswers(t *testing.T) {
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{"127.0.0.1:1"}, WriteTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = p.Publish(ctx, &stream.Click{Header: stream.NewHeader("s1", time.Now()), Course: "law", Kind: stream.KindQuiz})
	if err == nil {
		t.Fatal("Publish succeeded with no broker")
	}
	if ctx.Err() != nil {
		t.Fatalf("Publish held its caller until the caller's deadline (%v): %v", time.Since(start), err)
	}
	if !strings.Contains(err.Error(), "publish 1 messages: not delivered within 300ms") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestProducerRefusesInvalidEventsAndWritesNothing(t *testing.T) {
	b := testenv.StartBroker(t, 2)
	p := newProducer(t, b.Addr())
	good := &stream.Click{Header: stream.NewHeader("s1", time.Now()), Course: "law", Kind: stream.KindQuiz}
	bad := &stream.Click{Header: stream.NewHeader("s1", time.Now()), Course: "law", Kind: "nope"}
	if err := p.Publish(context.Background(), good, bad); err == nil {
		t.Fatal("Publish accepted an invalid event")
	}
}

// A student's events land in the partition the Java client's murmur2
// partitioner picks (kafka-go's Murmur2Balancer is an independent copy of
// it), so that classpulse and a school's other producers agree; a relayed
// message keeps its time and headers.
func TestProducerPlacesKeysLikeTheJavaClientAndKeepsRelayedTimeAndHeaders(t *testing.T) {
	const partitions, students = 4, 300
	b := testenv.StartBroker(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := newProducer(t, b.Addr())
	var events []stream.Event
	for i := range students {
		events = append(events, &stream.Click{Header: stream.NewHeader(fmt.Sprintf("stu-%d", i), time.Now()), Course: "law", Kind: stream.KindQuiz})
	}
	if err := p.Publish(ctx, events...); err != nil {
		t.Fatal(err)
	}
	relayed, err := stream.Encode(events[0])
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_700_000_000_123)
	header := kafka.Header{Key: "dlq-reason", Value: []byte("schema")}
	if err := p.PublishRaw(ctx, kafka.Message{Topic: stream.TopicClicks, Key: []byte("relay"), Value: relayed, Time: at, Headers: []kafka.Header{header}}); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishRaw(ctx, kafka.Message{Key: []byte("x"), Value: relayed}); err == nil {
		t.Error("PublishRaw accepted a message without a topic")
	}

	var balancer kafka.Murmur2Balancer
	all := []int{0, 1, 2, 3}
	var mu sync.Mutex
	got := 0
	handler := func(_ context.Context, batch []stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			got++
			if want := balancer.Balance(kafka.Message{Key: m.Key}, all...); m.Partition != want {
				t.Errorf("key %s in partition %d, the Java client puts it in %d", m.Key, m.Partition, want)
			}
			if string(m.Key) != "relay" {
				continue
			}
			if !m.Time.Equal(at) {
				t.Errorf("relayed message time %v, want %v", m.Time, at)
			}
			if len(m.Headers) != 1 || m.Headers[0].Key != header.Key || string(m.Headers[0].Value) != string(header.Value) {
				t.Errorf("relayed message headers %v, want [%v]", m.Headers, header)
			}
		}
		return nil
	}
	c, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "placement", Topics: []string{stream.TopicClicks}}, handler, nil)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(ctx, t, c, "every message consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got == students+1
	})
}

func TestConsumerGroupDeliversEveryEventOnceAndCommits(t *testing.T) {
	b := testenv.StartBroker(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := newProducer(t, b.Addr())
	const n = 200
	var events []stream.Event
	for i := 0; i < n; i++ {
		events = append(events, &stream.Click{Header: stream.NewHeader("s"+string(rune('a'+i%7)), time.Now()), Course: "law", Kind: stream.KindQuiz})
	}
	if err := p.Publish(ctx, events...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	handler := func(_ context.Context, batch []stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			e, err := stream.Decode(m.Topic, m.Value)
			if err != nil {
				t.Errorf("decode: %v", err)
				continue
			}
			seen[e.EventHeader().ID]++
		}
		return nil
	}
	run := func(ctx context.Context) {
		c, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "g1", Topics: []string{stream.TopicClicks}, CommitInterval: 50 * time.Millisecond}, handler, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	c1, stop1 := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { run(c1); close(done) }()
	testenv.WaitFor(t, 30*time.Second, "all events consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	stop1()
	<-done
	// A new member of the same group starts after the committed offsets:
	// nothing is delivered twice.
	c2, stop2 := context.WithTimeout(ctx, 8*time.Second)
	defer stop2()
	run(c2)
	mu.Lock()
	defer mu.Unlock()
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("event %s delivered %d times", id, k)
		}
	}
}

// A staged consumer overlaps a batch's second stage with the next batch's
// first, runs second stages one at a time in log order, and commits a
// batch only after its second stage succeeded: a second stage cut short at
// shutdown leaves its batch to be delivered again.
func TestStagedConsumerOverlapsStagesAndCommitsOnlyFinishedBatches(t *testing.T) {
	const n, cut = 400, 300
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := clickLog(ctx, t, n)

	var (
		mu        sync.Mutex
		firsts    []int64 // first offset of each batch, in first-stage order
		finished  []int64 // the same, in second-stage order
		inFinish  int
		started   int // second stages started
		reachCut  = make(chan struct{})
		cutClosed bool
	)
	// waitFor polls cond (under mu) for up to 20 s.
	waitFor := func(cond func() bool) bool {
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(time.Millisecond)
		}
	}
	handler := func(_ context.Context, batch []stream.Message) ([]func(context.Context) error, error) {
		mu.Lock()
		first, last := batch[0].Offset, batch[len(batch)-1].Offset
		idx := len(firsts)
		firsts = append(firsts, first)
		if last >= cut && !cutClosed {
			cutClosed = true
			close(reachCut)
		}
		mu.Unlock()
		// The stages overlap: the batch before's second stage starts while
		// this first stage runs (a consumer running them in turn, in one
		// goroutine, never gets there).
		if idx > 0 && !waitFor(func() bool { return started >= idx }) {
			t.Errorf("the second stage of the batch before offset %d did not start while its first stage ran", first)
		}
		return []func(context.Context) error{func(work context.Context) error {
			mu.Lock()
			started++
			inFinish++
			if inFinish > 1 {
				t.Errorf("two second stages at once")
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				inFinish--
				mu.Unlock()
			}()
			if last >= cut {
				// Stuck until the shutdown grace ends.
				<-work.Done()
				return work.Err()
			}
			// Finish only once the next batch's first stage has begun:
			// the consumer must not wait for this stage before starting it.
			if !waitFor(func() bool { return firsts[len(firsts)-1] > first }) {
				t.Errorf("the batch after offset %d was not started while its second stage ran", first)
			}
			mu.Lock()
			finished = append(finished, first)
			mu.Unlock()
			return nil
		}}, nil
	}
	cfg := stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "staged", Topics: []string{stream.TopicClicks},
		MaxBatch: 40, CommitInterval: 20 * time.Millisecond, ShutdownGrace: 200 * time.Millisecond}
	c, err := stream.NewStagedConsumer(cfg, handler, nil)
	if err != nil {
		t.Fatal(err)
	}
	run1, stop1 := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(run1) }()
	select {
	case <-reachCut:
	case <-ctx.Done():
		t.Fatal("the batch holding the cut never arrived")
	}
	stop1()
	if err := <-done; err != nil {
		t.Fatalf("Run at shutdown: %v", err)
	}
	mu.Lock()
	if len(finished) == 0 {
		t.Fatal("no batch finished its second stage")
	}
	for i := 1; i < len(finished); i++ {
		if finished[i] <= finished[i-1] {
			t.Fatalf("second stages out of log order: %v", finished)
		}
	}
	resumeAt := finished[len(finished)-1]
	for _, f := range firsts {
		if f > resumeAt {
			resumeAt = f // the first batch not finished
			break
		}
	}
	mu.Unlock()

	// A new member resumes after the last batch whose second stage
	// finished: the cut batch comes again.
	if again := resumed(ctx, t, cfg, n); again[0] != resumeAt {
		t.Fatalf("the next member started at offset %d, want %d (first batch whose second stage had not finished)", again[0], resumeAt)
	}
}

// With two later stages (apply, publish) the consumer runs consecutive
// batches like a pipeline: each stage in log order, one batch's apply
// while the batch before publishes. A failed stage stops the batches after
// it from running that stage, and none of them is committed: the next
// member resumes at the failed batch.
func TestPipelinedStagesRunInLogOrderAndAFailureStopsTheBatchesAfter(t *testing.T) {
	const n, cut = 400, 300
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := clickLog(ctx, t, n)
	var (
		mu         sync.Mutex
		ran        [2][]int64 // first offsets of the batches each stage ran, in order
		publishing int        // publish stages running now
		overlaps   int        // apply stages that began while an older batch published
		failedAt   int64      = -1
	)
	stage := func(k int, first, last int64) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			ran[k] = append(ran[k], first)
			if k == 0 && publishing > 0 {
				overlaps++
			}
			if k == 1 {
				publishing++
			}
			fail := k == 0 && last >= cut && failedAt < 0
			if fail {
				failedAt = first
			}
			mu.Unlock()
			if fail {
				return errors.New("redis away for good")
			}
			if k == 1 {
				// Publishing lasts until the next batch's apply began (1s at
				// most, should it never come): that apply then overlaps it.
				for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
					mu.Lock()
					next := ran[0][len(ran[0])-1] > first
					mu.Unlock()
					if next {
						break
					}
				}
				mu.Lock()
				publishing--
				mu.Unlock()
			}
			return nil
		}
	}
	handler := func(_ context.Context, batch []stream.Message) ([]func(context.Context) error, error) {
		first, last := batch[0].Offset, batch[len(batch)-1].Offset
		return []func(context.Context) error{stage(0, first, last), stage(1, first, last)}, nil
	}
	cfg := stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "pipelined", Topics: []string{stream.TopicClicks},
		MaxBatch: 20, CommitInterval: 20 * time.Millisecond}
	c, err := stream.NewStagedConsumer(cfg, handler, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err == nil || !strings.Contains(err.Error(), "redis away for good") {
		t.Fatalf("Run: %v, want the failed stage's error", err)
	}
	mu.Lock()
	for k, name := range []string{"apply", "publish"} {
		for i := 1; i < len(ran[k]); i++ {
			if ran[k][i] <= ran[k][i-1] {
				t.Fatalf("%s stages out of log order: %v", name, ran[k])
			}
		}
	}
	if last := ran[0][len(ran[0])-1]; last != failedAt {
		t.Fatalf("apply stages ran up to the batch at %d, after the one that failed at %d", last, failedAt)
	}
	if last := ran[1][len(ran[1])-1]; last >= failedAt {
		t.Fatalf("the batch at %d published, at or after the failed one at %d", last, failedAt)
	}
	if overlaps == 0 {
		t.Fatal("no apply stage ran while the batch before it published")
	}
	mu.Unlock()

	// The next member resumes at the failed batch.
	if again := resumed(ctx, t, cfg, n); again[0] != failedAt {
		t.Fatalf("the next member started at offset %d, want %d (the failed batch)", again[0], failedAt)
	}
}

// TestReadsAcrossSegmentBoundariesDeliverEveryOffsetOnce: the embedded
// broker cuts each partition's log into segments (8 MiB by default, so
// that no append copies a whole 100 MB segment). With 4 KiB segments and
// 120 small produce calls the log here has 60 segments per partition
// (counted from the segment files, at least 50 required); a consumer that
// stops halfway and one of the same group that resumes from the committed
// offsets must between them see every offset of every partition, in order
// and exactly once, wherever the fetches and the commits fall.
func TestReadsAcrossSegmentBoundariesDeliverEveryOffsetOnce(t *testing.T) {
	// On disk, so that the segments can be counted below; the broker keeps
	// them the same way in memory.
	dataDir := t.TempDir()
	b := testenv.StartBrokerWith(t, stream.EmbeddedConfig{Partitions: 2, SegmentBytes: 4 << 10, DataDir: dataDir})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := newProducer(t, b.Addr())
	const n = 6000
	for i := 0; i < n; i += 50 {
		var events []stream.Event
		for j := i; j < i+50; j++ {
			events = append(events, &stream.Click{Header: stream.NewHeader(fmt.Sprintf("s%d", j%10), time.Now()), Course: "law", Kind: stream.KindQuiz})
		}
		if err := p.Publish(ctx, events...); err != nil {
			t.Fatal(err)
		}
	}

	segments := map[string]int{} // partition folder → segment files
	if err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".dat") && strings.Contains(path, stream.TopicClicks) {
			segments[filepath.Dir(path)]++
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(segments) != 2 {
		t.Fatalf("segment files in %d partition folders, want 2: %v", len(segments), segments)
	}
	for dir, n := range segments {
		if n < 50 {
			t.Fatalf("%s: %d segments; the test needs many boundaries", dir, n)
		}
	}
	t.Logf("segments per partition: %v", segments)

	var mu sync.Mutex
	seen := map[int]map[int64]int{} // partition → offset → deliveries
	next := map[int]int64{}         // partition → next offset expected in this run
	total := 0
	handler := func(_ context.Context, batch []stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			if want, ok := next[m.Partition]; ok && m.Offset != want {
				t.Errorf("partition %d: offset %d after %d", m.Partition, m.Offset, want-1)
			}
			next[m.Partition] = m.Offset + 1
			if seen[m.Partition] == nil {
				seen[m.Partition] = map[int64]int{}
			}
			seen[m.Partition][m.Offset]++
			total++
		}
		return nil
	}
	run := func(ctx context.Context) {
		c, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "seg", Topics: []string{stream.TopicClicks},
			MaxBatch: 97, CommitInterval: 20 * time.Millisecond}, handler, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	delivered := func() int { mu.Lock(); defer mu.Unlock(); return total }
	first, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { run(first); close(done) }()
	testenv.WaitFor(t, 30*time.Second, "half the events consumed", func() bool { return delivered() >= n/2 })
	stop()
	<-done
	mu.Lock()
	clear(next) // the second member starts wherever the group committed
	mu.Unlock()
	second, stop2 := context.WithCancel(ctx)
	defer stop2()
	done2 := make(chan struct{})
	go func() { run(second); close(done2) }()
	testenv.WaitFor(t, 30*time.Second, "every event consumed", func() bool { return delivered() >= n })
	stop2()
	<-done2

	mu.Lock()
	defer mu.Unlock()
	got := 0
	for part, offs := range seen {
		for o := int64(0); o < int64(len(offs)); o++ {
			if offs[o] != 1 {
				t.Errorf("partition %d offset %d delivered %d times", part, o, offs[o])
			}
		}
		got += len(offs)
	}
	if got != n || total != n {
		t.Errorf("%d distinct offsets in %d deliveries, want %d of each", got, total, n)
	}
}

// newProducer is a producer on the broker at addr, closed when the test ends.
// clickLog is a one-partition broker holding n clicks of one student.
func clickLog(ctx context.Context, t *testing.T, n int) *stream.EmbeddedBroker {
	t.Helper()
	b := testenv.StartBroker(t, 1)
	var events []stream.Event
	for i := 0; i < n; i++ {
		events = append(events, &stream.Click{Header: stream.NewHeader("s1", time.Now()), Course: "law", Kind: stream.KindQuiz})
	}
	if err := newProducer(t, b.Addr()).Publish(ctx, events...); err != nil {
		t.Fatal(err)
	}
	return b
}

// resumed runs a plain consumer of cfg's group until offset n-1 arrives and
// returns the offsets it was given: where the group's commits left off.
func resumed(ctx context.Context, t *testing.T, cfg stream.ConsumerConfig, n int64) []int64 {
	t.Helper()
	return consumeUntil(ctx, t, cfg, "the rest delivered again",
		func(m stream.Message) int64 { return m.Offset },
		func(got []int64) bool { return len(got) > 0 && got[len(got)-1] == n-1 })
}

// consumeUntil runs a plain consumer of cfg, keeping what pick makes of
// each message, until done holds for what it kept, which it returns.
func consumeUntil[T any](ctx context.Context, t *testing.T, cfg stream.ConsumerConfig, what string, pick func(stream.Message) T, done func([]T) bool) []T {
	t.Helper()
	var (
		mu   sync.Mutex
		kept []T
	)
	c, err := stream.NewConsumer(cfg, func(_ context.Context, batch []stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			kept = append(kept, pick(m))
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(ctx, t, c, what, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done(kept)
	})
	mu.Lock()
	defer mu.Unlock()
	return kept
}

// runUntil runs c until done holds (30s at most), then stops it; Run must
// end without an error.
func runUntil(ctx context.Context, t *testing.T, c *stream.Consumer, what string, done func() bool) {
	t.Helper()
	run, stop := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- c.Run(run) }()
	testenv.WaitFor(t, 30*time.Second, what, done)
	stop()
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
}

func newProducer(t *testing.T, addr string) *stream.Producer {
	t.Helper()
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{addr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// When a second member joins, the first finishes every batch in flight
// and commits before its partitions move: the new owner starts after
// them, so no offset is applied by both. The first member's later stages
// are held while the second joins; without the wait, the revocation
// would commit only what was finished, the second member would be given
// the held batches again, and both would apply them.
func TestRebalanceWaitsForBatchesInFlightBeforePartitionsMove(t *testing.T) {
	const parts, n = 4, 600
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := testenv.StartBroker(t, parts)
	p := newProducer(t, b.Addr())
	publish := func(from, to int) {
		var events []stream.Event
		for i := from; i < to; i++ {
			events = append(events, &stream.Click{Header: stream.NewHeader(fmt.Sprintf("s%02d", i%40), time.Now()), Course: "law", Kind: stream.KindQuiz})
		}
		if err := p.Publish(ctx, events...); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, n)

	type pos struct {
		part   int
		offset int64
	}
	var (
		mu      sync.Mutex
		applied = map[pos][]string{}  // who applied each offset
		handed  = map[int]bool{}      // partitions member a was handed records of
		release = make(chan struct{}) // member a's later stages wait until it is closed
	)
	handler := func(who string) stream.StagedHandler {
		return func(_ context.Context, batch []stream.Message) ([]func(context.Context) error, error) {
			if who == "a" {
				mu.Lock()
				for _, m := range batch {
					handed[m.Partition] = true
				}
				mu.Unlock()
			}
			return []func(context.Context) error{func(context.Context) error {
				if who == "a" {
					<-release
				}
				mu.Lock()
				defer mu.Unlock()
				for _, m := range batch {
					k := pos{m.Partition, m.Offset}
					applied[k] = append(applied[k], who)
				}
				return nil
			}}, nil
		}
	}
	cfg := stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "rebalance", Topics: []string{stream.TopicClicks},
		MaxBatch: n, CommitInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second}
	run := func(who string) (stop func()) {
		c, err := stream.NewStagedConsumer(cfg, handler(who), nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("member %s: Run: %v", who, err)
			}
		}
	}
	stopA := run("a")
	defer stopA()
	// a's later stages are held from the start: once it has been handed
	// records of every partition, whichever partitions move to b, a holds
	// some of their records in flight.
	testenv.WaitFor(t, 30*time.Second, "member a holds records of every partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handed) == parts
	})
	stopB := run("b")
	defer stopB()
	// Member b joins and the group rebalances while a's batches are held.
	time.Sleep(2 * time.Second)
	close(release)
	// More events, until b has applied some: b is given partitions only
	// once a has finished what it held.
	byB := func() int {
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for _, who := range applied {
			if who[0] == "b" {
				k++
			}
		}
		return k
	}
	sent := n
	for deadline := time.Now().Add(30 * time.Second); byB() == 0; sent += 20 {
		if time.Now().After(deadline) {
			t.Fatal("member b applied nothing: the group never moved a partition to it")
		}
		publish(sent, sent+20)
		time.Sleep(50 * time.Millisecond)
	}
	testenv.WaitFor(t, 60*time.Second, "every offset applied", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) == sent
	})
	mu.Lock()
	defer mu.Unlock()
	for k, who := range applied {
		if len(who) > 1 {
			t.Errorf("partition %d offset %d applied by %v", k.part, k.offset, who)
		}
	}
}
