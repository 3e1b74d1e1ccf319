package profile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Aggregate is what profiling needs to know about one student in one
// course: the running sums a stream processor keeps, or what Accumulator
// gathers from an events file. FeaturesFromAggregates turns aggregates into
// a feature table.
type Aggregate struct {
	Student, Course string
	SignIns         int     // `extra` clicks: attendance
	LiveSessions    int     // live sessions in which the student's face was seen
	StudySeconds    float64 // sum of `study` durations
	StudyRecords    int     // `study` records: course visits
	VideoSeconds    float64 // sum of `player_control` durations
	VideoViews      int     // `player_control` records with a duration
	QuizScore       float64 // NaN when unknown; no v1 event carries it
	FinalScore      float64 // latest course result; NaN when none
	// AttentionSum and ScoreSeconds give the mean attention; LearningSum
	// and LearningSeconds the mean of each learning emotion.
	AttentionSum    float64
	ScoreSeconds    int
	LearningSum     [4]float64
	LearningSeconds int
	// CameraRevoked drops every camera-derived feature (live sessions,
	// attention, learning emotions): they become missing.
	CameraRevoked bool
	// Windows[w][k] counts clicks of stream.ClickKinds[k] in window w.
	Windows [][14]int
	// Unknown lists feature columns the source cannot see (the live state
	// keeps no video durations, for one); FeaturesFromAggregates leaves
	// them missing rather than zero.
	Unknown []string
}

// NewAggregate returns an empty aggregate with unknown scores.
func NewAggregate(student, course string, windows int) *Aggregate {
	return &Aggregate{Student: student, Course: course, QuizScore: math.NaN(), FinalScore: math.NaN(), Windows: make([][14]int, windows)}
}

// FeaturesFromAggregates builds the feature table, one row per aggregate,
// with the columns of FeatureNames(windows) and the course as a text
// column. Means over no events are missing (NaN), as are unknown scores.
func FeaturesFromAggregates(aggs []*Aggregate, windows int) (*Table, error) {
	if windows < 1 || windows > MaxWindows {
		return nil, fmt.Errorf("%w: windows %d out of range 1..%d", ErrBadInput, windows, MaxWindows)
	}
	cols := FeatureNames(windows)
	t := &Table{Columns: cols, Text: map[string][]string{"course": nil}}
	nan := math.NaN()
	for _, a := range aggs {
		if len(a.Windows) != windows {
			return nil, fmt.Errorf("aggregate of %s in %s has %d windows, want %d", a.Student, a.Course, len(a.Windows), windows)
		}
		r := make([]float64, 0, len(cols))
		live := float64(a.LiveSessions)
		attn := nan
		if a.ScoreSeconds > 0 {
			attn = a.AttentionSum / float64(a.ScoreSeconds)
		}
		var learn [4]float64
		for k := range learn {
			learn[k] = nan
			if a.LearningSeconds > 0 {
				learn[k] = a.LearningSum[k] / float64(a.LearningSeconds)
			}
		}
		if a.CameraRevoked {
			live, attn = nan, nan
			learn = [4]float64{nan, nan, nan, nan}
		}
		r = append(r, float64(a.SignIns), live, a.StudySeconds, a.VideoSeconds)
		r = append(r, a.QuizScore, a.FinalScore)
		r = append(r, float64(a.StudyRecords), float64(a.VideoViews), attn)
		r = append(r, learn[:]...)
		for _, w := range a.Windows {
			for _, c := range w {
				r = append(r, float64(c))
			}
		}
		for _, c := range a.Unknown {
			if j := slices.Index(cols, c); j >= 0 {
				r[j] = nan
			}
		}
		t.IDs = append(t.IDs, a.Student)
		t.Rows = append(t.Rows, r)
		t.Text["course"] = append(t.Text["course"], a.Course)
	}
	return t, nil
}

