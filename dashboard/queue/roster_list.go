package queue

import (
	"context"
	"encoding/json"
	"fmt"
)

// RosterAll returns every roster entry (in no particular order), reading
// the roster in pages; an entry that does not decode is skipped. The
// dashboard groups it by class for the "not captured" tiles of the grid.
func (s *Store) RosterAll(ctx context.Context) ([]RosterEntry, error) {
	var out []RosterEntry
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, keyRoster, cursor, "", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("queue: roster: %w", err)
		}
		for i := 1; i < len(kv); i += 2 {
			var e RosterEntry
			if json.Unmarshal([]byte(kv[i]), &e) == nil && e.Student != "" {
				out = append(out, e)
			}
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}
