package rules

import "strings"

// Family groups rules by the events that give the processor the state they
// need. Reconcile only clears warnings of the families that were evaluated,
// so a click event (academic) never clears a live warning and a score event
// (live) never clears an academic one.
type Family uint8

// Rule families; combine with |.
const (
	// FamilyAcademic: study-state, grade, degree, trend, peer and academic
	// custom rules. Evaluate on click and grade events (and on a daily tick,
	// since calendar boundaries change their outcome without any event).
	FamilyAcademic Family = 1 << iota
	// FamilyLive: per-student engagement rules and live custom rules.
	// Evaluate on score events, and with Snapshot.Live nil when the
	// student's session ends so that open live warnings clear.
	FamilyLive
	// FamilyClass: class-level signals from EvaluateClass.
	FamilyClass

	// FamilyAll is every family.
	FamilyAll = FamilyAcademic | FamilyLive | FamilyClass
)

// String names the families in f, "academic|live".
func (f Family) String() string {
	var parts []string
	if f&FamilyAcademic != 0 {
		parts = append(parts, "academic")
	}
	if f&FamilyLive != 0 {
		parts = append(parts, "live")
	}
	if f&FamilyClass != 0 {
		parts = append(parts, "class")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Built-in rule ids. A rule id is the warning's `rule` field; one rule may
// fire at several levels (yellow, then red) under the same id, which is
// what lets the lifecycle escalate rather than raise a second warning.
const (
	RuleStudy         = "study"          // 学习状态预警, yellow and red
	RuleGrade         = "grade"          // 学习成绩预警, yellow and red
	RuleDegree        = "degree"         // 毕业学位预警, yellow and red
	RuleTrend         = "study_trend"    // week-over-week drop, per course
	RulePeer          = "peer_position"  // below the class, per course
	RuleAttentionLow  = "attention_low"  // live
	RuleFaceAbsent    = "face_absent"    // live
	RuleConfused      = "confused"       // live
	RuleFrustrated    = "frustrated"     // live
	RuleClassConfused = "class_confused" // class
	RuleClassInattent = "class_inattentive"
	RuleClassAbsent   = "class_absent"
)

// builtinRules maps every built-in rule id to its family.
var builtinRules = map[string]Family{
	RuleStudy: FamilyAcademic, RuleGrade: FamilyAcademic, RuleDegree: FamilyAcademic,
	RuleTrend: FamilyAcademic, RulePeer: FamilyAcademic,
	RuleBehaviour: FamilyAcademic, RuleParticipation: FamilyAcademic,
	RuleAttentionLow: FamilyLive, RuleFaceAbsent: FamilyLive, RuleConfused: FamilyLive, RuleFrustrated: FamilyLive,
	RuleClassConfused: FamilyClass, RuleClassInattent: FamilyClass, RuleClassAbsent: FamilyClass,
}

// Finding is one rule that holds for a snapshot right now. It is not yet a
// warning: Reconcile turns findings into lifecycle transitions.
type Finding struct {
	// Rule is the rule id (a built-in Rule* constant or a custom rule's id).
	Rule string
	// Family is the rule's family.
	Family Family
	// Category and Level are stream.Category* and stream.Level* values.
	Category, Level string
	// Course is set for per-course rules and empty otherwise.
	Course string
	// Reason is a human sentence saying why, with the numbers.
	Reason string
	// Evidence carries the numbers behind Reason; keys are identifiers
	// that pass stream.Warning validation.
	Evidence map[string]float64
}

// Key identifies the condition a finding is about: the rule, and the
// course for per-course rules. Open warnings are keyed the same way.
func (f *Finding) Key() string { return Key(f.Rule, f.Course) }

// Key builds the Open key of rule and course, "rule" or "rule/course".
// Neither ids nor course ids may contain "/", so the key is unambiguous.
func Key(rule, course string) string {
	if course == "" {
		return rule
	}
	return rule + "/" + course
}
