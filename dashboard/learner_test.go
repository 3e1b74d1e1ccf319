package dashboard

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream/state"
)

// putLearner stores a learner record the way `classpulse profile assign`
// does.
func putLearner(t *testing.T, h *harness, student string, r learner.Record) {
	t.Helper()
	v, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rdb.HSet(context.Background(), state.ProfileKey(student), learner.Field(r.Course), v).Err(); err != nil {
		t.Fatal(err)
	}
}

var learnerAt = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func TestStudentAPIShowsLearnerProfileAndPredictionToStaffOnly(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	pd := 0.72
	putLearner(t, h, "s1", learner.Record{Course: "calculus", Profile: "marginal", Cluster: 0, K: 3, Grade: "D", PD: &pd, Model: "gbt-0123456789ab", Seed: 1, At: learnerAt})
	putLearner(t, h, "s1", learner.Record{Course: "law", Profile: "balanced", Cluster: 1, K: 3, Seed: 1, At: learnerAt})
	cases := []struct {
		name   string
		claims Claims
		sees   bool
	}{
		{"admin sees it", Claims{Role: RoleAdmin}, true},
		{"the student's counsellor sees it", Claims{Role: RoleCounsellor, Students: []string{"s1"}}, true},
		{"the student does not", Claims{Role: RoleStudent, Subject: "s1"}, false},
		{"the guardian does not", Claims{Role: RoleGuardian, Subject: "g1", Students: []string{"s1"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m, body := h.do("GET", "/api/v1/students/s1", h.token(c.claims), "")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			l, has := m["learner"].(map[string]any)
			if !c.sees {
				if has || strings.Contains(body, "p_d") || strings.Contains(body, "marginal") {
					t.Fatalf("%s sees the learner part: %s", c.claims.Role, body)
				}
				return
			}
			if !has {
				t.Fatalf("no learner part: %s", body)
			}
			courses := l["courses"].([]any)
			if len(courses) != 2 {
				t.Fatalf("courses %v", courses)
			}
			calc, law := courses[0].(map[string]any), courses[1].(map[string]any)
			if calc["course"] != "calculus" || calc["profile"] != "marginal" || calc["predicted_grade"] != "D" || calc["p_d"] != 0.72 ||
				calc["model"] != "gbt-0123456789ab" || calc["at"] != "2026-11-20T08:00:00Z" {
				t.Fatalf("calculus %v", calc)
			}
			if law["profile"] != "balanced" || law["predicted_grade"] != nil || law["p_d"] != nil {
				t.Fatalf("law (profile only) %v", law)
			}
		})
	}
	// A student nobody profiled: staff are told why the part is missing.
	_, m, body := h.do("GET", "/api/v1/students/s2", h.token(Claims{Role: RoleAdmin}), "")
	if m["learner"] != nil || !strings.Contains(m["missing"].(map[string]any)["learner"].(string), "profile assign") {
		t.Fatalf("s2: %s", body)
	}
}

func TestStateReaderReadsLearnerRecords(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	sr, err := NewStateReader(h.rdb, state.Config{}, rules.NewHolder(rules.DefaultPolicy()), nil)
	if err != nil {
		t.Fatal(err)
	}
	pd := 0.1
	putLearner(t, h, "s1", learner.Record{Course: "law", Profile: "diligent", Cluster: 2, K: 3, Grade: "A", PD: &pd, Model: "gbt-x", At: learnerAt})
	h.rdb.HSet(context.Background(), state.ProfileKey("s1"), "class", "c1", learner.Field("english"), "not json")
	v, err := sr.Learner(context.Background(), "s1")
	if err != nil || len(v.Courses) != 1 || v.Courses[0].Profile != "diligent" || *v.Courses[0].PD != 0.1 {
		t.Fatalf("learner %+v, %v", v, err)
	}
	if _, err := sr.Learner(context.Background(), "s9"); err == nil || !strings.Contains(err.Error(), ErrNotAvailable.Error()) {
		t.Fatalf("a student without records: %v", err)
	}
}

func TestBrowserStudentPageShowsPredictedRiskToCounsellorNotStudent(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	pd := 0.72
	putLearner(t, h, "s1", learner.Record{Course: "calculus", Profile: "marginal", Cluster: 0, K: 3, Grade: "D", PD: &pd, Model: "gbt-0123456789ab", At: learnerAt})
	ctx := browser(t)
	run(t, ctx, 30*time.Second,
		h.signIn(h.token(Claims{Role: RoleCounsellor, Subject: "c1", Students: []string{"s1"}}), "/student?id=s1"),
		chromedp.WaitVisible(chromedp.CSS(`#learner tr[data-course="calculus"]`)),
	)
	row := get(t, ctx, chromedp.Text(chromedp.CSS(`#learner tr[data-course="calculus"]`)))
	for _, s := range []string{"marginal", "D", "72 %", "gbt-0123456789ab", "2026-11-20"} {
		if !strings.Contains(row, s) {
			t.Fatalf("row %q lacks %q", row, s)
		}
	}
	// The student's own page has no learner section at all.
	ctx2 := browser(t)
	run(t, ctx2, 30*time.Second,
		h.signIn(h.token(Claims{Role: RoleStudent, Subject: "s1"}), "/student?id=s1"),
		chromedp.WaitVisible(chromedp.CSS(`#title`)),
		chromedp.WaitVisible(chromedp.CSS(`#warnings`)),
	)
	if n := get(t, ctx2, chromedp.Evaluate[int](`document.querySelectorAll("#learner").length`)); n != 0 {
		t.Fatalf("the student's page has %d learner sections", n)
	}
	if text := get(t, ctx2, chromedp.Text(chromedp.CSS(`#main`))); strings.Contains(text, "marginal") || strings.Contains(text, "72 %") {
		t.Fatalf("the student's page shows the prediction: %q", text)
	}
}
