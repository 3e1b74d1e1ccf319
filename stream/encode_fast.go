package stream

import (
	"math"
	"strconv"
)

// appendTile appends t as encoding/json encodes it, byte for byte, when
// every string in it is plain printable ASCII that JSON needs no escape
// for (encoding/json escapes <, > and & too); ok is false otherwise, and
// the caller takes encoding/json. A tile goes out for every score a
// processor applies, and reflection was most of what encoding one cost.
func appendTile(dst []byte, t *Tile) (out []byte, ok bool) {
	for _, s := range [...]string{t.ID, t.Student, t.Session, t.Course, t.Dominant, t.WarningLevel} {
		if !plainJSON(s) {
			return dst, false
		}
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(t.V), 10)
	dst = append(dst, `,"id":"`...)
	dst = append(dst, t.ID...)
	dst = append(dst, `","ts":"`...)
	dst = t.TS.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `","student":"`...)
	dst = append(dst, t.Student...)
	dst = append(dst, `","session":"`...)
	dst = append(dst, t.Session...)
	dst = append(dst, `","course":"`...)
	dst = append(dst, t.Course...)
	dst = append(dst, `","captured":`...)
	dst = strconv.AppendBool(dst, t.Captured)
	dst = append(dst, `,"attention":`...)
	if dst, ok = appendJSONFloat(dst, t.Attention); !ok {
		return dst, false
	}
	dst = append(dst, `,"face_present":`...)
	dst = strconv.AppendBool(dst, t.FacePresent)
	dst = append(dst, `,"masked":`...)
	dst = strconv.AppendBool(dst, t.Masked)
	if t.Dominant != "" {
		dst = append(dst, `,"dominant":"`...)
		dst = append(dst, t.Dominant...)
		dst = append(dst, '"')
	}
	if t.WarningLevel != "" {
		dst = append(dst, `,"warning_level":"`...)
		dst = append(dst, t.WarningLevel...)
		dst = append(dst, '"')
	}
	return append(dst, '}'), true
}

// plainJSON reports whether s goes into a JSON string as it is: printable
// ASCII without ", \, <, > or &.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJSONFloat appends f as encoding/json writes a float64 (shortest
// form; exponent form below 1e-6 and from 1e21, with a one-digit negative
// exponent written without its leading zero); ok is false for NaN and
// infinities, which JSON cannot hold.
func appendJSONFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
