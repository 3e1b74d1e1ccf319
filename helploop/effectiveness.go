package helploop

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
)

// NoPlaybook labels warnings that got no plan with a playbook.
const NoPlaybook = "none"

// EffectivenessRow is one line of the effectiveness report: the students
// warned in one category whose latest warning of the term was worked with
// one playbook, how many recovered and how fast.
type EffectivenessRow struct {
	Category string `json:"category"`
	Playbook string `json:"playbook"`
	// Warned counts distinct students; Recovered those whose latest
	// warning in the row recovered: it cleared (the condition no longer
	// held) or was closed as helped.
	Warned    int     `json:"warned"`
	Recovered int     `json:"recovered"`
	Share     float64 `json:"share"`
	// MedianDays is the median time from raising to recovery over the
	// recovered students, in days; nil when nobody recovered.
	MedianDays *float64 `json:"median_days"`
	// Escalated counts students whose warning the follow-up raised to red.
	Escalated int `json:"escalated"`
}

// Effectiveness is the report of one term.
type Effectiveness struct {
	Term string             `json:"term"`
	Rows []EffectivenessRow `json:"rows"`
	// Total sums the rows (a student in two categories counts twice).
	Total EffectivenessRow `json:"total"`
}

// recovery is when a warning record recovered, or zero.
func recovery(r *queue.Record) time.Time {
	var at time.Time
	if r.State == stream.StateCleared && len(r.Warning) > 0 {
		var w struct {
			TS stream.Time `json:"ts"`
		}
		if json.Unmarshal(r.Warning, &w) == nil {
			at = w.TS.Time
		}
	}
	if r.Result == "helped" && r.ClosedAt != nil && (at.IsZero() || r.ClosedAt.Before(at)) {
		at = *r.ClosedAt
	}
	return at
}

// Report computes the effectiveness report of term over the warnings f
// selects (its scope fields restrict it to what the reader may see; its
// Term is set to term). Live signals have no help loop and are left out.
func Report(ctx context.Context, rdb redis.UniversalClient, term string, f queue.Filter) (*Effectiveness, error) {
	store := queue.NewStore(rdb)
	f.Term, f.Offset, f.Limit = term, 0, 1000
	f.ExcludeCategories = append(f.ExcludeCategories, stream.CategoryEngagement, stream.CategoryClass)
	var recs []*queue.Record
	for {
		page, total, err := store.List(ctx, f)
		if err != nil {
			return nil, err
		}
		recs = append(recs, page...)
		f.Offset += len(page)
		if len(page) == 0 || f.Offset >= total {
			break
		}
	}
	// The latest warning per (student, category) decides the student.
	latest := map[[2]string]*queue.Record{}
	for _, r := range recs {
		if r.Student == "" {
			continue
		}
		k := [2]string{r.Student, r.Category}
		if o := latest[k]; o == nil || r.RaisedAt.After(o.RaisedAt) {
			latest[k] = r
		}
	}
	type acc struct {
		row  EffectivenessRow
		days []float64
	}
	groups := map[[2]string]*acc{}
	for _, r := range latest {
		pb, escalated, err := planOutcome(ctx, rdb, r.Ref)
		if err != nil {
			return nil, err
		}
		k := [2]string{r.Category, pb}
		g := groups[k]
		if g == nil {
			g = &acc{row: EffectivenessRow{Category: r.Category, Playbook: pb}}
			groups[k] = g
		}
		g.row.Warned++
		if escalated {
			g.row.Escalated++
		}
		if at := recovery(r); !at.IsZero() {
			g.row.Recovered++
			g.days = append(g.days, at.Sub(r.RaisedAt).Hours()/24)
		}
	}
	out := &Effectiveness{Term: term, Rows: []EffectivenessRow{}, Total: EffectivenessRow{Category: "all", Playbook: "all"}}
	var all []float64
	for _, g := range groups {
		g.row.Share = share(g.row.Recovered, g.row.Warned)
		g.row.MedianDays = median(g.days)
		out.Rows = append(out.Rows, g.row)
		out.Total.Warned += g.row.Warned
		out.Total.Recovered += g.row.Recovered
		out.Total.Escalated += g.row.Escalated
		all = append(all, g.days...)
	}
	out.Total.Share = share(out.Total.Recovered, out.Total.Warned)
	out.Total.MedianDays = median(all)
	sort.Slice(out.Rows, func(i, j int) bool {
		if out.Rows[i].Category != out.Rows[j].Category {
			return out.Rows[i].Category < out.Rows[j].Category
		}
		return out.Rows[i].Playbook < out.Rows[j].Playbook
	})
	return out, nil
}

// planOutcome returns the playbook of the latest plan the loop pinned on a
// warning (NoPlaybook if none) and whether the follow-up escalated it.
func planOutcome(ctx context.Context, rdb redis.UniversalClient, ref string) (string, bool, error) {
	h, err := rdb.HGetAll(ctx, planKey(ref)).Result()
	if err != nil {
		return "", false, fmt.Errorf("helploop: plan state of %s: %w", ref, err)
	}
	// Plan step ids are ULIDs: the greatest is the latest plan.
	pb, latest, escalated := NoPlaybook, "", false
	for k, v := range h {
		if plan, ok := strings.CutPrefix(k, "playbook:"); ok && v != "-" && plan > latest {
			pb, latest = v, plan
		}
		if strings.HasPrefix(k, "done:") && strings.Contains(v, `"result":"`+ResultEscalated+`"`) {
			escalated = true
		}
	}
	return pb, escalated, nil
}

func share(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(int(float64(n)/float64(d)*1000+0.5)) / 1000
}

func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	m = float64(int(m*10+0.5)) / 10
	return &m
}

// CSV renders the report as CSV rows with a header, for spreadsheets.
func (e *Effectiveness) CSV() [][]string {
	out := [][]string{{"term", "category", "playbook", "warned", "recovered", "share", "median_days_to_recovery", "escalated"}}
	row := func(r EffectivenessRow) []string {
		md := ""
		if r.MedianDays != nil {
			md = fmt.Sprint(*r.MedianDays)
		}
		return []string{e.Term, r.Category, r.Playbook, fmt.Sprint(r.Warned), fmt.Sprint(r.Recovered), fmt.Sprint(r.Share), md, fmt.Sprint(r.Escalated)}
	}
	for _, r := range e.Rows {
		out = append(out, row(r))
	}
	return append(out, row(e.Total))
}
