package rules

import (
	"time"
)

// Policy is one school's warning policy: its calendar, its courses and every
// threshold of DESIGN.md §6. It is immutable once loaded (LoadPolicy or
// DefaultPolicy) and safe for concurrent use; replace it as a whole through
// a Holder. The YAML field names are given in docs/policy.md.
type Policy struct {
	// Version is the policy file format, 1.
	Version int `yaml:"version"`
	// Name labels the policy in logs and reports.
	Name string `yaml:"name"`
	// Calendar is the term calendar the rules bucket time by.
	Calendar Calendar `yaml:"calendar"`
	// Courses lists the courses with their required study time.
	Courses []Course `yaml:"courses"`
	// Study holds the study-state rule (学习状态预警).
	Study StudyRule `yaml:"study"`
	// Grade holds the grade rule (学习成绩预警).
	Grade GradeRule `yaml:"grade"`
	// Degree holds the degree rule (毕业学位预警).
	Degree DegreeRule `yaml:"degree"`
	// Live holds the per-student live engagement signals.
	Live LiveRules `yaml:"live"`
	// Class holds the class-level live signals to the instructor.
	Class ClassRules `yaml:"class"`
	// Dynamic says which thresholds scale with a course's difficulty.
	Dynamic Dynamic `yaml:"dynamic"`
	// Trend holds the week-over-week study-time drop notice.
	Trend TrendRule `yaml:"trend"`
	// Peer holds the peer-position notice.
	Peer PeerRule `yaml:"peer"`
	// PredictedRisk holds the predicted-risk notice (rules/predicted.go).
	PredictedRisk PredictedRiskRule `yaml:"predicted_risk"`
	// Lifecycle holds the hold and cool-down times per family.
	Lifecycle Lifecycle `yaml:"lifecycle"`
	// Custom lists the school's own rules as CEL expressions.
	Custom []CustomRule `yaml:"custom"`
	// Behaviour and Participation are the campus-signal rules, off by
	// default (campus.go).
	Behaviour     BehaviourRule     `yaml:"behaviour"`
	Participation ParticipationRule `yaml:"participation"`
	// Playbooks are the help-plan playbooks per category and level
	// (playbook.go).
	Playbooks []Playbook `yaml:"playbooks"`

	// Source names where the policy came from (file name or "default").
	Source string `yaml:"-"`
	// Digest is the hex SHA-256 of the policy file, for audit.
	Digest string `yaml:"-"`

	loc     *time.Location
	courses map[string]*Course
	custom  []*compiledRule
}

// Calendar is the school's term calendar.
type Calendar struct {
	// Timezone is the IANA zone dates are in; default "UTC".
	Timezone string `yaml:"timezone"`
	// Terms lists the terms in time order, without overlaps.
	Terms []Term `yaml:"terms"`
}

// Term is one term of the calendar. Start and End are whole days in the
// calendar's zone; End is the last day of the term (inclusive).
type Term struct {
	ID     string `yaml:"id"`
	Start  Date   `yaml:"start"`
	End    Date   `yaml:"end"`
	Spring bool   `yaml:"spring"`
	// Periods are the term's study periods (学习阶段) in time order, without
	// gaps or overlaps, covering the term. Period names are unique across
	// the whole calendar, so a name identifies its term.
	Periods []Period `yaml:"periods"`

	start, end time.Time // [start, end) in the calendar's zone
	idx        int       // position in Calendar.Terms
}

// Period is one study period of a term; End is inclusive.
type Period struct {
	Name  string `yaml:"name"`
	Start Date   `yaml:"start"`
	End   Date   `yaml:"end"`

	start, end time.Time
}

// Course is one course of the policy.
type Course struct {
	// ID matches the course field of events.
	ID string `yaml:"id"`
	// Name is shown in reasons; default ID.
	Name string `yaml:"name"`
	// Difficulty is the course difficulty coefficient, default 1, in
	// 0.25..4. See Dynamic.
	Difficulty float64 `yaml:"difficulty"`
	// Elective marks a public elective: excluded from grade warnings.
	Elective bool `yaml:"elective"`
	// Core marks a degree core course.
	Core bool `yaml:"core"`
	// RequiredHours is the online study time required in each study period
	// (by period name). A course's total for a term is the sum over that
	// term's periods.
	RequiredHours map[string]float64 `yaml:"required_hours"`

	evStudied, evRequired string      // evidence keys, built once at load
	termHours             [][]float64 // [term index][period index] hours
}

