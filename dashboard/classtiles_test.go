package dashboard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/rules"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/state"
)

// TestClassTilesShowRosterStudentsWithoutCameraAsNotCaptured checks the
// first paint of a class grid, over the API and the WebSocket snapshot:
// roster students of the class without a tile, and students whose camera
// consent was revoked, come as captured=false tiles (grey "not captured"
// on the grid), never as inattentive ones.
func TestClassTilesShowRosterStudentsWithoutCameraAsNotCaptured(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	ctx := context.Background()
	admin := h.token(Claims{Role: RoleAdmin})
	if code, _, raw := h.do("PUT", "/api/v1/roster", admin, `[
		{"student":"s1","unit":"U1","class":"S1"},
		{"student":"s2","unit":"U1","class":"S1"},
		{"student":"s3","unit":"U1","class":"S1"},
		{"student":"s9","unit":"U1","class":"S2"}]`); code != 200 {
		t.Fatalf("roster: %d %s", code, raw)
	}
	tile := func(student string, att float64) string {
		b, err := stream.Encode(&stream.Tile{Header: stream.NewHeader(student, time.Now()), Session: "S1", Course: "C1", Captured: true, Attention: att, FacePresent: true})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// s1 is on camera; s3 was, until its camera consent was revoked (the
	// processor's own apply script records it); s2 never sent a score; s4
	// is on camera without being on the roster.
	h.rdb.HSet(ctx, TilesKey("S1"), "s1", tile("s1", 0.8), "s3", tile("s3", 0.1), "s4", tile("s4", 0.6))
	st, err := state.New(h.rdb, state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	revoke := &stream.Consent{Header: stream.NewHeader("s3", time.Now()), Scope: stream.ScopeCamera, Granted: false, PolicyVersion: "2026-1"}
	if _, err := st.Apply(ctx, rules.DefaultPolicy(), []state.Op{{Event: revoke, Topic: stream.TopicConsent, Offset: 1}}); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		student   string
		captured  bool
		attention float64
	}{
		{"s1", true, 0.8},
		{"s2", false, 0},
		{"s3", false, 0},
		{"s4", true, 0.6},
		// s9 is in another class: not on this grid.
	}
	check := func(t *testing.T, raws []json.RawMessage) {
		t.Helper()
		if len(raws) != len(want) {
			t.Fatalf("%d tiles, want %d: %s", len(raws), len(want), raws)
		}
		for i, w := range want {
			var tl stream.Tile
			if err := json.Unmarshal(raws[i], &tl); err != nil {
				t.Fatal(err)
			}
			if tl.Student != w.student || tl.Captured != w.captured || tl.Attention != w.attention || tl.Session != "S1" {
				t.Errorf("tile %d = %s, want student %s captured %v attention %v in S1", i, raws[i], w.student, w.captured, w.attention)
			}
			if !w.captured && (tl.FacePresent || tl.Dominant != "") {
				t.Errorf("not-captured tile %s carries camera data", raws[i])
			}
		}
	}
	instructor := h.token(Claims{Role: RoleInstructor, Classes: []string{"S1"}})
	t.Run("api", func(t *testing.T) {
		code, _, raw := h.do("GET", "/api/v1/classes/S1/tiles", instructor, "")
		if code != 200 {
			t.Fatalf("tiles: %d %s", code, raw)
		}
		var body struct {
			Tiles []json.RawMessage `json:"tiles"`
		}
		if err := json.Unmarshal([]byte(raw), &body); err != nil {
			t.Fatal(err)
		}
		check(t, body.Tiles)
	})
	t.Run("websocket snapshot", func(t *testing.T) {
		c, _, err := h.dial(instructor, nil)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, map[string]any{"op": "subscribe", "channel": "class:S1"})
		check(t, next(t, c, "snapshot", 5*time.Second).Tiles)
	})
	t.Run("a roster upload shows at once", func(t *testing.T) {
		// The grid above cached the roster; a new upload through this
		// replica must not wait for the cache to expire.
		if code, _, raw := h.do("PUT", "/api/v1/roster", admin, `[
			{"student":"s1","unit":"U1","class":"S1"},{"student":"s2","unit":"U1","class":"S1"},
			{"student":"s3","unit":"U1","class":"S1"},{"student":"s5","unit":"U1","class":"S1"}]`); code != 200 {
			t.Fatalf("roster: %d %s", code, raw)
		}
		code, _, raw := h.do("GET", "/api/v1/classes/S1/tiles", instructor, "")
		if code != 200 || !strings.Contains(raw, `"student":"s5"`) {
			t.Fatalf("tiles after the upload: %d %s, want the new roster student s5", code, raw)
		}
	})
}
