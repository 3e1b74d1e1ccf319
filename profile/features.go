package profile

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/classpulse/classpulse/stream"
)

// Group is one of the four label groups of the learner-profile study
// (SOURCES.md §5). Basic columns describe a student and are never features;
// the other three are averaged to name and draw the profiles.
type Group string

// The four label groups.
const (
	GroupBasic     Group = "basic"
	GroupBehaviour Group = "behaviour"
	GroupOutcome   Group = "outcome"
	GroupEmotion   Group = "emotion"
)

// FeatureGroups lists the three feature groups in report order.
var FeatureGroups = []Group{GroupBehaviour, GroupOutcome, GroupEmotion}

// Canonical feature columns. A table from another system may use any other
// numeric columns; those count as behaviour (GroupOf).
const (
	ColAttendance   = "attendance"    // sign-ins (`extra` clicks), 0–10 in the study
	ColLiveSessions = "live_sessions" // live sessions with a face seen at least once
	ColStudySeconds = "study_seconds" // course access duration
	ColVideoSeconds = "video_seconds" // video watching duration
	ColQuizScore    = "quiz_score"    // 0–20 in the study; CSV only, no event carries it
	ColFinalScore   = "final_score"   // 0–100, the latest course result
	ColCourseVisits = "course_visits" // access frequency
	ColVideoViews   = "video_views"   // video frequency
	ColAttention    = "attention"     // mean attention over score events
)

// BasicColumns are the descriptive columns kept as text, never features.
var BasicColumns = []string{"id", "student", "name", "class", "course", "term"}

// BehaviourFeatures are the behaviour group's canonical columns, before the
// windowed click counts (WindowFeatures) that also belong to it.
var BehaviourFeatures = []string{ColAttendance, ColLiveSessions, ColStudySeconds, ColVideoSeconds}

// OutcomeFeatures are the outcome group's canonical columns.
var OutcomeFeatures = []string{ColQuizScore, ColFinalScore}

// EmotionFeatures are the emotion group's canonical columns: the study's
// access and video frequencies, the mean attention and the four learning
// emotions of the score events.
var EmotionFeatures = append([]string{ColCourseVisits, ColVideoViews, ColAttention}, stream.LearningNames...)

// negativeFeatures count against a student: a profile is the better the
// lower they are. Group means and radar charts use 1−x for them.
var negativeFeatures = map[string]bool{"confused": true, "bored": true, "frustrated": true}

// DefaultWindows is the number of time windows the windowed click counts
// (the study's DTTW) cut a course's span into.
const DefaultWindows = 4

// MaxWindows bounds the windows of windowed counts.
const MaxWindows = 52

// WindowFeature names the count of click kind in window w (1-based):
// "quiz_w2".
func WindowFeature(kind string, w int) string { return kind + "_w" + strconv.Itoa(w) }

// WindowFeatures lists the windowed click-count columns, window-major: all
// 14 kinds of window 1, then window 2, …
func WindowFeatures(windows int) []string {
	out := make([]string, 0, windows*len(stream.ClickKinds))
	for w := 1; w <= windows; w++ {
		for _, k := range stream.ClickKinds {
			out = append(out, WindowFeature(k, w))
		}
	}
	return out
}

// FeatureNames lists every canonical feature column for the given number of
// windows, in the order export and the cohort generator write them.
func FeatureNames(windows int) []string {
	var out []string
	out = append(out, BehaviourFeatures...)
	out = append(out, OutcomeFeatures...)
	out = append(out, EmotionFeatures...)
	return append(out, WindowFeatures(windows)...)
}

// PredictorFeatures lists the canonical columns a grade predictor uses: all
// features but the final score, which the grade is made of.
func PredictorFeatures(windows int) []string {
	return slices.DeleteFunc(FeatureNames(windows), func(s string) bool { return s == ColFinalScore })
}

// parseWindowFeature returns the kind and window of a windowed column.
func parseWindowFeature(col string) (kind string, w int, ok bool) {
	i := strings.LastIndex(col, "_w")
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(col[i+2:])
	if err != nil || n < 1 || n > MaxWindows || stream.KindIndex(col[:i]) < 0 {
		return "", 0, false
	}
	return col[:i], n, true
}

// GroupOf returns the label group of a column. Columns it does not know are
// behaviour: a school's own activity measures are what they most often are.
func GroupOf(col string) Group {
	c := strings.ToLower(col)
	switch {
	case slices.Contains(BasicColumns, c):
		return GroupBasic
	case slices.Contains(OutcomeFeatures, c), c == "grade":
		return GroupOutcome
	case slices.Contains(EmotionFeatures, c):
		return GroupEmotion
	}
	return GroupBehaviour
}

