// Package processor is the stream processor: a consumer group over the
// input topics that applies each event to the student's state in Redis
// (package state), evaluates the warning policy (package rules) once per
// student per batch, and publishes warnings and tiles; and a second stage,
// keyed by session, that turns tiles into class-level signals. Offsets are
// committed only after a batch had its whole effect; invalid events go to
// the DLQ and never stop a partition.
//
// A batch is handled in two stages (stream.StagedHandler): the first
// decodes, applies to Redis and evaluates the policy; the second publishes
// warnings and tiles to Kafka, mirrors warnings into the live feed and
// saves the open-warnings documents, while the next batch's first stage
// runs. The next batch evaluates against the documents the previous one
// computed (pending), not the saved ones, so no warning is raised twice.
//
// It does not decide what is a warning (rules) or how it is shown
// (dashboard).
package processor
