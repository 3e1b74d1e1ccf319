package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// MappingRule maps a verb and an activity type onto a click kind. Verb and
// Type match a statement's verb.id and object.definition.type by the full
// IRI, or by the IRI's last path segment ("viewed", "quiz"); "*" or empty
// matches anything. Rules are tried in order; the first match wins.
type MappingRule struct {
	Verb string `json:"verb"`
	Type string `json:"type"`
	Kind string `json:"kind"`
}

// Mapping is the configurable table from xAPI onto the 14 click kinds of
// stream.ClickKinds. The zero value is not useful; start from
// DefaultMapping or LoadMapping.
type Mapping struct {
	// Rules, tried in order. Default DefaultRules.
	Rules []MappingRule `json:"rules"`
	// CourseTypes are the activity types (IRI or last segment) that name a
	// course. Default "course" (ADL's http://adlnet.gov/expapi/activities/course).
	CourseTypes []string `json:"course_types"`
	// Courses maps course activity IRIs to classpulse course ids, for LMSs
	// whose IRIs do not end in the id. Default none: the id is derived from
	// the IRI (see CourseID).
	Courses map[string]string `json:"courses"`
	// IgnoreDuration stops a non-study statement that carries
	// result.duration from also yielding a study click with that duration.
	// Default false: time spent on a quiz or a video counts as study time.
	IgnoreDuration bool `json:"ignore_duration"`
}

// DefaultRules is the default table; docs/ingest.md lists it with the
// reasoning. Verbs come from the ADL vocabulary, the xAPI video profile
// (w3id.org/xapi/video) and the TinCan registry, as Moodle's and Canvas'
// xAPI plugins emit them.
var DefaultRules = []MappingRule{
	{Verb: "voided", Type: "*", Kind: ""}, // handled before the table; listed for the docs
	{Verb: "terminated", Type: "*", Kind: stream.KindStudy},
	{Verb: "exited", Type: "*", Kind: stream.KindStudy},
	{Verb: "suspended", Type: "*", Kind: stream.KindStudy},
	{Verb: "played", Type: "*", Kind: stream.KindPlayer},
	{Verb: "paused", Type: "*", Kind: stream.KindPlayer},
	{Verb: "seeked", Type: "*", Kind: stream.KindPlayer},
	{Verb: "downloaded", Type: "video", Kind: stream.KindVideoDL},
	{Verb: "downloaded", Type: "*", Kind: stream.KindFileDownload},
	{Verb: "*", Type: "file", Kind: stream.KindFileDownload},
	{Verb: "*", Type: "assessment", Kind: stream.KindQuiz},
	{Verb: "*", Type: "quiz", Kind: stream.KindQuiz},
	{Verb: "*", Type: "question", Kind: stream.KindQuiz},
	{Verb: "*", Type: "interaction", Kind: stream.KindQuiz},
	{Verb: "*", Type: "assignment", Kind: stream.KindAssignment},
	{Verb: "*", Type: "homework", Kind: stream.KindHomework},
	{Verb: "*", Type: "link", Kind: stream.KindExternalLink},
	{Verb: "*", Type: "course", Kind: stream.KindCourseInfo},
	{Verb: "attended", Type: "*", Kind: stream.KindExtra},
	{Verb: "registered", Type: "*", Kind: stream.KindExtra},
	{Verb: "logged-in", Type: "*", Kind: stream.KindExtra},
	{Verb: "*", Type: "meeting", Kind: stream.KindExtra},
	{Verb: "*", Type: "discussion", Kind: stream.KindInfo},
	{Verb: "*", Type: "message", Kind: stream.KindInfo},
	{Verb: "*", Type: "forum", Kind: stream.KindInfo},
	{Verb: "*", Type: "video", Kind: stream.KindResource},
	{Verb: "*", Type: "media", Kind: stream.KindResource},
	{Verb: "*", Type: "lesson", Kind: stream.KindResource},
	{Verb: "*", Type: "module", Kind: stream.KindResource},
	{Verb: "*", Type: "resource", Kind: stream.KindResource},
	{Verb: "*", Type: "page", Kind: stream.KindResource},
}

