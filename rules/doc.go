// Package rules is the warning policy of DESIGN.md §6: a school's policy
// file (term calendar, courses, every threshold, custom CEL rules), pure
// rule evaluation over a state snapshot, and the warning lifecycle.
//
// The processor builds a Snapshot of one student from Redis, calls
// Evaluate (or EvaluateFamilies) for the findings that hold now, and
// Reconcile to turn them into lifecycle transitions (raised, escalated,
// cleared), each one stream.Warning event; it stores the returned Open
// per student and publishes the events. Class-level signals go through
// EvaluateClass and the same Reconcile keyed by session.
//
// Nothing here does I/O during evaluation or reads a clock: the instant is
// Snapshot.Now, or the now passed to Reconcile, so replay gives the same
// warnings as the live processor. Loading (LoadPolicy, LoadPolicyFile) and
// Holder.Reload are the only I/O. The package does not own state in Redis
// (stream/state) nor publishing (stream/processor).
package rules
