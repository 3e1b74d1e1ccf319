package rules

import (
	"math"
	"strconv"

	"github.com/classpulse/classpulse/stream"
)

// live runs the per-student engagement signals. The caller checked that
// the student is captured.
func (e *evaluator) live() {
	p, l := e.p, e.s.Live
	lr := &p.Live
	if t := &lr.Attention; t.Enabled {
		v, n := pickWindow(t.Window, l.Attention1m, l.Attention2m, l.Attention5m, l)
		if n >= t.MinSamples && v < t.Yellow {
			level, limit := stream.LevelYellow, t.Yellow
			if t.Red > 0 && v < t.Red {
				level, limit = stream.LevelRed, t.Red
			}
			e.add(RuleAttentionLow, FamilyLive, stream.CategoryEngagement, level, l.Course,
				"Attention "+pctBelow(v, limit)+" over the last "+windowWords(t.Window)+" (below "+pct(limit)+")",
				map[string]float64{"attention": round3(v), "limit": limit, "samples": float64(n)})
		}
	}
	if f := &lr.FaceAbsent; f.Enabled {
		secs := l.FaceAbsentSeconds
		if secs >= f.Yellow.Seconds() {
			level, limit := stream.LevelYellow, f.Yellow.Seconds()
			if f.Red > 0 && secs >= f.Red.Seconds() {
				level, limit = stream.LevelRed, f.Red.Seconds()
			}
			e.add(RuleFaceAbsent, FamilyLive, stream.CategoryEngagement, level, l.Course,
				"No face seen for "+strconv.FormatFloat(math.Floor(secs), 'f', -1, 64)+" s (limit "+
					strconv.FormatFloat(limit, 'f', -1, 64)+" s)",
				map[string]float64{"absent_s": math.Floor(secs), "limit_s": limit})
		}
	}
	scale := e.emotionScale(l.Course)
	e.emotion(&lr.Confused, RuleConfused, "Confused", scale, l.Confused1m, l.Confused2m, l.Confused5m)
	e.emotion(&lr.Frustrated, RuleFrustrated, "Frustrated", scale, l.Frustrated1m, l.Frustrated2m, l.Frustrated5m)
}

// emotion fires when a negative learning emotion is sustained: its mean
// over the window is at or above the (difficulty-scaled) threshold.
func (e *evaluator) emotion(t *LiveThreshold, rule, word string, scale, v1, v2, v5 float64) {
	if !t.Enabled {
		return
	}
	l := e.s.Live
	v, n := pickWindow(t.Window, v1, v2, v5, l)
	yellow, red := scaledLimits(t.Yellow, t.Red, scale)
	if n < t.MinSamples || v < yellow {
		return
	}
	level, limit := stream.LevelYellow, yellow
	if red > 0 && v >= red {
		level, limit = stream.LevelRed, red
	}
	e.add(rule, FamilyLive, stream.CategoryEngagement, level, l.Course,
		word+" "+pct(v)+" of the time over the last "+windowWords(t.Window)+" (limit "+pct(limit)+")",
		map[string]float64{"score": round3(v), "limit": round3(limit), "samples": float64(n), "difficulty": scale})
}

// emotionScale is the difficulty factor on emotion limits for course.
func (e *evaluator) emotionScale(course string) float64 {
	if c := e.p.Course(course); c != nil && e.p.Dynamic.EmotionLimits {
		return c.Difficulty
	}
	return 1
}

// scaledLimits multiplies yellow and red by scale, capping yellow at 0.95
// and red at 1, and keeps red above yellow.
func scaledLimits(yellow, red, scale float64) (float64, float64) {
	y := math.Min(yellow*scale, 0.95)
	if red == 0 {
		return y, 0
	}
	r := math.Min(red*scale, 1)
	if r <= y {
		r = math.Min(1, y+0.05)
	}
	return y, r
}

// pickWindow returns the value and sample count of window.
func pickWindow(w Window, v1, v2, v5 float64, l *Live) (float64, int) {
	switch w {
	case "1m":
		return v1, l.Samples1m
	case "5m":
		return v5, l.Samples5m
	}
	return v2, l.Samples2m
}

func windowWords(w Window) string {
	switch w {
	case "1m":
		return "minute"
	case "5m":
		return "5 minutes"
	}
	return "2 minutes"
}

// class runs the class-level signals.
func (e *evaluator) class(c *ClassSnapshot) {
	p := e.p
	if c.Captured < p.Class.MinCaptured || c.Captured <= 0 {
		return
	}
	scale := e.emotionScale(c.Course)
	e.classShare(c, &p.Class.Confused, RuleClassConfused, "confused", c.Confused, scale)
	e.classShare(c, &p.Class.Inattentive, RuleClassInattent, "inattentive", c.Inattentive, 1)
	e.classShare(c, &p.Class.Absent, RuleClassAbsent, "away from the camera", c.Absent, 1)
}

func (e *evaluator) classShare(c *ClassSnapshot, s *ClassShare, rule, word string, n int, scale float64) {
	if !s.Enabled {
		return
	}
	share := float64(n) / float64(c.Captured)
	yellow, red := s.Yellow, s.Red
	if scale != 1 {
		yellow, red = scaledLimits(yellow, red, scale)
	}
	if share < yellow-1e-12 {
		return
	}
	level, limit := stream.LevelYellow, yellow
	if red > 0 && share >= red-1e-12 {
		level, limit = stream.LevelRed, red
	}
	e.add(rule, FamilyClass, stream.CategoryClass, level, c.Course,
		strconv.Itoa(n)+" of "+strconv.Itoa(c.Captured)+" captured students ("+pct(share)+") "+word+" at once (limit "+pct(limit)+")",
		map[string]float64{"students": float64(n), "captured": float64(c.Captured), "share": round3(share),
			"limit": round3(limit), "in_session": float64(c.Students)})
}
