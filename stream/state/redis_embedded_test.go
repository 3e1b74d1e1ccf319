package state

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/stream"
)

// TestTheApplyScriptRunsOnTheEmbeddedRedis: `classpulse demo` runs the
// apply script on the embedded Redis (miniredis's Lua), so every branch
// the demo reaches must behave there as on redis-server: scores past the
// consent gate, whole and fractional study seconds, a revocation.
func TestTheApplyScriptRunsOnTheEmbeddedRedis(t *testing.T) {
	e, err := StartEmbeddedRedis("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	rdb := redis.NewClient(&redis.Options{Addr: e.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(rdb, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := rdb.HSet(ctx, ProfileKey("e1"), "under_14", "0").Err(); err != nil {
		t.Fatal(err)
	}
	consent := &stream.Consent{Header: stream.NewHeader("e1", t0), Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1"}
	apply(t, s, Op{Event: consent, Topic: stream.TopicConsent, Offset: 1})
	for sec := 1; sec <= 3; sec++ {
		if res := apply(t, s, Op{Event: score("e1", sec, 0.8, 1), Topic: stream.TopicScores, Offset: int64(sec)}); res[0].Status != Applied {
			t.Fatalf("score %d: %v", sec, res[0].Status)
		}
	}
	// The first study click is a week earlier: the last one's reply
	// carries that week, as the rules read it (Calendar.LastWeeks).
	for k, d := range []float64{30, 0.5, 30} {
		at := t0
		if k == 0 {
			at = t0.AddDate(0, 0, -7)
		}
		click := &stream.Click{Header: stream.NewHeader("e1", at), Course: "law", Kind: "study", DurationS: d}
		res := apply(t, s, Op{Event: click, Topic: stream.TopicClicks, Offset: int64(k + 1)})
		if res[0].Status != Applied || res[0].Academic == nil {
			t.Fatalf("click %d: %v", k, res[0].Status)
		}
		if k == 2 {
			last, _ := fixedCal{}.LastWeeks(at)
			if got := res[0].Academic.Study["law"].ByWeek; len(got) != 1 || got[last] != 30 {
				t.Fatalf("weeks in the last click's reply %v, want %s: 30", got, last)
			}
		}
	}
	if got, _ := rdb.HGet(ctx, StudentTag("e1")+":study", "t|law|2026-autumn").Result(); got != "60.5" {
		t.Fatalf("study total %q, want 60.5", got)
	}
	revoke := &stream.Consent{Header: stream.NewHeader("e1", t0.Add(10)), Scope: stream.ScopeCamera, Granted: false, PolicyVersion: "2026-1"}
	if res := apply(t, s, Op{Event: revoke, Topic: stream.TopicConsent, Offset: 2}); res[0].Status != Erased {
		t.Fatalf("revocation: %v", res[0].Status)
	}
	if res := apply(t, s, Op{Event: score("e1", 4, 0.8, 1), Topic: stream.TopicScores, Offset: 4}); res[0].Status != Refused {
		t.Fatalf("score after the revocation: %v", res[0].Status)
	}
}
