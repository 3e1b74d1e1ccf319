package state

import (
	"encoding/binary"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The live rolling state of a student is computed here, in Go, from a copy
// of the student's live hash that the Store keeps (see Store.Apply); the
// apply script only checks that copy is still what Redis holds and writes
// the fields computed here. The live hash (format 2):
//
//	s       the summary, binary: see appendSummary (head, the session's
//	        first second, the last second with a face, the sums over the
//	        1, 2 and 5 minute windows ending at the head, and the session
//	        totals: the sums over every score of the session, late ones
//	        older than the horizon aside)
//	b<slot> one second's sums, binary: see appendBucket; slot = second mod horizon
//	sess, course   of the newest score (text)
//	v       the version of the hash, compared by the script (see nextVersion);
//	        a leading '!' marks one after which the script checks the
//	        consent gate again (gate.go)
//
// Sums are binary so that writing a score costs no number formatting (it
// was most of the Go side of a score) and a copy reloaded from Redis holds
// bit for bit what the kept copy holds. A score's values are rounded to
// float32 first, the precision of a bucket, so that a second's bucket
// leaves a window exactly as its score entered it.
//
// Format 1 (before commit "live hash format 2") kept text fields h, fs,
// lf, w60, w120, w300, st and "<second> <17 numbers>" buckets. Both Reader
// and loadRolling read it; the first write to such a hash rewrites it in
// format 2 (see rolling.legacy).

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
	// keys are the student's script KEYS (scoreKeys), kept to save
	// building them per score.
	keys []string
	// offField is the "<topic>:<partition>" the student's scores come
	// from; off the last offset computed from it (-1 none), which Redis
	// may not hold yet (see Store.Prepare), and confirmed the last one
	// Redis is known to hold (read or answered). confirmed is read and
	// written only under Store.mu: a batch's results confirm offsets while
	// the next batch computes on the copy.
	offField  string
	off       int64
	confirmed int64
	// liveHash is what the copy knows of the live hash itself; erase
	// resets all of it, and only it.
	liveHash
}

// liveHash is the copy's view of a student's live hash.
type liveHash struct {
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
	// legacy: the copy was loaded from a format 1 hash, which its next
	// write replaces whole.
	legacy bool
}

func noLiveHash() liveHash { return liveHash{head: -1, fs: -1, lf: -1} }

func newRolling(offField string, off int64) *rolling {
	return &rolling{offField: offField, off: off, confirmed: off, liveHash: noLiveHash()}
}

// erase is the copy after the consent branch of the script deleted the
// live hash. The offsets stay: confirmed is not this goroutine's to write.
func (r *rolling) erase() { r.liveHash = noLiveHash() }

// liveOffset is the offset of the last score from offField that wrote the
// live hash h (its "o": "<offset field>|<offset>"), -1 for none. The
// offsets hash holds the scores' offsets only for those that wrote nothing
// else (late and refused ones), and those of an earlier release.
func liveOffset(h map[string]string, offField string) int64 {
	field, n, ok := strings.Cut(h[liveOffsetField], "|")
	if !ok || field != offField {
		return -1
	}
	off, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return -1
	}
	return off
}

