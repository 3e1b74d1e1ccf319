package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/classpulse/classpulse/stream"
)

// A roster student who sends no scores (no camera) is a grey "not
// captured" tile on the live grid, counted as not captured in the class
// panel and left out of the attentive share, never shown as inattentive.
func TestBrowserGridShowsRosterStudentWithoutScoresAsNotCaptured(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	ctx := browser(t)
	admin := h.token(Claims{Role: RoleAdmin})
	if code, _, raw := h.do("PUT", "/api/v1/roster", admin, `[{"student":"s1","class":"S1"},{"student":"s2","class":"S1"}]`); code != 200 {
		t.Fatalf("roster: %d %s", code, raw)
	}
	tile := &stream.Tile{Header: stream.NewHeader("s1", time.Now()), Session: "S1", Course: "C1", Captured: true, Attention: 0.9, FacePresent: true}
	b, _ := stream.Encode(tile)
	h.rdb.HSet(context.Background(), TilesKey("S1"), "s1", string(b))

	tok := h.token(Claims{Role: RoleInstructor, Classes: []string{"S1"}})
	run(t, ctx, 30*time.Second,
		h.signIn(tok, "/?class=S1"),
		chromedp.WaitVisible(chromedp.CSS(`.tile.nc[data-student="s2"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.tile[data-student="s1"]:not(.nc)`)),
	)
	label := get(t, ctx, chromedp.Evaluate[string](`CP.t("notcaptured")`))
	if text := get(t, ctx, chromedp.Text(chromedp.CSS(`.tile[data-student="s2"] .att`))); text != label {
		t.Fatalf("s2 tile says %q, want %q", text, label)
	}
	if bg := get(t, ctx, chromedp.Evaluate[string](`document.querySelector('.tile[data-student="s2"]').style.background`)); bg != "" {
		t.Fatalf("s2 tile is coloured by attention (%q), want the grey not-captured pattern", bg)
	}
	panel := get(t, ctx, chromedp.Text(chromedp.CSS(`#panel`)))
	attentive := get(t, ctx, chromedp.Evaluate[string](`CP.t("attentive")`))
	if !strings.HasSuffix(panel, label+" 1") || !strings.Contains(panel, attentive+" 100%") {
		t.Fatalf("class panel %q: want 1 %s and the one captured student %s 100%%", panel, label, attentive)
	}
}
