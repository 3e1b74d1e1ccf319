package dashboard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// TestEUProfileHidesEmotionFieldsEndToEnd feeds the dashboard emotion data
// — a stored tile and a live tile with a dominant learning emotion, and
// warnings from the confused rule — and checks every way out: the tiles
// API, the WebSocket snapshot and tile frames, the student page API (whose
// live series the pages draw), the warning feed and the warning queue.
// Under the default profile the emotion data shows (so the fixture has
// some); under eu none of it does, and warnings not derived from emotion
// still flow.
func TestEUProfileHidesEmotionFieldsEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		jurisdiction string
		shown        bool
	}{
		{"default", true},
		{"eu", false},
	} {
		t.Run(tc.jurisdiction, func(t *testing.T) {
			h := startHarness(t, Config{Jurisdiction: tc.jurisdiction}, nil)
			ctx := context.Background()
			tile := func(student string) []byte {
				tl := &stream.Tile{Header: stream.NewHeader(student, time.Now()), Session: "S1", Course: "C1", Captured: true, Attention: 0.6, FacePresent: true, Dominant: "confused"}
				b, err := stream.Encode(tl)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			check := func(what, body string) {
				t.Helper()
				if got := strings.Contains(body, `"dominant"`) || strings.Contains(body, "confused"); got != tc.shown {
					t.Errorf("%s: emotion data shown %v, want %v: %s", what, got, tc.shown, body)
				}
			}
			h.rdb.HSet(ctx, TilesKey("S1"), "s1", string(tile("s1")))
			admin := h.token(Claims{Role: RoleAdmin})

			_, _, body := h.do("GET", "/api/v1/classes/S1/tiles", admin, "")
			check("tiles API", body)

			c, _, err := h.dial(admin, nil)
			if err != nil {
				t.Fatal(err)
			}
			send(t, c, map[string]any{"op": "subscribe", "channel": "class:S1"})
			snap := next(t, c, "snapshot", 5*time.Second)
			b, _ := json.Marshal(snap.Tiles)
			check("WebSocket snapshot", string(b))

			// A live tile: published until the subscription is in place.
			got := make(chan anyFrame, 1)
			go func() { got <- next(t, c, "tile", 10*time.Second) }()
			var f anyFrame
		wait:
			for deadline := time.Now().Add(10 * time.Second); ; {
				h.rdb.Publish(ctx, LiveTiles, string(tile("s2")))
				select {
				case f = <-got:
					break wait
				case <-time.After(50 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("no tile frame")
				}
			}
			b, _ = json.Marshal(f.Tile)
			check("WebSocket tile frame", string(b))

			// The live series of the student page, recorded from that tile.
			_, _, body = h.do("GET", "/api/v1/students/s2", admin, "")
			if !strings.Contains(body, `"points"`) {
				t.Fatalf("the student page has no live series to check: %s", body)
			}
			check("student page API", body)

			// Warnings: the confused rule's, then one not about emotions.
			send(t, c, map[string]any{"op": "subscribe", "channel": "warnings"})
			next(t, c, "subscribed", 5*time.Second)
			confused := warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelYellow)
			confused.Rule, confused.Reason, confused.Evidence = "confused", "confused for 2 minutes", map[string]float64{"confused_2m": 0.7}
			plain := warning("s1", "S1", "C1", stream.CategoryEngagement, stream.LevelYellow)
			h.xaddWarning(confused)
			h.xaddWarning(plain)
			first := next(t, c, "warning", 5*time.Second)
			if want := map[bool]string{true: confused.Ref, false: plain.Ref}[tc.shown]; first.Warning.Ref != want {
				t.Errorf("first warning on the feed %s (rule %s), want %s", first.Warning.Ref, first.Warning.Rule, want)
			}
			h.project(confused, plain)
			_, _, body = h.do("GET", "/api/v1/warnings", admin, "")
			if got := strings.Contains(body, confused.Ref); got != tc.shown {
				t.Errorf("queue lists the confused warning %v, want %v", got, tc.shown)
			}
			if !strings.Contains(body, plain.Ref) {
				t.Errorf("queue lost the warning not derived from emotion: %s", body)
			}
		})
	}
}

func TestUnknownJurisdictionIsAStartUpError(t *testing.T) {
	c := Config{Jurisdiction: "mars"}
	c.applyDefaults()
	if err := c.Validate(); err == nil {
		t.Fatal("jurisdiction mars accepted")
	}
}
