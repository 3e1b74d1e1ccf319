package dashboard

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// StatePolicy hands out the policy in force; *rules.Holder satisfies it.
// The student page needs it for the study time each course requires.
type StatePolicy interface {
	Policy() *rules.Policy
}

// StateReader is the StudentReader over the processor's per-student state
// in Redis (package state): the live signal from the student's per-second
// buckets, study time against the time the policy requires up to now, and
// grades. Any dashboard replica can serve any student with it, unlike the
// default reader, which only knows the tiles its own replica has seen.
//
// It lives here rather than in stream/state so that the state package
// stays below the dashboard and the rules in the import graph.
type StateReader struct {
	rdb    redis.UniversalClient
	r      *state.Reader
	policy StatePolicy
	now    func() time.Time
}

// NewStateReader reads the state the processor keeps in rdb; cfg must
// carry the processor's state settings (zero: the defaults). now may be
// nil (time.Now).
func NewStateReader(rdb redis.UniversalClient, cfg state.Config, policy StatePolicy, now func() time.Time) (*StateReader, error) {
	if policy == nil || policy.Policy() == nil {
		return nil, errors.New("dashboard: the state reader needs a policy")
	}
	r, err := state.NewReader(rdb, cfg)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &StateReader{rdb: rdb, r: r, policy: policy, now: now}, nil
}

// Live implements StudentReader: one point per second of the current
// session that the state still holds, oldest first.
func (s *StateReader) Live(ctx context.Context, student string) (*LiveSeries, error) {
	h, err := s.r.Live(ctx, student)
	if errors.Is(err, state.ErrNoState) {
		return nil, fmt.Errorf("live signal of %s: %w", student, ErrNotAvailable)
	}
	if err != nil {
		return nil, err
	}
	out := &LiveSeries{Session: h.Session, Course: h.Course, Points: make([]LivePoint, 0, len(h.Seconds))}
	for _, sec := range h.Seconds {
		p := LivePoint{TS: time.Unix(sec.Unix, 0).UTC(), Captured: true, Attention: sec.Attention,
			FacePresent: sec.Face >= 0.5, Masked: sec.Masked >= 0.5}
		if sec.LearningSamples > 0 {
			p.Learning = make(map[string]float64, len(sec.Learning))
			best := -1.0
			for i, v := range sec.Learning {
				p.Learning[stream.LearningNames[i]] = v
				if v > best {
					best, p.Dominant = v, stream.LearningNames[i]
				}
			}
		}
		out.Points = append(out.Points, p)
	}
	if st := h.SessionTotals; st.Seconds > 0 {
		t := &SessionTotals{Seconds: st.Seconds, Attention: st.Attention, FacePresent: st.Face, Masked: st.Masked,
			LearningSeconds: st.LearningSeconds, EmotionSeconds: st.EmotionSeconds}
		if h.SessionStartUnix > 0 {
			t.Started = time.Unix(h.SessionStartUnix, 0).UTC()
		}
		if st.LearningSeconds > 0 {
			t.Learning = map[string]float64{}
			for i, v := range []float64{st.Engaged, st.Confused, st.Bored, st.Frustrated} {
				t.Learning[stream.LearningNames[i]] = v
			}
		}
		if st.EmotionSeconds > 0 {
			t.Emotions = map[string]float64{}
			for i, v := range st.Emotions {
				t.Emotions[stream.EmotionNames[i]] = v
			}
		}
		out.Totals = t
	}
	return out, nil
}

// Learner implements learnerReader: the records `classpulse profile
// assign` wrote into the student's roster hash.
func (s *StateReader) Learner(ctx context.Context, student string) (*LearnerView, error) {
	return readLearner(ctx, s.rdb, student)
}

