package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SignalStats summarises one kind of a student's signals over a time range:
// what a behaviour rule (irregular campus-card use) or a participation
// rule (no club, sport or social activity for N weeks) reads.
type SignalStats struct {
	Kind string
	// Count is the number of signals; Sum adds their values.
	Count int
	Sum   float64
	// Days is the number of distinct local days with a signal.
	Days int
	// Last is the time of the latest signal (zero when Count is 0).
	Last time.Time
	// DailyCV is the coefficient of variation (stddev / mean) of the
	// per-day sums over the days with a signal: 0 for perfectly regular
	// use, larger for bursts; 0 with fewer than two days.
	DailyCV float64
}

// ReadSignalStats reads SignalsKey(student) for times in [from, to) and
// summarises it per kind, days counted in loc. Kinds without signals in the
// range are absent from the map.
func ReadSignalStats(ctx context.Context, rdb redis.UniversalClient, student string, from, to time.Time, loc *time.Location) (map[string]*SignalStats, error) {
	sigs, err := readSignals(ctx, rdb, student, from, to)
	if err != nil {
		return nil, err
	}
	return summarise(sigs, loc), nil
}

// readSignals reads SignalsKey(student) for times in [from, to), oldest first.
func readSignals(ctx context.Context, rdb redis.UniversalClient, student string, from, to time.Time) ([]Signal, error) {
	sigs, bad, err := parseSignals(student, rangeSignals(ctx, rdb, student, from, to))
	if err == nil && bad != nil {
		err = fmt.Errorf("signals of %s: unreadable entry: %w", student, bad)
	}
	return sigs, err
}

// rangeSignals queues (on a pipeline) or runs the read of readSignals.
func rangeSignals(ctx context.Context, c redis.Cmdable, student string, from, to time.Time) *redis.StringSliceCmd {
	return c.ZRangeByScore(ctx, SignalsKey(student), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMilli(), 10), Max: "(" + strconv.FormatInt(to.UnixMilli(), 10),
	})
}

// parseSignals decodes the entries rangeSignals read. err is the read's
// error; entries that do not decode are left out, and bad is the first
// one's decoding error.
func parseSignals(student string, cmd *redis.StringSliceCmd) (sigs []Signal, bad, err error) {
	vals, err := cmd.Result()
	if err != nil {
		return nil, nil, fmt.Errorf("signals of %s: %w", student, err)
	}
	sigs = make([]Signal, 0, len(vals))
	for _, v := range vals {
		var s Signal
		if err := json.Unmarshal([]byte(v), &s); err != nil {
			if bad == nil {
				bad = err
			}
			continue
		}
		sigs = append(sigs, s)
	}
	return sigs, bad, nil
}

// summarise summarises signals per kind, days counted in loc.
func summarise(sigs []Signal, loc *time.Location) map[string]*SignalStats {
	if loc == nil {
		loc = time.UTC
	}
	out := map[string]*SignalStats{}
	perDay := map[string]map[string]float64{}
	for _, s := range sigs {
		st := out[s.Kind]
		if st == nil {
			st = &SignalStats{Kind: s.Kind}
			out[s.Kind], perDay[s.Kind] = st, map[string]float64{}
		}
		st.Count++
		st.Sum += s.Value
		if s.TS.After(st.Last) {
			st.Last = s.TS.Time
		}
		day := s.TS.In(loc).Format("2006-01-02")
		perDay[s.Kind][day] += s.Value
	}
	for kind, st := range out {
		days := perDay[kind]
		st.Days = len(days)
		if st.Days < 2 {
			continue
		}
		mean := 0.0
		for _, v := range days {
			mean += v
		}
		mean /= float64(st.Days)
		if mean == 0 {
			continue
		}
		ss := 0.0
		for _, v := range days {
			ss += (v - mean) * (v - mean)
		}
		st.DailyCV = math.Sqrt(ss/float64(st.Days)) / math.Abs(mean)
	}
	return out
}
