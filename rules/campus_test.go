package rules

import (
	"strings"
	"testing"
	"time"
)

func campusPolicy(t *testing.T, extra string) *Policy {
	t.Helper()
	p, err := LoadPolicy([]byte(minimalPolicy+`  - id: c2
    required_hours: {p1: 2, p2: 3}
  - id: c3
    required_hours: {p1: 2, p2: 3}
`+extra), "campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const campusOn = `behaviour: {enabled: true}
participation: {enabled: true, weeks: 4}
`

func TestCampusRules(t *testing.T) {
	low := Attendance{Sessions: 8, Rate: 0.5}
	ok := Attendance{Sessions: 8, Rate: 0.95}
	regular := Campus{CardDays: 20, CardCV: 0.3, Activities: 2}
	tests := []struct {
		name   string
		policy string
		campus *Campus
		want   map[string]string // rule → level
		reason string
	}{
		{"off by default: nothing fires however bad the signals", "", &Campus{Attendance: map[string]Attendance{"c1": low, "c2": low}, CardDays: 1}, nil, ""},
		{"no signals read: nothing fires", campusOn, nil, nil, ""},
		{"low attendance in two courses and card used on few days", campusOn,
			&Campus{Attendance: map[string]Attendance{"c1": low, "c2": low, "c3": ok}, CardDays: 3, Activities: 1},
			map[string]string{RuleBehaviour: "yellow"}, "Attendance below 80 % in 2 courses (c1 50 %, c2 50 %) with campus-card use on 3 days of the last 28"},
		{"low attendance with bursty card spending", campusOn,
			&Campus{Attendance: map[string]Attendance{"c1": low, "c2": low}, CardDays: 15, CardCV: 1.8, Activities: 1},
			map[string]string{RuleBehaviour: "yellow"}, "irregular campus-card use"},
		{"low attendance but regular card use", campusOn,
			&Campus{Attendance: map[string]Attendance{"c1": low, "c2": low}, CardDays: 20, CardCV: 0.3, Activities: 1}, nil, ""},
		{"irregular card use but only one course low", campusOn,
			&Campus{Attendance: map[string]Attendance{"c1": low, "c2": ok}, CardDays: 2, Activities: 1}, nil, ""},
		{"too few sessions to judge a course", campusOn,
			&Campus{Attendance: map[string]Attendance{"c1": low, "c2": {Sessions: 2, Rate: 0}}, CardDays: 2, Activities: 1}, nil, ""},
		{"no activity for the weeks: participation", campusOn, &Campus{CardDays: regular.CardDays, CardCV: regular.CardCV},
			map[string]string{RuleParticipation: "info"}, "No club, sport or social activity in the last 4 weeks"},
		{"levels are the policy's", `behaviour: {enabled: true, level: red, min_courses: 1}
participation: {enabled: true, level: yellow}
`, &Campus{Attendance: map[string]Attendance{"c1": low}, CardDays: 0},
			map[string]string{RuleBehaviour: "red", RuleParticipation: "yellow"}, ""},
		{"everything regular", campusOn, &Campus{Attendance: map[string]Attendance{"c1": ok, "c2": ok}, CardDays: 20, CardCV: 0.3, Activities: 3}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := campusPolicy(t, tc.policy)
			s := &Snapshot{Student: "s1", Now: time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC), Campus: tc.campus}
			got := map[string]string{}
			for _, f := range EvaluateFamilies(p, s, FamilyAcademic) {
				if f.Rule == RuleBehaviour || f.Rule == RuleParticipation {
					got[f.Rule] = f.Level
					if f.Category != "risk" || f.Family != FamilyAcademic {
						t.Errorf("%s: category %s family %v", f.Rule, f.Category, f.Family)
					}
					if tc.reason != "" && !strings.Contains(f.Reason, tc.reason) && f.Rule == firstRule(tc.want) {
						t.Errorf("reason %q, want it to contain %q", f.Reason, tc.reason)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("fired %v, want %v", got, tc.want)
			}
			for r, l := range tc.want {
				if got[r] != l {
					t.Errorf("%s at %q, want %q", r, got[r], l)
				}
			}
		})
	}
}

func firstRule(m map[string]string) string {
	for r := range m {
		return r
	}
	return ""
}

func TestCampusRulesValidation(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"behaviour: {window_days: 3}\n", "behaviour.window_days: must be in 7..366"},
		{"behaviour: {attendance_below: 1.5}\n", "behaviour.attendance_below: must be in (0, 1]"},
		{"behaviour: {card_min_days: 40}\n", "behaviour.card_min_days: must be in 0..window_days 28"},
		{"behaviour: {level: orange}\n", "behaviour.level: must be info, yellow or red"},
		{"participation: {weeks: 60}\n", "participation.weeks: must be in 1..52"},
		{"participation: {kinds: [\"club house\"]}\n", "participation.kinds[0]: not a signal kind"},
		{"participation: {enabled: yes, week: 3}\n", `unknown field "week"`},
	}
	for _, tc := range tests {
		_, err := LoadPolicy([]byte(minimalPolicy+tc.yaml), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	p := DefaultPolicy()
	b, pa := p.CampusWindows()
	if p.Behaviour.Enabled || p.Participation.Enabled || b != 28*24*time.Hour || pa != 6*7*24*time.Hour {
		t.Errorf("default campus rules: %+v %+v", p.Behaviour, p.Participation)
	}
}
