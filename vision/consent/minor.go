package consent

import (
	"errors"
	"fmt"
	"time"
)

// GuardianAge is the age below which only a guardian's answer allows
// capture (GDPR Art. 8 lets member states set 13–16; classpulse uses the
// strictest common school rule, 14, everywhere).
const GuardianAge = 14

// ErrGuardianRequired means the learner is under GuardianAge and the
// recorded answer is not a guardian's.
var ErrGuardianRequired = errors.New("consent: the student is under 14; only a guardian's answer allows capture")

// Answerer names who gave an answer, as stored and published.
const (
	ByStudent  = "student"
	ByGuardian = "guardian"
)

// Learner is what the edge knows about the learner's age, from its local
// configuration or roster. The zero value is an adult of unknown birth date.
type Learner struct {
	// BirthDate, when set, decides: under GuardianAge on the day asked.
	BirthDate time.Time
	// MinorUnder14 marks the learner as under GuardianAge when no birth
	// date is known (a roster flag).
	MinorUnder14 bool
}

// ParseBirthDate reads a YYYY-MM-DD birth date; an empty string is no date.
// A date in the future or more than 120 years ago is refused as a typo.
func ParseBirthDate(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("birth date %q: want YYYY-MM-DD", s)
	}
	if d.After(now) || d.Before(now.AddDate(-120, 0, 0)) {
		return time.Time{}, fmt.Errorf("birth date %q: not a plausible birth date", s)
	}
	return d, nil
}

// Minor reports whether l is under GuardianAge on now's calendar day. A
// birth date wins over the flag, so a roster can clear an old flag.
func (l Learner) Minor(now time.Time) bool {
	if l.BirthDate.IsZero() {
		return l.MinorUnder14
	}
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	by, bm, bd := l.BirthDate.Date()
	return today.Before(time.Date(by+GuardianAge, bm, bd, 0, 0, 0, 0, time.UTC))
}

// AnsweredBy is who gave r: the guardian when one is named, else the student.
func (r Record) AnsweredBy() string {
	if r.Guardian != "" {
		return ByGuardian
	}
	return ByStudent
}

// CheckCapture reports why r does not allow capture of l at now: no camera
// consent for the current notice (ErrNotRecorded), or a minor's record not
// answered by a guardian (ErrGuardianRequired). nil means capture may start.
func (r Record) CheckCapture(l Learner, now time.Time) error {
	if !r.CaptureAllowed() {
		return fmt.Errorf("%w: camera consent is not granted", ErrNotRecorded)
	}
	if l.Minor(now) && r.AnsweredBy() != ByGuardian {
		return ErrGuardianRequired
	}
	return nil
}
