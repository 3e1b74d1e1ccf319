package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
	"github.com/redis/go-redis/v9"
)

// rosterTTL is how long the roster grouped by class is reused before it
// is read again. An upload through this replica shows at once (the cache
// is dropped); through another replica, within this time.
const rosterTTL = 10 * time.Second

// rosterByClass caches the roster's students per class (the roster
// entry's class field: a session or course id, as the grid names it).
type rosterByClass struct {
	mu      sync.Mutex
	at      time.Time
	byClass map[string][]string
}

// forget drops the cached roster, so the next grid paint reads it again.
func (rc *rosterByClass) forget() {
	rc.mu.Lock()
	rc.byClass = nil
	rc.mu.Unlock()
}

// classRoster returns the roster students of class, sorted.
func (s *Server) classRoster(ctx context.Context, class string) ([]string, error) {
	rc := &s.hub.roster
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.byClass == nil || s.now().Sub(rc.at) > rosterTTL {
		entries, err := s.store.RosterAll(ctx)
		if err != nil {
			return nil, err
		}
		m := map[string][]string{}
		for _, e := range entries {
			if e.Class != "" {
				m[e.Class] = append(m[e.Class], e.Student)
			}
		}
		for _, list := range m {
			slices.Sort(list)
		}
		rc.byClass, rc.at = m, s.now()
	}
	return rc.byClass[class], nil
}

// classTiles returns the tiles of a class grid's first paint (the
// WebSocket snapshot and GET /api/v1/classes/{class}/tiles), sorted by
// student: the latest tile of every student seen in the class, and a tile
// with captured=false for every student of the class roster who has none
// (no camera, no consent, or simply no score yet), so that the grid shows
// them as "not captured" and counts them so, never as inattentive. A
// student whose camera consent is withdrawn is shown not captured whatever
// their last tile said. When the roster or the consents cannot be read,
// the tiles in Redis are returned as they are (and the error is logged).
func (s *Server) classTiles(ctx context.Context, class string) ([]json.RawMessage, error) {
	m, err := s.rdb.HGetAll(ctx, TilesKey(class)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	type entry struct {
		student string
		raw     json.RawMessage
		tile    *stream.Tile // decoded only when needed
	}
	entries := make([]entry, 0, len(m))
	course := ""
	for student, v := range m {
		if !json.Valid([]byte(v)) {
			continue
		}
		entries = append(entries, entry{student: student, raw: json.RawMessage(v)})
		if course == "" {
			var t stream.Tile
			if json.Unmarshal([]byte(v), &t) == nil && t.Session == class {
				course = t.Course
			}
		}
	}
	roster, err := s.classRoster(ctx, class)
	if err != nil {
		s.logger.Warn("reading the roster for the class grid; roster students without tiles are not shown", "class", class, "err", err)
	}
	now := s.now()
	for _, student := range roster {
		if _, ok := m[student]; ok {
			continue
		}
		t := &stream.Tile{Header: stream.NewHeader(student, now), Session: class, Course: course}
		entries = append(entries, entry{student: student, tile: t})
	}
	if len(entries) == 0 {
		return []json.RawMessage{}, nil
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.student, b.student) })
	// Camera consent, one round trip for the class.
	pipe := s.rdb.Pipeline()
	consent := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		consent[i] = pipe.HGet(ctx, state.ConsentKey(e.student), stream.ScopeCamera)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		s.logger.Warn("reading camera consents for the class grid", "class", class, "err", err)
	}
	out := make([]json.RawMessage, 0, len(entries))
	for i, e := range entries {
		if e.tile == nil && withdrawn(consent[i]) {
			var t stream.Tile
			if json.Unmarshal(e.raw, &t) == nil && t.Captured {
				e.tile = &stream.Tile{Header: t.Header, Session: t.Session, Course: t.Course, WarningLevel: t.WarningLevel}
			}
		}
		if e.tile != nil {
			b, err := json.Marshal(e.tile)
			if err != nil {
				continue
			}
			e.raw = b
		}
		out = append(out, s.stripTile(e.raw))
	}
	return out, nil
}

// withdrawn reports whether a consent value ("granted|ts|policy_version",
// as the processor keeps it) says the camera is not granted.
func withdrawn(cmd *redis.StringCmd) bool {
	v, err := cmd.Result()
	return err == nil && strings.HasPrefix(v, "0|")
}