// Accumulator gathers aggregates from v1 events. It keeps each click's
// time until Aggregates is called, because a course's windows are cut from
// the span of all its clicks (the study's DTTW).
type Accumulator struct {
	windows  int
	aggs     map[[2]string]*Aggregate
	clicks   map[[2]string][]clickAt
	span     map[string][2]int64 // course → first, last click (ms)
	sessions map[[2]string]map[string]bool
	gradeTS  map[[2]string]int64
	camera   map[string]consentAt // student → latest camera consent
	dttw     int64                // seconds; 0: cut the click span itself
	// Events counts the events applied, Ignored those of other topics.
	Events, Ignored int
}

type clickAt struct {
	ms   int64 // click time in ms, or its DTTW window id under SetDTTW
	kind uint8
}

type consentAt struct {
	ms      int64
	granted bool
}

// NewAccumulator returns an empty accumulator cutting courses into
// windows windows.
func NewAccumulator(windows int) (*Accumulator, error) {
	if windows < 1 || windows > MaxWindows {
		return nil, fmt.Errorf("%w: windows %d out of range 1..%d", ErrBadInput, windows, MaxWindows)
	}
	return &Accumulator{
		windows: windows, aggs: map[[2]string]*Aggregate{}, clicks: map[[2]string][]clickAt{},
		span: map[string][2]int64{}, sessions: map[[2]string]map[string]bool{},
		gradeTS: map[[2]string]int64{}, camera: map[string]consentAt{},
	}, nil
}

// SetDTTW makes the accumulator count clicks the way the stream processor
// does: first into fixed windows of length d since the Unix epoch (the
// processor's DTTW window, stream/state Config.Window, 7 days by default),
// then those windows, from a course's first to its last, into the output
// windows (CutWindows). Export from the live state and from an events file
// then give the same counts. Zero restores cutting each course's click span
// itself.
func (a *Accumulator) SetDTTW(d time.Duration) error {
	if d != 0 && d < time.Second {
		return fmt.Errorf("%w: DTTW window %v shorter than a second", ErrBadInput, d)
	}
	a.dttw = int64(d / time.Second)
	return nil
}

// CutWindows maps a DTTW window id to one of n output windows, given the
// first and last window ids of the course: the ids first..last are spread
// evenly over the n windows.
func CutWindows(id, first, last int64, n int) int {
	span := last - first + 1
	if span <= 0 || id < first {
		return 0
	}
	return min(int((id-first)*int64(n)/span), n-1)
}

func (a *Accumulator) agg(student, course string) *Aggregate {
	k := [2]string{student, course}
	g := a.aggs[k]
	if g == nil {
		g = NewAggregate(student, course, a.windows)
		a.aggs[k] = g
	}
	return g
}

// Add applies one validated event. Scores, clicks, grades and camera
// consent count; events of other topics are ignored.
func (a *Accumulator) Add(e stream.Event) {
	h := e.EventHeader()
	ms := h.TS.UnixMilli()
	switch ev := e.(type) {
	case *stream.Score:
		g := a.agg(h.Student, ev.Course)
		g.AttentionSum += ev.Attention
		g.ScoreSeconds++
		if ev.Learning != nil {
			for k, v := range ev.Learning.Values() {
				g.LearningSum[k] += v
			}
			g.LearningSeconds++
		}
		if ev.FaceRatio > 0 {
			k := [2]string{h.Student, ev.Course}
			if a.sessions[k] == nil {
				a.sessions[k] = map[string]bool{}
			}
			a.sessions[k][ev.Session] = true
		}
	case *stream.Click:
		g := a.agg(h.Student, ev.Course)
		switch ev.Kind {
		case stream.KindExtra:
			g.SignIns++
		case stream.KindStudy:
			g.StudySeconds += ev.DurationS
			g.StudyRecords++
		case stream.KindPlayer:
			if ev.DurationS > 0 {
				g.VideoSeconds += ev.DurationS
				g.VideoViews++
			}
		}
		k := [2]string{h.Student, ev.Course}
		at := ms
		if a.dttw > 0 {
			// The processor's window id: the event's Unix second over the
			// window length (stream/state scriptArgs).
			at = h.TS.Unix() / a.dttw
		}
		a.clicks[k] = append(a.clicks[k], clickAt{at, uint8(stream.KindIndex(ev.Kind))})
		sp, ok := a.span[ev.Course]
		if !ok {
			sp = [2]int64{at, at}
		}
		a.span[ev.Course] = [2]int64{min(sp[0], at), max(sp[1], at)}
	case *stream.Grade:
		g := a.agg(h.Student, ev.Course)
		k := [2]string{h.Student, ev.Course}
		if last, ok := a.gradeTS[k]; !ok || ms >= last {
			a.gradeTS[k] = ms
			g.FinalScore = ev.Score
		}
	case *stream.Consent:
		if ev.Scope == stream.ScopeCamera {
			if last, ok := a.camera[h.Student]; !ok || ms >= last.ms {
				a.camera[h.Student] = consentAt{ms, ev.Granted}
			}
		}
	default:
		a.Ignored++
		return
	}
	a.Events++
}

