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

// Publish encodes events and appends them to the spool, in order: the
// spool is then the publisher of a client that must not lose events while
// the broker is away (it satisfies simulate.Publisher and the edge
// worker's sink). It returns once the events are on disk; Run delivers
// them. An event that does not encode fails the call before anything is
// appended. Events are appended in runs that fit one segment, so a batch
// larger than a segment is spooled whole, in several writes.
func (s *Spool) Publish(_ context.Context, events ...stream.Event) error {
	msgs := make([]Message, 0, len(events))
	for _, e := range events {
		m, err := FromEvent(e)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	room := s.cfg.SegmentBytes - int64(len(segmentMagic))
	for len(msgs) > 0 {
		n, size := 0, int64(0)
		for n < len(msgs) {
			rec := int64(recordHeader + msgs[n].bodyLen())
			if n > 0 && size+rec > room {
				break
			}
			size += rec
			n++
		}
		if err := s.Append(msgs[:n]...); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}
