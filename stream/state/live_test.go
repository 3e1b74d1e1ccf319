package state

import (
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
		slot := "b" + strconv.FormatInt(mod(t, horizon), 10)
		sec, bv, ok := parseBucketVec(h[slot])
		if !ok || sec != t {
			bv = vec{}
		}
		v := parseVec(st.vector)
		for j := range bv {
			bv[j] += v[j]
		}
		h[slot] = strconv.FormatInt(t, 10) + " " + string(appendRounded(nil, &bv))
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
	appendRounded(nil, &v)
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
		st, buf = r.step(sec, s.sess, "c1", &v, horizon, buf)
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

func TestAppendG6PrintsLikeStrconvAndReturnsWhatTheTextParsesTo(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	values := []float64{0, 1, -1, 0.5, 1e-4, 9.99999e-5, 0.000123456, 999999, 999999.5, 1e6, 123456.5, 0.1, 2.5e-7, -3.75, 300, 299.9999999, 1.0000005}
	for i := 0; i < 200000; i++ {
		x := rng.Float64() * math.Pow(10, float64(rng.Intn(14)-7))
		if rng.Intn(2) == 0 {
			x = -x
		}
		values = append(values, x)
	}
	mismatches := 0
	for _, x := range values {
		got, r := appendG6(nil, x)
		back, err := strconv.ParseFloat(string(got), 64)
		if err != nil || back != r {
			t.Fatalf("%v: printed %q, which parses to %v, but returned %v", x, got, back, r)
		}
		if want := strconv.FormatFloat(x, 'g', 6, 64); string(got) != want {
			// Only a value within rounding error of a half-way point may
			// print differently.
			if math.Abs(back-x) > 1.0000001*math.Abs(x)*5e-6 {
				t.Fatalf("%v: printed %q, strconv %q", x, got, want)
			}
			mismatches++
		}
	}
	if mismatches > len(values)/10000 {
		t.Fatalf("%d of %d values print differently from strconv", mismatches, len(values))
	}
}
