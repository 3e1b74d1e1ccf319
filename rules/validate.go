package rules

import (
	"math"
	"slices"
	"time"
	_ "time/tzdata" // policies name IANA zones; a slim image may lack /usr/share/zoneinfo

	"github.com/classpulse/classpulse/stream"
)

// validate checks every field, records problems in v, and builds the
// derived fields (zone, instants, course index) of a valid policy.
func (p *Policy) validate(v *validator) {
	if p.Version != 1 {
		v.errf(at(nil, "version"), "must be 1 (got %d)", p.Version)
	}
	if len(p.Name) > 200 {
		v.errf(at(nil, "name"), "longer than 200 bytes")
	}
	p.validateCalendar(v)
	p.validateCourses(v)
	p.validateRules(v)
	p.validatePlaybooks(v)
	p.validateCampus(v)
}

func (p *Policy) validateCalendar(v *validator) {
	tz := p.Calendar.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		v.errf(at(nil, "calendar", "timezone"), "unknown time zone %q", tz)
		loc = time.UTC
	}
	p.loc = loc
	if len(p.Calendar.Terms) == 0 {
		v.errf(at(nil, "calendar", "terms"), "at least one term is required")
	}
	periods := map[string]bool{}
	var prevEnd time.Time
	for i := range p.Calendar.Terms {
		t := &p.Calendar.Terms[i]
		t.idx = i
		tp := at(nil, "calendar", "terms", i)
		if !validIdent(t.ID) {
			v.errf(at(tp, "id"), "required: 1..64 letters, digits and -_.:@ (got %q)", t.ID)
		}
		for j := 0; j < i; j++ {
			if p.Calendar.Terms[j].ID == t.ID {
				v.errf(at(tp, "id"), "duplicate term %q", t.ID)
			}
		}
		if t.Start.IsZero() || t.End.IsZero() {
			v.errf(tp, "start and end are required")
			continue
		}
		t.start, t.end = t.Start.in(loc), t.End.in(loc).AddDate(0, 0, 1)
		if !t.end.After(t.start) {
			v.errf(at(tp, "end"), "%s is before start %s", t.End, t.Start)
			continue
		}
		if t.end.Sub(t.start) > 366*24*time.Hour {
			v.errf(at(tp, "end"), "a term longer than a year")
		}
		if !prevEnd.IsZero() && t.start.Before(prevEnd) {
			v.errf(at(tp, "start"), "%s overlaps or precedes the previous term", t.Start)
		}
		prevEnd = t.end
		if len(t.Periods) == 0 {
			v.errf(at(tp, "periods"), "at least one study period is required")
			continue
		}
		next := t.start
		for k := range t.Periods {
			pr := &t.Periods[k]
			pp := at(tp, "periods", k)
			if !validIdent(pr.Name) {
				v.errf(at(pp, "name"), "required: 1..64 letters, digits and -_.:@ (got %q)", pr.Name)
			} else if periods[pr.Name] {
				v.errf(at(pp, "name"), "duplicate period %q (names are unique across the calendar)", pr.Name)
			}
			periods[pr.Name] = true
			if pr.Start.IsZero() || pr.End.IsZero() {
				v.errf(pp, "start and end are required")
				next = time.Time{}
				continue
			}
			pr.start, pr.end = pr.Start.in(loc), pr.End.in(loc).AddDate(0, 0, 1)
			switch {
			case !pr.end.After(pr.start):
				v.errf(at(pp, "end"), "%s is before start %s", pr.End, pr.Start)
			case !next.IsZero() && !pr.start.Equal(next):
				v.errf(at(pp, "start"), "%s leaves a gap or overlap: periods must cover the term %s..%s day by day", pr.Start, t.Start, t.End)
			}
			next = pr.end
		}
		if !next.IsZero() && !next.Equal(t.end) {
			v.errf(at(tp, "periods", len(t.Periods)-1, "end"), "the last period must end on the term's end %s", t.End)
		}
	}
}

