package state

import (
	"bytes"
	"testing"
)

// TestScoreArgsLayOutWhatTheirBoxedFormWould: the ordered connection lays
// a score's arguments out from the typed form, the pool sends the boxed
// one; Redis must receive the same bytes either way.
func TestScoreArgsLayOutWhatTheirBoxedFormWould(t *testing.T) {
	cases := []struct {
		name string
		a    scoreArgs
	}{
		{"a write", scoreArgs{field: "classpulse.scores.v1:3", offset: 1234567, sec: 1796668390, prev: "1234566", expect: ".k3x9", ttl: "900",
			mode: modeWrite, horizon: 600, version: ".a1b2", pairs: []string{"b7", "\x02bucket", "s", "\x02summary"}}},
		{"a first score", scoreArgs{field: "classpulse.scores.v1:0", offset: 0, sec: -1, check: "1", ttl: "900", mode: modeFresh,
			horizon: 600, version: ".z", pairs: []string{"sess", "S1", "course", "law"}}},
		{"a late score", scoreArgs{field: "f", offset: 9, sec: 5, expect: ".v", mode: modeLate, horizon: 600}},
		{"a second no window covers", scoreArgs{field: "f", offset: 10, sec: 6, expect: ".v", mode: modeBucket, vector: "\x00\x01", horizon: 600, version: ".w"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typed := c.a.append(nil)
			var boxed []byte
			anys := c.a.anys()
			if len(anys) != c.a.len() {
				t.Fatalf("len() = %d, %d boxed arguments", c.a.len(), len(anys))
			}
			for _, v := range anys {
				var err error
				if boxed, err = appendArg(boxed, v); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(typed, boxed) {
				t.Fatalf("typed\\n%q\\nboxed\\n%q", typed, boxed)
			}
		})
	}
}
