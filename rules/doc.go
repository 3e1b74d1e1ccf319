// Package rules is the warning policy of DESIGN.md §6: a school's policy
// file (term calendar, courses, every threshold, custom CEL rules), pure
// rule evaluation over a state snapshot, and the warning lifecycle.
//
// # Loading
//
// LoadPolicy and LoadPolicyFile parse a YAML policy strictly, fill in the
// defaults of every threshold, validate it and type-check its CEL rules;
// every problem names the file, line and field ("policy.yaml:17:
// courses[2].required_hours: must be > 0 in at least one study period").
// DefaultPolicy is the embedded default_policy.yaml. A Policy only comes
// from these functions (they build its indexes) and is read-only after;
// a Holder swaps policies atomically and keeps the last good one when a
// reload fails. docs/policy.md is the reference for policy authors.
//
// # Evaluating
//
// The processor builds a Snapshot of one student from Redis and calls
// EvaluateFamilies (or Evaluate for every family) for the findings that
// hold at Snapshot.Now. Findings are not warnings yet: Reconcile compares
// them with the student's Open warnings and returns the transitions
// (raised, escalated, cleared) as stream.Warning events plus the new Open,
// which the processor stores per student. Class-level signals go through
// EvaluateClass and the same Reconcile with an empty student, keyed by
// session.
//
// Rules come in families (Family): academic rules are evaluated after
// click and grade events, live rules after score events, class rules on
// tiles. Reconcile only clears warnings of the families it is told were
// evaluated, so a click never clears a live warning. The processor should
// also evaluate:
//   - FamilyLive with Snapshot.Live nil when a student's session ends, so
//     open live warnings clear;
//   - FamilyAcademic on a daily tick for students with open academic
//     warnings or state in the current term, since calendar boundaries
//     (a new period, the last two weeks, the spring term) change outcomes
//     without any event.
//
// The processor must bucket study time with the same calendar: the term
// and period of Policy.PeriodAt, and weeks by Policy.WeekKey (ISO weeks in
// the calendar's zone).
//
// Nothing here does I/O during evaluation or reads a clock, so replay
// gives the same warnings as the live processor. Reconcile is pure given
// its now, except that new events get fresh ids. The package does not own
// state in Redis (stream/state), publishing (stream/processor) or replay.
package rules
