package notify

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/classpulse/classpulse/stream"
)

func TestFollowUpRemindersRouteByDefaultNotWhereStatesExcludeThem(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	all, raisedOnly := &receiver{}, &receiver{}
	a, b := httptest.NewServer(all), httptest.NewServer(raisedOnly)
	defer a.Close()
	defer b.Close()
	d := webhookDispatcher(t, rdb, []Route{
		{To: []string{a.URL}, Channel: ChannelWebhook},
		{To: []string{b.URL}, Channel: ChannelWebhook, States: []string{"raised"}},
	})
	w := warning("s1", "study", "yellow", StateFollowUp)
	w.Reason = "Reminder of the help plan: 2 courses still short"
	if err := d.Notify(ctx, w); err != nil {
		t.Fatal(err)
	}
	if len(all.bodies) != 1 || len(raisedOnly.bodies) != 0 {
		t.Fatalf("default route got %d, raised-only route %d; want 1 and 0", len(all.bodies), len(raisedOnly.bodies))
	}
	var p struct {
		Type    string `json:"type"`
		Warning struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
		} `json:"warning"`
	}
	if err := json.Unmarshal(all.bodies[0], &p); err != nil || p.Warning.State != StateFollowUp || p.Warning.Reason != w.Reason {
		t.Fatalf("payload %s: %v", all.bodies[0], err)
	}
	if m := d.message([]*stream.Warning{w}, target{}); m.Subject != "classpulse: help-plan follow-up on a yellow study warning" {
		t.Errorf("subject %q", m.Subject)
	}
}
