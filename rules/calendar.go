package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Date is a calendar day written "2006-01-02" in the policy file. It is
// interpreted in the calendar's time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// UnmarshalYAML parses a "YYYY-MM-DD" scalar.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "want a date YYYY-MM-DD")
	}
	t, err := time.Parse("2006-01-02", n.Value)
	if err != nil {
		return lineErr(n, fmt.Sprintf("%q is not a date YYYY-MM-DD", n.Value))
	}
	*d = Date{t.Year(), t.Month(), t.Day()}
	return nil
}

// lineErr reports a problem with node n the way yaml.v3 reports its own,
// so that decoding goes on and the problem is listed with its line.
func lineErr(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{"line " + strconv.Itoa(n.Line) + ": " + msg}}
}

// IsZero reports whether the date was not given.
func (d Date) IsZero() bool { return d == Date{} }

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// in returns midnight at the start of d in loc.
func (d Date) in(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// Ratio is a share written as a number (0.1) or a fraction ("2/3").
type Ratio float64

// UnmarshalYAML parses a number or "a/b".
func (r *Ratio) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "want a number or a fraction like 2/3")
	}
	s := strings.TrimSpace(n.Value)
	if a, b, ok := strings.Cut(s, "/"); ok {
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err1 != nil || err2 != nil || y == 0 {
			return lineErr(n, fmt.Sprintf("%q is not a fraction like 2/3", s))
		}
		*r = Ratio(x / y)
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return lineErr(n, fmt.Sprintf("%q is not a number or a fraction like 2/3", s))
	}
	*r = Ratio(x)
	return nil
}

// Term returns the term with id, or nil.
func (p *Policy) Term(id string) *Term {
	for i := range p.Calendar.Terms {
		if p.Calendar.Terms[i].ID == id {
			return &p.Calendar.Terms[i]
		}
	}
	return nil
}

// TermAt returns the term that contains t, or nil between terms.
func (p *Policy) TermAt(t time.Time) *Term {
	for i := range p.Calendar.Terms {
		tm := &p.Calendar.Terms[i]
		if !t.Before(tm.start) && t.Before(tm.end) {
			return tm
		}
	}
	return nil
}

// PeriodAt returns the term and the study period that contain t. ok is
// false between terms. The processor buckets study seconds by it.
func (p *Policy) PeriodAt(t time.Time) (term, period string, ok bool) {
	tm := p.TermAt(t)
	if tm == nil {
		return "", "", false
	}
	if i := tm.periodIndex(t); i >= 0 {
		return tm.ID, tm.Periods[i].Name, true
	}
	return tm.ID, "", false
}

// StartTime is the first instant of the term.
func (t *Term) StartTime() time.Time { return t.start }

// EndTime is the instant after the term's last day.
func (t *Term) EndTime() time.Time { return t.end }

// periodIndex returns the index of the period that contains at, or -1.
func (t *Term) periodIndex(at time.Time) int {
	for i := range t.Periods {
		if !at.Before(t.Periods[i].start) && at.Before(t.Periods[i].end) {
			return i
		}
	}
	return -1
}

// requiredHours returns the hours of online study the course requires in
// term up to at, per basis (see StudyRule.Basis), and the term's total, both
// before the difficulty coefficient. k is the index of the current period
// (-1 outside the term).
func (c *Course) requiredHours(term *Term, at time.Time, basis string) (soFar, total float64, k int) {
	k = term.periodIndex(at)
	hs := c.termHours[term.idx]
	for i := range term.Periods {
		h := hs[i]
		total += h
		switch {
		case k < 0:
		case i < k:
			soFar += h
		case i == k:
			switch basis {
			case BasisThrough:
				soFar += h
			case BasisProrated:
				pr := &term.Periods[i]
				frac := float64(at.Sub(pr.start)) / float64(pr.end.Sub(pr.start))
				soFar += h * math.Min(1, math.Max(0, frac))
			}
		}
	}
	return soFar, total, k
}

// TotalHours is the course's required study time over the term's periods,
// before the difficulty coefficient.
func (c *Course) TotalHours(term *Term) float64 {
	var total float64
	for _, h := range c.termHours[term.idx] {
		total += h
	}
	return total
}

// Study-rule bases.
const (
	BasisProrated  = "prorated"
	BasisCompleted = "completed"
	BasisThrough   = "through"
)
