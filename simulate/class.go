package simulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Persona is how a simulated student behaves during the session.
type Persona int

// The personas, in the order they are dealt out to students.
const (
	Attentive Persona = iota // looks at the screen, engaged
	Drifting                 // starts attentive, attention sinks, comes back
	Absent                   // camera on, nobody in front of it
	Confused                 // present and attentive, but confused
	NoCamera                 // no camera consent: clickstream only
)

func (p Persona) String() string {
	return [...]string{"attentive", "drifting", "absent", "confused", "no_camera"}[p]
}

// Publisher is what the simulator sends events through; *stream.Producer
// satisfies it.
type Publisher interface {
	Publish(ctx context.Context, events ...stream.Event) error
}

// Config configures a class. The zero value simulates 40 students in
// session "demo-class" of course "calculus", one score per second each.
type Config struct {
	// Students in the class. Default 40.
	Students int
	// Session id of the live class. Default "demo-class".
	Session string
	// Course of the session. Default "calculus".
	Course string
	// Tick is the time between two score events of one student. Default 1s.
	Tick time.Duration
	// ClickEvery is the mean time between two clickstream events of one
	// student. Default 15s.
	ClickEvery time.Duration
	// Seed makes the class reproducible. Default 1.
	Seed uint64
	// Mix is the share of each persona, dealt out in order; the rest are
	// attentive. Default: 15 % drifting, 10 % absent, 10 % confused,
	// 5 % without camera.
	Mix map[Persona]float64
	// StudentPrefix prefixes student ids. Default "stu-".
	StudentPrefix string
	// Warmup back-fills this much session history, stamped in the past, as
	// fast as the broker takes it before the live ticks start, so rolling
	// windows are full from the first minute. Default 0.
	Warmup time.Duration
}

