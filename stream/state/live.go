package state

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The live rolling state of a student is computed here, in Go, from a copy
// of the student's live hash that the Store keeps (see Store.Apply); the
// apply script only checks that copy is still what Redis holds and writes
// the fields computed here, in the formats Reader reads:
//
//	h       head: the newest second seen (unix)
//	b<slot> "<second> <17 numbers>": the sums of one second's scores, slot = second mod horizon
//	w60 w120 w300  "<17 numbers>": the sums over the 1, 2 and 5 minute windows ending at h
//	lf      the last second with a face; fs the session's first second
//	st      "<17 numbers>": the session totals, the sums over every score of
//	        the session since fs (late ones, older than the horizon, aside)
//	sess, course   of the newest score
//	v       the version of the hash, compared by the script (see nextVersion)
//
// Numbers are written as %.6g text (the session totals as the shortest
// text that parses back to the same float64, since they add up over
// hours), and the copy holds exactly the values that text parses back to,
// so a copy reloaded from Redis computes the same state as one that stayed
// in memory.

// vec is the sums of one second or one window: n, attention, face, masked,
// engaged, confused, bored, frustrated, learning n, emotion n, then the
// seven emotions (see packScore).
type vec [nv]float64

// windowSeconds are the rolling windows, shortest first.
var windowSeconds = [3]int64{60, 120, 300}

// longestWindow is how far behind the head the copy keeps buckets: only
// seconds inside a window are ever read back.
const longestWindow = 300

// bucket is one second's sums. float32 holds a %.6g number exactly enough
// to print it back the same, at half the memory of a student's copy.
type bucket struct {
	sec int64
	v   [nv]float32
}

// rolling is the Go copy of one student's live hash.
type rolling struct {
	// keys are the student's script KEYS (StudentKeys), kept to save
	// building them per score.
	keys []string
	// offField is the "<topic>:<partition>" the student's scores come
	// from; off the last offset applied from it (-1 none).
	offField string
	off      int64
	// version is the hash's "v" as Redis holds it ("" none): the
	// script's compare-and-set refuses a write made from another version.
	version string
	// ttlAt is the event second of the last expiry refresh this copy
	// sent (ttlSet false: none yet).
	ttlAt   int64
	ttlSet  bool
	head    int64 // -1: no live state
	sess    string
	hasSess bool
	course  string
	fs, lf  int64 // -1: not set
	sums    [3]vec
	tot     vec // session totals
	// buckets hold the seconds in (head-300, head], oldest first.
	buckets []bucket
}

func newRolling(offField string, off int64) *rolling {
	return &rolling{offField: offField, off: off, head: -1, fs: -1, lf: -1}
}

// erase is the copy after the consent branch of the script deleted the
// live hash.
func (r *rolling) erase() {
	*r = rolling{keys: r.keys, offField: r.offField, off: r.off, head: -1, fs: -1, lf: -1}
}

// loadRolling builds the copy from the live hash as HGETALL returns it,
// with the same tolerance as the script had: a missing or unreadable
// number counts as absent (or 0 inside a vector).
func loadRolling(h map[string]string, offField string, off int64, horizon int64) *rolling {
	r := newRolling(offField, off)
	r.version = h["v"]
	if n, err := strconv.ParseInt(h["h"], 10, 64); err == nil {
		r.head = n
	}
	r.sess, r.hasSess = h["sess"]
	r.course = h["course"]
	if n, err := strconv.ParseInt(h["lf"], 10, 64); err == nil {
		r.lf = n
	}
	if n, err := strconv.ParseInt(h["fs"], 10, 64); err == nil {
		r.fs = n
	}
	for i, w := range windowSeconds {
		r.sums[i] = parseVec(h["w"+strconv.FormatInt(w, 10)])
	}
	r.tot = parseVec(h["st"])
	if r.head < 0 {
		return r
	}
	for field, val := range h {
		slot, ok := strings.CutPrefix(field, "b")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(slot, 10, 64)
		if err != nil {
			continue
		}
		sec, v, ok := parseBucketVec(val)
		if !ok || sec <= r.head-longestWindow || sec > r.head || mod(sec, horizon) != n {
			continue
		}
		b := bucket{sec: sec}
		for j := range v {
			b.v[j] = float32(v[j])
		}
		r.buckets = append(r.buckets, b)
	}
	sort.Slice(r.buckets, func(i, j int) bool { return r.buckets[i].sec < r.buckets[j].sec })
	return r
}

// parseVec reads nv numbers; anything else is the zero vector, as in the
// script's parse.
func parseVec(s string) vec {
	var v vec
	f := strings.Fields(s)
	if len(f) != nv {
		return v
	}
	for i, x := range f {
		v[i], _ = strconv.ParseFloat(x, 64)
	}
	return v
}