// loadRolling builds the copy from the live hash as HGETALL returns it.
// An unreadable summary counts as no live state (the next score starts
// afresh); an unreadable bucket is left out.
func loadRolling(h map[string]string, offField string, off int64, horizon int64) *rolling {
	r := newRolling(offField, max(off, liveOffset(h, offField)))
	r.version = h["v"]
	sum, legacy, ok := liveSummary(h)
	if !ok {
		return r
	}
	r.head, r.fs, r.lf, r.sums, r.tot, r.legacy = sum.head, sum.fs, sum.lf, sum.sums, sum.tot, legacy
	r.sess, r.hasSess = h["sess"]
	r.course = h["course"]
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

// summary is what field "s" holds; -1 marks a second not set.
type summary struct {
	head, fs, lf int64
	sums         [3]vec
	tot          vec
}

// Binary values of the live hash start with liveFormat; format 1's text
// starts with a digit or '-'.
const liveFormat = 2

const (
	// summaryLen: the tag, head, fs and lf (int64), then the sums of the
	// three windows and the session totals (nv float64 each).
	summaryLen = 1 + 3*8 + 4*nv*8
	// bucketLen: the tag, the second (int64), nv float32 sums.
	bucketLen = 1 + 8 + nv*4
)

// appendSummary appends field "s" of r, little-endian.
func appendSummary(dst []byte, r *rolling) []byte {
	dst = append(dst, liveFormat)
	for _, n := range [3]int64{r.head, r.fs, r.lf} {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(n))
	}
	for i := range r.sums {
		for _, x := range r.sums[i] {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
		}
	}
	for _, x := range r.tot {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	return dst
}

// parseSummary reads field "s".
func parseSummary(s string) (summary, bool) {
	var out summary
	if len(s) != summaryLen || s[0] != liveFormat {
		return out, false
	}
	b := []byte(s[1:])
	next := func() uint64 {
		x := binary.LittleEndian.Uint64(b)
		b = b[8:]
		return x
	}
	out.head, out.fs, out.lf = int64(next()), int64(next()), int64(next())
	if out.head < 0 {
		return out, false
	}
	for i := range out.sums {
		for j := range out.sums[i] {
			out.sums[i][j] = math.Float64frombits(next())
		}
	}
	for j := range out.tot {
		out.tot[j] = math.Float64frombits(next())
	}
	return out, true
}

// liveSummary reads the summary of a live hash in either format (legacy:
// format 1); ok is false when the hash holds none.
func liveSummary(h map[string]string) (sum summary, legacy, ok bool) {
	if s, found := h["s"]; found {
		sum, ok = parseSummary(s)
		return sum, false, ok
	}
	head, err := strconv.ParseInt(h["h"], 10, 64)
	if err != nil || head < 0 {
		return sum, false, false
	}
	sum = summary{head: head, fs: -1, lf: -1}
	if n, err := strconv.ParseInt(h["lf"], 10, 64); err == nil {
		sum.lf = n
	}
	if n, err := strconv.ParseInt(h["fs"], 10, 64); err == nil {
		sum.fs = n
	}
	for i, w := range windowSeconds {
		sum.sums[i] = parseVec(h["w"+strconv.FormatInt(w, 10)])
	}
	sum.tot = parseVec(h["st"])
	return sum, true, true
}

// parseVec reads format 1's nv numbers; anything else is the zero vector,
// as the format 1 script read it.
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

// appendBucket appends a bucket value: second sec's sums v.
func appendBucket(dst []byte, sec int64, v *[nv]float32) []byte {
	dst = append(dst, liveFormat)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(sec))
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

// parseBucketVec reads a bucket value in either format (format 1:
// "<second> <nv numbers>").
func parseBucketVec(s string) (int64, vec, bool) {
	var v vec
	if len(s) == bucketLen && s[0] == liveFormat {
		b := []byte(s[1:])
		sec := int64(binary.LittleEndian.Uint64(b))
		for j := range v {
			v[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8+4*j:])))
		}
		return sec, v, true
	}
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

// appendVector appends a score's values as float32 (mode b).
func appendVector(dst []byte, v *vec) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(x)))
	}
	return dst
}

// round32 rounds a score's values to float32, the precision of a bucket.
func round32(v *vec) {
	for j := range v {
		v[j] = float64(float32(v[j]))
	}
}

// nextVersion is the version "v" a score's write gives the live hash: a
// hash of the version it was computed from and the score's place in the
// log. Equal versions thus mean the same events applied to the same base,
// i.e. the same content — whoever wrote them — so a copy passes the
// script's compare-and-set exactly when it holds what Redis holds, and a
// run that was killed and resumed ends with the versions of an undisturbed
// one. It starts with '.': a score wrote it after the script checked the
// consent gate (gate.go).
func nextVersion(prev, offField string, offset int64) string {
	// FNV-1a, 64 bits, of prev, a zero byte, offField and the offset's
	// eight bytes big-endian; written out to save hash/fnv's interface
	// and copies on a score's path (versions in Redis were written by
	// hash/fnv: the test compares them).
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(prev); i++ {
		h = (h ^ uint64(prev[i])) * prime64
	}
	h *= prime64 // the zero byte
	for i := 0; i < len(offField); i++ {
		h = (h ^ uint64(offField[i])) * prime64
	}
	for i := 56; i >= 0; i -= 8 {
		h = (h ^ uint64(offset>>i)&0xff) * prime64
	}
	var b [16]byte
	return string(strconv.AppendUint(append(b[:0], '.'), h, 36))
}

