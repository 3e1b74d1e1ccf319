package simulate

import (
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

func TestPersonasAreDealtByMix(t *testing.T) {
	c, err := New(Config{Students: 40}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := map[Persona]int{}
	for _, s := range c.Students() {
		count[s.Persona]++
	}
	want := map[Persona]int{Drifting: 6, Absent: 4, Confused: 4, NoCamera: 2, Attentive: 24}
	for p, n := range want {
		if count[p] != n {
			t.Errorf("%v: %d students, want %d", p, count[p], n)
		}
	}
}

func TestEverySimulatedEventIsValidAndPersonasDiffer(t *testing.T) {
	c, err := New(Config{Students: 40, Seed: 7}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	att := map[Persona][]float64{}
	face := map[Persona]float64{}
	persona := map[string]Persona{}
	for _, s := range c.Students() {
		persona[s.ID] = s.Persona
	}
	for _, e := range c.Consents(start) {
		if err := e.Validate(); err != nil {
			t.Fatalf("consent: %v", err)
		}
	}
	for sec := 1; sec <= 120; sec++ {
		for _, e := range c.Second(start.Add(time.Duration(sec)*time.Second), time.Duration(sec)*time.Second) {
			if err := e.Validate(); err != nil {
				t.Fatalf("second %d: invalid %s: %v", sec, e.Topic(), err)
			}
			sc, ok := e.(*stream.Score)
			if !ok {
				continue
			}
			p := persona[sc.Student]
			if p == NoCamera {
				t.Fatalf("a student without camera consent sent a score")
			}
			if sec > 60 {
				att[p] = append(att[p], sc.Attention)
				face[p] += sc.FaceRatio
			}
		}
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	if face[Absent] != 0 {
		t.Errorf("absent students showed a face")
	}
	if a, d := mean(att[Attentive]), mean(att[Drifting]); a < 0.75 || d > 0.45 {
		t.Errorf("attentive mean %.2f, drifting mean %.2f: personas do not differ as documented", a, d)
	}
}

func TestSameSeedSameClass(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	a, _ := New(Config{Students: 10, Seed: 3}, nil, nil)
	b, _ := New(Config{Students: 10, Seed: 3}, nil, nil)
	ea, eb := a.Second(at, time.Minute), b.Second(at, time.Minute)
	if len(ea) != len(eb) {
		t.Fatalf("%d vs %d events", len(ea), len(eb))
	}
	for i := range ea {
		sa, ok1 := ea[i].(*stream.Score)
		sb, ok2 := eb[i].(*stream.Score)
		if ok1 != ok2 || (ok1 && sa.Attention != sb.Attention) {
			t.Fatalf("event %d differs between two classes of one seed", i)
		}
	}
}

func TestConfigRejectsImpossibleClasses(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"negative students", Config{Students: -1}},
		{"tick too short", Config{Tick: time.Millisecond}},
		{"shares above one", Config{Mix: map[Persona]float64{Absent: 0.7, Drifting: 0.5}}},
		{"negative share", Config{Mix: map[Persona]float64{Absent: -0.1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg, nil, nil); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