// parseBucketVec reads "<second> <nv numbers>".
func parseBucketVec(s string) (int64, vec, bool) {
	var v vec
	f := strings.Fields(s)
	if len(f) != 1+nv {
		return 0, v, false
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, v, false
	}
	for i, x := range f[1:] {
		v[i], _ = strconv.ParseFloat(x, 64)
	}
	return sec, v, true
}

// appendRounded appends v as %.6g text, space separated, and replaces
// every number by what that text parses back to.
func appendRounded(dst []byte, v *vec) []byte {
	for i := range v {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst, v[i] = appendG6(dst, v[i])
	}
	return dst
}

// appendExact writes v as the shortest text each float64 parses back
// from exactly: for the session totals, which a %.6g rounding at every
// score would let drift over a session of hours.
func appendExact(dst []byte, v *vec) []byte {
	for i := range v {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = strconv.AppendFloat(dst, v[i], 'g', -1, 64)
	}
	return dst
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11}

// appendG6 appends x as %.6g does and returns the value that text parses
// to. Numbers printed without an exponent (1e-4 <= |x| < 999999.5, all
// but rounding drift) take a short path: x scaled to a six-digit integer
// m, printed with its decimal point; m / 10^k is then exactly what
// ParseFloat makes of the text, both being the correctly rounded value of
// the same decimal. Other numbers go through strconv.
func appendG6(dst []byte, x float64) ([]byte, float64) {
	if x == 0 {
		return append(dst, '0'), 0
	}
	ax := math.Abs(x)
	if ax >= 1e-4 && ax < 999999.5 {
		e := 5
		for e > -4 && ax < pow10[e+4]/1e4 {
			e--
		}
		m := math.Round(ax * pow10[5-e])
		switch {
		case m >= 1e6:
			e++
		case m < 1e5 && e > -4:
			e--
		}
		if e <= 5 {
			m = math.Round(ax * pow10[5-e])
			if m >= 1e5 && m < 1e6 {
				return appendFixed(dst, x < 0, int64(m), e), math.Copysign(m/pow10[5-e], x)
			}
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, x, 'g', 6, 64)
	r, _ := strconv.ParseFloat(string(dst[start:]), 64)
	return dst, r
}

// appendFixed prints the six digits of m (100000 <= m < 1e6) as the
// number m * 10^(e-5), -4 <= e <= 5, without trailing zeros.
func appendFixed(dst []byte, neg bool, m int64, e int) []byte {
	if neg {
		dst = append(dst, '-')
	}
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + m%10)
		m /= 10
	}
	last := 5
	for last > 0 && d[last] == '0' {
		last--
	}
	if e >= 0 {
		dst = append(dst, d[:e+1]...)
		if last > e {
			dst = append(dst, '.')
			dst = append(dst, d[e+1:last+1]...)
		}
		return dst
	}
	dst = append(dst, '0', '.')
	for i := -1; i > e; i-- {
		dst = append(dst, '0')
	}
	return append(dst, d[:last+1]...)
}

// nextVersion is the version "v" a score's write gives the live hash: a
// hash of the version it was computed from and the score's place in the
// log. Equal versions thus mean the same events applied to the same base,
// i.e. the same content — whoever wrote them — so a copy passes the
// script's compare-and-set exactly when it holds what Redis holds, and a
// run that was killed and resumed ends with the versions of an undisturbed
// one.
func nextVersion(prev, offField string, offset int64) string {
	h := fnv.New64a()
	h.Write([]byte(prev))
	h.Write([]byte{0})
	h.Write([]byte(offField))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(offset))
	h.Write(b[:])
	return strconv.FormatUint(h.Sum64(), 36)
}

// find returns the index of second sec in buckets, or where it would go.
func (r *rolling) find(sec int64) (int, bool) {
	n := len(r.buckets)
	// The common cases: the newest second, or one after it.
	if n == 0 || r.buckets[n-1].sec < sec {
		return n, false
	}
	if r.buckets[n-1].sec == sec {
		return n - 1, true
	}
	i := sort.Search(n, func(i int) bool { return r.buckets[i].sec >= sec })
	return i, i < n && r.buckets[i].sec == sec
}

// Modes of a live write, as the script reads them.
const (
	modeWrite  = "w"
	modeFresh  = "f" // the rolling state starts afresh: DEL, then write
	modeLate   = "l" // older than the horizon: nothing to write
	modeBucket = "b" // the script adds the vector to the second's bucket
)

