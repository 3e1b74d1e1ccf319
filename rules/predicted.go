package rules

import (
	"strconv"
	"time"

	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/stream"
)

// RulePredictedRisk is the "predicted risk" notice: the grade model of
// `classpulse profile assign --model` predicts a D in a course, or gives D
// a probability at or above the policy's threshold.
const RulePredictedRisk = "predicted_risk"

func init() { builtinRules[RulePredictedRisk] = FamilyAcademic }

// Prediction is a grade prediction written back to a student's state by
// `classpulse profile assign --model` (package profile/learner), as the
// rules see it.
type Prediction struct {
	// Course is the course the prediction is for.
	Course string
	// Grade is the predicted class: A, B, C or D (or a school's own class
	// names).
	Grade string
	// PD is the predicted probability of D, 0..1; HasPD is false when the
	// model has no class D.
	PD    float64
	HasPD bool
	// Model is the model version (profile.Model.ID) and At when the
	// prediction was made.
	Model string
	At    time.Time
}

// PredictionsFromProfile returns the grade predictions among a student's
// roster fields ({s:<id>}:profile, which the processor's apply script
// returns with every click and grade as state.Academic.Profile), sorted by
// course. Records without a prediction (a profile only) are left out. The
// processor fills Snapshot.Predictions with it.
func PredictionsFromProfile(fields map[string]string) []Prediction {
	var out []Prediction
	for _, r := range learner.Parse(fields) {
		if r.Grade == "" {
			continue
		}
		p := Prediction{Course: r.Course, Grade: r.Grade, Model: r.Model, At: r.At}
		if r.PD != nil {
			p.PD, p.HasPD = *r.PD, true
		}
		out = append(out, p)
	}
	return out
}

// PredictedRiskRule configures the predicted-risk notice. It is off by
// default: a school turns it on once it trusts its model (docs/profiles.md
// shows how to check one on held-out students).
type PredictedRiskRule struct {
	Enabled bool `yaml:"enabled"`
	// YellowPD is the probability of D at or above which the notice is
	// yellow; default 0.5.
	YellowPD Ratio `yaml:"yellow_p_d"`
	// RedPD is the probability of D at or above which it is red; 0
	// (default) never red. When set it must be above YellowPD.
	RedPD Ratio `yaml:"red_p_d"`
	// GradeD is the level of a predicted D whose probability is below
	// YellowPD (the model's most likely class, but not by much): "info"
	// (default), "yellow", or "none" for no notice.
	GradeD string `yaml:"grade_d"`
	// MaxAge ignores predictions made longer ago than this before the
	// evaluation instant (a model run last term says little now); default
	// 720h (30 days).
	MaxAge time.Duration `yaml:"max_age"`
}

// defaultPredictedRisk is the rule's default: off, at the documented
// thresholds.
var defaultPredictedRisk = PredictedRiskRule{YellowPD: 0.5, GradeD: stream.LevelInfo, MaxAge: 30 * 24 * time.Hour}

func (p *Policy) validatePredictedRisk(v *validator) {
	r := &p.PredictedRisk
	path := at(nil, "predicted_risk")
	unitOpen(v, at(path, "yellow_p_d"), float64(r.YellowPD))
	if r.RedPD != 0 && !(r.RedPD > r.YellowPD && r.RedPD <= 1) {
		v.errf(at(path, "red_p_d"), "must be 0 (never red) or above yellow_p_d %v and at most 1 (got %v)", float64(r.YellowPD), float64(r.RedPD))
	}
	switch r.GradeD {
	case "none", stream.LevelInfo, stream.LevelYellow:
	default:
		v.errf(at(path, "grade_d"), "must be none, info or yellow (got %q)", r.GradeD)
	}
	if r.MaxAge < time.Hour || r.MaxAge > 366*24*time.Hour {
		v.errf(at(path, "max_age"), "must be between 1h and 8784h (got %v)", r.MaxAge)
	}
}

// predictedRisk raises the notice per course with a fresh prediction.
func (e *evaluator) predictedRisk() {
	r := &e.p.PredictedRisk
	if !r.Enabled {
		return
	}
	for i := range e.s.Predictions {
		pr := &e.s.Predictions[i]
		age := e.s.Now.Sub(pr.At)
		if pr.At.IsZero() || age > r.MaxAge || age < -time.Hour {
			continue
		}
		level, limit := "", 0.0
		switch {
		case pr.HasPD && r.RedPD > 0 && pr.PD >= float64(r.RedPD):
			level, limit = stream.LevelRed, float64(r.RedPD)
		case pr.HasPD && pr.PD >= float64(r.YellowPD):
			level, limit = stream.LevelYellow, float64(r.YellowPD)
		case pr.Grade == "D" && r.GradeD != "none":
			level, limit = r.GradeD, float64(r.YellowPD)
		default:
			continue
		}
		reason := "Predicted risk in " + e.courseName(pr.Course) + ": the grade model predicts " + pr.Grade
		ev := map[string]float64{"limit": limit, "predicted_d": 0, "age_days": round2(age.Hours() / 24)}
		if pr.Grade == "D" {
			ev["predicted_d"] = 1
		}
		if pr.HasPD {
			reason += " and gives D a probability of " + pct(pr.PD) + " (limit " + pct(limit) + ")"
			ev["p_d"] = round3(pr.PD)
		}
		reason += "; model " + pr.Model + " of " + pr.At.In(e.p.Location()).Format("2006-01-02") +
			", " + strconv.Itoa(int(age.Hours()/24)) + " days ago"
		e.add(RulePredictedRisk, FamilyAcademic, stream.CategoryRisk, level, pr.Course, reason, ev)
	}
}
