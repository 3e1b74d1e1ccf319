// Package processor is the stream processor: a consumer group over the
// input topics that applies each event to the student's state in Redis
// (package state), evaluates the warning policy (package rules) once per
// student per batch, and publishes warnings and tiles; and a second stage,
// keyed by session, that turns tiles into class-level signals. Offsets are
// committed only after a batch had its whole effect; invalid events go to
// the DLQ and never stop a partition.
//
// It does not decide what is a warning (rules) or how it is shown
// (dashboard).
package processor