// Academic implements StudentReader. An empty term means the term the
// calendar is in now or, between terms, the latest term the student has
// data for.
func (s *StateReader) Academic(ctx context.Context, student, term string) (*Academic, error) {
	a, err := s.r.Academic(ctx, student)
	if errors.Is(err, state.ErrNoState) {
		return nil, fmt.Errorf("academic record of %s: %w", student, ErrNotAvailable)
	}
	if err != nil {
		return nil, err
	}
	p, now := s.policy.Policy(), s.now()
	if term == "" {
		term = currentTerm(p, a, now)
	}
	if term == "" {
		return nil, fmt.Errorf("academic record of %s: %w (no term)", student, ErrNotAvailable)
	}
	out := &Academic{Term: term, Courses: []CourseStudy{}, Grades: []GradeRow{}}
	seen := map[string]bool{}
	for c, st := range a.Study {
		if st.ByTerm[term] > 0 {
			seen[c] = true
		}
	}
	if tm := p.Term(term); tm != nil {
		for i := range p.Courses {
			if p.Courses[i].TotalHours(tm) > 0 {
				seen[p.Courses[i].ID] = true
			}
		}
	}
	for c := range seen {
		cs := CourseStudy{Course: c, RequiredSeconds: requiredSeconds(p, c, term, now)}
		if st := a.Study[c]; st != nil {
			cs.StudySeconds = st.ByTerm[term]
		}
		out.Courses = append(out.Courses, cs)
	}
	sort.Slice(out.Courses, func(i, j int) bool { return out.Courses[i].Course < out.Courses[j].Course })
	for _, g := range a.Grades {
		if g.Term != term {
			continue
		}
		row := GradeRow{Course: g.Course, Term: g.Term, Score: g.Score, Passed: g.Passed, Elective: g.Elective, Core: g.Core}
		if c := p.Course(g.Course); c != nil {
			row.Elective, row.Core = row.Elective || c.Elective, row.Core || c.Core
		}
		out.Grades = append(out.Grades, row)
	}
	return out, nil
}

// currentTerm is the calendar's term at now, else the latest term of the
// calendar (or, for terms it does not know, by id) the student has data in.
func currentTerm(p *rules.Policy, a *state.Academic, now time.Time) string {
	if tm := p.TermAt(now); tm != nil {
		return tm.ID
	}
	has := map[string]bool{}
	for _, st := range a.Study {
		for t := range st.ByTerm {
			has[t] = true
		}
	}
	for _, g := range a.Grades {
		has[g.Term] = true
	}
	for i := len(p.Calendar.Terms) - 1; i >= 0; i-- {
		if tm := &p.Calendar.Terms[i]; has[tm.ID] && !tm.StartTime().After(now) {
			return tm.ID
		}
	}
	best := ""
	for t := range has {
		if t != "none" && t > best {
			best = t
		}
	}
	return best
}

// requiredSeconds is the online study time course requires in term up to
// now, as the study rule counts it: whole periods that have ended, the
// current one per the rule's basis, scaled by the course difficulty when
// the policy's dynamic thresholds say so.
func requiredSeconds(p *rules.Policy, course, term string, now time.Time) float64 {
	c, tm := p.Course(course), p.Term(term)
	if c == nil || tm == nil || now.Before(tm.StartTime()) {
		return 0
	}
	loc := p.Location()
	var hours float64
	for _, pr := range tm.Periods {
		h := c.RequiredHours[pr.Name]
		start := time.Date(pr.Start.Year, pr.Start.Month, pr.Start.Day, 0, 0, 0, 0, loc)
		end := time.Date(pr.End.Year, pr.End.Month, pr.End.Day+1, 0, 0, 0, 0, loc)
		switch {
		case !now.Before(end):
			hours += h
		case now.Before(start):
		case p.Study.Basis == rules.BasisThrough:
			hours += h
		case p.Study.Basis == rules.BasisCompleted:
		default: // prorated
			hours += h * float64(now.Sub(start)) / float64(end.Sub(start))
		}
	}
	if p.Dynamic.RequiredTime && c.Difficulty > 0 {
		hours *= c.Difficulty
	}
	return hours * 3600
}
