package rules

import (
	"maps"
	"sort"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Open is the lifecycle state of one student's (or one class session's)
// warnings, keyed by Key(rule, course). The processor stores it per
// student in Redis as JSON and hands it back to the next Reconcile. It
// also remembers recently cleared warnings while their cool-down runs.
type Open map[string]*OpenWarning

// OpenWarning is one warning's lifecycle entry. Entries are shared between
// the Open passed to Reconcile and the one it returns (and Evidence with the
// finding it came from); treat them as read-only.
type OpenWarning struct {
	// Ref is the id of the event that raised the warning; every later
	// transition carries it.
	Ref      string `json:"ref"`
	Rule     string `json:"rule"`
	Course   string `json:"course,omitempty"`
	Session  string `json:"session,omitempty"`
	Category string `json:"category"`
	// Level is the highest level reached while open.
	Level  string `json:"level"`
	Family Family `json:"family"`
	// Reason and Evidence are the latest finding's.
	Reason   string             `json:"reason"`
	Evidence map[string]float64 `json:"evidence,omitempty"`
	// RaisedAt is when the warning was raised; ChangedAt when it last
	// changed state (raised, escalated or cleared).
	RaisedAt  time.Time `json:"raised_at"`
	ChangedAt time.Time `json:"changed_at"`
	// Cleared is true once the warning has cleared; the entry stays until
	// CooldownUntil so that the same condition is not raised again at once.
	Cleared       bool      `json:"cleared,omitempty"`
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
}

// Active reports whether the warning is open (raised and not cleared).
func (w *OpenWarning) Active() bool { return w != nil && !w.Cleared }

// Level returns the highest level among the open warnings, "" if none.
// The processor puts it on tiles.
func (o Open) Level() string {
	best := ""
	for _, w := range o {
		if w.Active() && stream.LevelRank(w.Level) > stream.LevelRank(best) {
			best = w.Level
		}
	}
	return best
}

// hold returns the lifecycle timing of family f.
func (p *Policy) hold(f Family) Hold {
	switch f {
	case FamilyLive:
		return p.Lifecycle.Live
	case FamilyClass:
		return p.Lifecycle.Class
	}
	return p.Lifecycle.Academic
}

// Reconcile applies findings, the result of evaluating the families in
// evaluated at now, to the open warnings and returns the new Open and the
// transitions as warning events, in a stable order (by key). It does not
// modify open.
//
// For student warnings pass the student id and, for live rules, the live
// session (it is copied into the events); for class warnings pass an empty
// student and the session. The rules:
//   - a finding with no open warning raises one (unless its cool-down runs);
//   - a finding at a higher level than the open warning escalates it; a
//     lower level changes nothing (a warning never steps down while open);
//   - an open warning of an evaluated family with no finding clears once
//     its min_hold has passed; families not in evaluated are left alone;
//   - findings of families not in evaluated are ignored.
//
// Reconcile is pure given now apart from the fresh event ids.
func Reconcile(p *Policy, student, session string, open Open, findings []Finding, evaluated Family, now time.Time) (Open, []*stream.Warning) {
	// Copy on write: next shares open's entries until one changes.
	next := make(Open, len(open)+len(findings))
	maps.Copy(next, open)
	edit := func(k string) *OpenWarning {
		c := *next[k]
		next[k] = &c
		return &c
	}
	var out []*stream.Warning
	seen := make(map[string]bool, len(findings))

	// Findings at the highest level per key, in key order.
	best := make(map[string]*Finding, len(findings))
	for i := range findings {
		f := &findings[i]
		if f.Family&evaluated == 0 {
			continue
		}
		k := f.Key()
		if b, ok := best[k]; !ok || stream.LevelRank(f.Level) > stream.LevelRank(b.Level) {
			best[k] = f
		}
	}
	keys := make([]string, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := best[k]
		seen[k] = true
		w := next[k]
		switch {
		case w.Active():
			if w.Reason != f.Reason || !maps.Equal(w.Evidence, f.Evidence) {
				w = edit(k)
				w.Reason, w.Evidence = f.Reason, f.Evidence
			}
			if stream.LevelRank(f.Level) > stream.LevelRank(w.Level) {
				w = edit(k)
				w.Level, w.ChangedAt = f.Level, now
				out = append(out, w.event(student, stream.StateEscalated, now))
			}
		case w != nil && now.Before(w.CooldownUntil):
			// Cooling down after a clear: the condition is back too soon.
		default:
			w = &OpenWarning{
				Rule: f.Rule, Course: f.Course, Category: f.Category, Level: f.Level,
				Family: f.Family, Reason: f.Reason, Evidence: f.Evidence,
				RaisedAt: now, ChangedAt: now,
			}
			if f.Family != FamilyAcademic {
				w.Session = session
			}
			next[k] = w
			e := w.event(student, stream.StateRaised, now)
			w.Ref = e.ID
			e.Ref = e.ID
			out = append(out, e)
		}
	}

	rest := make([]string, 0, len(next))
	for k := range next {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		w := next[k]
		if w.Family&evaluated == 0 {
			continue
		}
		h := p.hold(w.Family)
		switch {
		case w.Cleared:
			if !now.Before(w.CooldownUntil) {
				delete(next, k)
			}
		case now.Sub(w.RaisedAt) < h.MinHold:
			// Held open: a signal that flaps stays one warning.
		default:
			w = edit(k)
			w.Cleared, w.ChangedAt, w.CooldownUntil = true, now, now.Add(h.Cooldown)
			w.Reason = clearedReason(w.Reason)
			out = append(out, w.event(student, stream.StateCleared, now))
			if h.Cooldown <= 0 {
				delete(next, k)
			}
		}
	}
	return next, out
}

// clearedReason says that the condition behind reason no longer holds,
// within the warning's reason limit.
func clearedReason(reason string) string {
	return clip("No longer holds: "+reason, maxReason)
}

// event builds one transition event of w.
func (w *OpenWarning) event(student, state string, now time.Time) *stream.Warning {
	ev := maps.Clone(w.Evidence)
	if ev == nil {
		ev = map[string]float64{}
	}
	return &stream.Warning{
		Header:   stream.NewHeader(student, now),
		Ref:      w.Ref,
		Category: w.Category,
		Level:    w.Level,
		Rule:     w.Rule,
		Course:   w.Course,
		Session:  w.Session,
		Reason:   w.Reason,
		Evidence: ev,
		State:    state,
	}
}
