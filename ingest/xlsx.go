package ingest

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// ParseXLSX reads the first worksheet of an Office Open XML workbook into
// records of cell text. It reads what roster and grade exports contain:
// shared and inline strings, numbers (as written, e.g. "87.5"), booleans
// and cached formula results; styles, dates as serial numbers and other
// sheets are not interpreted (a date column should be text in the file, or
// is read as the serial number Excel stores).
func ParseXLSX(data []byte) ([][]string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: not an XLSX (zip) file: %v", ErrBadFile, err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	sheet, err := firstSheet(files)
	if err != nil {
		return nil, err
	}
	var shared []string
	if f, ok := files["xl/sharedStrings.xml"]; ok {
		if shared, err = readShared(f); err != nil {
			return nil, err
		}
	}
	f, ok := files[sheet]
	if !ok {
		return nil, fmt.Errorf("%w: workbook names sheet %s but the file has none", ErrBadFile, sheet)
	}
	return readSheet(f, shared)
}

func openLimited(f *zip.File) (io.ReadCloser, error) {
	if f.UncompressedSize64 > 4*MaxFileBytes {
		return nil, fmt.Errorf("%w: %s unpacks to more than %d bytes", ErrBadFile, f.Name, 4*MaxFileBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadFile, f.Name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, 4*MaxFileBytes), rc}, nil
}

func decodeXML(f *zip.File, v any) error {
	rc, err := openLimited(f)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := xml.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadFile, f.Name, err)
	}
	return nil
}

// firstSheet resolves the first <sheet> of xl/workbook.xml through the
// workbook's relationships to its part name.
func firstSheet(files map[string]*zip.File) (string, error) {
	wf, ok := files["xl/workbook.xml"]
	if !ok {
		return "", fmt.Errorf("%w: no xl/workbook.xml: not an XLSX workbook", ErrBadFile)
	}
	var wb struct {
		Sheets []struct {
			RID string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := decodeXML(wf, &wb); err != nil {
		return "", err
	}
	if len(wb.Sheets) == 0 {
		return "", fmt.Errorf("%w: workbook has no sheets", ErrBadFile)
	}
	rf, ok := files["xl/_rels/workbook.xml.rels"]
	if !ok {
		return "xl/worksheets/sheet1.xml", nil
	}
	var rels struct {
		Rel []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	if err := decodeXML(rf, &rels); err != nil {
		return "", err
	}
	for _, r := range rels.Rel {
		if r.ID == wb.Sheets[0].RID {
			if strings.HasPrefix(r.Target, "/") {
				return strings.TrimPrefix(r.Target, "/"), nil
			}
			return path.Join("xl", r.Target), nil
		}
	}
	return "", fmt.Errorf("%w: first sheet's relationship %q not found", ErrBadFile, wb.Sheets[0].RID)
}

// richText is a shared or inline string: plain <t>, or runs <r><t>.
type richText struct {
	T string `xml:"t"`
	R []struct {
		T string `xml:"t"`
	} `xml:"r"`
}

func (s richText) text() string {
	if len(s.R) == 0 {
		return s.T
	}
	var b strings.Builder
	b.WriteString(s.T)
	for _, r := range s.R {
		b.WriteString(r.T)
	}
	return b.String()
}

func readShared(f *zip.File) ([]string, error) {
	var sst struct {
		SI []richText `xml:"si"`
	}
	if err := decodeXML(f, &sst); err != nil {
		return nil, err
	}
	out := make([]string, len(sst.SI))
	for i, si := range sst.SI {
		out[i] = si.text()
	}
	return out, nil
}

// colIndex turns the letters of a cell reference ("C12") into a 0-based column.
func colIndex(ref string) (int, bool) {
	n := 0
	i := 0
	for ; i < len(ref) && ref[i] >= 'A' && ref[i] <= 'Z'; i++ {
		n = n*26 + int(ref[i]-'A'+1)
		if n > 16384 { // Excel's last column, XFD
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	return n - 1, true
}

func readSheet(f *zip.File, shared []string) ([][]string, error) {
	var ws struct {
		Rows []struct {
			R int `xml:"r,attr"`
			C []struct {
				R  string    `xml:"r,attr"`
				T  string    `xml:"t,attr"`
				V  string    `xml:"v"`
				IS *richText `xml:"is"`
			} `xml:"c"`
		} `xml:"sheetData>row"`
	}
	if err := decodeXML(f, &ws); err != nil {
		return nil, err
	}
	var out [][]string
	for ri, row := range ws.Rows {
		num := row.R
		if num == 0 {
			num = len(out) + 1
		}
		if num < len(out)+1 || num > 1<<20 {
			return nil, fmt.Errorf("%w: sheet row %d out of order", ErrBadFile, ri+1)
		}
		for len(out) < num-1 {
			out = append(out, nil) // rows Excel left out are blank
		}
		var rec []string
		for ci, c := range row.C {
			col := ci
			if c.R != "" {
				var ok bool
				if col, ok = colIndex(c.R); !ok {
					return nil, fmt.Errorf("%w: cell reference %q", ErrBadFile, c.R)
				}
			}
			var v string
			switch c.T {
			case "s":
				i, err := strconv.Atoi(c.V)
				if err != nil || i < 0 || i >= len(shared) {
					return nil, fmt.Errorf("%w: cell %s names shared string %q that does not exist", ErrBadFile, c.R, c.V)
				}
				v = shared[i]
			case "inlineStr":
				if c.IS != nil {
					v = c.IS.text()
				}
			case "b":
				v = map[string]string{"1": "true", "0": "false"}[c.V]
			default: // n, str, e, d: the cached value as written
				v = c.V
			}
			if len(v) > MaxCellBytes {
				return nil, fmt.Errorf("%w: cell %s is longer than %d bytes", ErrBadFile, c.R, MaxCellBytes)
			}
			for len(rec) < col {
				rec = append(rec, "")
			}
			if col < len(rec) {
				rec[col] = v
			} else {
				rec = append(rec, v)
			}
		}
		out = append(out, rec)
	}
	return out, nil
}
