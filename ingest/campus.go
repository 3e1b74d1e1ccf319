package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/rules"
)

// Signal kinds the campus rules read besides the policy's activity kinds.
const (
	// KindAttendance is one class session of a course: detail = course id,
	// value 1 attended, 0 absent.
	KindAttendance = "attendance"
	// KindCard is one campus-card transaction; value = amount spent.
	KindCard = "card"
)

// ReadCampus summarises a student's imported signals up to now for the
// behaviour and participation rules of p (rules.Campus): attendance per
// course and campus-card regularity over the behaviour window, activities
// over the participation window. Days are counted in the policy's zone.
func ReadCampus(ctx context.Context, rdb redis.UniversalClient, student string, p *rules.Policy, now time.Time) (*rules.Campus, error) {
	var bad error
	cs, err := ReadCampusMany(ctx, rdb, []CampusRead{{Student: student, Now: now}}, p, func(_ string, err error) { bad = err })
	if err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, fmt.Errorf("signals of %s: unreadable entry: %w", student, bad)
	}
	return cs[0], nil
}

// CampusRead names one student whose signals ReadCampusMany reads, up to
// Now.
type CampusRead struct {
	Student string
	Now     time.Time
}

// ReadCampusMany is ReadCampus for several students in one pipelined round
// trip; the summaries come back in the order of reads. An error is a
// failed read, worth retrying. Entries that do not decode (written to
// Redis by something other than classpulse import) are left out of the
// summaries and reported through skipped, so that one bad entry neither
// stops the processor nor hides the student's other signals.
func ReadCampusMany(ctx context.Context, rdb redis.UniversalClient, reads []CampusRead, p *rules.Policy, skipped func(student string, err error)) ([]*rules.Campus, error) {
	if len(reads) == 0 {
		return nil, nil
	}
	bw, pw := p.CampusWindows()
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(reads))
	for i, r := range reads {
		cmds[i] = rangeSignals(ctx, pipe, r.Student, r.Now.Add(-max(bw, pw)), r.Now)
	}
	// Each command's own error is reported below, with its student.
	_, _ = pipe.Exec(ctx)
	out := make([]*rules.Campus, len(reads))
	for i, r := range reads {
		sigs, bad, err := parseSignals(r.Student, cmds[i])
		if err != nil {
			return nil, err
		}
		if bad != nil && skipped != nil {
			skipped(r.Student, bad)
		}
		out[i] = campusOf(sigs, p, r.Now)
	}
	return out, nil
}

// campusOf summarises one student's signals (see ReadCampus).
func campusOf(sigs []Signal, p *rules.Policy, now time.Time) *rules.Campus {
	bw, pw := p.CampusWindows()
	c := &rules.Campus{Attendance: map[string]rules.Attendance{}}
	bFrom, pFrom := now.Add(-bw), now.Add(-pw)
	var card []Signal
	attended := map[string]int{}
	for _, s := range sigs {
		if !s.TS.Before(pFrom) && slices.Contains(p.ActivityKinds(), s.Kind) {
			c.Activities++
		}
		if s.TS.Before(bFrom) {
			continue
		}
		switch s.Kind {
		case KindCard:
			card = append(card, s)
		case KindAttendance:
			if s.Detail == "" {
				continue
			}
			a := c.Attendance[s.Detail]
			a.Sessions++
			c.Attendance[s.Detail] = a
			if s.Value > 0 {
				attended[s.Detail]++
			}
		}
	}
	for course, a := range c.Attendance {
		a.Rate = float64(attended[course]) / float64(a.Sessions)
		c.Attendance[course] = a
	}
	if st := summarise(card, p.Location())[KindCard]; st != nil {
		c.CardDays, c.CardCV = st.Days, st.DailyCV
	}
	return c
}
