package stream

import "fmt"

// Warning categories.
const (
	CategoryStudy      = "study"      // 学习状态预警: online study time
	CategoryGrade      = "grade"      // 学习成绩预警: failed courses
	CategoryDegree     = "degree"     // 毕业学位预警
	CategoryEngagement = "engagement" // live signal about one student
	CategoryClass      = "class"      // live signal about a whole class, to its instructor
	CategoryRisk       = "risk"       // early notices: trends, peer position, predictions
	CategoryCustom     = "custom"     // a school's own rule
)

// WarningCategories lists every category.
var WarningCategories = []string{
	CategoryStudy, CategoryGrade, CategoryDegree, CategoryEngagement, CategoryClass, CategoryRisk, CategoryCustom,
}

// Warning levels, in rising order.
const (
	LevelInfo   = "info"
	LevelYellow = "yellow"
	LevelRed    = "red"
)

// WarningLevels lists every level in rising order.
var WarningLevels = []string{LevelInfo, LevelYellow, LevelRed}

// LevelRank orders levels: info 1, yellow 2, red 3, anything else 0.
func LevelRank(level string) int {
	for i, l := range WarningLevels {
		if l == level {
			return i + 1
		}
	}
	return 0
}

// Warning lifecycle states; every transition is one event.
const (
	StateRaised    = "raised"
	StateEscalated = "escalated"
	StateCleared   = "cleared"
)

// WarningStates lists every state.
var WarningStates = []string{StateRaised, StateEscalated, StateCleared}

// Warning is one transition of a warning. Ref stays the same for every
// transition of one warning (it is the id of the event that raised it), so
// the help loop can refer to the warning across escalation and clearing.
// A class-level warning has no student and names its session instead.
type Warning struct {
	Header
	Ref      string             `json:"ref"`
	Category string             `json:"category"`
	Level    string             `json:"level"`
	Rule     string             `json:"rule"`
	Course   string             `json:"course,omitempty"`
	Session  string             `json:"session,omitempty"`
	Reason   string             `json:"reason"`
	Evidence map[string]float64 `json:"evidence"`
	State    string             `json:"state"`
}

// Topic implements Event.
func (*Warning) Topic() string { return TopicWarnings }

// Key implements Event: the student, or the session of a class warning.
func (w *Warning) Key() string {
	if w.Student == "" {
		return w.Session
	}
	return w.Student
}

// Validate implements Event.
func (w *Warning) Validate() error {
	if err := w.Header.validate(w.Category != CategoryClass); err != nil {
		return err
	}
	if err := checkIdent("ref", w.Ref, true); err != nil {
		return err
	}
	if err := oneOf("category", w.Category, WarningCategories); err != nil {
		return err
	}
	if err := oneOf("level", w.Level, WarningLevels); err != nil {
		return err
	}
	if err := checkIdent("rule", w.Rule, true); err != nil {
		return err
	}
	if err := checkIdent("course", w.Course, false); err != nil {
		return err
	}
	if err := checkIdent("session", w.Session, w.Category == CategoryClass); err != nil {
		return err
	}
	if w.Reason == "" {
		return fieldErr("reason", "required: every warning says why in a sentence")
	}
	if err := checkText("reason", w.Reason, 2000); err != nil {
		return err
	}
	if len(w.Evidence) > 64 {
		return fieldErr("evidence", "more than 64 numbers")
	}
	for k, v := range w.Evidence {
		if err := checkIdent("evidence key", k, true); err != nil {
			return err
		}
		if err := checkRange("evidence."+k, v, -1e12, 1e12); err != nil {
			return err
		}
	}
	return oneOf("state", w.State, WarningStates)
}

// Help-loop actions (监测—预警—帮扶—反馈).
const (
	ActionAssign        = "assign"
	ActionConfirm       = "confirm" // a staff member releases the warning to the student
	ActionTalk          = "talk"
	ActionNotice        = "notice"
	ActionParentContact = "parent_contact"
	ActionPlan          = "plan"
	ActionFollowUp      = "follow_up"
	ActionClose         = "close"
	ActionEscalate      = "escalate"
)

// InterventionActions lists every action.
var InterventionActions = []string{
	ActionAssign, ActionConfirm, ActionTalk, ActionNotice, ActionParentContact,
	ActionPlan, ActionFollowUp, ActionClose, ActionEscalate,
}

