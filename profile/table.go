package profile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Table is a feature table: one row per student (or student and course),
// numeric feature columns, and the text columns that describe the row.
// Missing cells are NaN until imputed.
type Table struct {
	IDs     []string
	Columns []string    // feature columns, in input order
	Rows    [][]float64 // Rows[i][j] is column j of row i
	// Labels holds the raw label column when one was asked for.
	Labels []string
	// Text holds the basic columns (class, name, course …) by name.
	Text map[string][]string
}

// Len returns the number of rows.
func (t *Table) Len() int { return len(t.Rows) }

// Column returns the index of a feature column, or -1.
func (t *Table) Column(name string) int { return slices.Index(t.Columns, name) }

// Select returns the rows restricted to the named columns, in that order;
// the rows share no memory with t.
func (t *Table) Select(cols []string) ([][]float64, error) {
	idx := make([]int, len(cols))
	for k, c := range cols {
		if idx[k] = t.Column(c); idx[k] < 0 {
			return nil, badInput("the table has no column %q", c)
		}
	}
	flat := make([]float64, len(t.Rows)*len(cols))
	out := make([][]float64, len(t.Rows))
	for i, r := range t.Rows {
		o := flat[i*len(cols) : (i+1)*len(cols)]
		for k, j := range idx {
			o[k] = r[j]
		}
		out[i] = o
	}
	return out, nil
}

// CSVOptions says how to read a feature table.
type CSVOptions struct {
	// ID is the id column; default "id".
	ID string
	// Label is the label column (a 0–100 score or a class name); empty
	// when the table carries none.
	Label string
	// Exclude lists further columns to ignore.
	Exclude []string
	// MaxRows bounds the rows read; default 5,000,000.
	MaxRows int
	// Source names the input in errors; default "csv".
	Source string
}

// Limits of a CSV feature table.
const (
	maxColumns     = 4096
	defaultMaxRows = 5_000_000
	// maxRowErrors stops reading an input that is wrong throughout.
	maxRowErrors = 10_000
)

// IsMissing reports whether a cell is one of the documented spellings of a
// missing value: empty, "NA", "N/A", "NaN", "null" (any case). A missing
// feature is imputed with the column median of the training data.
func IsMissing(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "na", "n/a", "nan", "null":
		return true
	}
	return false
}

