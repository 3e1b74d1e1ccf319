package dashboard

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
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

func (r *liveStudentReader) Academic(context.Context, string, string) (*Academic, error) {
	return nil, fmt.Errorf("academic record: %w (no StudentReader wired)", ErrNotAvailable)
}

// tileRecorder is implemented by readers that keep the tiles they are fed.
type tileRecorder interface{ record(*stream.Tile) }
