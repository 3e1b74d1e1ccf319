package rules

import (
	"testing"

	"github.com/classpulse/classpulse/stream"
)

func TestLiveRuleThresholds(t *testing.T) {
	base := func(course string) Live {
		return Live{Session: "sess1", Course: course, Captured: true, Attention2m: 0.9, Samples1m: 60, Samples2m: 120, Samples5m: 300}
	}
	cases := []struct {
		name string
		edit func(l *Live)
		rule string
		want string
	}{
		{"attention just below yellow", func(l *Live) { l.Attention2m = 0.399 }, RuleAttentionLow, stream.LevelYellow},
		{"attention at yellow", func(l *Live) { l.Attention2m = 0.4 }, RuleAttentionLow, ""},
		{"attention at red is still yellow", func(l *Live) { l.Attention2m = 0.25 }, RuleAttentionLow, stream.LevelYellow},
		{"attention below red", func(l *Live) { l.Attention2m = 0.249 }, RuleAttentionLow, stream.LevelRed},
		{"too few samples", func(l *Live) { l.Attention2m = 0.1; l.Samples2m = 59 }, RuleAttentionLow, ""},
		{"enough samples", func(l *Live) { l.Attention2m = 0.1; l.Samples2m = 60 }, RuleAttentionLow, stream.LevelRed},
		{"not captured never inattentive", func(l *Live) { l.Attention2m = 0; l.Captured = false; l.FaceAbsentSeconds = 900 }, RuleAttentionLow, ""},
		{"face absent below the limit", func(l *Live) { l.FaceAbsentSeconds = 59.9 }, RuleFaceAbsent, ""},
		{"face absent at the limit", func(l *Live) { l.FaceAbsentSeconds = 60 }, RuleFaceAbsent, stream.LevelYellow},
		{"face absent just below red", func(l *Live) { l.FaceAbsentSeconds = 299 }, RuleFaceAbsent, stream.LevelYellow},
		{"face absent red", func(l *Live) { l.FaceAbsentSeconds = 300 }, RuleFaceAbsent, stream.LevelRed},
		{"confused just below", func(l *Live) { l.Confused2m = 0.499 }, RuleConfused, ""},
		{"confused at yellow", func(l *Live) { l.Confused2m = 0.5 }, RuleConfused, stream.LevelYellow},
		{"confused at red", func(l *Live) { l.Confused2m = 0.7 }, RuleConfused, stream.LevelRed},
		{"confused in the 1m window only", func(l *Live) { l.Confused1m = 0.9 }, RuleConfused, ""},
		{"frustrated sustained", func(l *Live) { l.Frustrated2m = 0.55 }, RuleFrustrated, stream.LevelYellow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := base("law")
			c.edit(&l)
			fs := Evaluate(DefaultPolicy(), &Snapshot{Student: "s1", Now: day(2026, 11, 23), Live: &l})
			if got := levelOf(t, fs, c.rule, "law"); got != c.want {
				t.Fatalf("level %q, want %q; findings %+v", got, c.want, fs)
			}
			for _, f := range fs {
				if f.Family != FamilyLive || f.Category != stream.CategoryEngagement {
					t.Fatalf("finding %+v", f)
				}
			}
		})
	}
}

func TestLiveEmotionLimitsScaleWithDifficulty(t *testing.T) {
	// Calculus has difficulty 1.25: confused yellow 0.625, red 0.875.
	cases := []struct {
		name     string
		p        *Policy
		confused float64
		want     string
	}{
		{"below the scaled limit", DefaultPolicy(), 0.62, ""},
		{"at the scaled limit", DefaultPolicy(), 0.625, stream.LevelYellow},
		{"below scaled red", DefaultPolicy(), 0.87, stream.LevelYellow},
		{"at scaled red", DefaultPolicy(), 0.875, stream.LevelRed},
		{"unscaled when turned off", withPolicy(func(p *Policy) { p.Dynamic.EmotionLimits = false }), 0.5, stream.LevelYellow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := Live{Course: "calculus", Captured: true, Confused2m: c.confused, Samples2m: 120}
			if got := levelOf(t, Evaluate(c.p, &Snapshot{Live: &l}), RuleConfused, "calculus"); got != c.want {
				t.Fatalf("level %q, want %q", got, c.want)
			}
		})
	}
}

func TestScaledLimitsStayOrdered(t *testing.T) {
	for _, scale := range []float64{0.25, 0.5, 1, 1.5, 2, 4} {
		y, r := scaledLimits(0.5, 0.7, scale)
		if !(y > 0 && y <= 0.95 && r > y && r <= 1) {
			t.Errorf("scale %v: yellow %v red %v", scale, y, r)
		}
	}
}

func TestClassRuleShares(t *testing.T) {
	cases := []struct {
		name string
		c    ClassSnapshot
		rule string
		want string
	}{
		{"confused just below 40 %", ClassSnapshot{Course: "law", Students: 12, Captured: 10, Confused: 3}, RuleClassConfused, ""},
		{"confused at 40 %", ClassSnapshot{Course: "law", Students: 12, Captured: 10, Confused: 4}, RuleClassConfused, stream.LevelYellow},
		{"confused at 60 %", ClassSnapshot{Course: "law", Students: 12, Captured: 10, Confused: 6}, RuleClassConfused, stream.LevelRed},
		{"hard course tolerates more confusion", ClassSnapshot{Course: "calculus", Captured: 10, Confused: 4}, RuleClassConfused, ""},
		{"inattentive at half", ClassSnapshot{Course: "law", Captured: 10, Inattentive: 5}, RuleClassInattent, stream.LevelYellow},
		{"inattentive just below half", ClassSnapshot{Course: "law", Captured: 10, Inattentive: 4}, RuleClassInattent, ""},
		{"inattentive at 70 %", ClassSnapshot{Course: "law", Captured: 10, Inattentive: 7}, RuleClassInattent, stream.LevelRed},
		{"absent at 30 %", ClassSnapshot{Course: "law", Captured: 10, Absent: 3}, RuleClassAbsent, stream.LevelYellow},
		{"too few captured", ClassSnapshot{Course: "law", Students: 30, Captured: 3, Confused: 3}, RuleClassConfused, ""},
		{"at the captured minimum", ClassSnapshot{Course: "law", Students: 30, Captured: 4, Confused: 4}, RuleClassConfused, stream.LevelRed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.Session = "sess1"
			fs := EvaluateClass(DefaultPolicy(), &c.c)
			if got := levelOf(t, fs, c.rule, c.c.Course); got != c.want {
				t.Fatalf("level %q, want %q; findings %+v", got, c.want, fs)
			}
			for _, f := range fs {
				if f.Family != FamilyClass || f.Category != stream.CategoryClass {
					t.Fatalf("finding %+v", f)
				}
			}
		})
	}
}
