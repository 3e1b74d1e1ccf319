package state

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand"
	"reflect"
	"strconv"
	"testing"
)

// refEvent is one score the reference model keeps.
type refEvent struct {
	sec int64
	v   vec
}

// refLive is the straightforward model of the live state: every score of
// the session kept, each window summed afresh over the seconds it covers.
type refLive struct {
	head, lf, fs int64
	sess         string
	events       []refEvent
}

func newRef() *refLive { return &refLive{head: -1, lf: -1, fs: -1} }

// apply returns false for a score older than the horizon.
func (m *refLive) apply(t int64, sess string, v vec, horizon int64) (*Live, bool) {
	if m.head < 0 || t-m.head >= horizon || (m.sess != "" && m.sess != sess) {
		*m = refLive{head: t - 1, lf: -1, fs: t, sess: sess}
	}
	if t <= m.head-horizon {
		return nil, false
	}
	m.events = append(m.events, refEvent{t, v})
	m.head = max(m.head, t)
	if v[2] >= 0.5 && t > m.lf {
		m.lf = t
	}
	l := &Live{HeadUnix: m.head}
	for i, w := range windowSeconds {
		var sum vec
		for _, e := range m.events {
			if e.sec > m.head-w && e.sec <= m.head {
				for j := range sum {
					sum[j] += e.v[j]
				}
			}
		}
		*[]*Window{&l.W1, &l.W2, &l.W5}[i] = windowOf(&sum)
	}
	if m.lf >= 0 {
		l.FaceAbsentSeconds = float64(m.head - m.lf)
	} else {
		l.FaceAbsentSeconds = float64(m.head - m.fs + 1)
	}
	// Session totals: every score of the session kept so far.
	var tot vec
	for _, e := range m.events {
		for j := range tot {
			tot[j] += e.v[j]
		}
	}
	l.SessionTotals = windowOf(&tot)
	return l, true
}

// simHash plays the apply script's part: it keeps the live hash the way
// Redis would after each step.
type simHash map[string]string

func (h simHash) write(st liveStep, t, horizon int64) {
	switch st.mode {
	case modeLate:
		return
	case modeFresh:
		clear(h)
	}
	for i := 0; i+1 < len(st.pairs); i += 2 {
		h[st.pairs[i]] = st.pairs[i+1]
	}
	if st.mode == modeBucket {
		// What the script's mode b does, in float64 as Lua adds.
		slot := "b" + strconv.FormatInt(mod(t, horizon), 10)
		var b [nv]float32
		sec, bv, ok := parseBucketVec(h[slot])
		vb := []byte(st.vector)
		for j := range b {
			x := float64(math.Float32frombits(binary.LittleEndian.Uint32(vb[4*j:])))
			if ok && sec == t {
				x += bv[j]
			}
			b[j] = float32(x)
		}
		h[slot] = string(appendBucket(nil, t, &b))
	}
}

func sameWindow(a, b Window) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-3 }
	if a.Seconds != b.Seconds || a.LearningSeconds != b.LearningSeconds || a.EmotionSeconds != b.EmotionSeconds {
		return false
	}
	if !near(a.Attention, b.Attention) || !near(a.Face, b.Face) || !near(a.Masked, b.Masked) ||
		!near(a.Engaged, b.Engaged) || !near(a.Confused, b.Confused) || !near(a.Bored, b.Bored) || !near(a.Frustrated, b.Frustrated) {
		return false
	}
	for i := range a.Emotions {
		if !near(a.Emotions[i], b.Emotions[i]) {
			return false
		}
	}
	return true
}

// scoreStep is one score of a generated sequence.
type scoreStep struct {
	dt      int64 // seconds after the previous score's second (may be negative)
	sess    string
	att     float64
	face    float64
	emotion bool
}

func (s scoreStep) vec() vec {
	v := vec{1, s.att, s.face, 0, s.att, 1 - s.att, 0.1, 0.05, 1}
	if s.emotion {
		v[9] = 1
		v[10], v[11] = 0.7, 0.3
	}
	round32(&v)
	return v
}

