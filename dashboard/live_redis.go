package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Live-feed keys written by the processor (docs/architecture.md). They
// mirror stream/state's LiveWarnings, LiveTiles, TilesKey and
// LiveInterventions.
const (
	LiveWarnings      = "classpulse:live:warnings"
	LiveTiles         = "classpulse:live:tiles"
	LiveInterventions = "classpulse:live:interventions"
)

// TilesKey is the hash of the latest tile per student of a session.
func TilesKey(session string) string { return "{c:" + session + "}:tiles" }

// streamID is a Redis stream entry id, ordered as Redis orders them.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(a, 10, 64)
	if err != nil || len(a) > 20 {
		return streamID{}, fmt.Errorf("stream id %q: want <ms>-<seq>", s)
	}
	if !ok {
		return streamID{ms: ms}, nil
	}
	seq, err := strconv.ParseUint(b, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: want <ms>-<seq>", s)
	}
	return streamID{ms, seq}, nil
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// streamTail follows one Redis stream with XREAD BLOCK and hands every
// entry's "e" field to fn, in order. It starts after from (when empty,
// after the last entry present when it starts), survives Redis restarts (including a restart that lost the
// stream, whose ids then start again from zero) and returns when ctx ends.
func streamTail(ctx context.Context, rdb redis.UniversalClient, key, from string, logger *slog.Logger, onErr func(), fn func(id string, e []byte)) {
	last := from
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if last == "" {
			id, err := lastStreamID(ctx, rdb, key)
			if err != nil {
				if ctx.Err() == nil {
					onErr()
					logger.Warn("reading live stream head", "key", key, "err", err)
					sleep(ctx, backoff)
					backoff = min(2*backoff, 5*time.Second)
				}
				continue
			}
			last = id
		}
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{key, last}, Count: 100, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			onErr()
			logger.Warn("reading live stream", "key", key, "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			// A restarted Redis may have lost the stream: if its head is now
			// before where we were, follow it from its start again.
			if head, herr := lastStreamID(ctx, rdb, key); herr == nil {
				h, _ := parseStreamID(head)
				l, _ := parseStreamID(last)
				if h.less(l) {
					logger.Warn("live stream went back (Redis restarted without data); following it from the start", "key", key)
					last = "0-0"
				}
			}
			continue
		}
		backoff = 100 * time.Millisecond
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				if e, ok := m.Values["e"].(string); ok {
					fn(m.ID, []byte(e))
				}
			}
		}
	}
}

// lastStreamID returns the id of the newest entry, or "0-0" for an empty or
// missing stream.
func lastStreamID(ctx context.Context, rdb redis.UniversalClient, key string) (string, error) {
	ms, err := rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(ms) == 0 {
		return "0-0", nil
	}
	return ms[0].ID, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
