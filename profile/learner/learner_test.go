package learner

import "testing"

func TestParseSkipsWhatDoesNotParse(t *testing.T) {
	cases := []struct {
		name  string
		field string
		value string
		want  int
	}{
		{"a record", "learner|math", `{"profile":"balanced","cluster":1,"k":3,"grade":"C","p_d":0.2,"at":"2026-11-23T12:00:00Z"}`, 1},
		{"a record without course", "learner", `{"profile":"balanced","cluster":1,"k":3,"at":"2026-11-23T12:00:00Z"}`, 1},
		{"not JSON", "learner|math", `balanced`, 0},
		{"no profile", "learner|math", `{"cluster":1}`, 0},
		{"a roster field with the same start", "learners_note", `{"profile":"x"}`, 0},
		{"a roster fact", "class", `c1`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Parse(map[string]string{c.field: c.value})
			if len(got) != c.want {
				t.Fatalf("%d records, want %d: %+v", len(got), c.want, got)
			}
		})
	}
	got := Parse(map[string]string{"learner|x": `{"profile":"p","p_d":7}`})
	if len(got) != 1 || got[0].PD != nil {
		t.Fatalf("an impossible P(D) must be dropped: %+v", got)
	}
}

func TestMarshalRefusesAnImpossibleProbability(t *testing.T) {
	for _, pd := range []float64{-0.1, 1.5} {
		r := Record{Profile: "p", PD: &pd}
		if _, err := r.Marshal(); err == nil {
			t.Fatalf("P(D) %v marshalled", pd)
		}
	}
	pd := 0.25
	r := Record{Course: "math", Profile: "balanced", Grade: "C", PD: &pd}
	v, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got := Parse(map[string]string{Field("math"): v})
	if len(got) != 1 || got[0].Course != "math" || !got[0].SameValues(&r) {
		t.Fatalf("round trip: %+v", got)
	}
}

// FuzzParse feeds Parse roster hashes: whatever a field holds, Parse
// returns only records with a profile and a P(D) in 0..1, and every one
// marshals back.
func FuzzParse(f *testing.F) {
	f.Add("learner|math", `{"profile":"balanced","cluster":1,"k":3,"grade":"C","p_d":0.2,"at":"2026-11-23T12:00:00Z"}`)
	f.Add("learner", `{"profile":"x","p_d":-1}`)
	f.Add("learner|", `null`)
	f.Add("class", "c1")
	f.Fuzz(func(t *testing.T, field, value string) {
		for _, r := range Parse(map[string]string{field: value}) {
			if r.Profile == "" || r.PD != nil && !(*r.PD >= 0 && *r.PD <= 1) {
				t.Fatalf("parsed %+v", r)
			}
			if _, err := r.Marshal(); err != nil {
				t.Fatalf("a parsed record does not marshal: %v", err)
			}
		}
	})
}
