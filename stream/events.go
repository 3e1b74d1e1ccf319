package stream

import (
	"fmt"
	"math"
)

// Emotions are the probabilities of the seven basic emotions for one window.
type Emotions struct {
	Neutral   float64 `json:"neutral"`
	Happy     float64 `json:"happy"`
	Sad       float64 `json:"sad"`
	Angry     float64 `json:"angry"`
	Fearful   float64 `json:"fearful"`
	Disgusted float64 `json:"disgusted"`
	Surprised float64 `json:"surprised"`
}

// EmotionNames lists the seven emotions in wire order.
var EmotionNames = []string{"neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"}

// Values returns the probabilities in EmotionNames order.
func (e *Emotions) Values() [7]float64 {
	return [7]float64{e.Neutral, e.Happy, e.Sad, e.Angry, e.Fearful, e.Disgusted, e.Surprised}
}

// Learning are the four learning emotions, each 0–1.
type Learning struct {
	Engaged    float64 `json:"engaged"`
	Confused   float64 `json:"confused"`
	Bored      float64 `json:"bored"`
	Frustrated float64 `json:"frustrated"`
}

// LearningNames lists the learning emotions in wire order.
var LearningNames = []string{"engaged", "confused", "bored", "frustrated"}

// Values returns the scores in LearningNames order.
func (l *Learning) Values() [4]float64 {
	return [4]float64{l.Engaged, l.Confused, l.Bored, l.Frustrated}
}

// Head is the head pose in degrees: yaw left/right, pitch up/down.
type Head struct {
	Yaw   float64 `json:"yaw"`
	Pitch float64 `json:"pitch"`
}

// Score is the per-second summary an edge worker publishes for one student.
// Emotions and Learning are absent where emotion inference is off (no
// consent for the emotion scope, or a jurisdiction that forbids it); Head
// and EyesOpen are absent when no face was seen in the window.
type Score struct {
	Header
	Session     string    `json:"session"`
	Course      string    `json:"course"`
	WindowMS    int       `json:"window_ms"`
	Frames      int       `json:"frames"`
	FaceRatio   float64   `json:"face_ratio"`
	MaskedRatio float64   `json:"masked_ratio"`
	Attention   float64   `json:"attention"`
	Emotions    *Emotions `json:"emotions,omitempty"`
	Learning    *Learning `json:"learning,omitempty"`
	Head        *Head     `json:"head,omitempty"`
	EyesOpen    *float64  `json:"eyes_open,omitempty"`
	Model       string    `json:"model"`
}

// Topic implements Event.
func (*Score) Topic() string { return TopicScores }

// Key implements Event.
func (s *Score) Key() string { return s.Student }

// Validate implements Event.
func (s *Score) Validate() error {
	if err := s.Header.validate(true); err != nil {
		return err
	}
	if err := checkIdent("session", s.Session, true); err != nil {
		return err
	}
	if err := checkIdent("course", s.Course, true); err != nil {
		return err
	}
	if s.WindowMS < 100 || s.WindowMS > 60000 {
		return fieldErr("window_ms", fmt.Sprintf("%d out of range 100..60000", s.WindowMS))
	}
	if s.Frames < 0 || s.Frames > 1000 {
		return fieldErr("frames", fmt.Sprintf("%d out of range 0..1000", s.Frames))
	}
	for _, c := range []struct {
		f string
		v float64
	}{{"face_ratio", s.FaceRatio}, {"masked_ratio", s.MaskedRatio}, {"attention", s.Attention}} {
		if err := checkUnit(c.f, c.v); err != nil {
			return err
		}
	}
	if s.MaskedRatio > s.FaceRatio+1e-9 {
		return fieldErr("masked_ratio", "greater than face_ratio: a masked face is a face")
	}
	if s.Emotions != nil {
		ev := s.Emotions.Values()
		if err := checkDistribution("emotions", EmotionNames, ev[:]); err != nil {
			return err
		}
	}
	if s.Learning != nil {
		for i, v := range s.Learning.Values() {
			if !inUnit(v) {
				return checkUnit("learning."+LearningNames[i], v)
			}
		}
	}
	if s.Head != nil {
		if err := checkRange("head.yaw", s.Head.Yaw, -180, 180); err != nil {
			return err
		}
		if err := checkRange("head.pitch", s.Head.Pitch, -90, 90); err != nil {
			return err
		}
	}
	if s.EyesOpen != nil {
		if err := checkUnit("eyes_open", *s.EyesOpen); err != nil {
			return err
		}
	}
	if s.Model == "" {
		return fieldErr("model", "required")
	}
	return checkText("model", s.Model, 64)
}