func (p *Policy) validateCourses(v *validator) {
	p.courses = make(map[string]*Course, len(p.Courses))
	periodTerm := map[string]bool{}
	for _, t := range p.Calendar.Terms {
		for _, pr := range t.Periods {
			periodTerm[pr.Name] = true
		}
	}
	for i := range p.Courses {
		c := &p.Courses[i]
		cp := at(nil, "courses", i)
		if !validIdent(c.ID) {
			v.errf(at(cp, "id"), "required: 1..64 letters, digits and -_.:@ (got %q)", c.ID)
		} else if p.courses[c.ID] != nil {
			v.errf(at(cp, "id"), "duplicate course %q", c.ID)
		}
		p.courses[c.ID] = c
		c.evStudied, c.evRequired = evKey(c.ID, "_studied_h"), evKey(c.ID, "_required_h")
		if c.Name == "" {
			c.Name = c.ID
		}
		if len(c.Name) > 200 {
			v.errf(at(cp, "name"), "longer than 200 bytes")
		}
		if c.Difficulty == 0 {
			c.Difficulty = 1
		}
		if !(c.Difficulty >= 0.25 && c.Difficulty <= 4) {
			v.errf(at(cp, "difficulty"), "must be in 0.25..4 (got %v)", c.Difficulty)
		}
		var total float64
		for _, name := range sortedKeys(c.RequiredHours) {
			h := c.RequiredHours[name]
			if !periodTerm[name] {
				v.errf(at(cp, "required_hours", name), "no study period %q in the calendar", name)
			}
			if !(h >= 0 && h <= 10000) {
				v.errf(at(cp, "required_hours", name), "must be in 0..10000 hours (got %v)", h)
				continue
			}
			total += h
		}
		if total <= 0 {
			v.errf(at(cp, "required_hours"), "must be > 0 in at least one study period")
		}
		c.termHours = make([][]float64, len(p.Calendar.Terms))
		for ti, t := range p.Calendar.Terms {
			c.termHours[ti] = make([]float64, len(t.Periods))
			for k, pr := range t.Periods {
				c.termHours[ti][k] = c.RequiredHours[pr.Name]
			}
		}
	}
}

func (p *Policy) validateRules(v *validator) {
	s := &p.Study
	if s.MinCourses < 1 || s.MinCourses > 100 {
		v.errf(at(nil, "study", "min_courses"), "must be in 1..100 (got %d)", s.MinCourses)
	}
	if !slices.Contains([]string{BasisProrated, BasisCompleted, BasisThrough}, s.Basis) {
		v.errf(at(nil, "study", "basis"), "must be prorated, completed or through (got %q)", s.Basis)
	}
	if s.RedLastDays < 1 || s.RedLastDays > 365 {
		v.errf(at(nil, "study", "red_last_days"), "must be in 1..365 (got %d)", s.RedLastDays)
	}
	unitOpen(v, at(nil, "study", "red_share"), float64(s.RedShare))

	g := &p.Grade
	if g.YellowFailed < 1 {
		v.errf(at(nil, "grade", "yellow_failed"), "must be >= 1 (got %d)", g.YellowFailed)
	}
	if g.RedFailed < g.YellowFailed {
		v.errf(at(nil, "grade", "red_failed"), "must be >= yellow_failed %d (got %d)", g.YellowFailed, g.RedFailed)
	}

	d := &p.Degree
	for _, f := range []struct {
		name string
		v    float64
	}{{"min_average", d.MinAverage}, {"min_core_average", d.MinCoreAverage}} {
		if !(f.v >= 0 && f.v <= 100) {
			v.errf(at(nil, "degree", f.name), "must be in 0..100 (got %v)", f.v)
		}
	}
	for i, c := range d.RequiredCourses {
		if p.courses[c] == nil {
			v.errf(at(nil, "degree", "required_courses", i), "no course %q in courses", c)
		}
	}

	lp := at(nil, "live")
	liveThreshold(v, at(lp, "attention_low"), &p.Live.Attention, true)
	liveThreshold(v, at(lp, "confused"), &p.Live.Confused, false)
	liveThreshold(v, at(lp, "frustrated"), &p.Live.Frustrated, false)
	fa := &p.Live.FaceAbsent
	if fa.Yellow <= 0 || fa.Yellow > 24*time.Hour {
		v.errf(at(lp, "face_absent", "yellow"), "must be in 1s..24h (got %v)", fa.Yellow)
	}
	if fa.Red != 0 && fa.Red <= fa.Yellow {
		v.errf(at(lp, "face_absent", "red"), "must be 0 (off) or longer than yellow %v (got %v)", fa.Yellow, fa.Red)
	}

	cp := at(nil, "class")
	if p.Class.MinCaptured < 1 {
		v.errf(at(cp, "min_captured"), "must be >= 1 (got %d)", p.Class.MinCaptured)
	}
	classShare(v, at(cp, "confused"), &p.Class.Confused)
	classShare(v, at(cp, "inattentive"), &p.Class.Inattentive)
	classShare(v, at(cp, "absent"), &p.Class.Absent)

	t := &p.Trend
	if !(t.Drop > 0 && t.Drop < 1) {
		v.errf(at(nil, "trend", "drop"), "must be between 0 and 1 exclusive (got %v)", float64(t.Drop))
	}
	if !(t.MinPreviousHours >= 0 && t.MinPreviousHours <= 168) {
		v.errf(at(nil, "trend", "min_previous_hours"), "must be in 0..168 (got %v)", t.MinPreviousHours)
	}
	noticeLevel(v, at(nil, "trend", "level"), t.Level)

	pe := &p.Peer
	if pe.Basis != "median" && pe.Basis != "mean" {
		v.errf(at(nil, "peer", "basis"), "must be median or mean (got %q)", pe.Basis)
	}
	unitOpen(v, at(nil, "peer", "ratio"), float64(pe.Ratio))
	if pe.MinClass < 2 {
		v.errf(at(nil, "peer", "min_class"), "must be >= 2 (got %d)", pe.MinClass)
	}
	noticeLevel(v, at(nil, "peer", "level"), pe.Level)
	p.validatePredictedRisk(v)

	for _, h := range []struct {
		name string
		h    Hold
	}{{"academic", p.Lifecycle.Academic}, {"live", p.Lifecycle.Live}, {"class", p.Lifecycle.Class}} {
		for _, d := range []struct {
			name string
			d    time.Duration
		}{{"min_hold", h.h.MinHold}, {"cooldown", h.h.Cooldown}} {
			if d.d < 0 || d.d > 90*24*time.Hour {
				v.errf(at(nil, "lifecycle", h.name, d.name), "must be in 0..2160h (got %v)", d.d)
			}
		}
	}
}