// find returns the index of second sec in buckets, or where it would go.
func (r *rolling) find(sec int64) (int, bool) {
	n := len(r.buckets)
	// The common cases: the newest second, or one after it.
	if n == 0 || r.buckets[n-1].sec < sec {
		return n, false
	}
	// Seconds mostly follow one another (one score a second): where sec
	// is when none is missing after it.
	if k := n - 1 - int(r.buckets[n-1].sec-sec); k >= 0 && r.buckets[k].sec == sec {
		return k, true
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

// stepRoom is where a step puts what it computes, so that a batch can
// hand out room allocated once for all its scores: pairs are appended to
// pairs, the binary values written to values (nil: each its own string)
// and the state the rules see written to live (nil: step allocates it).
type stepRoom struct {
	pairs  []string
	values *strings.Builder
	live   *Live
}

// str is b as a string: a part of values, which a Builder never writes
// over, so the batch's values cost one array.
func (room stepRoom) str(b []byte) string {
	if room.values == nil {
		return string(b)
	}
	start := room.values.Len()
	room.values.Write(b)
	return room.values.String()[start:]
}

// step applies one score of second t to the copy, with the semantics the
// script had: a first score, a gap of the horizon or more, or a new
// session start afresh; a score older than the horizon only moves the
// offset; the windows slide second by second (a pause of a window's
// length or more empties it); rounding drift never leaves a negative
// count. v must hold float32-rounded values (see round32); buf is scratch
// space for the binary values.
func (r *rolling) step(t int64, sess, course string, v *vec, horizon int64, buf []byte, room stepRoom) (liveStep, []byte) {
	st := liveStep{pairs: room.pairs}
	head := r.head
	legacy := r.legacy
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
	if t > head {
		for i, w := range windowSeconds {
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
		// Drop the seconds no window can read any more.
		if k, _ := r.find(head - longestWindow + 1); k > 0 {
			r.buckets = r.buckets[k:]
		}
	}
	slot := "b" + strconv.FormatInt(mod(t, horizon), 10)
	if t > head-longestWindow {
		k, ok := r.find(t)
		if !ok {
			r.buckets = append(r.buckets, bucket{})
			copy(r.buckets[k+1:], r.buckets[k:])
			r.buckets[k] = bucket{sec: t}
		}
		b := &r.buckets[k]
		for j := range b.v {
			b.v[j] = float32(float64(b.v[j]) + v[j])
		}
		buf = appendBucket(buf[:0], t, &b.v)
		st.pairs = append(st.pairs, slot, room.str(buf))
	} else {
		// A second no window covers: its bucket is not in the copy, and
		// the script adds the score to it.
		st.mode = modeBucket
		buf = appendVector(buf[:0], v)
		st.vector = room.str(buf)
	}
	for i, w := range windowSeconds {
		if t > head-w {
			for j := range r.sums[i] {
				r.sums[i][j] += v[j]
			}
		}
		if r.sums[i][0] < 0.5 {
			r.sums[i] = vec{}
		}
	}
	for j := range r.tot {
		r.tot[j] += v[j]
	}
	if v[2] >= 0.5 && t > r.lf {
		r.lf = t
	}
	fs := r.fs
	if fresh {
		r.fs, fs = t, t
		r.sess, r.hasSess = sess, true
		st.pairs = append(st.pairs, "sess", sess)
	} else if fs < 0 {
		fs = t
	}
	if fresh || legacy || r.course != course {
		r.course = course
		st.pairs = append(st.pairs, "course", course)
	}
	if legacy {
		// The format 1 hash goes (mode f deletes it) and the copy is
		// written whole in format 2; seconds older than every window,
		// which the copy does not keep, go with it, so a score of such a
		// second starts its bucket.
		r.legacy = false
		if st.mode == modeBucket {
			var b [nv]float32
			for j := range b {
				b[j] = float32(v[j])
			}
			buf = appendBucket(buf[:0], t, &b)
			st.pairs, st.vector = append(st.pairs, slot, room.str(buf)), ""
		}
		st.mode = modeFresh
		if !fresh && r.hasSess {
			st.pairs = append(st.pairs, "sess", r.sess)
		}
		for k := range r.buckets {
			b := &r.buckets[k]
			buf = appendBucket(buf[:0], b.sec, &b.v)
			st.pairs = append(st.pairs, "b"+strconv.FormatInt(mod(b.sec, horizon), 10), room.str(buf))
		}
	}
	buf = appendSummary(buf[:0], r)
	st.pairs = append(st.pairs, "s", room.str(buf))
	st.live = room.live
	if st.live == nil {
		st.live = new(Live)
	}
	r.snapshot(fs, st.live)
	return st, buf
}

// snapshot writes the state the rules see to l, with fs standing in for
// the first second when none is stored.
func (r *rolling) snapshot(fs int64, l *Live) {
	*l = Live{HeadUnix: r.head, W1: windowOf(&r.sums[0]), W2: windowOf(&r.sums[1]), W5: windowOf(&r.sums[2]),
		SessionTotals: windowOf(&r.tot)}
	if r.lf >= 0 {
		l.FaceAbsentSeconds = float64(r.head - r.lf)
	} else {
		l.FaceAbsentSeconds = float64(r.head - fs + 1)
	}
}