// DefaultMapping returns the default table.
func DefaultMapping() *Mapping {
	m := &Mapping{}
	m.applyDefaults()
	return m
}

func (m *Mapping) applyDefaults() {
	if len(m.Rules) == 0 {
		m.Rules = append([]MappingRule(nil), DefaultRules...)
	}
	if len(m.CourseTypes) == 0 {
		m.CourseTypes = []string{"course"}
	}
}

// Validate reports rules that name no known kind.
func (m *Mapping) Validate() error {
	for i, r := range m.Rules {
		if r.Kind == "" && lastSegment(r.Verb) == "voided" {
			continue
		}
		if stream.KindIndex(r.Kind) < 0 {
			return fmt.Errorf("mapping rule %d (verb %q, type %q): kind %q is not one of %v", i, r.Verb, r.Type, r.Kind, stream.ClickKinds)
		}
	}
	for iri, id := range m.Courses {
		if !stream.ValidIdent(id) {
			return fmt.Errorf("mapping courses[%q]: %q is not a valid course id", iri, id)
		}
	}
	return nil
}

// LoadMapping reads a JSON mapping file; missing parts take the defaults.
func LoadMapping(path string) (*Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("xapi mapping: %w", err)
	}
	m := &Mapping{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("xapi mapping %s: %w", path, err)
	}
	m.applyDefaults()
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("xapi mapping %s: %w", path, err)
	}
	return m, nil
}

func lastSegment(iri string) string {
	iri = strings.TrimRight(iri, "/")
	if i := strings.LastIndexAny(iri, "/#"); i >= 0 {
		return iri[i+1:]
	}
	return iri
}

func matches(pattern, iri string) bool {
	return pattern == "" || pattern == "*" || pattern == iri || pattern == lastSegment(iri)
}

// Kind returns the click kind for a verb and activity type, or "".
func (m *Mapping) Kind(verb, typ string) string {
	for _, r := range m.Rules {
		if r.Kind != "" && matches(r.Verb, verb) && matches(r.Type, typ) {
			return r.Kind
		}
	}
	return ""
}

func (m *Mapping) isCourse(o *Object) bool {
	if o.Definition == nil {
		return false
	}
	for _, t := range m.CourseTypes {
		if matches(t, o.Definition.Type) && t != "*" && t != "" {
			return true
		}
	}
	return false
}

// CourseID turns a course activity IRI into a course id: an entry of
// Courses, else the "id" query parameter (Moodle's .../course/view.php?id=42),
// else the IRI's last path segment. It reports false when the result is not
// a valid id.
func (m *Mapping) CourseID(iri string) (string, bool) {
	if id, ok := m.Courses[iri]; ok {
		return id, true
	}
	id := ""
	if u, err := url.Parse(iri); err == nil {
		if q := u.Query().Get("id"); q != "" {
			id = q
		} else {
			id = lastSegment(strings.TrimRight(u.Path, "/"))
			if id == "" {
				id = u.Opaque
			}
		}
	}
	return id, id != "" && stream.ValidIdent(id)
}

// course finds the statement's course: the object when it is a course,
// else the first course among the parent and grouping activities.
func (m *Mapping) course(st *Statement) (string, error) {
	cands := []Object{st.Object}
	if st.Context != nil && st.Context.ContextActivities != nil {
		cands = append(cands, st.Context.ContextActivities.Parent...)
		cands = append(cands, st.Context.ContextActivities.Grouping...)
	}
	for i := range cands {
		if m.isCourse(&cands[i]) {
			id, ok := m.CourseID(cands[i].ID)
			if !ok {
				return "", unmappable(CodeCourse, fmt.Sprintf("course activity %q gives no valid course id; add it to the mapping's courses", cands[i].ID))
			}
			return id, nil
		}
	}
	return "", unmappable(CodeCourse, fmt.Sprintf("no activity of type %v in object or context.contextActivities parent/grouping", m.CourseTypes))
}

