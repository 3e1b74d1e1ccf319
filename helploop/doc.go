// Package helploop runs the follow-up of help plans without anyone having
// to remember it: the feedback end of the help loop (监测—预警—帮扶—反馈).
//
// A counsellor writes a help plan on a warning (a plan step, usually
// pre-filled from the policy's playbook for the warning's category and
// level). The Loop finds every plan in force in the queue read model
// (dashboard/queue), pins the playbook that was in force when it first saw
// the plan, and at each checkpoint of the playbook — a weekly reminder, a
// weekly progress check, the deadline — re-reads the student's state
// (stream/state.Reader, read-only), re-evaluates the warning's rule
// (rules.Holding), records what it found as a follow_up step by "system"
// on classpulse.interventions.v1, sends a reminder through the notify
// routing, and at the deadline either escalates (a yellow warning whose
// target is unmet is raised to red on classpulse.warnings.v1, the
// lifecycle transition of rules.Escalate) or proposes closing the warning
// as helped. It never closes a warning: a person confirms a proposal.
//
// Everything it knows lives in Redis (keys in keys.go) and every event it
// publishes has an id derived from warning, plan and checkpoint, so a
// restarted Loop picks up where it left off and a step retried after a
// crash is applied once. Replicas share the work: a checkpoint is claimed
// with SET NX and a lease before it is run.
//
// helploop does not decide whether a warning exists (package rules and the
// processor do), does not route messages (package notify does) and does
// not serve the queue (package dashboard does).
package helploop
