package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// ContactKey is the Redis hash of one person notifications can reach:
// fields role, name, email, webhook. Roster rows name contacts by id in
// their counsellor, class_teacher and guardian columns.
func ContactKey(id string) string { return "classpulse:contact:" + id }

// ImportConfig configures an Importer. Kind is required; every other field
// documents its default.
type ImportConfig struct {
	// Kind is what the file holds: roster, contacts, grades or signals.
	Kind string
	// DryRun reads and checks every row and reports, writing nothing.
	DryRun bool
	// AllowPartial writes the good rows of a file that has bad ones.
	// Default false: one bad row and nothing is written, so a fixed file
	// can simply be imported again.
	AllowPartial bool
	// PassMark is the score at or above which a grade row without a
	// passed column counts as passed. Default 60.
	PassMark float64
	// Location reads times written without a zone. Default UTC.
	Location *time.Location
	// Source names where signal rows come from ("card-system"); it is
	// stored on each signal. Default "import".
	Source string
	// BatchSize is the most events per Publish call. Default 500.
	BatchSize int
}

func (c *ImportConfig) applyDefaults() {
	if c.PassMark == 0 {
		c.PassMark = 60
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Source == "" {
		c.Source = "import"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
}

// Validate reports a configuration that cannot work.
func (c *ImportConfig) Validate() error {
	if !slices.Contains(Kinds, c.Kind) {
		return fmt.Errorf("import: kind %q is not one of %v", c.Kind, Kinds)
	}
	if c.PassMark < 0 || c.PassMark > 100 {
		return fmt.Errorf("import: pass mark %v out of range 0..100", c.PassMark)
	}
	if !stream.ValidIdent(c.Source) {
		return fmt.Errorf("import: source %q is not an id", c.Source)
	}
	return nil
}

// Report says what an import found and did.
type Report struct {
	Kind    string     `json:"kind"`
	Rows    int        `json:"rows"`
	Valid   int        `json:"valid"`
	Errors  []RowError `json:"errors,omitempty"`
	Ignored []string   `json:"ignored_columns,omitempty"`
	DryRun  bool       `json:"dry_run"`
	// Written is true when anything was written.
	Written bool `json:"written"`
	// Events counts events published (grades, signals); Keys counts Redis
	// hashes or sets written (profiles, contacts, signal views).
	Events int `json:"events"`
	Keys   int `json:"keys"`
	// IDs are the event ids, in row order; the same file gives the same ids.
	IDs []string `json:"ids,omitempty"`
}

// Importer checks and writes one file. Profiles and contacts go to Redis;
// grades and signals go to Kafka (signals also to a Redis view).
type Importer struct {
	cfg    ImportConfig
	rdb    redis.UniversalClient
	pub    Publisher
	logger *slog.Logger
	now    func() time.Time
}

// NewImporter builds an importer. rdb and pub may be nil for a dry run, or
// when the kind needs only one of them (roster and contacts need rdb;
// grades need pub; signals need both).
func NewImporter(cfg ImportConfig, rdb redis.UniversalClient, pub Publisher, logger *slog.Logger) (*Importer, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.DryRun {
		needR := cfg.Kind != KindGrades
		needP := cfg.Kind == KindGrades || cfg.Kind == KindSignals
		if needR && rdb == nil || needP && pub == nil {
			return nil, fmt.Errorf("import %s: missing Redis or Kafka connection", cfg.Kind)
		}
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Importer{cfg: cfg, rdb: rdb, pub: pub, logger: logger.With("component", "import", "kind", cfg.Kind), now: time.Now}, nil
}

// parsed holds the checked rows of a table.
type parsed struct {
	profiles []*profileRow
	contacts []*contactRow
	events   []stream.Event
}

// Check reads every row of t and returns what would be written and the
// report. A missing required column is a file error.
func (im *Importer) Check(t *Table) (*parsed, *Report, error) {
	rep := &Report{Kind: im.cfg.Kind, Rows: len(t.Rows), DryRun: im.cfg.DryRun}
	idx := map[string]int{}
	for i, h := range t.Header {
		if h != "" {
			idx[h] = i
		}
	}
	known := map[string]bool{}
	for _, c := range columns[im.cfg.Kind] {
		name, req := strings.CutSuffix(c, "!")
		known[name] = true
		if _, ok := idx[name]; req && !ok {
			return nil, nil, fmt.Errorf("%w: %s file lacks required column %q (header: %s)", ErrBadFile, im.cfg.Kind, name, strings.Join(t.Header, ","))
		}
	}
	for _, h := range t.Header {
		if h != "" && !known[h] {
			rep.Ignored = append(rep.Ignored, h)
		}
	}
	p := &parsed{}
	seen := map[string]int{}
	now := im.now()
	for _, row := range t.Rows {
		r := &rowReader{t: t, row: row, idx: idx}
		var key string
		var add func()
		switch im.cfg.Kind {
		case KindRoster:
			pr := parseRoster(r)
			key, add = pr.student, func() { p.profiles = append(p.profiles, pr) }
		case KindContacts:
			c := parseContact(r)
			key, add = c.id, func() { p.contacts = append(p.contacts, c) }
		case KindGrades:
			g := parseGrade(r, im.cfg.PassMark, im.cfg.Location, now)
			key = g.Student + "|" + g.Course + "|" + g.Term
			add = func() { p.events = append(p.events, g) }
			if len(r.errs) == 0 {
				if err := g.Validate(); err != nil {
					r.fail(fieldOf(err), "%v", err)
				}
			}
		case KindSignals:
			s := parseSignal(r, im.cfg.Location, im.cfg.Source)
			key, add = s.ID, func() { p.events = append(p.events, s) }
			if len(r.errs) == 0 {
				if err := s.Validate(); err != nil {
					r.fail(fieldOf(err), "%v", err)
				}
			}
		}
		if len(r.errs) == 0 && key != "" {
			if prev, dup := seen[key]; dup {
				r.fail("", "repeats row %d (same %s)", prev, dupWhat[im.cfg.Kind])
			} else {
				seen[key] = row.Num
			}
		}
		if len(r.errs) > 0 {
			rep.Errors = append(rep.Errors, r.errs...)
			continue
		}
		add()
		rep.Valid++
	}
	for _, e := range p.events {
		rep.IDs = append(rep.IDs, e.EventHeader().ID)
	}
	return p, rep, nil
}

var dupWhat = map[string]string{
	KindRoster: "student", KindContacts: "id", KindGrades: "student, course and term", KindSignals: "content",
}

func fieldOf(err error) string {
	var fe *stream.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// ErrRowErrors is returned by Import when rows are bad and neither DryRun
// nor AllowPartial is set; the report lists them.
var ErrRowErrors = errors.New("import refused: the file has bad rows; nothing was written")

// Import checks t and, unless DryRun, writes it. Events go to Kafka first
// (acknowledged by every replica), then Redis views, so a failure part-way
// is repaired by importing the same file again: the same rows give the same
// event ids and the same Redis fields.
func (im *Importer) Import(ctx context.Context, t *Table) (*Report, error) {
	p, rep, err := im.Check(t)
	if err != nil {
		return nil, err
	}
	if im.cfg.DryRun {
		return rep, nil
	}
	if len(rep.Errors) > 0 && !im.cfg.AllowPartial {
		return rep, ErrRowErrors
	}
	for i := 0; i < len(p.events); i += im.cfg.BatchSize {
		batch := p.events[i:min(i+im.cfg.BatchSize, len(p.events))]
		if err := im.pub.Publish(ctx, batch...); err != nil {
			return rep, fmt.Errorf("import %s: %d of %d events published before: %w (import the same file again; ids are stable)", im.cfg.Kind, i, len(p.events), err)
		}
		rep.Events += len(batch)
		rep.Written = true
	}
	if err := im.writeRedis(ctx, p, rep); err != nil {
		return rep, err
	}
	im.logger.Info("imported", "rows", rep.Rows, "valid", rep.Valid, "bad", len(rep.Errors), "events", rep.Events, "keys", rep.Keys)
	return rep, nil
}

func (im *Importer) writeRedis(ctx context.Context, p *parsed, rep *Report) error {
	if im.rdb == nil {
		return nil
	}
	pipe := im.rdb.Pipeline()
	n := 0
	for _, pr := range p.profiles {
		if len(pr.fields) > 0 {
			if v, ok := pr.fields["under_14"]; ok {
				// First, with the mark that makes the next score check
				// the consent gate again.
				state.SetUnder14(ctx, pipe, pr.student, v)
			}
			pipe.HSet(ctx, state.ProfileKey(pr.student), mapArgs(pr.fields)...)
			n++
		}
	}
	for _, c := range p.contacts {
		pipe.HSet(ctx, ContactKey(c.id), mapArgs(c.fields)...)
		n++
	}
	for _, e := range p.events {
		s, ok := e.(*Signal)
		if !ok {
			continue
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		pipe.ZAdd(ctx, SignalsKey(s.Student), redis.Z{Score: float64(s.TS.UnixMilli()), Member: string(b)})
		n++
	}
	if n > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("import %s: writing Redis: %w (import the same file again)", im.cfg.Kind, err)
		}
		rep.Keys, rep.Written = n, true
	}
	if len(p.profiles) > 0 {
		entries := make([]queue.RosterEntry, 0, len(p.profiles))
		for _, pr := range p.profiles {
			entries = append(entries, pr.entry)
		}
		// The dashboard's queue read model keeps its own roster (unit,
		// class, name, minor) for scoping counsellors; keep it in step.
		if err := queue.NewStore(im.rdb).SetRoster(ctx, entries); err != nil {
			return fmt.Errorf("import roster: dashboard roster: %w", err)
		}
	}
	return nil
}

func mapArgs(m map[string]string) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]any, 0, 2*len(m))
	for _, k := range keys {
		out = append(out, k, m[k])
	}
	return out
}
