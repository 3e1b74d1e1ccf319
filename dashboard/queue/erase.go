package queue

import (
	"context"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"
)

// EraseStudent removes a student from the read model: each of their
// warning records with its steps, its index entries and its place in the
// queue, then their roster entry. It returns the refs it removed and
// whether a roster entry was there. Erasing a student twice removes
// nothing the second time and is not an error.
func (s *Store) EraseStudent(ctx context.Context, student string) (refs []string, roster bool, err error) {
	refs, err = s.rdb.SMembers(ctx, idxKey("student", student)).Result()
	if err != nil {
		return nil, false, fmt.Errorf("queue index: %w", err)
	}
	sort.Strings(refs)
	args := make([]any, 0, len(Dimensions)+1)
	args = append(args, "")
	for _, d := range Dimensions {
		args = append(args, d)
	}
	for _, ref := range refs {
		args[0] = ref
		if err := eraseRecord.Run(ctx, s.rdb, []string{recKey(ref), stepsKey(ref), keyAll}, args...).Err(); err != nil {
			return nil, false, fmt.Errorf("queue record %s: %w", ref, err)
		}
	}
	// An emptied index set disappears by itself; delete it in case a
	// record was gone already.
	if err := s.rdb.Del(ctx, idxKey("student", student)).Err(); err != nil {
		return nil, false, fmt.Errorf("queue index: %w", err)
	}
	n, err := s.rdb.HDel(ctx, keyRoster, student).Result()
	if err != nil {
		return nil, false, fmt.Errorf("queue roster: %w", err)
	}
	return refs, n > 0, nil
}

// eraseRecord removes one warning record atomically: its entry in every
// index set (the record keeps the indexed value under the dimension's
// name), its steps, its place in the queue.
// KEYS: record, steps, all. ARGV: ref, then the dimensions.
var eraseRecord = redis.NewScript(`
local ref = ARGV[1]
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v and v ~= '' then redis.call('SREM', '` + prefixIdx + `' .. ARGV[i] .. ':' .. v, ref) end
end
redis.call('ZREM', KEYS[3], ref)
return redis.call('DEL', KEYS[1], KEYS[2])
`)
