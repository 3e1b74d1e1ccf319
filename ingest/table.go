package ingest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// MaxFileBytes bounds an import file; larger files are split by the school.
const MaxFileBytes = 64 << 20

// MaxCellBytes bounds one cell.
const MaxCellBytes = 4096

// Table is an import file read into a header and rows. Row numbers are as a
// spreadsheet shows them: the header is row 1, the first data row is 2.
type Table struct {
	Header []string
	Rows   []Row
}

// Row is one data row with its number in the file.
type Row struct {
	Num    int
	Values []string
}

// RowError names the cell at fault: row as a spreadsheet numbers it,
// column by its header name ("" for the whole row), and why.
type RowError struct {
	Row    int    `json:"row"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

func (e RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("row %d: %s", e.Row, e.Reason)
	}
	return fmt.Sprintf("row %d, column %s: %s", e.Row, e.Column, e.Reason)
}

// ReadTable reads a CSV or XLSX file, chosen by the name's extension
// (.csv, .xlsx). Header names are trimmed and lower-cased; blank rows are
// skipped.
func ReadTable(name string, r io.Reader) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadFile, name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadFile, name, MaxFileBytes)
	}
	var records [][]string
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".txt":
		records, err = ParseCSV(data)
	case ".xlsx":
		records, err = ParseXLSX(data)
	default:
		return nil, fmt.Errorf("%w: %s: want a .csv or .xlsx file", ErrBadFile, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return tableOf(records)
}

func tableOf(records [][]string) (*Table, error) {
	t := &Table{}
	for i, rec := range records {
		blank := true
		for _, v := range rec {
			if strings.TrimSpace(v) != "" {
				blank = false
				break
			}
		}
		if t.Header == nil {
			if blank {
				continue
			}
			seen := map[string]bool{}
			for _, h := range rec {
				h = strings.ToLower(strings.TrimSpace(h))
				if h != "" && seen[h] {
					return nil, fmt.Errorf("%w: column %q appears twice in the header", ErrBadFile, h)
				}
				seen[h] = true
				t.Header = append(t.Header, h)
			}
			continue
		}
		if blank {
			continue
		}
		vals := make([]string, len(t.Header))
		for j, v := range rec {
			if j < len(vals) {
				vals[j] = strings.TrimSpace(v)
			}
		}
		t.Rows = append(t.Rows, Row{Num: i + 1, Values: vals})
	}
	if t.Header == nil {
		return nil, fmt.Errorf("%w: no header row", ErrBadFile)
	}
	return t, nil
}

// ParseCSV reads comma-separated records (RFC 4180), dropping a UTF-8 byte
// order mark (Excel writes one) and accepting rows of differing length.
// A semicolon-separated file (Excel in many European locales) is detected
// from its first line.
func ParseCSV(data []byte) ([][]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r := csv.NewReader(bytes.NewReader(data))
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if bytes.Count(first, []byte(";")) > bytes.Count(first, []byte(",")) {
		r.Comma = ';'
	}
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	var out [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
		}
		for _, v := range rec {
			if len(v) > MaxCellBytes {
				line, _ := r.FieldPos(0)
				return nil, fmt.Errorf("%w: line %d has a cell longer than %d bytes", ErrBadFile, line, MaxCellBytes)
			}
		}
		out = append(out, rec)
	}
}