// checkAgainstReference runs steps through the Go copy and the reference
// model and, after every step, also checks that a copy reloaded from the
// hash the writes left is the copy kept in memory.
func checkAgainstReference(t *testing.T, horizon int64, steps []scoreStep) {
	t.Helper()
	r := newRolling("scores:0", -1)
	ref := newRef()
	hash := simHash{}
	var buf []byte
	sec := int64(1_800_000_000)
	for i, s := range steps {
		sec += s.dt
		v := s.vec()
		var st liveStep
		st, buf = r.step(sec, s.sess, "c1", &v, horizon, buf, stepRoom{})
		want, applied := ref.apply(sec, s.sess, v, horizon)
		if !applied {
			if st.mode != modeLate || st.live != nil {
				t.Fatalf("step %d (second %d): mode %q, want late", i, sec, st.mode)
			}
			continue
		}
		got := st.live
		if got == nil || got.HeadUnix != want.HeadUnix || got.FaceAbsentSeconds != want.FaceAbsentSeconds ||
			!sameWindow(got.W1, want.W1) || !sameWindow(got.W2, want.W2) || !sameWindow(got.W5, want.W5) ||
			!sameWindow(got.SessionTotals, want.SessionTotals) {
			t.Fatalf("step %d (second %d, mode %q):\n got %+v\nwant %+v", i, sec, st.mode, got, want)
		}
		hash.write(st, sec, horizon)
		reloaded := loadRolling(hash, r.offField, r.off, horizon)
		reloaded.buckets = append([]bucket(nil), reloaded.buckets...)
		kept := *r
		kept.buckets = append([]bucket(nil), r.buckets...)
		if len(kept.buckets) == 0 {
			kept.buckets = nil
		}
		if len(reloaded.buckets) == 0 {
			reloaded.buckets = nil
		}
		if !reflect.DeepEqual(&kept, reloaded) {
			t.Fatalf("step %d (second %d): reloaded copy differs\nkept     %+v\nreloaded %+v", i, sec, kept, *reloaded)
		}
	}
}

func TestGoWindowsMatchAStraightforwardComputation(t *testing.T) {
	steady := func(n int) []scoreStep {
		out := make([]scoreStep, n)
		for i := range out {
			out[i] = scoreStep{dt: 1, sess: "S", att: float64(i%10) / 10, face: 1, emotion: i%3 == 0}
		}
		return out
	}
	cases := []struct {
		name  string
		steps []scoreStep
	}{
		{"a steady stream slides every window", steady(400)},
		{"an hour's class slides its buckets far past the first array", steady(3600)},
		{"a pause longer than one window empties only that one", append(steady(50), scoreStep{dt: 90, sess: "S", att: 1, face: 1}, scoreStep{dt: 21, sess: "S", att: 1, face: 1})},
		{"a gap of the horizon starts afresh", append(steady(20), scoreStep{dt: 600, sess: "S", att: 1, face: 1})},
		{"a new session starts afresh", append(steady(20), scoreStep{dt: 1, sess: "T", att: 0, face: 0})},
		{"a late second inside the windows is added", append(steady(100), scoreStep{dt: -30, sess: "S", att: 1, face: 1}, scoreStep{dt: 31, sess: "S", att: 0, face: 1})},
		{"a second older than every window only fills its bucket", append(steady(400), scoreStep{dt: -350, sess: "S", att: 1, face: 1}, scoreStep{dt: 351, sess: "S", att: 0, face: 1})},
		{"a score older than the horizon is late", append(steady(30), scoreStep{dt: -700, sess: "S", att: 1, face: 1}, scoreStep{dt: 701, sess: "S", att: 1, face: 1})},
		{"no face since the start counts from the first second", []scoreStep{{dt: 1, sess: "S"}, {dt: 1, sess: "S"}, {dt: 3, sess: "S"}}},
		{"two scores in one second share a bucket", append(steady(10), scoreStep{dt: 0, sess: "S", att: 0.3, face: 1})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkAgainstReference(t, 600, c.steps) })
	}
}

func TestGoWindowsMatchOnRandomSequences(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for n := 0; n < 40; n++ {
		steps := make([]scoreStep, 300+rng.Intn(500))
		for i := range steps {
			dt := int64(1)
			switch p := rng.Intn(100); {
			case p < 8:
				dt = int64(rng.Intn(400)) // pause
			case p < 14:
				dt = -int64(rng.Intn(700)) // late
			case p < 16:
				dt = 0
			}
			sess := "S"
			if rng.Intn(200) == 0 {
				sess = "T"
			}
			steps[i] = scoreStep{dt: dt, sess: sess, att: rng.Float64(), face: float64(rng.Intn(2)), emotion: rng.Intn(2) == 0}
		}
		checkAgainstReference(t, 600, steps)
	}
}

// FuzzRollingMatchesReference: any sequence of pauses, late seconds,
// session changes and values gives the reference model's windows, and a
// copy reloaded from the written hash equals the one kept.
func FuzzRollingMatchesReference(f *testing.F) {
	f.Add([]byte{1, 1, 1, 1, 200, 1, 1, 130, 1})
	f.Add([]byte{1, 1, 0x90, 1, 1, 0x40, 0x41, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var steps []scoreStep
		for i, b := range data {
			// Low 6 bits: the step (0–39 forward, 40–63 back 25 s each);
			// bit 6: face; bit 7: the other session.
			dt := int64(b & 0x3f)
			if dt >= 40 {
				dt = -(dt - 39) * 25
			} else if dt > 20 {
				dt = (dt - 20) * 35
			}
			sess := "S"
			if b&0x80 != 0 {
				sess = "T"
			}
			steps = append(steps, scoreStep{dt: dt, sess: sess, att: float64(i%7) / 7, face: float64(b >> 6 & 1), emotion: i%2 == 0})
		}
		checkAgainstReference(t, 600, steps)
	})
}

