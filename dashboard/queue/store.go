package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/classpulse/classpulse/stream"
	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for a warning ref or student the model does not hold.
var ErrNotFound = errors.New("not found")

// Record is the queue's view of one warning and its help loop.
type Record struct {
	Ref         string             `json:"ref"`
	Student     string             `json:"student,omitempty"`
	Session     string             `json:"session,omitempty"`
	Course      string             `json:"course,omitempty"`
	Unit        string             `json:"unit,omitempty"`
	Term        string             `json:"term,omitempty"`
	Category    string             `json:"category"`
	Level       string             `json:"level"`
	MaxLevel    string             `json:"max_level,omitempty"`
	FirstLevel  string             `json:"first_level,omitempty"`
	Rule        string             `json:"rule,omitempty"`
	Reason      string             `json:"reason,omitempty"`
	Evidence    map[string]float64 `json:"evidence,omitempty"`
	State       string             `json:"state"`
	Loop        string             `json:"loop"`
	Owner       string             `json:"owner,omitempty"`
	Confirmed   bool               `json:"confirmed"`
	ConfirmedBy string             `json:"confirmed_by,omitempty"`
	Serial      string             `json:"serial,omitempty"`
	Result      string             `json:"result,omitempty"`
	RaisedAt    time.Time          `json:"raised_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
	NoticedAt   *time.Time         `json:"noticed_at,omitempty"`
	ClosedAt    *time.Time         `json:"closed_at,omitempty"`
	// Warning is the latest warning event, exactly as on the topic.
	Warning json.RawMessage `json:"-"`
}

// RosterEntry is what the queue knows of a student beyond their events:
// the teaching unit (for unit filters, counsellor scopes and summaries),
// class, name and whether they are a minor (guardian access).
type RosterEntry struct {
	Student string `json:"student"`
	Unit    string `json:"unit,omitempty"`
	Class   string `json:"class,omitempty"`
	Name    string `json:"name,omitempty"`
	Minor   bool   `json:"minor,omitempty"`
}

// Store reads (and, for the roster, writes) the read model. It is safe for
// concurrent use and holds no state besides the client.
type Store struct {
	rdb redis.UniversalClient
}

// NewStore returns a store over rdb.
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

func msTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func recordFrom(m map[string]string) *Record {
	r := &Record{
		Ref: m["ref"], Student: m["student"], Session: m["session"], Course: m["course"], Unit: m["unit"],
		Term: m["term"], Category: m["category"], Level: m["level"], MaxLevel: m["max_level"],
		FirstLevel: m["first_level"], Rule: m["rule"], Reason: m["reason"], State: m["state"],
		Loop: m["loop"], Owner: m["owner"], Confirmed: m["confirmed"] == "1", ConfirmedBy: m["confirmed_by"],
		Serial: m["serial"], Result: m["result"], RaisedAt: msTime(m["raised_at"]), UpdatedAt: msTime(m["updated_at"]),
	}
	if t := msTime(m["noticed_at"]); !t.IsZero() {
		r.NoticedAt = &t
	}
	if t := msTime(m["closed_at"]); !t.IsZero() {
		r.ClosedAt = &t
	}
	if w := m["warning"]; w != "" {
		r.Warning = json.RawMessage(w)
		var ev struct {
			Evidence map[string]float64 `json:"evidence"`
		}
		if json.Unmarshal(r.Warning, &ev) == nil {
			r.Evidence = ev.Evidence
		}
	}
	return r
}

// Get returns the record of warning ref, or ErrNotFound.
func (s *Store) Get(ctx context.Context, ref string) (*Record, error) {
	m, err := s.rdb.HGetAll(ctx, recKey(ref)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: get %s: %w", ref, err)
	}
	if len(m) == 0 || m["category"] == "" {
		return nil, fmt.Errorf("queue: warning %s: %w", ref, ErrNotFound)
	}
	return recordFrom(m), nil
}

// Steps returns the help-loop steps of warning ref, oldest first.
func (s *Store) Steps(ctx context.Context, ref string) ([]*stream.Intervention, error) {
	m, err := s.rdb.HGetAll(ctx, stepsKey(ref)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: steps %s: %w", ref, err)
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	// Event ids are ULIDs, which sort by time.
	sort.Strings(ids)
	out := make([]*stream.Intervention, 0, len(ids))
	for _, id := range ids {
		var iv stream.Intervention
		if err := json.Unmarshal([]byte(m[id]), &iv); err == nil {
			out = append(out, &iv)
		}
	}
	return out, nil
}

// Filter selects records. Empty fields do not filter. The scope fields
// restrict to what a user may see: when ScopeStudents or ScopeUnits is
// non-nil, only records of those students or units are returned.
type Filter struct {
	Category, Level, State, Loop, Course, Unit, Student, Owner, Term string

	ScopeStudents []string
	ScopeUnits    []string
	// ExcludeCategories drops records of these categories.
	ExcludeCategories []string
	// Limit bounds the records returned (default 100, at most 1000);
	// Offset skips the first records, newest first.
	Limit, Offset int
}

func (f *Filter) dims() map[string]string {
	return map[string]string{
		"category": f.Category, "level": f.Level, "state": f.State, "loop": f.Loop, "course": f.Course,
		"unit": f.Unit, "student": f.Student, "owner": f.Owner, "term": f.Term,
	}
}

// List returns the records matching f, newest raised first, and how many
// matched in all.
func (s *Store) List(ctx context.Context, f Filter) ([]*Record, int, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	var sets []string
	for _, d := range Dimensions {
		if v := f.dims()[d]; v != "" {
			sets = append(sets, idxKey(d, v))
		}
	}
	var refs []string
	var err error
	if len(sets) > 0 {
		refs, err = s.rdb.SInter(ctx, sets...).Result()
	} else {
		refs, err = s.rdb.ZRevRange(ctx, keyAll, 0, -1).Result()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("queue: list: %w", err)
	}
	recs, err := s.getMany(ctx, refs)
	if err != nil {
		return nil, 0, err
	}
	out := recs[:0]
	for _, r := range recs {
		if f.ScopeStudents != nil || f.ScopeUnits != nil {
			if !slices.Contains(f.ScopeStudents, r.Student) && (r.Unit == "" || !slices.Contains(f.ScopeUnits, r.Unit)) {
				continue
			}
		}
		if slices.Contains(f.ExcludeCategories, r.Category) {
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].RaisedAt.Equal(out[j].RaisedAt) {
			return out[i].RaisedAt.After(out[j].RaisedAt)
		}
		return out[i].Ref > out[j].Ref
	})
	total := len(out)
	if f.Offset >= len(out) {
		return []*Record{}, total, nil
	}
	out = out[f.Offset:]
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, total, nil
}

func (s *Store) getMany(ctx context.Context, refs []string) ([]*Record, error) {
	out := make([]*Record, 0, len(refs))
	for start := 0; start < len(refs); start += 500 {
		end := min(start+500, len(refs))
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, 0, end-start)
		for _, ref := range refs[start:end] {
			cmds = append(cmds, pipe.HGetAll(ctx, recKey(ref)))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("queue: reading records: %w", err)
		}
		for _, c := range cmds {
			if m := c.Val(); len(m) > 0 && m["category"] != "" {
				out = append(out, recordFrom(m))
			}
		}
	}
	return out, nil
}

// Unit returns the student's teaching unit from the roster, or "".
func (s *Store) Unit(ctx context.Context, student string) (string, error) {
	e, err := s.Roster(ctx, student)
	if err != nil {
		return "", err
	}
	return e.Unit, nil
}

// Roster returns the roster entry of a student, or ErrNotFound.
func (s *Store) Roster(ctx context.Context, student string) (*RosterEntry, error) {
	v, err := s.rdb.HGet(ctx, keyRoster, student).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: roster %s: %w", student, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: roster: %w", err)
	}
	var e RosterEntry
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return nil, fmt.Errorf("queue: roster entry of %s: %w", student, err)
	}
	return &e, nil
}

// SetRoster stores roster entries (an admin's upload). Warnings raised
// afterwards carry the unit; ReindexUnits updates existing ones.
func (s *Store) SetRoster(ctx context.Context, entries []RosterEntry) error {
	if len(entries) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(entries))
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		args = append(args, e.Student, string(b))
	}
	if err := s.rdb.HSet(ctx, keyRoster, args...).Err(); err != nil {
		return fmt.Errorf("queue: set roster: %w", err)
	}
	return s.reindexUnits(ctx, entries)
}

// reindexUnits moves existing records of the given students to their unit.
func (s *Store) reindexUnits(ctx context.Context, entries []RosterEntry) error {
	for _, e := range entries {
		refs, err := s.rdb.SMembers(ctx, idxKey("student", e.Student)).Result()
		if err != nil {
			return fmt.Errorf("queue: reindex: %w", err)
		}
		for _, ref := range refs {
			old, err := s.rdb.HGet(ctx, recKey(ref), "unit").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("queue: reindex: %w", err)
			}
			if old == e.Unit {
				continue
			}
			pipe := s.rdb.TxPipeline()
			if old != "" {
				pipe.SRem(ctx, idxKey("unit", old), ref)
			}
			if e.Unit != "" {
				pipe.SAdd(ctx, idxKey("unit", e.Unit), ref)
			}
			pipe.HSet(ctx, recKey(ref), "unit", e.Unit)
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("queue: reindex: %w", err)
			}
		}
	}
	return nil
}

// TermOf names the academic term a time falls in: February to July is
// "<year>-spring", August to January "<year>-autumn" (January belonging
// to the autumn term that began the year before).
func TermOf(t time.Time) string {
	t = t.UTC()
	switch m := t.Month(); {
	case m >= time.February && m <= time.July:
		return strconv.Itoa(t.Year()) + "-spring"
	case m == time.January:
		return strconv.Itoa(t.Year()-1) + "-autumn"
	default:
		return strconv.Itoa(t.Year()) + "-autumn"
	}
}
