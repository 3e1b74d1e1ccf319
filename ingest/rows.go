package ingest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
)

// Import kinds: what a file holds.
const (
	KindRoster   = "roster"
	KindContacts = "contacts"
	KindGrades   = "grades"
	KindSignals  = "signals"
)

// Kinds lists the import kinds.
var Kinds = []string{KindRoster, KindContacts, KindGrades, KindSignals}

// columns per kind; required ones first, marked with a trailing "!".
var columns = map[string][]string{
	KindRoster: {"student!", "name", "class", "unit", "minor", "under_14", "wants_degree", "graduation_year",
		"foreign_language_passed", "counsellor", "class_teacher", "guardian"},
	KindContacts: {"id!", "role!", "name", "email", "webhook"},
	KindGrades:   {"student!", "course!", "term!", "score!", "passed", "elective", "core", "date"},
	KindSignals:  {"student!", "kind!", "ts!", "value", "detail"},
}

// ContactRoles are the roles a contact may have; notification routes name them.
var ContactRoles = []string{"student", "guardian", "counsellor", "class_teacher", "instructor", "admin"}

// rowReader reads one row's cells by column name and collects errors.
type rowReader struct {
	t    *Table
	row  Row
	errs []RowError
	idx  map[string]int
}

func (r *rowReader) get(col string) string {
	if i, ok := r.idx[col]; ok && i < len(r.row.Values) {
		return r.row.Values[i]
	}
	return ""
}

func (r *rowReader) fail(col, format string, args ...any) {
	r.errs = append(r.errs, RowError{Row: r.row.Num, Column: col, Reason: fmt.Sprintf(format, args...)})
}

func (r *rowReader) ident(col string, required bool) string {
	v := r.get(col)
	if v == "" {
		if required {
			r.fail(col, "required")
		}
		return ""
	}
	if !stream.ValidIdent(v) {
		r.fail(col, "%q is not an id (1..64 letters, digits and -_.:@)", v)
		return ""
	}
	return v
}

// idents reads a ';'- or ','-separated list of ids.
func (r *rowReader) idents(col string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(r.get(col), func(c rune) bool { return c == ';' || c == ',' || c == '|' }) {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !stream.ValidIdent(p) {
			r.fail(col, "%q is not an id (1..64 letters, digits and -_.:@)", p)
			continue
		}
		out = append(out, p)
	}
	return out
}

// boolean reads yes/no words; ok is false when the cell is empty.
func (r *rowReader) boolean(col string) (v, ok bool) {
	s := strings.ToLower(r.get(col))
	switch s {
	case "":
		return false, false
	case "1", "true", "yes", "y", "t", "是", "√":
		return true, true
	case "0", "false", "no", "n", "f", "否", "×":
		return false, true
	}
	r.fail(col, "%q is not yes/no (1/0, true/false, yes/no, 是/否)", r.get(col))
	return false, false
}

func (r *rowReader) number(col string, lo, hi float64, required bool) (float64, bool) {
	s := r.get(col)
	if s == "" {
		if required {
			r.fail(col, "required")
		}
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		r.fail(col, "%q is not a number", s)
		return 0, false
	}
	if v < lo || v > hi {
		r.fail(col, "%v out of range %v..%v", v, lo, hi)
		return 0, false
	}
	return v, true
}

var timeLayouts = []string{
	"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04",
	"2006/01/02 15:04:05", "2006/01/02 15:04", "2006-01-02", "2006/01/02",
}

