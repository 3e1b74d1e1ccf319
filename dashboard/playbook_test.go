package dashboard

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/notify"
	"github.com/classpulse/classpulse/stream"
)

func TestPlanPrefillFollowsThePoliciesPlaybook(t *testing.T) {
	now := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC) // Monday 15:00 in Shanghai
	h := startHarness(t, Config{}, nil)
	h.srv.now = func() time.Time { return now }
	if err := queue.NewStore(h.rdb).SetRoster(context.Background(), []queue.RosterEntry{{Student: "s1", Unit: "U1"}}); err != nil {
		t.Fatal(err)
	}
	study := warning("s1", "", "", stream.CategoryStudy, stream.LevelYellow)
	degree := warning("s1", "", "", stream.CategoryDegree, stream.LevelYellow)
	h.project(study, degree)
	counsellor := h.token(Claims{Subject: "c1", Role: RoleCounsellor, Units: []string{"U1"}})

	code, body, raw := h.do("GET", "/api/v1/warnings/"+study.Ref+"/plan", counsellor, "")
	if code != 200 {
		t.Fatalf("plan prefill: %d %s", code, raw)
	}
	var got planPrefill
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	if got.Playbook == nil || got.Playbook.ID != "study-yellow" || got.Playbook.OnUnmet != "raise_red" || got.Contact != "phone" {
		t.Fatalf("playbook %+v contact %q", got.Playbook, got.Contact)
	}
	if got.Plan.Action != "plan" || len(got.Plan.Tasks) != 5 || got.Plan.Due != "2026-12-21T09:00:00+08:00" {
		t.Errorf("plan %+v", got.Plan)
	}
	if n := len(got.Checkpoints); n == 0 || got.Checkpoints[0].ID != "check-2026-11-27" || got.Checkpoints[n-1].Kind != "deadline" {
		t.Errorf("checkpoints %+v", got.Checkpoints)
	}
	// The pre-filled plan posts as it is.
	b, _ := json.Marshal(got.Plan)
	if code, _, raw := h.do("POST", "/api/v1/warnings/"+study.Ref+"/steps", counsellor, string(b)); code != 202 {
		t.Errorf("posting the pre-filled plan: %d %s", code, raw)
	}

	// No playbook for degree warnings: a due date only.
	code, body, raw = h.do("GET", "/api/v1/warnings/"+degree.Ref+"/plan", counsellor, "")
	if code != 200 || body["playbook"] != nil || body["plan"].(map[string]any)["due"] != "2026-12-07" {
		t.Errorf("no playbook: %d %s", code, raw)
	}
	student := h.token(Claims{Subject: "s1", Role: RoleStudent})
	if code, _, _ := h.do("GET", "/api/v1/warnings/"+study.Ref+"/plan", student, ""); code != 403 && code != 404 {
		t.Errorf("a student got the plan prefill: %d", code)
	}
}

func TestDeliveriesShowNotifyAttempts(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	if err := queue.NewStore(h.rdb).SetRoster(context.Background(), []queue.RosterEntry{{Student: "s1", Unit: "U1"}}); err != nil {
		t.Fatal(err)
	}
	w := warning("s1", "", "", stream.CategoryGrade, stream.LevelRed)
	h.project(w)
	a := notify.Attempt{TS: time.Now().UTC(), Warning: w.ID, Ref: w.Ref, Channel: "email", To: "c1@school", Role: "counsellor", Try: 1, Outcome: "delivered"}
	ab, _ := json.Marshal(a)
	// As the dispatcher records them.
	h.rdb.RPush(context.Background(), notify.AttemptsKey("s1", w.Ref), string(ab))
	counsellor := h.token(Claims{Subject: "c1", Role: RoleCounsellor, Students: []string{"s1"}})
	code, body, raw := h.do("GET", "/api/v1/warnings/"+w.Ref+"/deliveries", counsellor, "")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	ds := body["deliveries"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["outcome"] != "delivered" || ds[0].(map[string]any)["to"] != "c1@school" {
		t.Errorf("deliveries %s", raw)
	}
	other := warning("s1", "", "", stream.CategoryGrade, stream.LevelYellow)
	h.project(other)
	if code, body, raw := h.do("GET", "/api/v1/warnings/"+other.Ref+"/deliveries", counsellor, ""); code != 200 || len(body["deliveries"].([]any)) != 0 {
		t.Errorf("a warning without attempts: %d %s", code, raw)
	}
}