// Grade classes of the study.
const (
	GradeA = "A"
	GradeB = "B"
	GradeC = "C"
	GradeD = "D"
)

// GradeClasses lists the grade classes, best first.
var GradeClasses = []string{GradeA, GradeB, GradeC, GradeD}

// GradeOf maps a 0–100 score to its class: A ≥ 90, B ≥ 80, C ≥ 60, D below.
func GradeOf(score float64) string {
	switch {
	case score >= 90:
		return GradeA
	case score >= 80:
		return GradeB
	case score >= 60:
		return GradeC
	}
	return GradeD
}

// LabelsToClasses turns a label column into classes. When every label is a
// number in 0..100 the labels are scores and become grades A–D; otherwise
// each distinct text is its own class (a school may bring "pass"/"fail").
// The class list is sorted, with grades in GradeClasses order.
func LabelsToClasses(labels []string) (classes []string, y []int, err error) {
	if len(labels) == 0 {
		return nil, nil, fmt.Errorf("%w: no labels", ErrTooFewRows)
	}
	scores := true
	for _, l := range labels {
		v, err := strconv.ParseFloat(strings.TrimSpace(l), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
			scores = false
			break
		}
	}
	names := make([]string, len(labels))
	for i, l := range labels {
		if scores {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l), 64)
			names[i] = GradeOf(v)
		} else {
			names[i] = strings.TrimSpace(l)
		}
	}
	if scores {
		classes = slices.Clone(GradeClasses)
	} else {
		seen := map[string]bool{}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				classes = append(classes, n)
			}
		}
		slices.Sort(classes)
	}
	idx := make(map[string]int, len(classes))
	for i, c := range classes {
		idx[c] = i
	}
	y = make([]int, len(names))
	for i, n := range names {
		y[i] = idx[n]
	}
	return classes, y, nil
}

// Scaler maps each column to [0, 1] by the minimum and maximum seen when it
// was fitted. A constant column maps to 0. Values outside the fitted range
// (a new term's data) are clipped.
type Scaler struct {
	Min []float64 `json:"min"`
	Max []float64 `json:"max"`
}

// FitScaler learns the range of each column of rows. NaN cells are skipped.
func FitScaler(rows [][]float64, cols int) *Scaler {
	s := &Scaler{Min: make([]float64, cols), Max: make([]float64, cols)}
	for j := range cols {
		s.Min[j], s.Max[j] = math.Inf(1), math.Inf(-1)
	}
	for _, r := range rows {
		for j, v := range r {
			if math.IsNaN(v) {
				continue
			}
			s.Min[j] = min(s.Min[j], v)
			s.Max[j] = max(s.Max[j], v)
		}
	}
	for j := range cols {
		if math.IsInf(s.Min[j], 1) {
			s.Min[j], s.Max[j] = 0, 0
		}
	}
	return s
}

// Transform returns the normalised copy of rows.
func (s *Scaler) Transform(rows [][]float64) [][]float64 {
	out := make([][]float64, len(rows))
	flat := make([]float64, len(rows)*len(s.Min))
	for i, r := range rows {
		o := flat[i*len(s.Min) : (i+1)*len(s.Min)]
		for j, v := range r {
			o[j] = s.scale(j, v)
		}
		out[i] = o
	}
	return out
}

func (s *Scaler) scale(j int, v float64) float64 {
	span := s.Max[j] - s.Min[j]
	if span <= 0 {
		return 0
	}
	return min(1, max(0, (v-s.Min[j])/span))
}

// Medians returns the median of each column, skipping NaN cells; a column
// with no value at all gets 0. They are the documented imputation for a
// missing cell.
func Medians(rows [][]float64, cols int) []float64 {
	out := make([]float64, cols)
	vals := make([]float64, 0, len(rows))
	for j := range cols {
		vals = vals[:0]
		for _, r := range rows {
			if v := r[j]; !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		slices.Sort(vals)
		n := len(vals)
		if n%2 == 1 {
			out[j] = vals[n/2]
		} else {
			out[j] = (vals[n/2-1] + vals[n/2]) / 2
		}
	}
	return out
}

// Impute replaces every NaN cell of rows in place with its column's value
// from fill, and returns how many cells it filled.
func Impute(rows [][]float64, fill []float64) int {
	n := 0
	for _, r := range rows {
		for j, v := range r {
			if math.IsNaN(v) {
				r[j] = fill[j]
				n++
			}
		}
	}
	return n
}
