package queue

// Keys of the read model. They all carry the hash tag {q}, so that one
// script can update a record and its indexes atomically on Redis Cluster.
const (
	keyAll    = "{q}:all"    // sorted set: ref → raised at (Unix ms)
	keyRoster = "{q}:roster" // hash: student → roster JSON (unit, class, name, minor)
	prefixRec = "{q}:w:"     // hash per warning ref
	prefixStp = "{q}:steps:" // hash per warning ref: intervention id → JSON
	prefixIdx = "{q}:i:"     // sets: {q}:i:<dimension>:<value> → refs
	prefixSer = "{q}:serial:"
)

// LiveInterventions is the Redis stream of help-loop steps the dashboards
// follow; the projector adds each step once, after applying it.
const LiveInterventions = "classpulse:live:interventions"

func recKey(ref string) string   { return prefixRec + ref }
func stepsKey(ref string) string { return prefixStp + ref }
func idxKey(dim, v string) string {
	return prefixIdx + dim + ":" + v
}

// Dimensions the queue is indexed (and can be filtered) by.
var Dimensions = []string{"category", "level", "state", "loop", "course", "unit", "student", "owner", "term"}
