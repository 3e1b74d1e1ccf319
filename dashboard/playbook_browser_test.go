package dashboard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/notify"
	"github.com/classpulse/classpulse/stream"
)

// TestBrowserQueuePlanPrefilledFromPlaybook opens Plan on a study warning
// in the queue page as its counsellor: the plan comes pre-filled from the
// default policy's playbook and saves as a plan step; the follow-up's
// proposal to close is confirmed with one click; the deliveries show; the
// effectiveness page renders the term.
func TestBrowserQueuePlanPrefilledFromPlaybook(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	ctx := context.Background()
	if err := queue.NewStore(h.rdb).SetRoster(ctx, []queue.RosterEntry{{Student: "s1", Unit: "U1"}}); err != nil {
		t.Fatal(err)
	}
	w := warning("s1", "", "", stream.CategoryStudy, stream.LevelYellow)
	w.Rule = "study"
	proposal := &stream.Intervention{Header: stream.NewHeader("s1", time.Now()), Warning: w.Ref, Action: stream.ActionFollowUp,
		Channel: "system", By: "system", Result: "propose_close_helped", Notes: "[automatic follow-up] Deadline: target met"}
	h.project(w, proposal)
	att, _ := json.Marshal(notify.Attempt{TS: time.Now().UTC(), Warning: w.ID, Ref: w.Ref, Channel: "webhook", To: "https://hooks.example/c1", Try: 1, Outcome: "delivered"})
	h.rdb.RPush(ctx, notify.AttemptsKey("s1", w.Ref), string(att))

	b := browser(t)
	tok := h.token(Claims{Role: RoleCounsellor, Subject: "c1", Units: []string{"U1"}})
	form := `form[data-planform="` + w.Ref + `"]`
	run(t, b, 30*time.Second,
		h.signIn(tok, "/queue"),
		chromedp.WaitVisible(chromedp.CSS(`button[data-plan="`+w.Ref+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-plan="`+w.Ref+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(form)),
		chromedp.WaitVisible(chromedp.CSS(`[data-proposal] button`)),
		chromedp.WaitVisible(chromedp.CSS(`table[data-deliveries]`)),
	)
	tasks := get(t, b, chromedp.Value(chromedp.CSS(form+` textarea[name="tasks"]`)))
	if !strings.HasPrefix(tasks, "Contact the student by phone or social media") || strings.Count(tasks, "\n") != 4 {
		t.Errorf("pre-filled tasks %q", tasks)
	}
	if due := get(t, b, chromedp.Value(chromedp.CSS(form+` input[name="due"]`))); len(due) != 10 {
		t.Errorf("pre-filled due %q", due)
	}
	if dl := get(t, b, chromedp.Text(chromedp.CSS(`table[data-deliveries]`))); !strings.Contains(dl, "delivered") || !strings.Contains(dl, "hooks.example") {
		t.Errorf("deliveries %q", dl)
	}
	run(t, b, 15*time.Second, chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)))
	testenv.WaitFor(t, 10*time.Second, "the plan step posted", func() bool { return h.pub.find(stream.ActionPlan) != nil })
	if p := h.pub.find(stream.ActionPlan); len(p.Tasks) != 5 || p.Due == nil || p.By != "c1" {
		t.Errorf("posted plan %+v", p)
	}
	run(t, b, 15*time.Second, chromedp.Click(chromedp.CSS(`[data-proposal] button`)))
	testenv.WaitFor(t, 10*time.Second, "the close confirmed", func() bool { return h.pub.find(stream.ActionClose) != nil })
	if c := h.pub.find(stream.ActionClose); c.Result != "helped" || c.By != "c1" {
		t.Errorf("close %+v", c)
	}

	run(t, b, 30*time.Second,
		chromedp.Navigate(h.base+"/effectiveness?term="+queue.TermOf(w.TS.Time)),
		chromedp.WaitVisible(chromedp.CSS(`#effectiveness tr.total`)),
	)
	if txt := get(t, b, chromedp.Text(chromedp.CSS(`#effectiveness`))); !strings.Contains(txt, "study") {
		t.Errorf("effectiveness table %q", txt)
	}
}

// find returns the last published intervention with action.
func (p *recordingPublisher) find(action string) *stream.Intervention {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.events) - 1; i >= 0; i-- {
		if iv, ok := p.events[i].(*stream.Intervention); ok && iv.Action == action {
			return iv
		}
	}
	return nil
}