// windowSeconds maps the live windows to their length.
var windowSeconds = map[Window]int{"1m": 60, "2m": 120, "5m": 300}

func liveThreshold(v *validator, path []any, t *LiveThreshold, below bool) {
	ws, ok := windowSeconds[t.Window]
	if !ok {
		v.errf(at(path, "window"), "must be 1m, 2m or 5m (got %q)", string(t.Window))
	}
	if !(t.Yellow > 0 && t.Yellow < 1) {
		v.errf(at(path, "yellow"), "must be between 0 and 1 exclusive (got %v)", t.Yellow)
	}
	switch {
	case t.Red == 0:
	case below && !(t.Red > 0 && t.Red < t.Yellow):
		v.errf(at(path, "red"), "must be 0 (off) or between 0 and yellow %v (got %v)", t.Yellow, t.Red)
	case !below && !(t.Red > t.Yellow && t.Red <= 1):
		v.errf(at(path, "red"), "must be 0 (off) or above yellow %v and at most 1 (got %v)", t.Yellow, t.Red)
	}
	if t.MinSamples < 1 || (ok && t.MinSamples > ws) {
		v.errf(at(path, "min_samples"), "must be in 1..%d seconds of the %s window (got %d)", ws, t.Window, t.MinSamples)
	}
}

func classShare(v *validator, path []any, s *ClassShare) {
	if !(s.Yellow > 0 && s.Yellow <= 1) {
		v.errf(at(path, "yellow"), "must be in (0, 1] (got %v)", s.Yellow)
	}
	if s.Red != 0 && !(s.Red > s.Yellow && s.Red <= 1) {
		v.errf(at(path, "red"), "must be 0 (off) or above yellow %v and at most 1 (got %v)", s.Yellow, s.Red)
	}
}

func unitOpen(v *validator, path []any, x float64) {
	if !(x > 0 && x <= 1) {
		v.errf(path, "must be in (0, 1] (got %v)", x)
	}
}

func noticeLevel(v *validator, path []any, level string) {
	if level != stream.LevelInfo && level != stream.LevelYellow {
		v.errf(path, "must be info or yellow (got %q)", level)
	}
}

// validIdent reports whether s has the shape of an event id field.
func validIdent(s string) bool { return stream.ValidIdent(s) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// finite reports whether x is a usable number.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
