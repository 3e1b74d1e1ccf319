package rules

import (
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Holding returns the finding of rule (and course, for per-course rules)
// that holds for s now, or nil when the condition behind a warning no
// longer holds. It is how a follow-up re-reads a student's data: the same
// evaluation the processor runs, restricted to one warning's condition.
func Holding(p *Policy, s *Snapshot, rule, course string, fam Family) *Finding {
	key := Key(rule, course)
	var best *Finding
	for _, f := range EvaluateFamilies(p, s, fam) {
		if f.Key() == key && (best == nil || stream.LevelRank(f.Level) > stream.LevelRank(best.Level)) {
			best = &f
		}
	}
	return best
}

// Gap measures how far a finding is from its target, so that two checks
// can say whether a student made progress: for the study-state rule the
// hours still missing over the short courses, otherwise the number of
// failed or short items in the evidence, else 1. A nil finding (the
// condition no longer holds) has gap 0.
func Gap(f *Finding) float64 {
	if f == nil {
		return 0
	}
	gap := 0.0
	for k, req := range f.Evidence {
		if c, ok := strings.CutSuffix(k, "_required_h"); ok {
			if st, ok := f.Evidence[c+"_studied_h"]; ok && req > st {
				gap += req - st
			}
		}
	}
	if gap > 0 {
		return round2(gap)
	}
	for _, k := range []string{"failed", "courses_short", "required_missing"} {
		if v := f.Evidence[k]; v > 0 {
			gap += v
		}
	}
	return max(gap, 1)
}

// Escalate is the lifecycle transition of an open warning to a higher
// level decided outside the rules — a help plan's deadline passed with its
// target unmet (the regulation's "raise red"). It returns the warning as
// escalated and its event, with id and time as given so that a retried
// follow-up publishes the same event. It does not modify w.
func Escalate(w *OpenWarning, student, level, reason, id string, now time.Time) (*OpenWarning, *stream.Warning) {
	c := *w
	c.Level, c.ChangedAt = level, now
	if reason != "" {
		c.Reason = clip(reason, maxReason)
	}
	e := c.event(student, stream.StateEscalated, now)
	if id != "" {
		e.ID = id
	}
	return &c, e
}
