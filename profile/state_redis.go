package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/profile/learner"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// StateUnknown lists the feature columns the processor's state does not
// keep, so that an export from it leaves them missing: video durations and
// views (the clicks hash counts player_control records, not their
// durations) and the number of live sessions (the live hash holds only the
// current one).
var StateUnknown = []string{ColLiveSessions, ColVideoSeconds, ColVideoViews}

// ReadState builds one aggregate per student and course from the state
// the stream processor keeps in Redis (stream/state: DESIGN.md §5), with
// the columns an export from an events file (Accumulator with SetDTTW)
// has, but for StateUnknown:
//
//   - attendance and course visits: the term counts of `extra` and `study`
//     clicks ("k|course|term|kind" of {s:<id>}:clicks), summed over terms;
//   - study seconds: the term totals ("t|course|term" of {s:<id>}:study);
//   - final score: the course's result in its latest term ({s:<id>}:grades);
//   - windowed click counts: the processor's DTTW counts
//     ("d|course|window|kind" of {s:<id>}:dttw, and of {s:<id>}:clicks
//     where an earlier release left them), each course's window ids
//     from its first to its last cut into windows output windows
//     (CutWindows);
//   - attention and learning emotions: means over the per-second buckets
//     of the live hash, for the course of the current live session only
//     (the live state is a rolling horizon, so these describe the latest
//     session, not the whole course).
//
// cfg must carry the processor's Horizon (zero: the default). Students
// with no state at all are skipped. Reads run on workers goroutines
// (default 4), each student a few pipelined round trips; the result is
// sorted by student, then course.
func ReadState(ctx context.Context, rdb redis.UniversalClient, cfg state.Config, students []string, windows, workers int) ([]*Aggregate, error) {
	if windows < 1 || windows > MaxWindows {
		return nil, fmt.Errorf("%w: windows %d out of range 1..%d", ErrBadInput, windows, MaxWindows)
	}
	rd, err := state.NewReader(rdb, cfg)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = 4
	}
	per := make([][]*stateCourse, len(students))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(students); i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				per[i], errs[w] = readStudent(ctx, rd, rdb, students[i], windows)
				if errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// A course's windows are cut from the span of its DTTW ids over all
	// its students, as the events path cuts the span of its clicks.
	span := map[string][2]int64{}
	for _, cs := range per {
		for _, c := range cs {
			for id := range c.dttw {
				sp, ok := span[c.agg.Course]
				if !ok {
					sp = [2]int64{id, id}
				}
				span[c.agg.Course] = [2]int64{min(sp[0], id), max(sp[1], id)}
			}
		}
	}
	var out []*Aggregate
	for _, cs := range per {
		for _, c := range cs {
			sp := span[c.agg.Course]
			for id, counts := range c.dttw {
				w := CutWindows(id, sp[0], sp[1], windows)
				for k, n := range counts {
					c.agg.Windows[w][k] += int(n)
				}
			}
			out = append(out, c.agg)
		}
	}
	slices.SortFunc(out, func(x, y *Aggregate) int {
		if c := strings.Compare(x.Student, y.Student); c != 0 {
			return c
		}
		return strings.Compare(x.Course, y.Course)
	})
	return out, nil
}

// stateCourse is one student's course as read, before the course-wide
// window cut.
type stateCourse struct {
	agg  *Aggregate
	dttw map[int64][14]int64 // DTTW window id → counts by kind
}

// clicksKey is the processor's click-count hash of a student (DESIGN.md
// §5, apply.lua KEYS[4]). The state Reader does not return the DTTW
// counts, so they are read here by the documented key shapes: the dttw
// hash (state.DTTWKey), and the clicks hash, where releases before it kept
// them (a student's next click moves them, so a count is in one or the
// other).
func clicksKey(student string) string { return state.StudentTag(student) + ":clicks" }

