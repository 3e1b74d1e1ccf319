package dashboard

import (
	"net/http"
	"time"

	"github.com/classpulse/classpulse/notify"
	"github.com/classpulse/classpulse/rules"
)

// policy is the warning policy in force: the one the student reader was
// built with (the processor's --policy), else the embedded default.
func (s *Server) policy() *rules.Policy {
	if sr, ok := s.students.(*StateReader); ok {
		if p := sr.policy.Policy(); p != nil {
			return p
		}
	}
	return rules.DefaultPolicy()
}

// planPrefill is the answer of GET /api/v1/warnings/{ref}/plan: the help
// plan the policy's playbook proposes for the warning, ready to post as a
// plan step (the counsellor edits it first), and the follow-up
// classpulse followup will run on it.
type planPrefill struct {
	Ref string `json:"ref"`
	// Playbook is nil when the policy has none for the warning's category
	// and level; Plan then holds only a due date.
	Playbook *playbookView `json:"playbook"`
	// Plan is the body to POST to /api/v1/warnings/{ref}/steps.
	Plan stepBody `json:"plan"`
	// Contact pre-fills the talk step with the student: its channel.
	Contact string `json:"contact,omitempty"`
	// Checkpoints are the follow-up of a plan written now with that due date.
	Checkpoints []checkpointView `json:"checkpoints"`
}

type playbookView struct {
	ID            string   `json:"id"`
	Title         string   `json:"title"`
	Category      string   `json:"category"`
	Level         string   `json:"level,omitempty"`
	Contact       []string `json:"contact"`
	RemindOn      string   `json:"remind_on"`
	CheckOn       string   `json:"check_on"`
	At            string   `json:"at"`
	DeadlineDays  int      `json:"deadline_days"`
	OnUnmet       string   `json:"on_unmet"`
	FamilyContact bool     `json:"family_if_no_progress"`
}

type checkpointView struct {
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
}

// defaultPlanDays is the due date of a plan without a playbook.
const defaultPlanDays = 14

// apiPlanPrefill answers GET /api/v1/warnings/{ref}/plan for those who may
// write the plan: the student's counsellors and admins.
func (s *Server) apiPlanPrefill(w http.ResponseWriter, r *http.Request, p *Principal) {
	rec := s.loadRecord(w, r, p)
	if rec == nil {
		return
	}
	if !p.CanWorkOn(rec.Student, rec.Unit) {
		s.deny(w, r, p, http.StatusForbidden, "only the student's counsellors write help plans")
		return
	}
	pol := s.policy()
	now := s.now()
	out := planPrefill{Ref: rec.Ref, Checkpoints: []checkpointView{}}
	out.Plan.Action = "plan"
	pb := pol.Playbook(rec.Category, rec.Level)
	if pb == nil {
		out.Plan.Due = now.In(pol.Location()).AddDate(0, 0, defaultPlanDays).Format("2006-01-02")
		writeJSON(w, http.StatusOK, out)
		return
	}
	due := pb.Due(pol, now)
	out.Playbook = &playbookView{ID: pb.ID, Title: pb.Title, Category: pb.Category, Level: pb.Level, Contact: pb.Contact,
		RemindOn: pb.RemindOn, CheckOn: pb.CheckOn, At: pb.At, DeadlineDays: pb.DeadlineDays, OnUnmet: pb.OnUnmet,
		FamilyContact: pb.FamilyContact()}
	out.Plan.Tasks = append([]string{}, pb.Tasks...)
	out.Plan.Due = due.Format(time.RFC3339)
	out.Plan.Notes = "Playbook " + pb.ID + ": " + pb.Title
	out.Contact = pb.Contact[0]
	for _, c := range pb.Checkpoints(pol, now, due) {
		out.Checkpoints = append(out.Checkpoints, checkpointView{ID: c.ID, Kind: c.Kind, At: c.At.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// helpLoopRoutes registers the help-plan, delivery and report routes
// (docs/api.md), and the xAPI endpoint when mounted: one call from
// apiRoutes.
func (s *Server) helpLoopRoutes(handle func(string, http.HandlerFunc)) {
	handle("GET /api/v1/warnings/{ref}/plan", s.authed(s.apiPlanPrefill))
	handle("GET /api/v1/warnings/{ref}/deliveries", s.authed(s.apiDeliveries))
	handle("GET /api/v1/reports/effectiveness", s.authed(s.apiEffectiveness))
	s.xapiRoute(handle)
}

// apiDeliveries answers GET /api/v1/warnings/{ref}/deliveries: every
// notification delivery attempt recorded for the warning (notify.Attempts),
// oldest first. Addresses are personal data, so only those who work on the
// student see them.
func (s *Server) apiDeliveries(w http.ResponseWriter, r *http.Request, p *Principal) {
	rec := s.loadRecord(w, r, p)
	if rec == nil {
		return
	}
	if !p.CanWorkOn(rec.Student, rec.Unit) {
		s.deny(w, r, p, http.StatusForbidden, "delivery records are for the student's counsellors")
		return
	}
	atts, err := notify.Attempts(r.Context(), s.rdb, rec.Student, rec.Ref)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	if atts == nil {
		atts = []notify.Attempt{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ref": rec.Ref, "deliveries": atts})
}
