package state

import (
	"context"
	"fmt"
	"testing"

	"github.com/classpulse/classpulse/stream"
)

// TestTheGateIsCheckedAgainAfterWhatMayCloseIt: a score of a live hash
// whose version a checked score wrote skips the consent gate, so every
// change that may close the gate must make the next score check it.
func TestTheGateIsCheckedAgainAfterWhatMayCloseIt(t *testing.T) {
	guardian := &stream.Consent{Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1", Guardian: "parent-1"}
	own := &stream.Consent{Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-1"}
	cases := []struct {
		name    string
		under14 bool
		// consent is on record before the first score.
		consent *stream.Consent
		// change happens between the first score (applied) and the second.
		change func(t *testing.T, s *Store, student string)
		want   Status
	}{
		{"the roster marks the student under 14", false, own, func(t *testing.T, s *Store, student string) {
			pipe := s.Client().Pipeline()
			SetUnder14(context.Background(), pipe, student, "1")
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, Refused},
		{"a student under 14 consents without the guardian", true, guardian, func(t *testing.T, s *Store, student string) {
			c := &stream.Consent{Header: stream.NewHeader(student, t0.Add(2)), Scope: stream.ScopeCamera, Granted: true, PolicyVersion: "2026-2"}
			apply(t, s, Op{Event: c, Topic: stream.TopicConsent, Offset: 2})
		}, Refused},
		{"the guardian consents again", true, guardian, func(t *testing.T, s *Store, student string) {
			c := *guardian
			c.Header = stream.NewHeader(student, t0.Add(2))
			apply(t, s, Op{Event: &c, Topic: stream.TopicConsent, Offset: 2})
		}, Applied},
		{"an older release wrote the version", false, own, func(t *testing.T, s *Store, student string) {
			// Its versions have no leading '.'; nothing marks it when the
			// roster changes, yet the gate is checked.
			ctx := context.Background()
			if err := s.Client().HSet(ctx, LiveKey(student), "v", "3k9x1").Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Client().HSet(ctx, ProfileKey(student), "under_14", "1").Err(); err != nil {
				t.Fatal(err)
			}
		}, Refused},
		{"a roster write without the mark (what the mark is for)", false, own, func(t *testing.T, s *Store, student string) {
			if err := s.Client().HSet(context.Background(), ProfileKey(student), "under_14", "1").Err(); err != nil {
				t.Fatal(err)
			}
		}, Applied},
	}
	s := newStore(t)
	ctx := context.Background()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			student := fmt.Sprintf("gate%d", i)
			if c.under14 {
				if err := s.Client().HSet(ctx, ProfileKey(student), "under_14", "1").Err(); err != nil {
					t.Fatal(err)
				}
			}
			g := *c.consent
			g.Header = stream.NewHeader(student, t0)
			apply(t, s, Op{Event: &g, Topic: stream.TopicConsent, Offset: 1})
			for sec := 1; sec <= 2; sec++ {
				if res := apply(t, s, Op{Event: score(student, sec, 1, 1), Topic: stream.TopicScores, Offset: int64(sec)}); res[0].Status != Applied {
					t.Fatalf("score %d before the change: %v", sec, res[0].Status)
				}
			}
			c.change(t, s, student)
			res := apply(t, s, Op{Event: score(student, 3, 1, 1), Topic: stream.TopicScores, Offset: 3})
			if res[0].Status != c.want {
				t.Fatalf("score after the change: %v, want %v", res[0].Status, c.want)
			}
		})
	}
}
