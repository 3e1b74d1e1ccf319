package ingest

import (
	"context"
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
	bw, pw := p.CampusWindows()
	sigs, err := readSignals(ctx, rdb, student, now.Add(-max(bw, pw)), now)
	if err != nil {
		return nil, err
	}
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
	return c, nil
}
