package consent

import (
	"errors"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

func TestMinorUnder14NeedsGuardianAnswerBeforeCapture(t *testing.T) {
	now := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	date := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	student := Record{Student: "s1", PolicyVersion: PolicyVersion, Camera: true}
	guardian := Record{Student: "s1", PolicyVersion: PolicyVersion, Camera: true, Guardian: "g1"}
	declined := Record{Student: "s1", PolicyVersion: PolicyVersion, Guardian: "g1"}
	tests := []struct {
		name    string
		learner Learner
		rec     Record
		want    error
	}{
		{"adult of unknown age, own answer", Learner{}, student, nil},
		{"flagged minor, own answer", Learner{MinorUnder14: true}, student, ErrGuardianRequired},
		{"flagged minor, guardian answer", Learner{MinorUnder14: true}, guardian, nil},
		{"13 years old the day before the birthday", Learner{BirthDate: date("2012-03-11")}, student, ErrGuardianRequired},
		{"14 on the birthday", Learner{BirthDate: date("2012-03-10")}, student, nil},
		{"birth date clears an old flag", Learner{BirthDate: date("2000-01-01"), MinorUnder14: true}, student, nil},
		{"minor, guardian declined", Learner{MinorUnder14: true}, declined, ErrNotRecorded},
		{"born 29 February, 14 on 1 March of a common year", Learner{BirthDate: date("2012-02-29")}, student, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rec.CheckCapture(tc.learner, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckCapture = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseBirthDateRefusesImplausibleDates(t *testing.T) {
	now := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		in string
		ok bool
	}{
		{"", true}, {"2012-03-11", true}, {"2030-01-01", false}, {"1890-01-01", false},
		{"12/03/2012", false}, {"2012-13-01", false}, {"2012-03-11T00:00:00Z", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseBirthDate(tc.in, now)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseBirthDate(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func TestAnsweredByFollowsTheGuardianField(t *testing.T) {
	if got := (Record{}).AnsweredBy(); got != ByStudent {
		t.Fatalf("no guardian: %s", got)
	}
	r := Record{Student: "s1", PolicyVersion: PolicyVersion, Camera: true, Guardian: "g1"}
	if got := r.AnsweredBy(); got != ByGuardian {
		t.Fatalf("guardian named: %s", got)
	}
	evs, err := r.Events(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if c := e.(*stream.Consent); c.Guardian != "g1" || c.PolicyVersion != PolicyVersion {
			t.Fatalf("published consent loses who answered or the notice: %+v", c)
		}
	}
}
