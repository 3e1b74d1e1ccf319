package helploop

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis keys. Everything of one warning shares the hash tag {hl:<ref>}, so
// a Redis Cluster keeps a plan's state and its claims on one slot.
//
//	{hl:<ref>}            hash: playbook:<plan> → playbook id pinned when the
//	                      plan was first seen ("-" for none); gap:<plan> →
//	                      the gap at the last look; done:<plan>:<checkpoint>
//	                      → JSON of what the checkpoint did
//	{hl:<ref>}:claim:<plan>:<checkpoint>
//	                      string with a lease (SET NX PX): the replica
//	                      running that checkpoint now
func planKey(ref string) string { return "{hl:" + ref + "}" }

func claimKey(ref, plan, checkpoint string) string {
	return planKey(ref) + ":claim:" + plan + ":" + checkpoint
}

func fieldPlaybook(plan string) string { return "playbook:" + plan }
func fieldGap(plan string) string      { return "gap:" + plan }
func fieldDone(plan, checkpoint string) string {
	return "done:" + plan + ":" + checkpoint
}

// EraseWarnings deletes the follow-up state of the given warnings (their
// plan hash: pinned playbook, gaps seen, what each checkpoint did) and
// returns how many keys it removed. Claims hold only a replica id and
// expire with their lease. Erasing a student calls it with their refs.
func EraseWarnings(ctx context.Context, rdb redis.UniversalClient, refs []string) (int64, error) {
	var removed int64
	for _, ref := range refs {
		n, err := rdb.Del(ctx, planKey(ref)).Result()
		if err != nil {
			return removed, fmt.Errorf("follow-up state of %s: %w", ref, err)
		}
		removed += n
	}
	return removed, nil
}