// student reads the student id: actor.account.name, else the local part of
// actor.mbox (mailto:s1024@school.edu → s1024).
func student(a *Actor) (string, error) {
	var id string
	switch {
	case a.Account != nil && a.Account.Name != "":
		id = a.Account.Name
	case strings.HasPrefix(a.Mbox, "mailto:"):
		id, _, _ = strings.Cut(strings.TrimPrefix(a.Mbox, "mailto:"), "@")
	default:
		return "", unmappable(CodeActor, "actor has neither account.name nor a mailto: mbox")
	}
	if !stream.ValidIdent(id) {
		return "", unmappable(CodeActor, fmt.Sprintf("student id %q is not 1..64 letters, digits or -_.:@", id))
	}
	return id, nil
}

// Map turns one statement from source into click events: one of the mapped
// kind, plus a study click for result.duration unless IgnoreDuration (or
// the kind is study, when the one click carries the duration). now stamps
// statements without a timestamp. Event ids are deterministic in source,
// statement id and kind, so a resent statement yields the same events.
func (m *Mapping) Map(source string, st *Statement, now time.Time) ([]*stream.Click, error) {
	if lastSegment(st.Verb.ID) == "voided" {
		return nil, unmappable(CodeVoided, "voiding statements retract earlier ones; classpulse keeps clicks as they were")
	}
	if st.Verb.ID == "" {
		return nil, unmappable(CodeMalformed, "verb.id is required")
	}
	sid, err := student(&st.Actor)
	if err != nil {
		return nil, err
	}
	typ := ""
	if st.Object.Definition != nil {
		typ = st.Object.Definition.Type
	}
	kind := m.Kind(st.Verb.ID, typ)
	if kind == "" {
		return nil, unmappable(CodeVerb, fmt.Sprintf("no mapping rule for verb %q on activity type %q", st.Verb.ID, typ))
	}
	course, err := m.course(st)
	if err != nil {
		return nil, err
	}
	ts := now
	if st.Timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, st.Timestamp)
		if err != nil {
			return nil, unmappable(CodeTimestamp, fmt.Sprintf("timestamp %q is not RFC 3339", st.Timestamp))
		}
		if y := t.Year(); y < 2000 || y > 2200 {
			return nil, unmappable(CodeTimestamp, fmt.Sprintf("timestamp year %d out of range 2000..2200", y))
		}
		ts = t
	}
	dur := 0.0
	if st.Result != nil && st.Result.Duration != "" {
		d, err := ParseDuration(st.Result.Duration)
		if err != nil {
			return nil, unmappable(CodeDuration, err.Error())
		}
		if d > stream.MaxStudySeconds {
			return nil, unmappable(CodeDuration, fmt.Sprintf("result.duration %s is %.0f s, more than the %d s one record may hold", st.Result.Duration, d, stream.MaxStudySeconds))
		}
		dur = d
	}
	if kind == stream.KindStudy && dur <= 0 {
		return nil, unmappable(CodeDuration, fmt.Sprintf("verb %q maps to study time but result.duration is missing or zero", st.Verb.ID))
	}
	ref := st.ID
	if ref == "" {
		b, _ := json.Marshal(st)
		sum := sha256.Sum256(b)
		ref = "sha256-" + hex.EncodeToString(sum[:12])
	}
	mk := func(kind string, d float64) *stream.Click {
		c := &stream.Click{
			Header: stream.Header{V: stream.Version, ID: DeterministicID(ts, "xapi", source, ref, kind), TS: stream.At(ts), Student: sid},
			Course: course, Kind: kind, DurationS: d, XAPI: source + ":" + ref,
		}
		return c
	}
	var out []*stream.Click
	if kind == stream.KindStudy {
		out = append(out, mk(kind, dur))
	} else {
		out = append(out, mk(kind, 0))
		if dur > 0 && !m.IgnoreDuration {
			out = append(out, mk(stream.KindStudy, dur))
		}
	}
	for _, c := range out {
		if err := c.Validate(); err != nil {
			return nil, unmappable(CodeInvalid, err.Error())
		}
	}
	return out, nil
}
