package spool

import (
	"context"

	"github.com/classpulse/classpulse/stream"
	"github.com/segmentio/kafka-go"
)

// Publisher adapts a stream.Producer to Run's publish function: the spooled
// bytes are relayed exactly as they were encoded, keyed as they were keyed.
func Publisher(p *stream.Producer) func(context.Context, []Message) error {
	return func(ctx context.Context, msgs []Message) error {
		out := make([]kafka.Message, len(msgs))
		for i, m := range msgs {
			out[i] = kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		}
		return p.PublishRaw(ctx, out...)
	}
}

// FromEvent encodes a validated event as a spool message for its topic.
func FromEvent(e stream.Event) (Message, error) {
	b, err := stream.Encode(e)
	if err != nil {
		return Message{}, err
	}
	return Message{Topic: e.Topic(), Key: []byte(e.Key()), Value: b}, nil
}
