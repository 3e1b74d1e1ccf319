package state

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The gate is what the apply script checks before it writes a score: the
// student's camera consent, and the roster's under_14 flag with a
// guardian's consent. It saves a score two of its six commands to check
// the gate only for a live hash whose version a score wrote after checking
// it (a version starting with '.', see nextVersion). So whatever may close
// the gate since either deletes the hash (a revocation, in the script) or
// marks its version with a leading '!' (a camera consent of a student
// under 14 without a guardian, in the script; the roster flag turning on,
// here), and the next score of a marked version checks the gate again.

// under14 writes a student's roster flag under_14 (KEYS 1 the profile,
// ARGV 1 "1" or "0") and, when it turns to "1", marks the version of the
// student's live hash (KEYS 2), if it has one: at once, so that no score
// between the two skips the gate.
var under14 = redis.NewScript(`local old = redis.call('HGET', KEYS[1], 'under_14')
redis.call('HSET', KEYS[1], 'under_14', ARGV[1])
if ARGV[1] == '1' and old ~= '1' then
  local v = redis.call('HGET', KEYS[2], 'v')
  if v then redis.call('HSET', KEYS[2], 'v', '!' .. v) end
end
return 0`)

// SetUnder14 queues on pipe the write of a student's roster flag under_14
// ("1" or "0"), the roster fact the gate reads: a write of it that does
// not go through here lets the student's scores skip the gate. It runs
// EVAL, not EVALSHA: roster writes are rare, and a pipeline cannot fall
// back on NOSCRIPT.
func SetUnder14(ctx context.Context, pipe redis.Pipeliner, student, v string) {
	under14.Eval(ctx, pipe, []string{ProfileKey(student), LiveKey(student)}, v)
}