func readStudent(ctx context.Context, rd *state.Reader, rdb redis.UniversalClient, student string, windows int) ([]*stateCourse, error) {
	courses := map[string]*stateCourse{}
	course := func(c string) *stateCourse {
		sc := courses[c]
		if sc == nil {
			a := NewAggregate(student, c, windows)
			a.Unknown = StateUnknown
			sc = &stateCourse{agg: a, dttw: map[int64][14]int64{}}
			courses[c] = sc
		}
		return sc
	}
	ac, err := rd.Academic(ctx, student)
	switch {
	case err == nil:
		for c, st := range ac.Study {
			g := course(c).agg
			for _, s := range st.ByTerm {
				g.StudySeconds += s
			}
		}
		for c, byTerm := range ac.Clicks {
			g := course(c).agg
			for _, kinds := range byTerm {
				g.SignIns += int(kinds[stream.KindExtra])
				g.StudyRecords += int(kinds[stream.KindStudy])
			}
		}
		// Grades come sorted by term: the last one of a course is its latest.
		for _, gr := range ac.Grades {
			course(gr.Course).agg.FinalScore = gr.Score
		}
	case !isNoState(err):
		return nil, err
	}
	pipe := rdb.Pipeline()
	dttw, legacy := pipe.HGetAll(ctx, state.DTTWKey(student)), pipe.HGetAll(ctx, clicksKey(student))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("state: read click counts of %s: %w", student, err)
	}
	for _, d := range []map[string]string{dttw.Val(), legacy.Val()} {
		for f, v := range d {
			parts := strings.Split(f, "|")
			if len(parts) != 4 || parts[0] != "d" {
				continue
			}
			id, err1 := strconv.ParseInt(parts[2], 10, 64)
			n, err2 := strconv.ParseInt(v, 10, 64)
			k := stream.KindIndex(parts[3])
			if err1 != nil || err2 != nil || k < 0 {
				continue
			}
			sc := course(parts[1])
			counts := sc.dttw[id]
			counts[k] += n
			sc.dttw[id] = counts
		}
	}
	live, err := rd.Live(ctx, student)
	switch {
	case err == nil && len(live.Seconds) > 0:
		g := course(live.Course).agg
		for _, s := range live.Seconds {
			g.AttentionSum += s.Attention * float64(s.Samples)
			g.ScoreSeconds += s.Samples
			for k, v := range s.Learning {
				g.LearningSum[k] += v * float64(s.LearningSamples)
			}
			g.LearningSeconds += s.LearningSamples
		}
	case err != nil && !isNoState(err):
		return nil, err
	}
	out := make([]*stateCourse, 0, len(courses))
	for _, c := range courses {
		out = append(out, c)
	}
	return out, nil
}

func isNoState(err error) bool { return errors.Is(err, state.ErrNoState) }

// WriteResult counts what WriteLearners did.
type WriteResult struct {
	// Written records were new or changed; Unchanged ones already held the
	// same values and were left as they were (with their earlier time).
	Written, Unchanged int
}

// writeBatch bounds the records of one pipelined round.
const writeBatch = 1000

// WriteLearners writes each record into its student's roster hash
// (stream/state.ProfileKey, field learner.Field(course)), so it carries the
// student's hash tag and lands on the student's shard. It is idempotent: a
// record whose values equal the stored ones is not rewritten, so running
// the same assignment twice leaves the state byte for byte as it was.
// Other fields of the hash (roster facts) are never touched.
func WriteLearners(ctx context.Context, rdb redis.UniversalClient, recs []StudentLearner) (WriteResult, error) {
	var res WriteResult
	for lo := 0; lo < len(recs); lo += writeBatch {
		batch := recs[lo:min(lo+writeBatch, len(recs))]
		pipe := rdb.Pipeline()
		gets := make([]*redis.StringCmd, len(batch))
		for i, r := range batch {
			gets[i] = pipe.HGet(ctx, state.ProfileKey(r.Student), learner.Field(r.Course))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return res, fmt.Errorf("profile: read stored learner records: %w", err)
		}
		pipe = rdb.Pipeline()
		n := 0
		for i, r := range batch {
			if old, err := gets[i].Result(); err == nil {
				var prev learner.Record
				if json.Unmarshal([]byte(old), &prev) == nil && prev.SameValues(&r.Record) {
					res.Unchanged++
					continue
				}
			}
			v, err := r.Record.Marshal()
			if err != nil {
				return res, fmt.Errorf("learner record of %s: %w", r.Student, err)
			}
			pipe.HSet(ctx, state.ProfileKey(r.Student), learner.Field(r.Course), v)
			n++
		}
		if n > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return res, fmt.Errorf("profile: write learner records: %w", err)
			}
		}
		res.Written += n
	}
	return res, nil
}
