// Package processor is the stream processor: a consumer group over the
// input topics that applies each event to the student's state in Redis
// (package state), evaluates the warning policy (package rules) once per
// student per batch, and publishes warnings and tiles; and a second stage,
// keyed by session, that turns tiles into class-level signals. Offsets are
// committed only after a batch had its whole effect; invalid events go to
// the DLQ and never stop a partition.
//
// A batch is handled in four stages (stream.StagedHandler), which the
// consumer overlaps across consecutive batches like a pipeline: the first
// decodes the batch and computes its scores on the store's copies of live
// state (state.Store.Prepare); the second writes its scripts to Redis
// without waiting for the replies (state.Store.Write), each group of
// students on its own ordered connection; the third reads the replies
// (state.Store.Await) and evaluates the policy; the fourth publishes
// warnings and tiles to Kafka, mirrors warnings into the live feed and
// saves the open-warnings documents. So Redis applies a batch while the
// replies of the one before are read and evaluated, and the next is
// decoded, computed and written behind it. A batch evaluates against the
// documents the ones before computed (pending) when they may be newer
// than what its scripts read, so no warning is raised twice.
//
// It does not decide what is a warning (rules) or how it is shown
// (dashboard).
package processor
