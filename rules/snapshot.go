package rules

import "time"

// Snapshot is everything the rules may look at for one student at one
// instant. The processor fills it from Redis; rules never do I/O. It is
// plain data: the engine only reads it, and the caller may reuse it after
// Evaluate returns (findings copy what they need).
type Snapshot struct {
	// Student is the student id (required for custom rules' student.id).
	Student string
	// Class is the student's class or teaching group, the population behind
	// Peers. Empty when unknown.
	Class string
	// Now is the evaluation instant: the processor's clock, or the event
	// time in replay. Every calendar question (period, last two weeks,
	// spring term) is asked of Now.
	Now time.Time
	// Profile holds the student's standing data.
	Profile Profile
	// Live is the student's current live-session state, nil when the
	// student is in no live session (then no engagement rule can fire).
	Live *Live
	// Courses holds the academic state per (course, term). Courses of other
	// terms than the one at Now are ignored by the study-state, trend and
	// peer rules.
	Courses []CourseState
	// Grades holds every course result the student has, across terms.
	Grades []GradeRecord
	// Campus summarises the student's imported campus signals for the
	// behaviour and participation rules; nil when not read.
	Campus *Campus
	// Peers holds the study-time statistics of the student's class, keyed by
	// course id, for the current term.
	Peers map[string]PeerStats
	// Predictions holds the grade predictions written back to the
	// student's state (PredictionsFromProfile), one per course.
	Predictions []Prediction
}

// Profile is the student's standing data, from enrolment.
type Profile struct {
	// Minor is true for a student under 18 (guardian involvement).
	Minor bool
	// WantsDegree is true for a student who applies for a degree; only they
	// get degree-yellow warnings.
	WantsDegree bool
	// GraduationYear is the calendar year of planned graduation, 0 if
	// unknown (then no degree rule fires).
	GraduationYear int
	// ForeignLanguagePassed is true once the degree's foreign-language
	// requirement is met.
	ForeignLanguagePassed bool
	// Unit is the teaching unit (school, learning centre) for reporting.
	Unit string
}

// Live is a student's rolling live-session state. Shares are in 0..1 and
// are means over the seconds that had data in the window (1, 2 or 5
// minutes back from Now).
type Live struct {
	// Session and Course identify the live session.
	Session, Course string
	// Captured is false for a student who sends no camera data (no camera or
	// no consent). Such a student is "not captured", never inattentive: no
	// engagement rule fires for them.
	Captured bool
	// Attention1m, Attention2m, Attention5m are the mean attention scores.
	Attention1m, Attention2m, Attention5m float64
	// Face1m, Face2m, Face5m are the shares of seconds with a face seen.
	Face1m, Face2m, Face5m float64
	// Masked1m is the share of seconds in the last minute with a masked face.
	Masked1m float64
	// Confused*, Frustrated*, Engaged1m, Bored1m are mean learning-emotion
	// scores over the window.
	Confused1m, Confused2m, Confused5m       float64
	Frustrated1m, Frustrated2m, Frustrated5m float64
	Engaged1m, Bored1m                       float64
	// Samples1m, Samples2m, Samples5m count the seconds with data in each
	// window. A rule over a window needs the policy's min_samples.
	Samples1m, Samples2m, Samples5m int
	// FaceAbsentSeconds is the length of the current, continuous stretch
	// without a face (0 when a face is seen now).
	FaceAbsentSeconds float64
}

// CourseState is a student's academic state in one course and term.
type CourseState struct {
	// Course is the course id (matched with the policy's courses) and Term
	// the term id (matched with the policy's calendar).
	Course, Term string
	// StudySecondsByPeriod holds online study seconds per study-period name.
	StudySecondsByPeriod map[string]float64
	// StudySecondsTotal is the term's total of online study seconds.
	StudySecondsTotal float64
	// WeekStudySeconds holds study seconds per ISO week, keyed "2026-W47".
	WeekStudySeconds map[string]float64
	// Clicks counts clickstream events this term by kind (the 14 kinds of
	// stream.ClickKinds).
	Clicks map[string]int64
}

// GradeRecord is one course result.
type GradeRecord struct {
	Course, Term string
	// Score is 0..100.
	Score float64
	// Passed is the course's pass flag as the school recorded it.
	Passed bool
	// Elective marks a public elective (excluded from grade warnings).
	Elective bool
	// Core marks a degree core course.
	Core bool
}

// PeerStats describes the study time of the student's class in one course
// this term, in seconds.
type PeerStats struct {
	// N is the number of students in the class with state in the course.
	N int
	// Mean and Median are the class's study seconds.
	Mean, Median float64
	// Percentile is the student's percentile (0..100) of study time within
	// the class: the share of classmates with less study time.
	Percentile float64
}

// ClassSnapshot is the live state of one class session, for class-level
// signals to the instructor. Counts are numbers of students right now.
type ClassSnapshot struct {
	// Session and Course identify the live session.
	Session, Course string
	// Now is the evaluation instant.
	Now time.Time
	// Students is the number of students in the session; Captured those of
	// them sending camera data. Shares are taken over Captured.
	Students, Captured int
	// Attentive, Confused, Inattentive and Absent count captured students
	// in each state (a student may be both confused and inattentive).
	Attentive, Confused, Inattentive, Absent int
}
