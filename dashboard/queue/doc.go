// Package queue is the durable read model of the warning queue and the help
// loop. Its Projector consumes classpulse.warnings.v1 and
// classpulse.interventions.v1 in its own consumer group and keeps, in
// Redis, one record per warning (by ref: state, level, owner, release,
// notice serial, result), the help-loop steps of each warning, and indexes
// by category, level, state, loop, course, unit, student, owner and term,
// so that any dashboard replica can serve the queue. Its Store reads them.
//
// Kafka stays the source of truth: every write here is idempotent (a
// redelivered event changes nothing) and the whole model can be rebuilt by
// consuming the topics from the start in a fresh group. The queue keys share
// the hash tag {q}, so each event is applied by one Lua script, atomically,
// on a single Redis Cluster slot. It does not publish events; the dashboard
// API does, and the steps come back here through Kafka.
package queue
