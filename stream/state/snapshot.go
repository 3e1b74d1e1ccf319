package state

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Window is the aggregate of a student's live scores over a rolling window.
type Window struct {
	// Seconds is how many score events (one per second) fell in the window.
	Seconds int
	// Means over those seconds, 0–1. Learning means are over the seconds
	// that carried learning emotions, emotion means likewise.
	Attention, Face, Masked              float64
	Engaged, Confused, Bored, Frustrated float64
	Emotions                             [7]float64
	LearningSeconds, EmotionSeconds      int
}

// Live is a student's live state after a score event.
type Live struct {
	// HeadUnix is the newest second seen.
	HeadUnix int64
	// W1, W2, W5 are the 1, 2 and 5 minute rolling windows.
	W1, W2, W5 Window
	// Session is the aggregate over the whole session so far (the session
	// totals): every score since its first second, late ones aside.
	SessionTotals Window
	// FaceAbsentSeconds is how long no face has been seen, up to the head.
	FaceAbsentSeconds float64
}

// windowOf turns a window's sums into its means.
func windowOf(v *vec) Window {
	w := Window{Seconds: int(v[0] + 0.5), LearningSeconds: int(v[8] + 0.5), EmotionSeconds: int(v[9] + 0.5)}
	if w.Seconds > 0 {
		n := v[0]
		w.Attention, w.Face, w.Masked = mean(v[1], n), mean(v[2], n), mean(v[3], n)
	}
	if w.LearningSeconds > 0 {
		n := v[8]
		w.Engaged, w.Confused, w.Bored, w.Frustrated = mean(v[4], n), mean(v[5], n), mean(v[6], n), mean(v[7], n)
	}
	if w.EmotionSeconds > 0 {
		for i := range w.Emotions {
			w.Emotions[i] = mean(v[10+i], v[9])
		}
	}
	return w
}

// mean is sum/n to six decimals, within 0–1. Scores are kept at float32
// precision (about seven significant digits; state/live.go), and six
// decimals give back the value a score or a mean of scores had before:
// 0.3 stays 0.3, not 0.30000001, when a policy threshold compares it.
func mean(sum, n float64) float64 {
	return clamp01(math.Round(sum/n*1e6) / 1e6)
}

func clamp01(x float64) float64 {
	if x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// CourseStudy is a student's study time in one course, in seconds.
type CourseStudy struct {
	// ByPeriod is keyed by term, then study period.
	ByPeriod map[string]map[string]float64
	// ByTerm is the term total.
	ByTerm map[string]float64
	// ByWeek is keyed by ISO week, "2026-W47".
	ByWeek map[string]float64
}

// Grade is one stored course result.
type Grade struct {
	Term, Course           string
	Score                  float64
	Passed, Elective, Core bool
}

// Academic is a student's academic state after a click or grade event.
type Academic struct {
	// Study is keyed by course.
	Study map[string]*CourseStudy
	// Clicks counts each of the 14 kinds per course and term:
	// Clicks[course][term][kind].
	Clicks map[string]map[string]map[string]int64
	// Grades sorted by term, then course.
	Grades []Grade
	// Profile holds roster facts (class, unit, minor, …) as imported.
	Profile map[string]string
}

func pairs(v any) ([][2]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("hash reply is %T", v)
	}
	out := make([][2]string, 0, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

func parseAcademic(arr []any) (*Academic, error) {
	a := &Academic{Study: map[string]*CourseStudy{}, Clicks: map[string]map[string]map[string]int64{}, Profile: map[string]string{}}
	study, err := pairs(arr[0])
	if err != nil {
		return nil, err
	}
	for _, kv := range study {
		parts := strings.Split(kv[0], "|")
		sec, err := strconv.ParseFloat(kv[1], 64)
		if err != nil || len(parts) < 3 {
			continue
		}
		cs := a.Study[parts[1]]
		if cs == nil {
			cs = &CourseStudy{ByPeriod: map[string]map[string]float64{}, ByTerm: map[string]float64{}, ByWeek: map[string]float64{}}
			a.Study[parts[1]] = cs
		}
		switch {
		case parts[0] == "p" && len(parts) == 4:
			if cs.ByPeriod[parts[2]] == nil {
				cs.ByPeriod[parts[2]] = map[string]float64{}
			}
			cs.ByPeriod[parts[2]][parts[3]] = sec
		case parts[0] == "t":
			cs.ByTerm[parts[2]] = sec
		case parts[0] == "w":
			// Added: a week can be in the study hash, where an older
			// release writes it, and in the weeks hash (keys.go).
			cs.ByWeek[parts[2]] += sec
		}
	}
	clicks, err := pairs(arr[1])
	if err != nil {
		return nil, err
	}
	for _, kv := range clicks {
		parts := strings.Split(kv[0], "|")
		if len(parts) != 4 || parts[0] != "k" {
			continue
		}
		n, _ := strconv.ParseInt(kv[1], 10, 64)
		byTerm := a.Clicks[parts[1]]
		if byTerm == nil {
			byTerm = map[string]map[string]int64{}
			a.Clicks[parts[1]] = byTerm
		}
		if byTerm[parts[2]] == nil {
			byTerm[parts[2]] = map[string]int64{}
		}
		byTerm[parts[2]][parts[3]] = n
	}
	grades, err := pairs(arr[2])
	if err != nil {
		return nil, err
	}
	for _, kv := range grades {
		tc := strings.SplitN(kv[0], "|", 2)
		f := strings.Split(kv[1], "|")
		if len(tc) != 2 || len(f) != 4 {
			continue
		}
		score, _ := strconv.ParseFloat(f[0], 64)
		a.Grades = append(a.Grades, Grade{Term: tc[0], Course: tc[1], Score: score, Passed: f[1] == "1", Elective: f[2] == "1", Core: f[3] == "1"})
	}
	sort.Slice(a.Grades, func(i, j int) bool {
		if a.Grades[i].Term != a.Grades[j].Term {
			return a.Grades[i].Term < a.Grades[j].Term
		}
		return a.Grades[i].Course < a.Grades[j].Course
	})
	prof, err := pairs(arr[3])
	if err != nil {
		return nil, err
	}
	for _, kv := range prof {
		a.Profile[kv[0]] = kv[1]
	}
	return a, nil
}