// liveStep is what one score does to the live hash.
type liveStep struct {
	mode string
	// pairs are field, value pairs for HSET (without the version).
	pairs []string
	// vector is the packed score (mode b).
	vector string
	// live is the state the rules see after the score (nil when late).
	live *Live
}

// step applies one score of second t to the copy, with the semantics the
// script had: a first score, a gap of the horizon or more, or a new
// session start afresh; a score older than the horizon only moves the
// offset; the windows slide second by second (a pause of a window's
// length or more empties it); rounding drift never leaves a negative
// count. v must hold the %.6g-rounded score (see scoreVec); buf is scratch
// space for the text.
func (r *rolling) step(t int64, sess, course string, v *vec, horizon int64, buf []byte) (liveStep, []byte) {
	var st liveStep
	head := r.head
	fresh := head < 0 || t-head >= horizon || (r.hasSess && r.sess != sess)
	if fresh {
		r.erase()
		head = t - 1
	}
	if t <= head-horizon {
		st.mode = modeLate
		return st, buf
	}
	st.mode = modeWrite
	if fresh {
		st.mode = modeFresh
	}
	var changed [3]bool
	if t > head {
		for i, w := range windowSeconds {
			changed[i] = true
			if t-head >= w {
				r.sums[i] = vec{}
				continue
			}
			if fresh {
				continue
			}
			for old := head + 1 - w; old <= t-w; old++ {
				if k, ok := r.find(old); ok {
					b := &r.buckets[k]
					for j := range r.sums[i] {
						r.sums[i][j] -= float64(b.v[j])
					}
				}
			}
		}
		head = t
		r.head = t
		st.pairs = append(st.pairs, "h", strconv.FormatInt(t, 10))
		// Drop the seconds no window can read any more.
		k, _ := r.find(head - longestWindow + 1)
		if k > 0 {
			r.buckets = r.buckets[k:]
		}
	}
	slot := "b" + strconv.FormatInt(mod(t, horizon), 10)
	if t > head-longestWindow {
		k, ok := r.find(t)
		var bv vec
		if ok {
			for j := range bv {
				bv[j] = float64(r.buckets[k].v[j])
			}
		} else {
			r.buckets = append(r.buckets, bucket{})
			copy(r.buckets[k+1:], r.buckets[k:])
			r.buckets[k] = bucket{sec: t}
		}
		for j := range bv {
			bv[j] += v[j]
		}
		buf = strconv.AppendInt(buf[:0], t, 10)
		buf = append(buf, ' ')
		buf = appendRounded(buf, &bv)
		for j := range bv {
			r.buckets[k].v[j] = float32(bv[j])
		}
		st.pairs = append(st.pairs, slot, string(buf))
	} else {
		// A second no window covers: its bucket is not in the copy, and
		// the script adds the score to it.
		st.mode = modeBucket
		buf = appendRounded(buf[:0], v)
		st.vector = string(buf)
	}
	for i, w := range windowSeconds {
		if t > head-w {
			changed[i] = true
			for j := range r.sums[i] {
				r.sums[i][j] += v[j]
			}
		}
		if !changed[i] {
			continue
		}
		if r.sums[i][0] < 0.5 {
			r.sums[i] = vec{}
		}
		buf = appendRounded(buf[:0], &r.sums[i])
		st.pairs = append(st.pairs, "w"+strconv.FormatInt(w, 10), string(buf))
	}
	for j := range r.tot {
		r.tot[j] += v[j]
	}
	buf = appendExact(buf[:0], &r.tot)
	st.pairs = append(st.pairs, "st", string(buf))
	if v[2] >= 0.5 && t > r.lf {
		r.lf = t
		st.pairs = append(st.pairs, "lf", strconv.FormatInt(t, 10))
	}
	fs := r.fs
	if fresh {
		r.fs, fs = t, t
		r.sess, r.hasSess = sess, true
		st.pairs = append(st.pairs, "fs", strconv.FormatInt(t, 10), "sess", sess)
	} else if fs < 0 {
		fs = t
	}
	if fresh || r.course != course {
		r.course = course
		st.pairs = append(st.pairs, "course", course)
	}
	st.live = r.snapshot(fs)
	return st, buf
}

// snapshot is the state the rules see, with fs standing in for the first
// second when none is stored.
func (r *rolling) snapshot(fs int64) *Live {
	l := &Live{HeadUnix: r.head, W1: windowOf(&r.sums[0]), W2: windowOf(&r.sums[1]), W5: windowOf(&r.sums[2]),
		SessionTotals: windowOf(&r.tot)}
	if r.lf >= 0 {
		l.FaceAbsentSeconds = float64(r.head - r.lf)
	} else {
		l.FaceAbsentSeconds = float64(r.head - fs + 1)
	}
	return l
}
