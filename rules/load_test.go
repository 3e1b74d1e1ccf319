package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// minimalPolicy is the smallest valid policy: one term, one course.
const minimalPolicy = `version: 1
calendar:
  terms:
    - id: t1
      start: 2026-09-07
      end: 2026-09-20
      periods:
        - {name: p1, start: 2026-09-07, end: 2026-09-13}
        - {name: p2, start: 2026-09-14, end: 2026-09-20}
courses:
  - id: c1
    required_hours: {p1: 2, p2: 3}
`

func TestDefaultPolicyReproducesDesign(t *testing.T) {
	p := DefaultPolicy()
	checks := []struct {
		name      string
		got, want any
	}{
		{"study min courses", p.Study.MinCourses, 2},
		{"study red window days", p.Study.RedLastDays, 14},
		{"study red share", float64(p.Study.RedShare), 2.0 / 3},
		{"grade yellow", p.Grade.YellowFailed, 2},
		{"grade red", p.Grade.RedFailed, 4},
		{"grade electives excluded", p.Grade.CountElectives, false},
		{"trend drop", float64(p.Trend.Drop), 0.10},
		{"peer ratio", float64(p.Peer.Ratio), 0.8},
		{"politics elective", p.Course("politics").Elective, true},
		{"calculus difficulty", p.Course("calculus").Difficulty, 1.25},
		{"law difficulty defaults to 1", p.Course("law").Difficulty, 1.0},
		{"english name", p.Course("english").Name, "English"},
		{"no custom rules by default", len(p.custom), 0},
		{"source", p.Source, "default"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, id := range []string{"calculus", "law", "english", "politics"} {
		if p.Course(id) == nil {
			t.Errorf("default policy lacks demo course %q", id)
		}
	}
	// The default calendar covers the demo's "today".
	term, period, ok := p.PeriodAt(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	if !ok || term != "2026-autumn" || period != "2026-autumn-3" {
		t.Errorf("PeriodAt(2026-11-23) = %q %q %v", term, period, ok)
	}
}

func TestPeriodAtBoundaries(t *testing.T) {
	p := DefaultPolicy()
	cst := p.Location()
	cases := []struct {
		at           time.Time
		term, period string
		ok           bool
	}{
		{time.Date(2026, 9, 7, 0, 0, 0, 0, cst), "2026-autumn", "2026-autumn-1", true},
		{time.Date(2026, 9, 6, 23, 59, 59, 0, cst), "", "", false},
		{time.Date(2026, 11, 29, 23, 59, 59, 0, cst), "2026-autumn", "2026-autumn-3", true},
		{time.Date(2026, 11, 30, 0, 0, 0, 0, cst), "2026-autumn", "2026-autumn-4", true},
		// 16:00 UTC on 29 November is midnight in Shanghai: the zone counts.
		{time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC), "2026-autumn", "2026-autumn-4", true},
		{time.Date(2027, 1, 17, 23, 59, 59, 0, cst), "2026-autumn", "2026-autumn-5", true},
		{time.Date(2027, 1, 18, 0, 0, 0, 0, cst), "", "", false},
		{time.Date(2027, 3, 1, 0, 0, 0, 0, cst), "2027-spring", "2027-spring-1", true},
	}
	for _, c := range cases {
		term, period, ok := p.PeriodAt(c.at)
		if term != c.term || period != c.period || ok != c.ok {
			t.Errorf("PeriodAt(%v) = %q %q %v, want %q %q %v", c.at, term, period, ok, c.term, c.period, c.ok)
		}
	}
}

func TestLoadPolicyFillsDefaults(t *testing.T) {
	p, err := LoadPolicy([]byte(minimalPolicy+"live:\n  attention_low: {yellow: 0.3}\n"), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Live.Attention.Yellow != 0.3 || p.Live.Attention.Red != 0.25 || p.Live.Attention.Window != "2m" || !p.Live.Attention.Enabled {
		t.Errorf("partial live section did not keep defaults: %+v", p.Live.Attention)
	}
	if p.Study.MinCourses != 2 || p.Grade.RedFailed != 4 || p.Location() != time.UTC {
		t.Errorf("defaults missing: study %+v grade %+v zone %v", p.Study, p.Grade, p.Location())
	}
	if p.Course("c1").Name != "c1" || p.Course("c1").TotalHours(p.Term("t1")) != 5 {
		t.Errorf("course defaults: %+v", p.Course("c1"))
	}
	if len(p.Digest) != 64 {
		t.Errorf("digest %q", p.Digest)
	}
}

func TestLoadPolicyAcceptsFractions(t *testing.T) {
	p, err := LoadPolicy([]byte(minimalPolicy+"study: {red_share: 3/4}\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Study.RedShare != 0.75 {
		t.Errorf("red_share = %v", p.Study.RedShare)
	}
}

// customPolicyText is the default policy with the custom rules of
// testdata/custom_example.yaml in place of its empty list.
func customPolicyText(tb testing.TB) string {
	tb.Helper()
	ex, err := os.ReadFile(filepath.Join("testdata", "custom_example.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	// Without its comments, so that edits in tests hit the rules, not the
	// commented example.
	var lines []string
	for _, l := range strings.Split(string(DefaultPolicyYAML()), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	def := strings.Join(lines, "\n")
	if !strings.Contains(def, "\ncustom: []\n") {
		tb.Fatal("default policy has no empty custom list")
	}
	return strings.Replace(def, "\ncustom: []\n", "\n"+string(ex), 1)
}

// customPolicy loads customPolicyText.
func customPolicy(tb testing.TB) *Policy {
	tb.Helper()
	p, err := LoadPolicy([]byte(customPolicyText(tb)), "custom_example.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// lineOf returns the 1-based line of the first occurrence of s in text.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	i := strings.Index(text, s)
	if i < 0 {
		t.Fatalf("%q not in text", s)
	}
	return strings.Count(text[:i], "\n") + 1
}

func TestLoadPolicyRejectsNamingFieldAndLine(t *testing.T) {
	def := customPolicyText(t)
	cases := []struct {
		name     string
		old, new string // edit of the default policy
		anchor   string // text on the line the error must name
		want     string
	}{
		{"zero required hours", "      2026-autumn-1: 6\n", "      2026-autumn-1: -6\n", "2026-autumn-1: -6", "courses[2].required_hours.2026-autumn-1: must be in 0..10000 hours"},
		{"red share zero", "red_share: 2/3", "red_share: 0", "red_share: 0", "study.red_share: must be in (0, 1]"},
		{"bad fraction", "red_share: 2/3", "red_share: 2/0", "red_share: 2/0", `"2/0" is not a fraction like 2/3`},
		{"unknown field", "  min_courses: 2\n", "  min_course: 2\n", "min_course: 2", `unknown field "min_course"`},
		{"red below yellow", "red_failed: 4", "red_failed: 1", "red_failed: 1", "grade.red_failed: must be >= yellow_failed 2"},
		{"bad window", "attention_low: {enabled: true, window: 2m", "attention_low: {enabled: true, window: 3m", "window: 3m", "live.attention_low.window: must be 1m, 2m or 5m"},
		{"attention red above yellow", "yellow: 0.4, red: 0.25", "yellow: 0.4, red: 0.45", "red: 0.45", "live.attention_low.red: must be 0 (off) or between 0 and yellow"},
		{"period gap", "{name: 2026-autumn-2, start: 2026-10-05", "{name: 2026-autumn-2, start: 2026-10-06", "start: 2026-10-06", "calendar.terms[1].periods[1].start: 2026-10-06 leaves a gap"},
		{"bad date", "start: 2026-09-07\n", "start: 2026-13-07\n", "start: 2026-13-07", `"2026-13-07" is not a date`},
		{"unknown period", "      2027-spring-5: 2\n", "      2027-spring-9: 2\n", "2027-spring-9: 2", `courses[3].required_hours.2027-spring-9: no study period "2027-spring-9"`},
		{"duplicate course", "  - id: english\n", "  - id: law\n", "  - id: law\n    name: English", `courses[2].id: duplicate course "law"`},
		{"unknown zone", "timezone: Asia/Shanghai", "timezone: Mars/Olympus", "timezone: Mars", `calendar.timezone: unknown time zone "Mars/Olympus"`},
		{"wrong type", "min_courses: 2", "min_courses: two", "min_courses: two", "cannot unmarshal !!str `two` into int"},
		{"difficulty out of range", "difficulty: 1.25", "difficulty: 9", "difficulty: 9", "courses[0].difficulty: must be in 0.25..4"},
		{"cel syntax error", "c.clicks_total >= 40\n", "c.clicks_total >= \n", "when: >-", "custom[0].when: rule off_task_heavy: CEL: ERROR"},
		{"cel unknown field", "c.clicks_total >= 40\n", "c.click_total >= 40\n", "when: >-", "undefined field 'click_total'"},
		{"cel not bool", "when: >-\n      student.courses.exists", "when: >-\n      1 + student.courses.exists", "when: >-", "custom[0].when: rule off_task_heavy: CEL"},
		{"custom id clashes", "- id: off_task_heavy", "- id: grade", "- id: grade", `custom[0].id: "grade" is a built-in rule id`},
		{"custom family", "    level: info\n    when", "    level: info\n    family: weekly\n    when", "family: weekly", `custom[0].family: must be academic or live`},
		{"version", "version: 1", "version: 2", "version: 2", "version: must be 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(def, c.old) {
				t.Fatalf("edit %q not found in default policy", c.old)
			}
			text := strings.Replace(def, c.old, c.new, 1)
			_, err := LoadPolicy([]byte(text), "policy.yaml")
			if err == nil {
				t.Fatal("policy accepted")
			}
			if !errors.Is(err, ErrPolicy) {
				t.Errorf("error %v does not wrap ErrPolicy", err)
			}
			want := "policy.yaml:" + strconv.Itoa(lineOf(t, text, c.anchor)) + ": "
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, want) {
				t.Errorf("error\n  %s\nwant prefix %q and %q", msg, want, c.want)
			}
		})
	}
}

func TestLoadPolicyRejectsStructure(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"empty", "", "policy: empty policy"},
		{"scalar", "hello\n", "policy:1: a policy is a YAML mapping"},
		{"two documents", minimalPolicy + "---\nversion: 1\n", "more than one YAML document"},
		{"syntax", "version: 1\ncalendar: [\n", "policy:2: did not find expected node content"},
		{"no terms", "version: 1\ncourses: []\n", "policy:1: calendar.terms: at least one term is required"},
		{"term end before start", strings.Replace(minimalPolicy, "end: 2026-09-20\n", "end: 2026-09-01\n", 1), "policy:6: calendar.terms[0].end: 2026-09-01 is before start"},
		{"all zero hours", strings.Replace(minimalPolicy, "{p1: 2, p2: 3}", "{p1: 0, p2: 0}", 1), "policy:12: courses[0].required_hours: must be > 0"},
		{"last period short", strings.Replace(minimalPolicy, "end: 2026-09-20}", "end: 2026-09-19}", 1), "calendar.terms[0].periods[1].end: the last period must end on the term's end"},
		{"nan", strings.Replace(minimalPolicy, "p2: 3", "p2: .nan", 1), "courses[0].required_hours.p2: must be in 0..10000 hours (got NaN)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadPolicy([]byte(c.text), "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoadPolicyRefusesOversizedFile(t *testing.T) {
	big := make([]byte, MaxPolicyBytes+1)
	if _, err := LoadPolicy(big, "big.yaml"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func TestHolderKeepsLastGoodPolicyOnBadReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(minimalPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	h := NewHolder(DefaultPolicy())
	if err := h.Reload(path); err != nil {
		t.Fatal(err)
	}
	good := h.Policy()
	if good.Course("c1") == nil || good.Source != "policy.yaml" {
		t.Fatalf("reload did not take effect: %+v", good)
	}
	if err := os.WriteFile(path, []byte(minimalPolicy+"bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := h.Reload(path)
	if err == nil || !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "policy.yaml:13: unknown field \"bogus\"") {
		t.Fatalf("bad reload: %v", err)
	}
	if h.Policy() != good {
		t.Fatal("a failed reload replaced the policy in force")
	}
	if err := h.Reload(filepath.Join(dir, "missing.yaml")); err == nil || errors.Is(err, ErrPolicy) {
		t.Fatalf("missing file: %v", err)
	}
	if h.Policy() != good {
		t.Fatal("a missing file replaced the policy in force")
	}
}