func TestLiveValuesReadBackBitForBit(t *testing.T) {
	r := &rolling{liveHash: liveHash{head: 1_800_000_300, fs: 1_800_000_000, lf: -1}}
	for i := range r.sums {
		for j := range r.sums[i] {
			r.sums[i][j] = float64(i*nv+j) / 3
		}
	}
	for j := range r.tot {
		r.tot[j] = 1e9 / float64(j+7)
	}
	got, ok := parseSummary(string(appendSummary(nil, r)))
	want := summary{head: r.head, fs: r.fs, lf: r.lf, sums: r.sums, tot: r.tot}
	if !ok || got != want {
		t.Fatalf("summary read back as %+v (ok %v), want %+v", got, ok, want)
	}
	var b [nv]float32
	for j := range b {
		b[j] = float32(j) / 7
	}
	sec, v, ok := parseBucketVec(string(appendBucket(nil, -5, &b)))
	if !ok || sec != -5 {
		t.Fatalf("bucket read back as second %d (ok %v)", sec, ok)
	}
	for j := range b {
		if float32(v[j]) != b[j] {
			t.Fatalf("bucket value %d read back as %v, want %v", j, v[j], b[j])
		}
	}
}

func TestUnreadableLiveValuesAreRefused(t *testing.T) {
	good := string(appendSummary(nil, &rolling{liveHash: liveHash{head: 10, fs: 1, lf: 9}}))
	cases := []struct {
		name, value string
	}{
		{"empty", ""},
		{"one byte short", good[:len(good)-1]},
		{"one byte long", good + "x"},
		{"another format tag", "\x03" + good[1:]},
		{"negative head", string(appendSummary(nil, &rolling{liveHash: liveHash{head: -1}}))},
		{"text", "1800000000 1 0.5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := parseSummary(c.value); ok {
				t.Fatalf("summary %q accepted", c.value)
			}
			if _, _, ok := parseBucketVec(c.value); ok {
				t.Fatalf("bucket %q accepted", c.value)
			}
		})
	}
}

// TestFormat1HashIsReadAndRewrittenWhole: a live hash written before
// format 2 (text fields) loads as the same copy, and the next score
// replaces it whole (mode f) with format 2 values a reload reads the same.
func TestFormat1HashIsReadAndRewrittenWhole(t *testing.T) {
	const horizon = 600
	sec := int64(1_800_000_000)
	old := simHash{"h": strconv.FormatInt(sec+2, 10), "fs": strconv.FormatInt(sec, 10), "lf": strconv.FormatInt(sec+1, 10),
		"sess": "S", "course": "c1", "v": "x1",
		"w60": "3 1.5 2 0 1.5 1.5 0.3 0.15 3 0 0 0 0 0 0 0 0", "w120": "3 1.5 2 0 1.5 1.5 0.3 0.15 3 0 0 0 0 0 0 0 0",
		"w300": "3 1.5 2 0 1.5 1.5 0.3 0.15 3 0 0 0 0 0 0 0 0", "st": "3 1.5 2 0 1.5 1.5 0.3 0.15 3 0 0 0 0 0 0 0 0"}
	for i, att := range []string{"0.25", "0.5", "0.75"} {
		face := "1"
		if i == 2 {
			face = "0"
		}
		s := sec + int64(i)
		old["b"+strconv.FormatInt(s%horizon, 10)] = strconv.FormatInt(s, 10) + " 1 " + att + " " + face + " 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0"
	}
	r := loadRolling(old, "scores:0", 41, horizon)
	if !r.legacy || r.head != sec+2 || r.fs != sec || r.lf != sec+1 || len(r.buckets) != 3 || r.sums[0][0] != 3 || r.tot[2] != 2 {
		t.Fatalf("format 1 copy: %+v", r)
	}
	v := scoreStep{dt: 1, sess: "S", att: 1, face: 1}.vec()
	st, _ := r.step(sec+3, "S", "c1", &v, horizon, nil, stepRoom{})
	if st.mode != modeFresh {
		t.Fatalf("first write to a format 1 hash: mode %q, want %q (rewrite)", st.mode, modeFresh)
	}
	if st.live.W1.Seconds != 4 || st.live.SessionTotals.Seconds != 4 || st.live.FaceAbsentSeconds != 0 {
		t.Fatalf("state after the rewrite: %+v", st.live)
	}
	h := simHash{}
	h.write(st, sec+3, horizon)
	for field := range h {
		if field == "h" || field == "w60" || field == "st" {
			t.Fatalf("format 1 field %q written", field)
		}
	}
	if len(h) != 4+3 { // s, sess, course, and the four buckets (no v: step does not version)
		t.Fatalf("rewritten hash has %d fields: %v", len(h), h)
	}
	reloaded := loadRolling(h, r.offField, r.off, horizon)
	r.version = ""
	if !reflect.DeepEqual(r, reloaded) {
		t.Fatalf("reloaded copy differs\nkept     %+v\nreloaded %+v", *r, *reloaded)
	}
}

