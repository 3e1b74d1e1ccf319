package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultPlaybookIsTheRegulationsStudyYellowPlan(t *testing.T) {
	p := DefaultPolicy()
	pb := p.Playbook("study", "yellow")
	if pb == nil || pb.ID != "study-yellow" {
		t.Fatalf("study/yellow playbook = %+v", pb)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"contact by phone first", pb.Contact[0], "phone"},
		{"or social media", pb.Contact[1], "social_media"},
		{"remind on", pb.RemindOn, "monday"},
		{"check on", pb.CheckOn, "friday"},
		{"family if no progress", pb.FamilyContact(), true},
		{"deadline days", pb.DeadlineDays, 28},
		{"raise red when unmet", pb.OnUnmet, OnUnmetRaiseRed},
		{"red playbook reports", p.Playbook("study", "red").OnUnmet, OnUnmetReport},
		{"grade playbook covers every level", p.Playbook("grade", "red").ID, "grade"},
		{"no playbook for degree", p.Playbook("degree", "yellow") == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPlaybookCheckpointsRemindMondaysCheckFridaysThenDeadline(t *testing.T) {
	p := DefaultPolicy()
	pb := p.Playbook("study", "yellow")
	sh := p.Location()
	tests := []struct {
		name  string
		start time.Time
		days  int
		want  []string
	}{
		{"plan on a Monday afternoon: this Monday's reminder has passed", time.Date(2026, 11, 23, 15, 0, 0, 0, sh), 14,
			[]string{"check-2026-11-27", "remind-2026-11-30", "check-2026-12-04", "remind-2026-12-07", "deadline"}},
		{"plan before nine on a Monday: reminded the same morning", time.Date(2026, 11, 23, 8, 0, 0, 0, sh), 7,
			[]string{"remind-2026-11-23", "check-2026-11-27", "deadline"}},
		{"a one-day plan has only its deadline", time.Date(2026, 11, 24, 10, 0, 0, 0, sh), 1,
			[]string{"deadline"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			due := tc.start.AddDate(0, 0, tc.days)
			cps := pb.Checkpoints(p, tc.start, due)
			var got []string
			for i, c := range cps {
				got = append(got, c.ID)
				if i > 0 && c.At.Before(cps[i-1].At) {
					t.Errorf("checkpoint %s before %s", c.ID, cps[i-1].ID)
				}
				if c.Kind != CheckpointDeadline && (c.At.In(sh).Hour() != 9 || !c.At.After(tc.start)) {
					t.Errorf("checkpoint %s at %v", c.ID, c.At)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("checkpoints %v, want %v", got, tc.want)
			}
			if last := cps[len(cps)-1]; !last.At.Equal(due) {
				t.Errorf("deadline at %v, want %v", last.At, due)
			}
		})
	}
	due := pb.Due(p, time.Date(2026, 11, 23, 15, 0, 0, 0, sh))
	if want := time.Date(2026, 12, 21, 9, 0, 0, 0, sh); !due.Equal(want) {
		t.Errorf("Due = %v, want %v (28 days later at 09:00)", due, want)
	}
}

func TestPlaybookValidationNamesLineAndField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown category", `
playbooks:
  - {id: a, category: attendance, tasks: [x]}`, "playbooks[0].category: must be one of"},
		{"live category has no help loop", `
playbooks:
  - {id: a, category: engagement, tasks: [x]}`, "engagement signals are live"},
		{"no tasks", `
playbooks:
  - {id: a, category: study, level: yellow}`, "playbooks[0].tasks: must list 1..50 tasks"},
		{"bad weekday", `
playbooks:
  - {id: a, category: study, tasks: [x], check_on: fryday}`, "playbooks[0].check_on: must be a weekday"},
		{"bad time", `
playbooks:
  - {id: a, category: study, tasks: [x], at: "9am"}`, "playbooks[0].at: must be a time of day"},
		{"raise red from red", `
playbooks:
  - {id: a, category: study, level: red, tasks: [x], on_unmet: raise_red}`, "raise_red escalates yellow warnings only"},
		{"deadline too long", `
playbooks:
  - {id: a, category: grade, tasks: [x], deadline_days: 400}`, "deadline_days: must be in 1..366"},
		{"two playbooks for one level", `
playbooks:
  - {id: a, category: grade, level: red, tasks: [x]}
  - {id: b, category: grade, level: red, tasks: [x]}`, "playbooks[1].level: a second playbook for grade red"},
		{"duplicate id", `
playbooks:
  - {id: a, category: grade, tasks: [x]}
  - {id: a, category: study, tasks: [x]}`, `duplicate playbook "a"`},
		{"unknown contact channel", `
playbooks:
  - {id: a, category: grade, tasks: [x], contact: [pigeon]}`, "playbooks[0].contact[0]: must be one of"},
		{"misspelt field", `
playbooks:
  - {id: a, category: grade, tasks: [x], deadline: 3}`, `unknown field "deadline"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadPolicy([]byte(minimalPolicy+tc.yaml), "p.yaml")
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("err = %v, want a policy error", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "p.yaml:1") {
				t.Errorf("err = %q, want it to contain %q and a line of the playbooks section", err, tc.want)
			}
		})
	}
}

func TestPlaybookDefaultsFilledIn(t *testing.T) {
	p, err := LoadPolicy([]byte(minimalPolicy+`
playbooks:
  - {id: y, category: study, level: yellow, tasks: [call]}
  - {id: g, category: grade, tasks: [talk], remind_on: none}
`), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y, g := p.PlaybookByID("y"), p.PlaybookByID("g")
	if y.OnUnmet != OnUnmetRaiseRed || y.DeadlineDays != 28 || y.At != "09:00" || y.Title != "y" || !y.FamilyContact() {
		t.Errorf("yellow defaults: %+v", y)
	}
	if g.OnUnmet != OnUnmetReport {
		t.Errorf("level-free playbook on_unmet = %q, want report", g.OnUnmet)
	}
	start := time.Date(2026, 9, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range g.Checkpoints(p, start, start.AddDate(0, 0, 14)) {
		if c.Kind == CheckpointRemind {
			t.Errorf("remind_on: none still reminds: %v", c)
		}
	}
}