func (r *rowReader) time(col string, loc *time.Location, required bool) (time.Time, bool) {
	s := r.get(col)
	if s == "" {
		if required {
			r.fail(col, "required")
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		for _, l := range timeLayouts {
			if t, err = time.ParseInLocation(l, s, loc); err == nil {
				break
			}
		}
	}
	if err != nil {
		r.fail(col, "%q is not a time (RFC 3339, or 2006-01-02 15:04[:05] in %s)", s, loc)
		return time.Time{}, false
	}
	if y := t.Year(); y < 2000 || y > 2200 {
		r.fail(col, "year %d out of range 2000..2200", y)
		return time.Time{}, false
	}
	return t, true
}

// profileRow is one roster row: the profile hash fields it sets and the
// dashboard's roster entry.
type profileRow struct {
	student string
	fields  map[string]string
	entry   queue.RosterEntry
}

// contactRow is one contact: fields of ContactKey(id).
type contactRow struct {
	id     string
	fields map[string]string
}

func flag01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// parseRoster reads one roster row. Only columns present in the file are
// written, so a file with only student and class leaves the other fields
// of existing profiles alone.
func parseRoster(r *rowReader) *profileRow {
	p := &profileRow{student: r.ident("student", true), fields: map[string]string{}}
	has := func(c string) bool { _, ok := r.idx[c]; return ok }
	if has("name") {
		name := r.get("name")
		if len(name) > 128 {
			r.fail("name", "longer than 128 bytes")
		}
		p.fields["name"], p.entry.Name = name, name
	}
	for _, c := range []string{"class", "unit"} {
		if has(c) {
			p.fields[c] = r.ident(c, false)
		}
	}
	p.entry.Class, p.entry.Unit = p.fields["class"], p.fields["unit"]
	for _, c := range []string{"minor", "under_14", "wants_degree", "foreign_language_passed"} {
		if has(c) {
			if v, ok := r.boolean(c); ok {
				p.fields[c] = flag01(v)
			} else if r.get(c) == "" {
				p.fields[c] = "0"
			}
		}
	}
	p.entry.Minor = p.fields["minor"] == "1"
	if has("graduation_year") && r.get("graduation_year") != "" {
		if y, ok := r.number("graduation_year", 2000, 2200, false); ok {
			if y != math.Trunc(y) {
				r.fail("graduation_year", "%v is not a whole year", y)
			}
			p.fields["graduation_year"] = strconv.Itoa(int(y))
		}
	}
	for _, c := range []string{"counsellor", "class_teacher", "guardian"} {
		if has(c) {
			p.fields[c+"s"] = strings.Join(r.idents(c), ",")
		}
	}
	if p.fields["under_14"] == "1" && p.fields["minor"] == "0" {
		r.fail("under_14", "a student under 14 is a minor; minor says 0")
	}
	if p.fields["guardians"] != "" && p.fields["minor"] == "0" {
		// Guardians see warnings of minors only (DESIGN.md §1); an adult's
		// guardian column is most likely a stale export.
		r.fail("guardian", "student is not a minor; guardians are contacted for minors only")
	}
	p.entry.Student = p.student
	return p
}

func parseContact(r *rowReader) *contactRow {
	c := &contactRow{id: r.ident("id", true), fields: map[string]string{}}
	role := strings.ToLower(r.get("role"))
	ok := false
	for _, k := range ContactRoles {
		ok = ok || role == k
	}
	if !ok {
		r.fail("role", "%q is not one of %v", r.get("role"), ContactRoles)
	}
	c.fields["role"] = role
	c.fields["name"] = r.get("name")
	if e := r.get("email"); e != "" {
		at := strings.LastIndexByte(e, '@')
		if at < 1 || at == len(e)-1 || strings.ContainsAny(e, " <>\r\n,;") || len(e) > 254 {
			r.fail("email", "%q is not an e-mail address", e)
		}
		c.fields["email"] = e
	}
	if w := r.get("webhook"); w != "" {
		if !strings.HasPrefix(w, "https://") && !strings.HasPrefix(w, "http://") {
			r.fail("webhook", "%q is not an http(s) URL", w)
		}
		c.fields["webhook"] = w
	}
	return c
}

// idEpoch stamps the ids of rows without a time of their own, so that their
// ids depend on content only.
var idEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func parseGrade(r *rowReader, passMark float64, loc *time.Location, now time.Time) *stream.Grade {
	g := &stream.Grade{Header: stream.Header{V: stream.Version, Student: r.ident("student", true)}}
	g.Course = r.ident("course", true)
	g.Term = r.ident("term", true)
	g.Score, _ = r.number("score", 0, 100, true)
	if p, ok := r.boolean("passed"); ok {
		g.Passed = p
	} else {
		g.Passed = g.Score >= passMark
	}
	g.Elective, _ = r.boolean("elective")
	g.Core, _ = r.boolean("core")
	idTime, ts := idEpoch, now
	if t, ok := r.time("date", loc, false); ok {
		idTime, ts = t, t
	}
	g.TS = stream.At(ts)
	g.ID = DeterministicID(idTime, "grade", g.Student, g.Course, g.Term,
		strconv.FormatFloat(g.Score, 'f', -1, 64), flag01(g.Passed), flag01(g.Elective), flag01(g.Core))
	return g
}

func parseSignal(r *rowReader, loc *time.Location, source string) *Signal {
	s := &Signal{Header: stream.Header{V: stream.Version, Student: r.ident("student", true)}, Source: source}
	s.Kind = strings.ToLower(r.ident("kind", true))
	ts, _ := r.time("ts", loc, true)
	s.TS = stream.At(ts)
	s.Value, _ = r.number("value", -1e9, 1e9, false)
	s.Detail = r.get("detail")
	if len(s.Detail) > 200 {
		r.fail("detail", "longer than 200 bytes")
	}
	s.ID = DeterministicID(ts, "signal", s.Student, s.Kind, s.TS.Format(stream.TimeLayout),
		strconv.FormatFloat(s.Value, 'f', -1, 64), s.Detail)
	return s
}
