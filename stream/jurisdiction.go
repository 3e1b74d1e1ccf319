package stream

import (
	"fmt"
	"strings"
)

// Jurisdiction profiles. A profile is a fixed set of legal limits on what
// the pipeline may infer about a student; it is chosen per deployment
// (every edge worker, processor and dashboard of one installation runs the
// same profile).
const (
	// JurisdictionDefault allows every inference a student consents to.
	JurisdictionDefault = "default"
	// JurisdictionEU forbids emotion recognition of students (the EU AI
	// Act, Art. 5(1)(f), prohibits inferring emotions in education): the
	// edge does not compute emotions or learning emotions, the processor
	// rejects any event that carries them and the dashboard hides them.
	JurisdictionEU = "eu"
)

// Jurisdictions lists the known profiles; the empty string means default.
// They are the values classpulse-edge's --jurisdiction accepts
// (vision.EmotionForbidden); of them only eu forbids emotion inference
// today, the others name where a deployment runs so that a later legal
// limit has a place to go.
var Jurisdictions = []string{JurisdictionDefault, "none", JurisdictionEU, "cn", "us", "uk"}

// ParseJurisdiction checks a --jurisdiction flag value and returns the
// profile's canonical name ("" becomes "default").
func ParseJurisdiction(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return JurisdictionDefault, nil
	}
	for _, j := range Jurisdictions {
		if s == j {
			return j, nil
		}
	}
	return "", fmt.Errorf("jurisdiction %q: want one of %v", s, Jurisdictions)
}

// EmotionInferenceAllowed reports whether the profile allows emotion
// inference at all (consent is still needed on top of it).
func EmotionInferenceAllowed(jurisdiction string) bool {
	return !strings.EqualFold(jurisdiction, JurisdictionEU)
}

// CheckJurisdiction returns an error wrapping ErrInvalid when e carries
// something the jurisdiction profile forbids: under "eu", a score with
// emotions or learning emotions, a tile with a dominant learning emotion,
// or a consent record granting the emotion scope. The error names the
// fields, so the DLQ entry says what to switch off at the source. Events
// of other types, and every event under the default profile, pass. An
// unknown profile is treated as default here; ParseJurisdiction rejects it
// at start-up.
//
// It does not validate the event otherwise; call Validate (or Decode)
// first.
func CheckJurisdiction(e Event, jurisdiction string) error {
	if EmotionInferenceAllowed(jurisdiction) {
		return nil
	}
	var fields []string
	switch v := e.(type) {
	case *Score:
		if v.Emotions != nil {
			fields = append(fields, "emotions")
		}
		if v.Learning != nil {
			fields = append(fields, "learning")
		}
	case *Tile:
		if v.Dominant != "" {
			fields = append(fields, "dominant")
		}
	case *Consent:
		if v.Scope == ScopeEmotion && v.Granted {
			fields = append(fields, "scope")
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return fieldErr(strings.Join(fields, ","), fmt.Sprintf("emotion inference is not allowed under the %q jurisdiction profile", JurisdictionEU))
}
