package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
)

// With a retention, the embedded broker deletes what is older, so that a
// long demo does not grow without bound: a consumer starting from the
// beginning finds only what came after.
func TestEmbeddedBrokerDeletesRecordsPastRetention(t *testing.T) {
	b := testenv.StartBrokerWith(t, stream.EmbeddedConfig{Partitions: 1, Retention: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := newProducer(t, b.Addr())
	publish := func(prefix string, n int) {
		var events []stream.Event
		for i := range n {
			events = append(events, &stream.Click{Header: stream.NewHeader(prefix+strings.Repeat("x", i), time.Now()), Course: "law", Kind: stream.KindQuiz})
		}
		if err := p.Publish(ctx, events...); err != nil {
			t.Fatal(err)
		}
	}
	publish("old", 10)
	time.Sleep(2 * time.Second) // past retention, and a sweep (every 100ms here) since
	publish("new", 5)

	students := consumeUntil(ctx, t, stream.ConsumerConfig{Brokers: []string{b.Addr()}, Group: "retention", Topics: []string{stream.TopicClicks}},
		"the records after the retention",
		func(m stream.Message) string { return string(m.Key) },
		func(got []string) bool { return len(got) >= 5 })
	for _, s := range students {
		if strings.HasPrefix(s, "old") {
			t.Fatalf("consumed %v: a record past retention was still in the log", students)
		}
	}
	if len(students) != 5 {
		t.Fatalf("consumed %v, want the 5 new records", students)
	}
}

func TestEmbeddedBrokerRefusesANegativeRetention(t *testing.T) {
	_, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: "127.0.0.1:0", Retention: -time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("err %v, want a refusal of the negative retention", err)
	}
}
