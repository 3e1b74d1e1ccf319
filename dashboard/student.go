package dashboard

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
	"github.com/redis/go-redis/v9"
)

// StudentReader gives the student page what the processor's state holds
// about one student. The lead implements it over stream/state; a method
// returns an error wrapping ErrNotAvailable for data it does not have, and
// the page shows that part as not available instead of failing.
type StudentReader interface {
	// Live returns the student's recent live signal (the current session's
	// rolling attention and learning emotions), oldest point first.
	Live(ctx context.Context, student string) (*LiveSeries, error)
	// Academic returns study time against required time per course and
	// the grades of a term ("" for the current term).
	Academic(ctx context.Context, student, term string) (*Academic, error)
}

// LiveSeries is a student's live signal for the sparklines.
type LiveSeries struct {
	Session string      `json:"session,omitempty"`
	Course  string      `json:"course,omitempty"`
	Points  []LivePoint `json:"points"`
	// Totals sum up the whole session so far, beyond the points the
	// state still holds (nil where the reader does not know them).
	Totals *SessionTotals `json:"session_totals,omitempty"`
}

// SessionTotals are a student's means over every second of the current
// live session: attention, share of seconds with a face and masked, and
// the learning emotions and emotions over the seconds that carried them.
type SessionTotals struct {
	Started         time.Time          `json:"started"`
	Seconds         int                `json:"seconds"`
	Attention       float64            `json:"attention"`
	FacePresent     float64            `json:"face_present"`
	Masked          float64            `json:"masked"`
	LearningSeconds int                `json:"learning_seconds"`
	Learning        map[string]float64 `json:"learning,omitempty"`
	EmotionSeconds  int                `json:"emotion_seconds"`
	Emotions        map[string]float64 `json:"emotions,omitempty"`
}

// LivePoint is one sample of the live signal. Learning holds the learning
// emotions (engaged, confused, bored, frustrated) where known.
type LivePoint struct {
	TS          time.Time          `json:"ts"`
	Captured    bool               `json:"captured"`
	Attention   float64            `json:"attention"`
	FacePresent bool               `json:"face_present"`
	Masked      bool               `json:"masked"`
	Dominant    string             `json:"dominant,omitempty"`
	Learning    map[string]float64 `json:"learning,omitempty"`
}

// Academic is a student's term record.
type Academic struct {
	Term    string        `json:"term"`
	Courses []CourseStudy `json:"courses"`
	Grades  []GradeRow    `json:"grades"`
}

// CourseStudy is the study time of one course against the time required
// up to now.
type CourseStudy struct {
	Course          string  `json:"course"`
	StudySeconds    float64 `json:"study_s"`
	RequiredSeconds float64 `json:"required_s"`
}

// GradeRow is one course result.
type GradeRow struct {
	Course   string  `json:"course"`
	Term     string  `json:"term"`
	Score    float64 `json:"score"`
	Passed   bool    `json:"passed"`
	Elective bool    `json:"elective"`
	Core     bool    `json:"core"`
}

// LearnerView is what `classpulse profile assign` last wrote about a
// student (package profile/learner): per course the learner profile and,
// when a grade model was given, the predicted grade and probability of D,
// with when and by which model they were computed.
type LearnerView struct {
	Courses []LearnerCourse `json:"courses"`
}

// LearnerCourse is one course's learner record.
type LearnerCourse struct {
	Course  string `json:"course"`
	Profile string `json:"profile"`
	Cluster int    `json:"cluster"`
	K       int    `json:"k"`
	// PredictedGrade and PD are empty when no model was given.
	PredictedGrade string    `json:"predicted_grade,omitempty"`
	PD             *float64  `json:"p_d,omitempty"`
	Model          string    `json:"model,omitempty"`
	At             time.Time `json:"at"`
}

// learnerReader is implemented by the StudentReaders that can read the
// learner records (both of this package's readers do). It is separate
// from StudentReader so that other readers need not.
type learnerReader interface {
	Learner(ctx context.Context, student string) (*LearnerView, error)
}

