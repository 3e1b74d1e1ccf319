package stream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

func TestProducerIsTunedForSafetyAndLatency(t *testing.T) {
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{"127.0.0.1:1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.RequiredAcks() != kafka.RequireAll {
		t.Errorf("RequiredAcks = %v, want RequireAll: the default waits for no broker at all", p.RequiredAcks())
	}
	if p.BatchTimeout() > 10*time.Millisecond {
		t.Errorf("BatchTimeout = %v; kafka-go's 1s default would delay every warning", p.BatchTimeout())
	}
}

func TestProducerRefusesInvalidEventsAndWritesNothing(t *testing.T) {
	b := testenv.StartBroker(t, 2)
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{b.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	good := &stream.Click{Header: stream.NewHeader("s1", time.Now()), Course: "law", Kind: stream.KindQuiz}
	bad := &stream.Click{Header: stream.NewHeader("s1", time.Now()), Course: "law", Kind: "nope"}
	if err := p.Publish(context.Background(), good, bad); err == nil {
		t.Fatal("Publish accepted an invalid event")
	}
}

func TestConsumerGroupDeliversEveryEventOnceAndCommits(t *testing.T) {
	b := testenv.StartBroker(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{b.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
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
