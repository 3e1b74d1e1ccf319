package dashboard

import (
	"context"
	"encoding/json"
	"strings"
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

	code, _, raw := h.do("GET", "/api/v1/warnings/"+study.Ref+"/plan", counsellor, "")
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
	code, body, raw := h.do("GET", "/api/v1/warnings/"+degree.Ref+"/plan", counsellor, "")
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

func TestEffectivenessReportAPI(t *testing.T) {
	h := startHarness(t, Config{}, nil)
	if err := queue.NewStore(h.rdb).SetRoster(context.Background(), []queue.RosterEntry{{Student: "s1", Unit: "U1"}, {Student: "s2", Unit: "U2"}}); err != nil {
		t.Fatal(err)
	}
	w1 := warning("s1", "", "", stream.CategoryStudy, stream.LevelYellow)
	w2 := warning("s2", "", "", stream.CategoryStudy, stream.LevelYellow)
	cleared := *w1
	cleared.Header = stream.NewHeader("s1", w1.TS.Add(48*time.Hour))
	cleared.State = stream.StateCleared
	h.project(w1, w2, &cleared)
	term := queue.TermOf(w1.TS.Time)
	admin := h.token(Claims{Subject: "a1", Role: RoleAdmin})
	code, body, raw := h.do("GET", "/api/v1/reports/effectiveness?term="+term, admin, "")
	total, _ := body["total"].(map[string]any)
	if code != 200 || total["warned"] != 2.0 || total["recovered"] != 1.0 || total["median_days"] != 2.0 {
		t.Fatalf("admin report: %d %s", code, raw)
	}
	counsellor := h.token(Claims{Subject: "c1", Role: RoleCounsellor, Units: []string{"U2"}})
	if code, body, raw := h.do("GET", "/api/v1/reports/effectiveness?term="+term, counsellor, ""); code != 200 ||
		body["total"].(map[string]any)["warned"] != 1.0 || body["total"].(map[string]any)["recovered"] != 0.0 {
		t.Errorf("scoped report: %d %s", code, raw)
	}
	if code, _, csv := h.do("GET", "/api/v1/reports/effectiveness?format=csv&term="+term, admin, ""); code != 200 ||
		!strings.HasPrefix(csv, "term,category,playbook,warned,recovered,share,median_days_to_recovery,escalated\n") ||
		!strings.Contains(csv, term+",study,none,2,1,0.5,2,0\n") {
		t.Errorf("csv: %d %q", code, csv)
	}
	for _, bad := range []string{"term=../x", "format=pdf"} {
		if code, body, _ := h.do("GET", "/api/v1/reports/effectiveness?"+bad, admin, ""); code != 400 || body["field"] == nil {
			t.Errorf("%s: %d %v", bad, code, body)
		}
	}
}
