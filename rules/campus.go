package rules

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Rule ids of the campus-signal rules.
const (
	RuleBehaviour     = "behaviour"     // low attendance in several courses with irregular campus-card use
	RuleParticipation = "participation" // no club, sport or social activity for N weeks
)

// BehaviourRule is the behaviour warning the study behind this project
// proposes: low attendance in several courses together with irregular
// campus-card use, over a recent window. Off by default: a school turns it
// on once it imports attendance and card signals (docs/ingest.md).
type BehaviourRule struct {
	Enabled bool `yaml:"enabled"`
	// WindowDays is how far back signals are read; default 28.
	WindowDays int `yaml:"window_days"`
	// MinCourses is how many courses must have low attendance; default 2.
	MinCourses int `yaml:"min_courses"`
	// AttendanceBelow is the attended share under which a course counts;
	// default 0.8.
	AttendanceBelow Ratio `yaml:"attendance_below"`
	// MinSessions ignores courses with fewer recorded sessions; default 3.
	MinSessions int `yaml:"min_sessions"`
	// CardCVAbove is the coefficient of variation of daily card spending
	// above which use is irregular; default 1.0. Use on fewer than
	// CardMinDays days in the window is irregular too; default 7.
	CardCVAbove float64 `yaml:"card_cv_above"`
	CardMinDays int     `yaml:"card_min_days"`
	// Level is info, yellow (default) or red.
	Level string `yaml:"level"`
}

// ParticipationRule is the participation warning: no club, sport or
// social activity signal for Weeks weeks. Off by default.
type ParticipationRule struct {
	Enabled bool `yaml:"enabled"`
	// Weeks without activity that fire; default 6.
	Weeks int `yaml:"weeks"`
	// Kinds are the signal kinds that count as activity; default
	// [activity, club, sport, social].
	Kinds []string `yaml:"kinds"`
	// Level is info (default), yellow or red.
	Level string `yaml:"level"`
}

// Campus is what the campus-signal rules read of a student, summarised
// from the imported signals (ingest.ReadCampus) over the rules' windows up
// to Snapshot.Now. A nil Campus (signals not read) fires nothing.
type Campus struct {
	// Attendance holds, per course, the sessions recorded in the behaviour
	// window and the share attended.
	Attendance map[string]Attendance
	// CardDays is the number of days with card use in the behaviour window
	// and CardCV the coefficient of variation of the daily sums.
	CardDays int
	CardCV   float64
	// Activities counts activity signals (ParticipationRule.Kinds) in the
	// participation window.
	Activities int
}

// Attendance is one course's attendance in the behaviour window.
type Attendance struct {
	Sessions int
	Rate     float64
}

// CampusWindows returns how far back before now the behaviour and the
// participation rules look; the reader of signals reads both.
func (p *Policy) CampusWindows() (behaviour, participation time.Duration) {
	return time.Duration(p.Behaviour.WindowDays) * 24 * time.Hour, time.Duration(p.Participation.Weeks) * 7 * 24 * time.Hour
}

// ActivityKinds are the signal kinds the participation rule counts.
func (p *Policy) ActivityKinds() []string { return p.Participation.Kinds }

