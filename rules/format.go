package rules

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// add records a finding. Reasons and evidence are kept within what a
// warning event may carry, whatever the snapshot held.
func (e *evaluator) add(rule string, fam Family, category, level, course, reason string, ev map[string]float64) {
	for k, v := range ev {
		switch {
		case !finite(v):
			delete(ev, k)
		case v > maxEvidence:
			ev[k] = maxEvidence
		case v < -maxEvidence:
			ev[k] = -maxEvidence
		}
	}
	e.out = append(e.out, Finding{Rule: rule, Family: fam, Category: category, Level: level,
		Course: course, Reason: clip(reason, maxReason), Evidence: ev})
}

// Limits of stream.Warning.
const (
	maxReason   = 2000
	maxEvidence = 1e12
)

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// pct formats a share as a whole percentage, "41 %". A share just below 1
// shows as 99 %, never as a misleading 100 %.
func pct(share float64) string {
	v := math.Round(share * 100)
	if v >= 100 && share < 1 {
		v = 99
	}
	var buf [24]byte
	return string(append(appendNum(buf[:0], v), " %"...))
}

// pctBelow formats share, which lies below limit, so that it never reads
// as the limit itself: whole percentages, unless rounding would make them
// meet the limit's, then tenths rounded down ("24.9 %" under "25 %").
func pctBelow(share, limit float64) string {
	if share >= limit || math.Round(share*100) < math.Round(limit*100) {
		return pct(share)
	}
	v := math.Floor(share*1000) / 10
	var buf [24]byte
	return string(append(appendNum(buf[:0], v), " %"...))
}

// hours formats hours with one decimal at most, "8.5 h".
func hours(h float64) string {
	var buf [24]byte
	return string(append(appendNum(buf[:0], h), " h"...))
}

// num formats x with one decimal at most.
func num(x float64) string {
	var buf [24]byte
	return string(appendNum(buf[:0], x))
}

// appendNum appends x rounded to one decimal, without a trailing ".0".
// Reasons are formatted on every evaluation, so this avoids strconv's
// general float path for the everyday magnitudes.
func appendNum(b []byte, x float64) []byte {
	r := math.Round(x * 10)
	if !finite(r) || math.Abs(r) >= 1e15 {
		return strconv.AppendFloat(b, math.Round(x*10)/10, 'g', -1, 64)
	}
	t := int64(r)
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/10, 10)
	if d := t % 10; d != 0 {
		b = append(b, '.', byte('0'+d))
	}
	return b
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// evKey builds an evidence key from a course id and a suffix, shortening
// the id so the key stays within the 64 characters events allow.
func evKey(id, suffix string) string {
	if n := 64 - len(suffix); len(id) > n {
		id = id[:n]
	}
	return id + suffix
}

// count says "1 course" or "3 courses".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