// Channels through which a talk or a contact took place (form 1).
var Channels = []string{"face_to_face", "phone", "sms", "email", "social_media", "letter", "system"}

// Intervention is one step of the help loop on a warning.
type Intervention struct {
	Header
	Warning string   `json:"warning"`
	Action  string   `json:"action"`
	Channel string   `json:"channel,omitempty"`
	By      string   `json:"by"`
	Owner   string   `json:"owner,omitempty"`
	Notes   string   `json:"notes,omitempty"`
	Tasks   []string `json:"tasks,omitempty"`
	Due     *Time    `json:"due,omitempty"`
	Result  string   `json:"result,omitempty"`
}

// Topic implements Event.
func (*Intervention) Topic() string { return TopicInterventions }

// Key implements Event.
func (i *Intervention) Key() string { return i.Student }

// Validate implements Event.
func (i *Intervention) Validate() error {
	if err := i.Header.validate(true); err != nil {
		return err
	}
	if err := checkIdent("warning", i.Warning, true); err != nil {
		return err
	}
	if err := oneOf("action", i.Action, InterventionActions); err != nil {
		return err
	}
	if i.Channel != "" {
		if err := oneOf("channel", i.Channel, Channels); err != nil {
			return err
		}
	}
	if (i.Action == ActionTalk || i.Action == ActionParentContact) && i.Channel == "" {
		return fieldErr("channel", "required for "+i.Action)
	}
	if err := checkIdent("by", i.By, true); err != nil {
		return err
	}
	if err := checkIdent("owner", i.Owner, i.Action == ActionAssign); err != nil {
		return err
	}
	if err := checkText("notes", i.Notes, 8000); err != nil {
		return err
	}
	if len(i.Tasks) > 50 {
		return fieldErr("tasks", "more than 50 tasks")
	}
	for n, t := range i.Tasks {
		if t == "" {
			return fieldErr(fmt.Sprintf("tasks[%d]", n), "empty task")
		}
		if err := checkText(fmt.Sprintf("tasks[%d]", n), t, 1000); err != nil {
			return err
		}
	}
	if i.Action == ActionPlan && i.Due == nil {
		return fieldErr("due", "required for a plan")
	}
	if i.Action == ActionClose {
		return oneOf("result", i.Result, []string{"helped", "escalated", "withdrawn"})
	}
	return checkText("result", i.Result, 64)
}

// Tile is one student's live summary after an update, keyed by session so
// that a class-level consumer and the dashboards see a whole class in order.
// Captured is false for a student who sends no camera data (no camera, or no
// consent): such a student is shown as "not captured", never as inattentive.
type Tile struct {
	Header
	Session      string  `json:"session"`
	Course       string  `json:"course"`
	Captured     bool    `json:"captured"`
	Attention    float64 `json:"attention"`
	FacePresent  bool    `json:"face_present"`
	Masked       bool    `json:"masked"`
	Dominant     string  `json:"dominant,omitempty"`
	WarningLevel string  `json:"warning_level,omitempty"`
}

// Topic implements Event.
func (*Tile) Topic() string { return TopicTiles }

// Key implements Event: tiles are keyed by session.
func (t *Tile) Key() string { return t.Session }

// Validate implements Event.
func (t *Tile) Validate() error {
	if err := t.Header.validate(true); err != nil {
		return err
	}
	if err := checkIdent("session", t.Session, true); err != nil {
		return err
	}
	if err := checkIdent("course", t.Course, true); err != nil {
		return err
	}
	if err := checkUnit("attention", t.Attention); err != nil {
		return err
	}
	if t.Dominant != "" {
		if err := oneOf("dominant", t.Dominant, LearningNames); err != nil {
			return err
		}
	}
	if t.WarningLevel != "" {
		return oneOf("warning_level", t.WarningLevel, WarningLevels)
	}
	return nil
}

// DeadLetter carries an input that failed validation, with where it came
// from and why it was refused. Student is filled in when it could be read.
type DeadLetter struct {
	Header
	Original  []byte `json:"original"`
	Source    string `json:"source_topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error"`
}

// Topic implements Event.
func (*DeadLetter) Topic() string { return TopicDLQ }

// Key implements Event.
func (d *DeadLetter) Key() string { return d.Student }

// Validate implements Event.
func (d *DeadLetter) Validate() error {
	if err := d.Header.validate(false); err != nil {
		return err
	}
	if d.Error == "" {
		return fieldErr("error", "required")
	}
	return nil
}
