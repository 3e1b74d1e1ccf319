package rules

import (
	"slices"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Playbook is a school's standard help plan for warnings of one category
// and level (帮扶方案): the tasks that pre-fill the help plan a counsellor
// writes, and the follow-up the system runs on it — a reminder on one
// weekday, a progress check on another, the family contacted when a check
// finds no progress, and at the deadline an escalation (or, when the
// target is met, a proposal to close as helped that a person confirms).
type Playbook struct {
	// ID names the playbook in plans, follow-up steps and the
	// effectiveness report: 1..64 letters, digits and -_.:@.
	ID string `yaml:"id"`
	// Category and Level select the warnings the playbook is for; Level
	// empty means every level of the category without a playbook of its
	// own.
	Category string `yaml:"category"`
	Level    string `yaml:"level"`
	// Title heads the help plan.
	Title string `yaml:"title"`
	// Tasks pre-fill the help plan's task list (at least one).
	Tasks []string `yaml:"tasks"`
	// Contact lists the channels for contacting the student
	// (stream.Channels: phone, social_media, …); the first pre-fills the
	// plan's talk step. Default [phone, social_media].
	Contact []string `yaml:"contact"`
	// RemindOn is the weekday the student and counsellor are reminded;
	// default monday. "none" turns reminders off.
	RemindOn string `yaml:"remind_on"`
	// CheckOn is the weekday progress is checked; default friday.
	CheckOn string `yaml:"check_on"`
	// At is the time of day (HH:MM, calendar zone) of every checkpoint;
	// default "09:00".
	At string `yaml:"at"`
	// FamilyIfNoProgress asks for contact with the family when a check
	// finds the condition no better than at the previous one; default true.
	FamilyIfNoProgress *bool `yaml:"family_if_no_progress"`
	// DeadlineDays is the plan's due date, in days after the plan; default
	// 28, at most 366.
	DeadlineDays int `yaml:"deadline_days"`
	// OnUnmet is what happens at the deadline when the condition still
	// holds: "raise_red" (escalate a yellow warning to red, as the
	// regulation says; default for yellow playbooks) or "report" (record
	// it and remind the counsellor; default otherwise).
	OnUnmet string `yaml:"on_unmet"`

	atMin     int
	remind    time.Weekday
	check     time.Weekday
	remindOff bool
}

// Playbook outcomes at the deadline.
const (
	OnUnmetRaiseRed = "raise_red"
	OnUnmetReport   = "report"
)

// Checkpoint kinds of a playbook's follow-up.
const (
	CheckpointRemind   = "remind"
	CheckpointCheck    = "check"
	CheckpointDeadline = "deadline"
)

// Checkpoint is one moment of a plan's follow-up.
type Checkpoint struct {
	// ID is unique within one plan: "remind-2026-11-30",
	// "check-2026-12-04", "deadline".
	ID   string
	Kind string
	At   time.Time
}

// FamilyContact reports whether a check without progress asks for contact
// with the family.
func (pb *Playbook) FamilyContact() bool {
	return pb.FamilyIfNoProgress == nil || *pb.FamilyIfNoProgress
}

// Playbook returns the playbook for warnings of category at level: the one
// for exactly that level, else the category's level-free one, else nil.
func (p *Policy) Playbook(category, level string) *Playbook {
	var fallback *Playbook
	for i := range p.Playbooks {
		pb := &p.Playbooks[i]
		if pb.Category != category {
			continue
		}
		if pb.Level == level {
			return pb
		}
		if pb.Level == "" {
			fallback = pb
		}
	}
	return fallback
}

// PlaybookByID returns the playbook with id, or nil.
func (p *Policy) PlaybookByID(id string) *Playbook {
	for i := range p.Playbooks {
		if p.Playbooks[i].ID == id {
			return &p.Playbooks[i]
		}
	}
	return nil
}

// Due is the plan's due date for a plan written at start: DeadlineDays
// later, at the checkpoint time, in the calendar's zone.
func (pb *Playbook) Due(p *Policy, start time.Time) time.Time {
	y, m, d := start.In(p.loc).Date()
	return time.Date(y, m, d+pb.DeadlineDays, 0, pb.atMin, 0, 0, p.loc)
}

// Checkpoints lists the follow-up of a plan written at start and due at
// due, in time order: a reminder on every RemindOn and a check on every
// CheckOn strictly after start and before due, then the deadline at due.
// Days are the calendar's; the result is pure.
func (pb *Playbook) Checkpoints(p *Policy, start, due time.Time) []Checkpoint {
	var out []Checkpoint
	y, m, d := start.In(p.loc).Date()
	for i := 0; i <= 366; i++ {
		at := time.Date(y, m, d+i, 0, pb.atMin, 0, 0, p.loc)
		if !at.Before(due) {
			break
		}
		if !at.After(start) {
			continue
		}
		day := at.Format("2006-01-02")
		if !pb.remindOff && at.Weekday() == pb.remind {
			out = append(out, Checkpoint{ID: CheckpointRemind + "-" + day, Kind: CheckpointRemind, At: at})
		}
		if at.Weekday() == pb.check {
			out = append(out, Checkpoint{ID: CheckpointCheck + "-" + day, Kind: CheckpointCheck, At: at})
		}
	}
	return append(out, Checkpoint{ID: CheckpointDeadline, Kind: CheckpointDeadline, At: due})
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// validatePlaybooks fills the playbooks' defaults and checks them.
func (p *Policy) validatePlaybooks(v *validator) {
	seen := map[string]bool{}
	for i := range p.Playbooks {
		pb := &p.Playbooks[i]
		pp := at(nil, "playbooks", i)
		if !validIdent(pb.ID) {
			v.errf(at(pp, "id"), "required: 1..64 letters, digits and -_.:@ (got %q)", pb.ID)
		} else if p.PlaybookByID(pb.ID) != pb {
			v.errf(at(pp, "id"), "duplicate playbook %q", pb.ID)
		}
		if !slices.Contains(stream.WarningCategories, pb.Category) {
			v.errf(at(pp, "category"), "must be one of %s (got %q)", strings.Join(stream.WarningCategories, ", "), pb.Category)
		}
		if pb.Category == stream.CategoryClass || pb.Category == stream.CategoryEngagement {
			v.errf(at(pp, "category"), "%s signals are live and have no help loop", pb.Category)
		}
		if pb.Level != "" && !slices.Contains(stream.WarningLevels, pb.Level) {
			v.errf(at(pp, "level"), "must be info, yellow, red or empty for every level (got %q)", pb.Level)
		}
		if k := pb.Category + "/" + pb.Level; seen[k] {
			lv := pb.Level
			if lv == "" {
				lv = "every level"
			}
			v.errf(at(pp, "level"), "a second playbook for %s %s", pb.Category, lv)
		} else {
			seen[k] = true
		}
		if pb.Title == "" {
			pb.Title = pb.ID
		}
		if len(pb.Title) > 200 {
			v.errf(at(pp, "title"), "longer than 200 bytes")
		}
		if len(pb.Tasks) == 0 || len(pb.Tasks) > 50 {
			v.errf(at(pp, "tasks"), "must list 1..50 tasks (got %d)", len(pb.Tasks))
		}
		for j, t := range pb.Tasks {
			if strings.TrimSpace(t) == "" || len(t) > 1000 {
				v.errf(at(pp, "tasks", j), "must be 1..1000 bytes of text")
			}
		}
		if len(pb.Contact) == 0 {
			pb.Contact = []string{"phone", "social_media"}
		}
		for j, c := range pb.Contact {
			if !slices.Contains(stream.Channels, c) {
				v.errf(at(pp, "contact", j), "must be one of %s (got %q)", strings.Join(stream.Channels, ", "), c)
			}
		}
		if pb.RemindOn == "" {
			pb.RemindOn = "monday"
		}
		if pb.CheckOn == "" {
			pb.CheckOn = "friday"
		}
		if pb.RemindOn == "none" {
			pb.remindOff = true
		} else if d, ok := weekdays[strings.ToLower(pb.RemindOn)]; ok {
			pb.remind = d
		} else {
			v.errf(at(pp, "remind_on"), "must be a weekday (monday … sunday) or none (got %q)", pb.RemindOn)
		}
		if d, ok := weekdays[strings.ToLower(pb.CheckOn)]; ok {
			pb.check = d
		} else {
			v.errf(at(pp, "check_on"), "must be a weekday (monday … sunday) (got %q)", pb.CheckOn)
		}
		if pb.At == "" {
			pb.At = "09:00"
		}
		if t, err := time.Parse("15:04", pb.At); err != nil {
			v.errf(at(pp, "at"), "must be a time of day HH:MM (got %q)", pb.At)
		} else {
			pb.atMin = t.Hour()*60 + t.Minute()
		}
		if pb.DeadlineDays == 0 {
			pb.DeadlineDays = 28
		}
		if pb.DeadlineDays < 1 || pb.DeadlineDays > 366 {
			v.errf(at(pp, "deadline_days"), "must be in 1..366 (got %d)", pb.DeadlineDays)
		}
		if pb.OnUnmet == "" {
			pb.OnUnmet = OnUnmetReport
			if pb.Level == stream.LevelYellow {
				pb.OnUnmet = OnUnmetRaiseRed
			}
		}
		switch pb.OnUnmet {
		case OnUnmetReport:
		case OnUnmetRaiseRed:
			if pb.Level != stream.LevelYellow {
				v.errf(at(pp, "on_unmet"), "raise_red escalates yellow warnings only; a %q playbook reports", pb.Level)
			}
		default:
			v.errf(at(pp, "on_unmet"), "must be raise_red or report (got %q)", pb.OnUnmet)
		}
	}
}