// Aggregates cuts the clicks into windows and returns the aggregates
// sorted by student, then course.
func (a *Accumulator) Aggregates() []*Aggregate {
	out := make([]*Aggregate, 0, len(a.aggs))
	for k, g := range a.aggs {
		for w := range g.Windows {
			g.Windows[w] = [14]int{}
		}
		sp := a.span[k[1]]
		width := sp[1] - sp[0]
		for _, c := range a.clicks[k] {
			w := 0
			switch {
			case a.dttw > 0:
				w = CutWindows(c.ms, sp[0], sp[1], a.windows)
			case width > 0:
				w = int(float64(c.ms-sp[0]) / float64(width) * float64(a.windows))
			}
			g.Windows[min(w, a.windows-1)][c.kind]++
		}
		g.LiveSessions = len(a.sessions[k])
		if c, ok := a.camera[k[0]]; ok && !c.granted {
			g.CameraRevoked = true
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(x, y *Aggregate) int {
		if c := strings.Compare(x.Student, y.Student); c != 0 {
			return c
		}
		return strings.Compare(x.Course, y.Course)
	})
	return out
}

// envelope is one line of an events file.
type envelope struct {
	Topic string          `json:"topic"`
	Event json.RawMessage `json:"event"`
}

// maxLineBytes bounds one line of an events file: an event plus its
// envelope.
const maxLineBytes = stream.MaxEventBytes + 1024

// ReadJSONL reads an events file: one JSON object per line of the form
// {"topic": "classpulse.clicks.v1", "event": {…v1 event…}}; blank lines
// are skipped. Each event is decoded and validated with stream.Decode and
// added. A bad line does not stop the reading: it is returned in the
// *InputError (nil when every line was good), as the processor sends a bad
// event to the DLQ and goes on. The error is for a failing reader.
func (a *Accumulator) ReadJSONL(r io.Reader, source string) (*InputError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	bad := &InputError{Source: source, Unit: "line"}
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			var prefix bool
			chunk, prefix, err = br.ReadLine()
			if err != nil {
				break
			}
			if len(line)+len(chunk) > maxLineBytes {
				tooLong = true
			} else {
				line = append(line, chunk...)
			}
			if !prefix {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				break
			}
		} else if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", source, n, err)
		}
		if tooLong {
			bad.add(&RowError{Row: n, Line: n, Reason: fmt.Sprintf("line longer than %d bytes", maxLineBytes)})
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := a.addLine(line); err != nil {
			bad.add(&RowError{Row: n, Line: n, Reason: err.Error()})
		}
	}
	if bad.Total == 0 {
		return nil, nil
	}
	return bad, nil
}

func (a *Accumulator) addLine(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return fmt.Errorf("not an event envelope {\"topic\":…, \"event\":{…}}: %v", err)
	}
	if dec.More() {
		return errors.New("trailing data after the envelope")
	}
	if env.Topic == "" || len(env.Event) == 0 {
		return errors.New(`envelope needs "topic" and "event"`)
	}
	e, err := stream.Decode(env.Topic, env.Event)
	if err != nil {
		return fmt.Errorf("topic %s: %w", env.Topic, err)
	}
	a.Add(e)
	return nil
}