// StudyRule is the study-state warning (学习状态预警).
type StudyRule struct {
	// Enabled turns the rule on; default true.
	Enabled bool `yaml:"enabled"`
	// MinCourses is how many courses must be short; default 2.
	MinCourses int `yaml:"min_courses"`
	// Basis says what "required up to the current period" counts: "prorated"
	// (default: completed periods plus the elapsed share of the current
	// one), "completed" (completed periods only) or "through" (through the
	// end of the current period).
	Basis string `yaml:"basis"`
	// RedLastDays is the window before term end for red; default 14.
	RedLastDays int `yaml:"red_last_days"`
	// RedShare is the share of the term's total required time below which
	// a course counts for red; default 2/3.
	RedShare Ratio `yaml:"red_share"`
}

// GradeRule is the grade warning (学习成绩预警), per term.
type GradeRule struct {
	Enabled bool `yaml:"enabled"`
	// YellowFailed and RedFailed are the numbers of failed courses in the
	// latest graded term; defaults 2 and 4.
	YellowFailed int `yaml:"yellow_failed"`
	RedFailed    int `yaml:"red_failed"`
	// CountElectives counts public electives too; default false (§6
	// excludes them).
	CountElectives bool `yaml:"count_electives"`
}

// DegreeRule is the degree warning (毕业学位预警), evaluated from the start
// of the spring term of the student's graduation year to that term's end.
type DegreeRule struct {
	Enabled bool `yaml:"enabled"`
	// MinAverage is the average score a degree requires; default 70.
	MinAverage float64 `yaml:"min_average"`
	// MinCoreAverage is the average over core courses; default 75.
	MinCoreAverage float64 `yaml:"min_core_average"`
	// ForeignLanguage requires the foreign-language level; default true.
	ForeignLanguage bool `yaml:"foreign_language"`
	// RedCountElectives counts failed public electives for red; default true
	// (§6: "any failed course").
	RedCountElectives bool `yaml:"red_count_electives"`
	// RequiredCourses must all be passed to graduate; a missing or failed
	// one is an unmet graduation requirement (red).
	RequiredCourses []string `yaml:"required_courses"`
}

// Window is a rolling live window: "1m", "2m" or "5m".
type Window string

// LiveThreshold is one live signal: yellow below (attention) or above
// (emotions) Yellow, red beyond Red (0 turns red off).
type LiveThreshold struct {
	Enabled bool    `yaml:"enabled"`
	Window  Window  `yaml:"window"`
	Yellow  float64 `yaml:"yellow"`
	Red     float64 `yaml:"red"`
	// MinSamples is the number of seconds with data the window needs.
	MinSamples int `yaml:"min_samples"`
}

// FaceAbsent is the face-absent signal: continuous absence longer than
// Yellow (default 60 s), red beyond Red (default 5 min, 0 turns it off).
type FaceAbsent struct {
	Enabled bool          `yaml:"enabled"`
	Yellow  time.Duration `yaml:"yellow"`
	Red     time.Duration `yaml:"red"`
}

// LiveRules are the per-student live engagement signals.
type LiveRules struct {
	// Attention fires when mean attention is below the threshold; defaults
	// window 2m, yellow 0.4, red 0.25, min_samples 60.
	Attention LiveThreshold `yaml:"attention_low"`
	// FaceAbsent fires on a continuous absence of the face.
	FaceAbsent FaceAbsent `yaml:"face_absent"`
	// Confused and Frustrated fire when the mean emotion score is at or
	// above the threshold (sustained over the window); defaults window 2m,
	// yellow 0.5, red 0.7, min_samples 60.
	Confused   LiveThreshold `yaml:"confused"`
	Frustrated LiveThreshold `yaml:"frustrated"`
}