// readLearner reads the learner records from the student's roster hash,
// where `classpulse profile assign` writes them.
func readLearner(ctx context.Context, rdb redis.UniversalClient, student string) (*LearnerView, error) {
	m, err := rdb.HGetAll(ctx, state.ProfileKey(student)).Result()
	if err != nil {
		return nil, fmt.Errorf("learner profile of %s: %w", student, err)
	}
	recs := learner.Parse(m)
	if len(recs) == 0 {
		return nil, fmt.Errorf("learner profile of %s: %w (none assigned yet: classpulse profile assign)", student, ErrNotAvailable)
	}
	v := &LearnerView{Courses: make([]LearnerCourse, 0, len(recs))}
	for _, r := range recs {
		v.Courses = append(v.Courses, LearnerCourse{Course: r.Course, Profile: r.Profile, Cluster: r.Cluster, K: r.K,
			PredictedGrade: r.Grade, PD: r.PD, Model: r.Model, At: r.At})
	}
	return v, nil
}

// learnerFor is the learner part of the student page for p. Profiles and
// predicted grades are for staff (admin, counsellor, instructor) only:
// a student or guardian never sees a profile label or a predicted risk on
// the page. What reaches them is a predicted-risk warning, through the
// same release rule as every warning (confirmed, and its category "risk"
// in Config.ReleaseCategories). Missing parts are noted in missing.
func (s *Server) learnerFor(ctx context.Context, p *Principal, student string, missing map[string]string) *LearnerView {
	if !p.Role.Staff() {
		return nil
	}
	lr, ok := s.students.(learnerReader)
	if !ok {
		missing["learner"] = "learner profile: " + ErrNotAvailable.Error() + " (the student reader does not read it)"
		return nil
	}
	v, err := lr.Learner(ctx, student)
	if err != nil {
		missing["learner"] = err.Error()
		return nil
	}
	return v
}

// liveStudentReader is the default StudentReader: the live signal from the
// tiles this replica has seen (and the latest tile in Redis), no academic
// data.
type liveStudentReader struct {
	rdb   redis.UniversalClient
	store *queue.Store

	mu     sync.Mutex
	series map[string]*tileRing
}

const ringPoints = 600 // ten minutes of one tile a second

type tileRing struct {
	session, course string
	pts             []LivePoint
	next            int
	full            bool
}

// record keeps a tile in the student's ring; the number of students kept
// is bounded so that a replica's memory stays bounded.
func (r *liveStudentReader) record(t *stream.Tile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.series == nil {
		r.series = map[string]*tileRing{}
	}
	ring := r.series[t.Student]
	if ring == nil {
		if len(r.series) >= 20000 {
			return
		}
		ring = &tileRing{pts: make([]LivePoint, ringPoints)}
		r.series[t.Student] = ring
	}
	if ring.session != t.Session {
		ring.session, ring.course, ring.next, ring.full = t.Session, t.Course, 0, false
	}
	ring.pts[ring.next] = LivePoint{TS: t.TS.Time, Captured: t.Captured, Attention: t.Attention, FacePresent: t.FacePresent, Masked: t.Masked, Dominant: t.Dominant}
	ring.next = (ring.next + 1) % ringPoints
	if ring.next == 0 {
		ring.full = true
	}
}

func (r *liveStudentReader) Live(ctx context.Context, student string) (*LiveSeries, error) {
	r.mu.Lock()
	ring := r.series[student]
	var out *LiveSeries
	if ring != nil {
		out = &LiveSeries{Session: ring.session, Course: ring.course}
		if ring.full {
			out.Points = append(out.Points, ring.pts[ring.next:]...)
		}
		out.Points = append(out.Points, ring.pts[:ring.next]...)
	}
	r.mu.Unlock()
	if out != nil {
		return out, nil
	}
	return nil, fmt.Errorf("live signal of %s: %w", student, ErrNotAvailable)
}

// Learner implements learnerReader.
func (r *liveStudentReader) Learner(ctx context.Context, student string) (*LearnerView, error) {
	return readLearner(ctx, r.rdb, student)
}

func (r *liveStudentReader) Academic(context.Context, string, string) (*Academic, error) {
	return nil, fmt.Errorf("academic record: %w (no StudentReader wired)", ErrNotAvailable)
}

// tileRecorder is implemented by readers that keep the tiles they are fed.
type tileRecorder interface{ record(*stream.Tile) }