// TestFormat1RewriteKeepsALateSecondsScore: the first score on a format 1
// hash may be of a second older than every window (mode b on a format 2
// hash); the rewrite deletes that second's old bucket, so the score starts
// it, and the windows are untouched.
func TestFormat1RewriteKeepsALateSecondsScore(t *testing.T) {
	const horizon = 600
	sec := int64(1_800_000_400)
	old := simHash{"h": strconv.FormatInt(sec, 10), "fs": strconv.FormatInt(sec-400, 10), "sess": "S", "course": "c1",
		"w60": "1 0.5 1 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0", "w120": "1 0.5 1 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0",
		"w300": "1 0.5 1 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0", "st": "1 0.5 1 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0",
		"b" + strconv.FormatInt(sec%horizon, 10): strconv.FormatInt(sec, 10) + " 1 0.5 1 0 0.5 0.5 0.1 0.05 1 0 0 0 0 0 0 0 0"}
	r := loadRolling(old, "scores:0", 41, horizon)
	late := sec - 350
	v := scoreStep{sess: "S", att: 0.25, face: 1}.vec()
	st, _ := r.step(late, "S", "c1", &v, horizon, nil, stepRoom{})
	if st.mode != modeFresh || st.vector != "" || st.live.W5.Seconds != 1 {
		t.Fatalf("late score on a format 1 hash: mode %q, vector %d bytes, live %+v", st.mode, len(st.vector), st.live)
	}
	h := simHash{}
	h.write(st, late, horizon)
	got, bv, ok := parseBucketVec(h["b"+strconv.FormatInt(late%horizon, 10)])
	if !ok || got != late || bv[0] != 1 || bv[1] != 0.25 {
		t.Fatalf("bucket of the late second: second %d, sums %v (ok %v)", got, bv, ok)
	}
	if _, _, ok := parseBucketVec(h["b"+strconv.FormatInt(sec%horizon, 10)]); !ok {
		t.Fatal("the head's bucket was not rewritten")
	}
}

func TestEraseForgetsTheLiveHashAndKeepsTheOffsets(t *testing.T) {
	r := newRolling("classpulse.scores.v1:3", 41)
	r.confirmed = 40
	r.keys = scoreKeys("er")
	r.liveHash = liveHash{version: "v9", ttlAt: 7, ttlSet: true, head: 100, sess: "S1", hasSess: true, course: "c",
		fs: 3, lf: 99, sums: [3]vec{{1}, {2}, {3}}, tot: vec{4}, buckets: []bucket{{}}, legacy: true}
	r.erase()
	if !reflect.DeepEqual(r.liveHash, noLiveHash()) {
		t.Errorf("after erase the copy still knows %+v", r.liveHash)
	}
	if r.offField != "classpulse.scores.v1:3" || r.off != 41 || r.confirmed != 40 || len(r.keys) != 5 {
		t.Errorf("erase touched the offsets or keys: %q %d %d %v", r.offField, r.off, r.confirmed, r.keys)
	}
}

func TestNextVersionIsTheFNVHashEarlierReleasesWrote(t *testing.T) {
	reference := func(prev, offField string, offset int64) string {
		h := fnv.New64a()
		h.Write([]byte(prev))
		h.Write([]byte{0})
		h.Write([]byte(offField))
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(offset))
		h.Write(b[:])
		return "." + strconv.FormatUint(h.Sum64(), 36)
	}
	cases := []struct {
		prev, field string
		offset      int64
	}{
		{"", "scores:0", 0},
		{".3k2j1x9z0a", "scores:7", 1_234_567},
		{"!.3k2j1x9z0a", "scores:12", 1<<40 + 3},
		{"legacy-version", "edge.scores:3", -1},
		{"ünïcode", "s:1", 255},
	}
	for _, c := range cases {
		if got, want := nextVersion(c.prev, c.field, c.offset), reference(c.prev, c.field, c.offset); got != want {
			t.Errorf("nextVersion(%q, %q, %d) = %q, want %q", c.prev, c.field, c.offset, got, want)
		}
	}
}
