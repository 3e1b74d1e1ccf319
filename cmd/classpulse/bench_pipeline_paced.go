package main

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pacedLog holds the paced phase's events, encoded before the phase
// starts (the edge clients they stand for encode on their own machines),
// outside the Go heap. Held in the heap, 200,000 encoded events (~100 MB)
// raised the collector's heap goal by as much, and the heap grew into
// fresh pages during the phase's first second or so: ~40,000 page faults
// and 40 % more CPU in the process under test than in the seconds after,
// which showed as the phase's worst latencies. Only what points nowhere
// (offsets, lengths) stays in the heap; a record is made at hand-over.
type pacedLog struct {
	chunks [][]byte // anonymous mappings, chunkBytes each
	events []pacedEvent
	topics []string
	keys   []string
}

type pacedEvent struct {
	chunk, off, n int32
	topic, key    int32
}

const pacedChunkBytes = 16 << 20

// newPacedLog keeps the next n records of next (the generator's).
func newPacedLog(next func() (*kgo.Record, error), n int) (*pacedLog, error) {
	l := &pacedLog{events: make([]pacedEvent, 0, n)}
	topicIdx, keyIdx := map[string]int32{}, map[string]int32{}
	intern := func(m map[string]int32, list *[]string, s string) int32 {
		i, ok := m[s]
		if !ok {
			i = int32(len(*list))
			m[s] = i
			*list = append(*list, s)
		}
		return i
	}
	var cur []byte
	for range n {
		r, err := next()
		if err != nil {
			l.free()
			return nil, err
		}
		if len(r.Value) > pacedChunkBytes {
			l.free()
			return nil, fmt.Errorf("bench pipeline: an event of %d bytes", len(r.Value))
		}
		if cur == nil || len(cur)+len(r.Value) > cap(cur) {
			m, err := syscall.Mmap(-1, 0, pacedChunkBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				l.free()
				return nil, fmt.Errorf("bench pipeline: paced events: %w", err)
			}
			l.chunks = append(l.chunks, m)
			cur = m[:0]
		}
		off := len(cur)
		cur = append(cur, r.Value...) // within the mapping: cap is checked above
		l.events = append(l.events, pacedEvent{
			chunk: int32(len(l.chunks) - 1), off: int32(off), n: int32(len(r.Value)),
			topic: intern(topicIdx, &l.topics, r.Topic), key: intern(keyIdx, &l.keys, string(r.Key)),
		})
	}
	return l, nil
}

func (l *pacedLog) len() int { return len(l.events) }

// record makes the i-th event's record; its value points into the log.
func (l *pacedLog) record(i int) *kgo.Record {
	e := l.events[i]
	return &kgo.Record{Topic: l.topics[e.topic], Key: []byte(l.keys[e.key]), Value: l.chunks[e.chunk][e.off : e.off+e.n : e.off+e.n]}
}

// free unmaps the log; no record made from it may be in use.
func (l *pacedLog) free() {
	for _, m := range l.chunks {
		_ = syscall.Munmap(m)
	}
	l.chunks = nil
}

// benchPaced hands the log's records to the client at rate per second,
// each stamped with the time it was handed over, and waits until the
// broker has them all.
func benchPaced(ctx context.Context, cl *kgo.Client, l *pacedLog, rate float64) error {
	p := &benchProduce{cl: cl}
	start := time.Now()
	for sent := 0; sent < l.len(); {
		due := min(l.len(), int(time.Since(start).Seconds()*rate)+1)
		if due <= sent {
			time.Sleep(time.Millisecond)
			continue
		}
		now := time.Now()
		for ; sent < due; sent++ {
			p.send(ctx, l.record(sent), now)
		}
	}
	return p.wait(ctx)
}
