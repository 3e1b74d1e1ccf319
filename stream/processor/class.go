package processor

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// Thresholds that sort a student's tile into the class panel's states.
const (
	attentiveAt   = 0.6 // rolling attention at or above: attentive
	inattentiveAt = 0.4 // below: inattentive
)

// HandleTiles is the class stage. Tiles arrive keyed by session, so one
// member sees every student of a class in order: it keeps the latest tile
// per student under {c:<session>}, relays each tile to the dashboards, and
// evaluates the class-level rules once per session per batch.
func (p *Processor) HandleTiles(ctx context.Context, batch []stream.Message) error {
	out := &outputs{opens: map[string][]byte{}}
	sessions := map[string]time.Time{}
	var tiles []*stream.Tile
	var raw [][]byte
	for _, m := range batch {
		e, err := stream.Decode(m.Topic, m.Value)
		if err != nil {
			p.deadLetter(out, m, err)
			continue
		}
		t := e.(*stream.Tile)
		tiles, raw = append(tiles, t), append(raw, m.Value)
		if t.TS.After(sessions[t.Session]) {
			sessions[t.Session] = t.TS.Time
		}
	}
	if len(tiles) > 0 {
		err := p.retry(ctx, "class tiles", func() error {
			pipe := p.rdb.Pipeline()
			for i, t := range tiles {
				pipe.HSet(ctx, state.TilesKey(t.Session), t.Student, raw[i])
				pipe.Expire(ctx, state.TilesKey(t.Session), 12*time.Hour)
				pipe.Publish(ctx, state.LiveTiles, raw[i])
			}
			_, err := pipe.Exec(ctx)
			if err != nil {
				p.m.redisErrors.Inc()
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(sessions))
	for s := range sessions {
		ids = append(ids, s)
	}
	sort.Strings(ids)
	policy := p.policy.Policy()
	opens := map[string][]byte{}
	for _, session := range ids {
		var snap *rules.ClassSnapshot
		var openDoc []byte
		err := p.retry(ctx, "class state", func() error {
			pipe := p.rdb.Pipeline()
			all := pipe.HGetAll(ctx, state.TilesKey(session))
			open := pipe.Get(ctx, state.ClassWarnKey(session))
			if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
				p.m.redisErrors.Inc()
				return err
			}
			snap = classSnapshot(session, all.Val(), sessions[session], p.cfg.StaleTile)
			openDoc = []byte(open.Val())
			return nil
		})
		if err != nil {
			return err
		}
		next, ws := rules.Reconcile(policy, "", session, parseOpen(openDoc), rules.EvaluateClass(policy, snap), rules.FamilyClass, snap.Now)
		if len(ws) > 0 {
			p.emit(out, ws)
			if doc, err := json.Marshal(next); err == nil {
				opens[session] = doc
			}
		}
	}
	var save func(redis.Pipeliner)
	if len(opens) > 0 {
		save = func(pipe redis.Pipeliner) {
			for s, doc := range opens {
				pipe.Set(ctx, state.ClassWarnKey(s), doc, 12*time.Hour)
			}
		}
	}
	if err := p.flush(ctx, out, save); err != nil {
		return err
	}
	p.countWarnings(out.warnings)
	return nil
}

// classSnapshot counts the students of a session from their latest tiles;
// a tile older than stale counts the student as gone from the session.
func classSnapshot(session string, tiles map[string]string, now time.Time, stale time.Duration) *rules.ClassSnapshot {
	s := &rules.ClassSnapshot{Session: session, Now: now}
	for _, raw := range tiles {
		var t stream.Tile
		if json.Unmarshal([]byte(raw), &t) != nil || now.Sub(t.TS.Time) > stale {
			continue
		}
		s.Course = t.Course
		s.Students++
		if !t.Captured {
			continue
		}
		s.Captured++
		switch {
		case !t.FacePresent:
			s.Absent++
		case t.Attention < inattentiveAt:
			s.Inattentive++
		case t.Attention >= attentiveAt:
			s.Attentive++
		}
		if t.FacePresent && t.Dominant == "confused" {
			s.Confused++
		}
	}
	return s
}
