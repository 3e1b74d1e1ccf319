package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/stream"
)

func TestPredictedRiskRuleThresholds(t *testing.T) {
	now := day(2026, 11, 23).Add(10 * time.Hour)
	on := withPolicy(func(p *Policy) {
		p.PredictedRisk.Enabled = true
		p.PredictedRisk.RedPD = 0.8
	})
	pred := func(grade string, pd float64, age time.Duration) Prediction {
		return Prediction{Course: "calculus", Grade: grade, PD: pd, HasPD: true, Model: "gbt-0123456789ab", At: now.Add(-age)}
	}
	cases := []struct {
		name   string
		policy *Policy
		pred   Prediction
		want   string
	}{
		{"off by default", DefaultPolicy(), pred("D", 0.95, time.Hour), ""},
		{"P(D) below yellow and another grade: nothing", on, pred("C", 0.3, time.Hour), ""},
		{"predicted D below yellow: info", on, pred("D", 0.45, time.Hour), stream.LevelInfo},
		{"P(D) at yellow", on, pred("C", 0.5, time.Hour), stream.LevelYellow},
		{"P(D) at red", on, pred("D", 0.8, time.Hour), stream.LevelRed},
		{"red off: a high P(D) stays yellow", withPolicy(func(p *Policy) {
			p.PredictedRisk.Enabled = true
			p.PredictedRisk.RedPD = 0
		}), pred("D", 0.99, time.Hour), stream.LevelYellow},
		{"predicted D ignored with grade_d none", withPolicy(func(p *Policy) {
			p.PredictedRisk.Enabled = true
			p.PredictedRisk.GradeD = "none"
		}), pred("D", 0.4, time.Hour), ""},
		{"a prediction older than max_age is ignored", on, pred("D", 0.9, 31*24*time.Hour), ""},
		{"a prediction from the future is ignored", on, pred("D", 0.9, -2*time.Hour), ""},
		{"a model without class D: only a predicted D counts", on, Prediction{Course: "calculus", Grade: "fail", Model: "m", At: now}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := Evaluate(c.policy, &Snapshot{Student: "s1", Now: now, Predictions: []Prediction{c.pred}})
			if got := levelOf(t, fs, RulePredictedRisk, "calculus"); got != c.want {
				t.Fatalf("level %q, want %q (findings %+v)", got, c.want, fs)
			}
		})
	}
}

func TestPredictedRiskReasonEvidenceAndWarning(t *testing.T) {
	now := day(2026, 11, 23).Add(10 * time.Hour)
	p := withPolicy(func(p *Policy) { p.PredictedRisk.Enabled = true })
	fs := only(Evaluate(p, &Snapshot{Student: "s1", Now: now, Predictions: []Prediction{
		{Course: "calculus", Grade: "D", PD: 0.7234, HasPD: true, Model: "gbt-0123456789ab", At: now.Add(-49 * time.Hour)},
		{Course: "law", Grade: "B", PD: 0.02, HasPD: true, Model: "gbt-0123456789ab", At: now.Add(-49 * time.Hour)},
	}}), RulePredictedRisk)
	if len(fs) != 1 {
		t.Fatalf("findings %+v, want one for calculus", fs)
	}
	f := fs[0]
	for _, s := range []string{"Calculus", "predicts D", "72", "50", "gbt-0123456789ab", "2 days ago"} {
		if !strings.Contains(f.Reason, s) {
			t.Errorf("reason %q lacks %q", f.Reason, s)
		}
	}
	if f.Category != stream.CategoryRisk || f.Family != FamilyAcademic || f.Evidence["p_d"] != 0.723 || f.Evidence["predicted_d"] != 1 || f.Evidence["limit"] != 0.5 {
		t.Fatalf("finding %+v", f)
	}
	_, evs := Reconcile(p, "s1", "", nil, fs, FamilyAcademic, now)
	if len(evs) != 1 || evs[0].Rule != RulePredictedRisk || evs[0].Course != "calculus" {
		t.Fatalf("warnings %+v, want one raised for calculus", evs)
	}
	if err := evs[0].Validate(); err != nil {
		t.Fatalf("the finding does not make a valid warning: %v", err)
	}
}

func TestPredictionsFromProfileReadWhatProfileAssignWrites(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	pd := 0.61
	withModel, _ := (&learner.Record{Profile: "marginal", Cluster: 0, K: 3, Grade: "D", PD: &pd, Model: "gbt-abc", At: at}).Marshal()
	profileOnly, _ := (&learner.Record{Profile: "balanced", Cluster: 1, K: 3, At: at}).Marshal()
	got := PredictionsFromProfile(map[string]string{
		"class": "c1", learner.Field("calculus"): withModel, learner.Field("law"): profileOnly, learner.Field("english"): "garbage",
	})
	if len(got) != 1 {
		t.Fatalf("predictions %+v, want calculus only", got)
	}
	want := Prediction{Course: "calculus", Grade: "D", PD: 0.61, HasPD: true, Model: "gbt-abc", At: at}
	if got[0] != want {
		t.Fatalf("prediction %+v, want %+v", got[0], want)
	}
}

func TestPredictedRiskPolicyValidation(t *testing.T) {
	base := string(DefaultPolicyYAML())
	cases := []struct {
		name, block, field string
	}{
		{"yellow above 1", "yellow_p_d: 1.5", "predicted_risk.yellow_p_d"},
		{"yellow zero", "yellow_p_d: 0", "predicted_risk.yellow_p_d"},
		{"red below yellow", "red_p_d: 0.4", "predicted_risk.red_p_d"},
		{"unknown grade_d level", "grade_d: red", "predicted_risk.grade_d"},
		{"max_age too short", "max_age: 1m", "predicted_risk.max_age"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := strings.SplitN(c.block, ":", 2)[0]
			lines := strings.Split(base, "\n")
			found := false
			for i, l := range lines {
				if strings.HasPrefix(strings.TrimSpace(l), key+":") && i > 0 && strings.Contains(strings.Join(lines[max(0, i-5):i], "\n"), "predicted_risk") {
					lines[i] = "  " + c.block
					found = true
				}
			}
			if !found {
				t.Fatalf("no %s in the default policy's predicted_risk block", key)
			}
			_, err := LoadPolicy([]byte(strings.Join(lines, "\n")), "test.yaml")
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a PolicyError", err)
			}
			if pe.Problems[0].Field != c.field || pe.Problems[0].Line == 0 {
				t.Fatalf("problems %+v, want the first at %s with a line", pe.Problems, c.field)
			}
		})
	}
	p, err := LoadPolicy([]byte(strings.Replace(base, "predicted_risk:\n  enabled: false", "predicted_risk:\n  enabled: true", 1)), "on.yaml")
	if err != nil || !p.PredictedRisk.Enabled || p.PredictedRisk.YellowPD != 0.5 || p.PredictedRisk.RedPD != 0.8 {
		t.Fatalf("turning the rule on: %+v %v", p.PredictedRisk, err)
	}
}