// ReadCSV reads a feature table with a header row. The id column and the
// label column are required in every row; basic columns (BasicColumns) are
// kept as text; every other column must hold a finite number or a missing
// value (IsMissing) in every row. All bad rows are reported together in an
// *InputError naming row, line, column and reason.
func ReadCSV(r io.Reader, opt CSVOptions) (*Table, error) {
	if opt.ID == "" {
		opt.ID = "id"
	}
	if opt.MaxRows <= 0 {
		opt.MaxRows = defaultMaxRows
	}
	if opt.Source == "" {
		opt.Source = "csv"
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, badInput("%s: empty input, want a header row", opt.Source)
	}
	if err != nil {
		return nil, badInput("%s: header: %v", opt.Source, err)
	}
	header = slices.Clone(header)
	if len(header) > maxColumns {
		return nil, badInput("%s: %d columns, at most %d", opt.Source, len(header), maxColumns)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	}
	t := &Table{Text: map[string][]string{}}
	idCol, labelCol := -1, -1
	type feat struct{ src, dst int }
	var feats []feat
	var texts []int
	seen := map[string]bool{}
	for j, h := range header {
		h = strings.TrimSpace(h)
		header[j] = h
		if h == "" {
			return nil, badInput("%s: header column %d has no name", opt.Source, j+1)
		}
		if seen[h] {
			return nil, badInput("%s: header names column %q twice", opt.Source, h)
		}
		seen[h] = true
		switch {
		case h == opt.ID:
			idCol = j
		case opt.Label != "" && h == opt.Label:
			labelCol = j
		case slices.Contains(opt.Exclude, h):
		case GroupOf(h) == GroupBasic:
			texts = append(texts, j)
		default:
			feats = append(feats, feat{j, len(t.Columns)})
			t.Columns = append(t.Columns, h)
		}
	}
	if idCol < 0 {
		return nil, badInput("%s: no id column %q in the header %v", opt.Source, opt.ID, header)
	}
	if opt.Label != "" && labelCol < 0 {
		return nil, badInput("%s: no label column %q in the header %v", opt.Source, opt.Label, header)
	}
	if len(feats) == 0 {
		return nil, badInput("%s: no feature columns besides id, label and basic columns", opt.Source)
	}
	bad := &InputError{Source: opt.Source}
	row := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		row++
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: read row %d: %w", opt.Source, row, err)
			}
			bad.add(&RowError{Row: row, Line: pe.Line, Reason: "unreadable CSV: " + pe.Err.Error()})
			if bad.Total >= maxRowErrors {
				break
			}
			continue
		}
		line := 0
		if len(rec) > 0 {
			line, _ = cr.FieldPos(0)
		}
		if row > opt.MaxRows {
			return nil, badInput("%s: more than %d rows", opt.Source, opt.MaxRows)
		}
		if len(rec) != len(header) {
			bad.add(&RowError{Row: row, Line: line, Reason: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))})
			continue
		}
		ok := true
		id := strings.TrimSpace(rec[idCol])
		if id == "" {
			bad.add(&RowError{Row: row, Line: line, Column: opt.ID, Reason: "id is empty"})
			ok = false
		}
		var label string
		if labelCol >= 0 {
			label = strings.TrimSpace(rec[labelCol])
			if IsMissing(label) {
				bad.add(&RowError{Row: row, Line: line, Column: opt.Label, Reason: "label is missing"})
				ok = false
			}
		}
		vals := make([]float64, len(feats))
		for _, f := range feats {
			v, reason := parseCell(rec[f.src])
			if reason != "" {
				bad.add(&RowError{Row: row, Line: line, Column: header[f.src], Reason: reason})
				ok = false
				continue
			}
			vals[f.dst] = v
		}
		if !ok {
			continue
		}
		t.IDs = append(t.IDs, id)
		t.Rows = append(t.Rows, vals)
		if labelCol >= 0 {
			t.Labels = append(t.Labels, label)
		}
		for _, j := range texts {
			t.Text[header[j]] = append(t.Text[header[j]], strings.TrimSpace(rec[j]))
		}
	}
	if err := bad.errOrNil(); err != nil {
		return nil, err
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("%w: %s has a header but no rows", ErrTooFewRows, opt.Source)
	}
	return t, nil
}

// parseCell returns a cell's value (NaN when missing) or the reason it is
// not a number.
func parseCell(s string) (float64, string) {
	if IsMissing(s) {
		return math.NaN(), ""
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return 0, fmt.Sprintf("%q is not a number (leave the cell empty or write NA for a missing value)", s)
	}
	if math.IsInf(v, 0) {
		return 0, fmt.Sprintf("%q is not a finite number", s)
	}
	return v, ""
}

// WriteCSV writes t with a header: id, the text columns in sorted order,
// the feature columns, and the label column when t has labels. Missing
// cells are written empty.
func (t *Table) WriteCSV(w io.Writer, labelName string) error {
	cw := csv.NewWriter(w)
	texts := make([]string, 0, len(t.Text))
	for k := range t.Text {
		texts = append(texts, k)
	}
	slices.Sort(texts)
	header := append([]string{"id"}, texts...)
	header = append(header, t.Columns...)
	hasLabel := len(t.Labels) == len(t.Rows) && labelName != ""
	if hasLabel {
		header = append(header, labelName)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(header))
	for i, r := range t.Rows {
		rec = rec[:0]
		rec = append(rec, t.IDs[i])
		for _, k := range texts {
			rec = append(rec, t.Text[k][i])
		}
		for _, v := range r {
			if math.IsNaN(v) {
				rec = append(rec, "")
			} else {
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		if hasLabel {
			rec = append(rec, t.Labels[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