// campus runs the campus-signal rules.
func (e *evaluator) campus() {
	c := e.s.Campus
	if c == nil {
		return
	}
	if b := &e.p.Behaviour; b.Enabled {
		var low []string
		for course, a := range c.Attendance {
			if a.Sessions >= b.MinSessions && a.Rate < float64(b.AttendanceBelow) {
				low = append(low, course)
			}
		}
		sort.Strings(low)
		irregular := c.CardDays < b.CardMinDays || c.CardCV > b.CardCVAbove
		if len(low) >= b.MinCourses && irregular {
			names := make([]string, len(low))
			for i, id := range low {
				names[i] = e.courseName(id) + " " + pct(c.Attendance[id].Rate)
			}
			card := "campus-card use on " + count(c.CardDays, "day") + " of the last " + strconv.Itoa(b.WindowDays)
			if c.CardDays >= b.CardMinDays {
				card = "irregular campus-card use (daily variation " + num(c.CardCV) + " above " + num(b.CardCVAbove) + ")"
			}
			ev := map[string]float64{"courses_low": float64(len(low)), "min_courses": float64(b.MinCourses),
				"attendance_below": float64(b.AttendanceBelow), "card_days": float64(c.CardDays), "card_cv": round2(c.CardCV)}
			e.add(RuleBehaviour, FamilyAcademic, stream.CategoryRisk, b.Level, "",
				"Attendance below "+pct(float64(b.AttendanceBelow))+" in "+count(len(low), "course")+" ("+strings.Join(names, ", ")+") with "+card,
				ev)
		}
	}
	if pr := &e.p.Participation; pr.Enabled && c.Activities == 0 {
		e.add(RuleParticipation, FamilyAcademic, stream.CategoryRisk, pr.Level, "",
			"No club, sport or social activity in the last "+count(pr.Weeks, "week"),
			map[string]float64{"weeks": float64(pr.Weeks), "activities": 0})
	}
}

// validateCampus fills the campus rules' defaults and checks them.
func (p *Policy) validateCampus(v *validator) {
	b := &p.Behaviour
	bp := at(nil, "behaviour")
	if b.WindowDays == 0 {
		b.WindowDays = 28
	}
	if b.MinCourses == 0 {
		b.MinCourses = 2
	}
	if b.AttendanceBelow == 0 {
		b.AttendanceBelow = 0.8
	}
	if b.MinSessions == 0 {
		b.MinSessions = 3
	}
	if b.CardCVAbove == 0 {
		b.CardCVAbove = 1
	}
	if b.CardMinDays == 0 {
		b.CardMinDays = 7
	}
	if b.Level == "" {
		b.Level = stream.LevelYellow
	}
	if b.WindowDays < 7 || b.WindowDays > 366 {
		v.errf(at(bp, "window_days"), "must be in 7..366 (got %d)", b.WindowDays)
	}
	if b.MinCourses < 1 || b.MinCourses > 100 {
		v.errf(at(bp, "min_courses"), "must be in 1..100 (got %d)", b.MinCourses)
	}
	unitOpen(v, at(bp, "attendance_below"), float64(b.AttendanceBelow))
	if b.MinSessions < 1 {
		v.errf(at(bp, "min_sessions"), "must be >= 1 (got %d)", b.MinSessions)
	}
	if !(b.CardCVAbove > 0 && b.CardCVAbove <= 100) {
		v.errf(at(bp, "card_cv_above"), "must be in (0, 100] (got %v)", b.CardCVAbove)
	}
	if b.CardMinDays < 0 || b.CardMinDays > b.WindowDays {
		v.errf(at(bp, "card_min_days"), "must be in 0..window_days %d (got %d)", b.WindowDays, b.CardMinDays)
	}
	anyLevel(v, at(bp, "level"), b.Level)

	pr := &p.Participation
	pp := at(nil, "participation")
	if pr.Weeks == 0 {
		pr.Weeks = 6
	}
	if len(pr.Kinds) == 0 {
		pr.Kinds = []string{"activity", "club", "sport", "social"}
	}
	if pr.Level == "" {
		pr.Level = stream.LevelInfo
	}
	if pr.Weeks < 1 || pr.Weeks > 52 {
		v.errf(at(pp, "weeks"), "must be in 1..52 (got %d)", pr.Weeks)
	}
	for i, k := range pr.Kinds {
		if !validIdent(k) {
			v.errf(at(pp, "kinds", i), "not a signal kind (letters, digits and -_.:@; got %q)", k)
		}
	}
	anyLevel(v, at(pp, "level"), pr.Level)
}

func anyLevel(v *validator, path []any, level string) {
	if !slices.Contains(stream.WarningLevels, level) {
		v.errf(path, "must be info, yellow or red (got %q)", level)
	}
}