// ClassShare is one class-level signal: a share of the captured students
// at or above Yellow (Red; 0 turns red off).
type ClassShare struct {
	Enabled bool    `yaml:"enabled"`
	Yellow  float64 `yaml:"yellow"`
	Red     float64 `yaml:"red"`
}

// ClassRules are the class-level signals to the instructor.
type ClassRules struct {
	// MinCaptured is the fewest captured students for any class signal;
	// default 4.
	MinCaptured int `yaml:"min_captured"`
	// Confused defaults yellow 0.4, red 0.6; Inattentive 0.5 / 0.7;
	// Absent 0.3 / 0.5.
	Confused    ClassShare `yaml:"confused"`
	Inattentive ClassShare `yaml:"inattentive"`
	Absent      ClassShare `yaml:"absent"`
}

// Dynamic says which thresholds scale with a course's difficulty
// coefficient d.
type Dynamic struct {
	// RequiredTime multiplies required study time by d; default true.
	RequiredTime bool `yaml:"required_time"`
	// EmotionLimits multiplies the confused and frustrated thresholds (and
	// the class confused share) by d, capped at 0.95: a hard course
	// tolerates more confusion before it is a signal; default true.
	EmotionLimits bool `yaml:"emotion_limits"`
}

// TrendRule is the early "at risk" notice on a week-over-week drop.
type TrendRule struct {
	Enabled bool `yaml:"enabled"`
	// Drop is the relative drop from the week before last to last week
	// that fires; default 0.10.
	Drop Ratio `yaml:"drop"`
	// MinPreviousHours ignores courses studied less than this the week
	// before last; default 1.
	MinPreviousHours float64 `yaml:"min_previous_hours"`
	// Level is "info" (default) or "yellow".
	Level string `yaml:"level"`
}

// PeerRule is the peer-position notice: the student's study time in a
// course this term is below Ratio × the class's Basis.
type PeerRule struct {
	Enabled bool `yaml:"enabled"`
	// Basis is "median" (default) or "mean".
	Basis string `yaml:"basis"`
	// Ratio defaults to 0.8.
	Ratio Ratio `yaml:"ratio"`
	// MinClass is the fewest classmates with data; default 5.
	MinClass int `yaml:"min_class"`
	// Level is "info" (default) or "yellow".
	Level string `yaml:"level"`
}

// Hold is the lifecycle timing of one family.
type Hold struct {
	// MinHold keeps a warning open at least this long after it was raised,
	// so a flapping signal raises one warning, not a stream of them.
	MinHold time.Duration `yaml:"min_hold"`
	// Cooldown suppresses a new warning for the same condition this long
	// after it cleared.
	Cooldown time.Duration `yaml:"cooldown"`
}

// Lifecycle holds the timings per family. Defaults: academic min_hold 24h
// (study time rises in steps while the prorated requirement rises all day,
// so a student near the line would otherwise flap), cooldown 0; live 1m,
// 5m; class 1m, 3m.
type Lifecycle struct {
	Academic Hold `yaml:"academic"`
	Live     Hold `yaml:"live"`
	Class    Hold `yaml:"class"`
}

// CustomRule is a school's own rule: a CEL expression over the student
// object (see docs/policy.md) that yields a bool.
type CustomRule struct {
	// ID is the warning's rule id; it must not clash with a built-in id.
	ID string `yaml:"id"`
	// Category defaults to "custom"; Level to "yellow".
	Category string `yaml:"category"`
	Level    string `yaml:"level"`
	// Family is "academic" (default) or "live"; a live rule only runs when
	// the snapshot has live state.
	Family string `yaml:"family"`
	// When is the CEL condition.
	When string `yaml:"when"`
	// Reason is the sentence the warning carries.
	Reason string `yaml:"reason"`
	// Evidence maps names to CEL number expressions recorded as evidence.
	Evidence map[string]string `yaml:"evidence"`
}

// Course returns the course with id, or nil if the policy does not know it.
func (p *Policy) Course(id string) *Course { return p.courses[id] }

// Location is the calendar's time zone.
func (p *Policy) Location() *time.Location { return p.loc }