func (c *Config) applyDefaults() {
	if c.Students == 0 {
		c.Students = 40
	}
	if c.Session == "" {
		c.Session = "demo-class"
	}
	if c.Course == "" {
		c.Course = "calculus"
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.ClickEvery == 0 {
		c.ClickEvery = 15 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Mix == nil {
		c.Mix = map[Persona]float64{Drifting: 0.15, Absent: 0.10, Confused: 0.10, NoCamera: 0.05}
	}
	if c.StudentPrefix == "" {
		c.StudentPrefix = "stu-"
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	if c.Students < 1 || c.Students > 1_000_000 {
		return fmt.Errorf("simulate: %d students: want 1..1000000", c.Students)
	}
	if c.Tick < 10*time.Millisecond {
		return fmt.Errorf("simulate: tick %v below 10ms", c.Tick)
	}
	total := 0.0
	for _, v := range c.Mix {
		if v < 0 {
			return errors.New("simulate: negative persona share")
		}
		total += v
	}
	if total > 1 {
		return fmt.Errorf("simulate: persona shares add up to %.2f > 1", total)
	}
	return nil
}

// Student is one simulated student.
type Student struct {
	ID      string
	Persona Persona
	phase   float64
}

// Class is a simulated live class.
type Class struct {
	cfg      Config
	students []Student
	pub      Publisher
	logger   *slog.Logger
	rng      *rand.Rand
	sent     atomic.Int64
	ran      atomic.Bool
}

// New deals personas out to the students of a class.
func New(cfg Config, pub Publisher, logger *slog.Logger) (*Class, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	c := &Class{cfg: cfg, pub: pub, logger: logger.With("component", "simulate", "session", cfg.Session),
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	order := []Persona{Drifting, Absent, Confused, NoCamera}
	i := 0
	for _, p := range order {
		n := int(math.Round(cfg.Mix[p] * float64(cfg.Students)))
		if cfg.Mix[p] > 0 && n == 0 && cfg.Students >= 4 {
			n = 1
		}
		for k := 0; k < n && i < cfg.Students; k++ {
			c.students = append(c.students, c.newStudent(i, p))
			i++
		}
	}
	for ; i < cfg.Students; i++ {
		c.students = append(c.students, c.newStudent(i, Attentive))
	}
	return c, nil
}

func (c *Class) newStudent(i int, p Persona) Student {
	return Student{ID: fmt.Sprintf("%s%04d", c.cfg.StudentPrefix, i+1), Persona: p, phase: c.rng.Float64() * 2 * math.Pi}
}

// Students returns the class roster.
func (c *Class) Students() []Student { return c.students }

// Sent is how many events the class has published.
func (c *Class) Sent() int64 { return c.sent.Load() }

// Run publishes consent records, then one score event per captured student
// per tick and clickstream events, until ctx ends. It may be called once.
func (c *Class) Run(ctx context.Context) error {
	if c.ran.Swap(true) {
		return errors.New("simulate: Run called twice")
	}
	start := time.Now().Add(-c.cfg.Warmup)
	if err := c.publish(ctx, c.Consents(start)); err != nil {
		return err
	}
	for at := start.Add(c.cfg.Tick); c.cfg.Warmup > 0 && at.Before(time.Now()); at = at.Add(c.cfg.Tick) {
		if err := c.publish(ctx, c.Second(at, at.Sub(start))); err != nil {
			return err
		}
	}
	c.logger.Info("simulated class started", "students", len(c.students), "warmup", c.cfg.Warmup)
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if err := c.publish(ctx, c.Second(now, now.Sub(start))); err != nil {
				return err
			}
		}
	}
}

func (c *Class) publish(ctx context.Context, events []stream.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := c.pub.Publish(ctx, events...); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		// The broker may be briefly away; the next tick tries again.
		c.logger.Warn("publish failed; events of this second dropped", "err", err, "events", len(events))
		return nil
	}
	c.sent.Add(int64(len(events)))
	return nil
}

// Consents returns the consent records of the class at time now: camera
// and emotion granted for every student but those without a camera.
func (c *Class) Consents(now time.Time) []stream.Event {
	var out []stream.Event
	for _, s := range c.students {
		for _, scope := range []string{stream.ScopeCamera, stream.ScopeEmotion, stream.ScopeClickstream} {
			granted := s.Persona != NoCamera || scope == stream.ScopeClickstream
			out = append(out, &stream.Consent{Header: stream.NewHeader(s.ID, now), Scope: scope, Granted: granted, PolicyVersion: "2026-1"})
		}
	}
	return out
}

// Second returns the events of one tick at time now, elapsed into the
// session: a score for every captured student and, now and then, clicks.
func (c *Class) Second(now time.Time, elapsed time.Duration) []stream.Event {
	out := make([]stream.Event, 0, len(c.students)+len(c.students)/8)
	clickP := c.cfg.Tick.Seconds() / c.cfg.ClickEvery.Seconds()
	for i := range c.students {
		s := &c.students[i]
		if s.Persona != NoCamera {
			out = append(out, c.score(s, now, elapsed))
		}
		if c.rng.Float64() < clickP {
			out = append(out, c.click(s, now))
		}
	}
	return out
}

func (c *Class) noise(sd float64) float64 { return c.rng.NormFloat64() * sd }

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

func (c *Class) score(s *Student, now time.Time, elapsed time.Duration) *stream.Score {
	t := elapsed.Seconds()
	att, face, confused, frustrated := 0.85, 1.0, 0.1, 0.05
	switch s.Persona {
	case Drifting:
		// Attention sinks to ~0.15 within the first half minute and comes
		// back for a while every few minutes.
		att = 0.8
		if t > 20 {
			att = 0.15 + 0.25*math.Max(0, math.Sin(t/180*math.Pi+s.phase))
		}
	case Absent:
		face, att = 0, 0
	case Confused:
		att, confused, frustrated = 0.7, 0.75, 0.3
	}
	att = clamp(att+c.noise(0.05), 0, 1)
	if face > 0 && c.rng.Float64() < 0.02 {
		face = 0.6 // a moment turned away
	}
	e := &stream.Score{
		Header:    stream.NewHeader(s.ID, now),
		Session:   c.cfg.Session,
		Course:    c.cfg.Course,
		WindowMS:  int(c.cfg.Tick / time.Millisecond),
		Frames:    10,
		FaceRatio: face,
		Attention: att,
		Model:     "simulated-1",
	}
	if face > 0 {
		confused = clamp(confused+c.noise(0.05), 0, 1)
		frustrated = clamp(frustrated+c.noise(0.03), 0, 1)
		engaged := clamp(att-confused/3, 0, 1)
		e.Learning = &stream.Learning{Engaged: engaged, Confused: confused, Bored: clamp(1-att-0.1, 0, 1), Frustrated: frustrated}
		happy := clamp(0.1+c.noise(0.03), 0, 0.3)
		sad := clamp(frustrated/3, 0, 0.3)
		surprised := clamp(confused/4, 0, 0.3)
		e.Emotions = &stream.Emotions{Neutral: 1 - happy - sad - surprised, Happy: happy, Sad: sad, Surprised: surprised}
		e.Head = &stream.Head{Yaw: clamp((1-att)*40+c.noise(3), -180, 180), Pitch: clamp(c.noise(5), -90, 90)}
		eyes := clamp(0.9+c.noise(0.05), 0, 1)
		e.EyesOpen = &eyes
	}
	return e
}

// Study seconds per click by persona: drifting and absent students study
// far less than required, which feeds the study-state rules.
var studyMean = map[Persona]float64{Attentive: 900, Drifting: 120, Absent: 30, Confused: 600, NoCamera: 700}

func (c *Class) click(s *Student, now time.Time) *stream.Click {
	kind := stream.ClickKinds[1+c.rng.IntN(len(stream.ClickKinds)-1)]
	e := &stream.Click{Header: stream.NewHeader(s.ID, now), Course: c.cfg.Course, Kind: kind}
	if c.rng.Float64() < 0.4 {
		e.Kind = stream.KindStudy
		e.DurationS = math.Round(clamp(studyMean[s.Persona]*(0.5+c.rng.Float64()), 1, stream.MaxStudySeconds))
	}
	return e
}