// checkDistribution requires each value in 0..1 and a sum of 1 (±0.02).
func checkDistribution(field string, names []string, vs []float64) error {
	sum := 0.0
	for i, v := range vs {
		if !inUnit(v) {
			return checkUnit(field+"."+names[i], v)
		}
		sum += v
	}
	if math.Abs(sum-1) > 0.02 {
		return fieldErr(field, fmt.Sprintf("probabilities sum to %.3f, want 1", sum))
	}
	return nil
}

// The 14 behaviours of the study (DESIGN.md §4), the values of Click.Kind.
const (
	KindStudy        = "study"
	KindCourseInfo   = "course_info"
	KindFileDownload = "file_download"
	KindInfo         = "info"
	KindHomework     = "homework"
	KindExtra        = "extra"
	KindQuiz         = "quiz"
	KindAssignment   = "assignment"
	KindPastContent  = "past_content"
	KindResource     = "resource"
	KindOffTask      = "off_task"
	KindExternalLink = "external_link"
	KindPlayer       = "player_control"
	KindVideoDL      = "video_download"
)

// ClickKinds lists the 14 behaviours in a fixed order; the index of a kind
// is its column in windowed counts.
var ClickKinds = []string{
	KindStudy, KindCourseInfo, KindFileDownload, KindInfo, KindHomework, KindExtra, KindQuiz,
	KindAssignment, KindPastContent, KindResource, KindOffTask, KindExternalLink, KindPlayer, KindVideoDL,
}

// KindIndex returns the column of kind in ClickKinds, or -1.
func KindIndex(kind string) int {
	for i, k := range ClickKinds {
		if k == kind {
			return i
		}
	}
	return -1
}

// MaxStudySeconds bounds one study click: a single record of more than a
// day of study time is a data error.
const MaxStudySeconds = 86400

// Click is one LMS clickstream record, or a span of study time.
type Click struct {
	Header
	Course    string  `json:"course"`
	Kind      string  `json:"kind"`
	DurationS float64 `json:"duration_s,omitempty"`
	XAPI      string  `json:"xapi,omitempty"`
}

// Topic implements Event.
func (*Click) Topic() string { return TopicClicks }

// Key implements Event.
func (c *Click) Key() string { return c.Student }

// Validate implements Event.
func (c *Click) Validate() error {
	if err := c.Header.validate(true); err != nil {
		return err
	}
	if err := checkIdent("course", c.Course, true); err != nil {
		return err
	}
	if err := oneOf("kind", c.Kind, ClickKinds); err != nil {
		return err
	}
	if c.Kind == KindStudy {
		if c.DurationS <= 0 {
			return fieldErr("duration_s", "required and positive for kind study")
		}
		if err := checkRange("duration_s", c.DurationS, 0, MaxStudySeconds); err != nil {
			return err
		}
	} else if c.DurationS != 0 {
		if err := checkRange("duration_s", c.DurationS, 0, MaxStudySeconds); err != nil {
			return err
		}
	}
	return checkText("xapi", c.XAPI, 512)
}

// Grade is one course result.
type Grade struct {
	Header
	Course   string  `json:"course"`
	Term     string  `json:"term"`
	Score    float64 `json:"score"`
	Passed   bool    `json:"passed"`
	Elective bool    `json:"elective"`
	Core     bool    `json:"core"`
}

// Topic implements Event.
func (*Grade) Topic() string { return TopicGrades }

// Key implements Event.
func (g *Grade) Key() string { return g.Student }

// Validate implements Event.
func (g *Grade) Validate() error {
	if err := g.Header.validate(true); err != nil {
		return err
	}
	if err := checkIdent("course", g.Course, true); err != nil {
		return err
	}
	if err := checkIdent("term", g.Term, true); err != nil {
		return err
	}
	return checkRange("score", g.Score, 0, 100)
}

// Consent scopes.
const (
	ScopeCamera      = "camera"
	ScopeEmotion     = "emotion"
	ScopeClickstream = "clickstream"
)

// ConsentScopes lists the scopes a consent record may name.
var ConsentScopes = []string{ScopeCamera, ScopeEmotion, ScopeClickstream}

// Consent records a student (or guardian) granting or revoking one scope.
type Consent struct {
	Header
	Scope         string `json:"scope"`
	Granted       bool   `json:"granted"`
	PolicyVersion string `json:"policy_version"`
	Guardian      string `json:"guardian,omitempty"`
}

// Topic implements Event.
func (*Consent) Topic() string { return TopicConsent }

// Key implements Event.
func (c *Consent) Key() string { return c.Student }

// Validate implements Event.
func (c *Consent) Validate() error {
	if err := c.Header.validate(true); err != nil {
		return err
	}
	if err := oneOf("scope", c.Scope, ConsentScopes); err != nil {
		return err
	}
	if err := checkIdent("policy_version", c.PolicyVersion, true); err != nil {
		return err
	}
	return checkIdent("guardian", c.Guardian, false)
}
