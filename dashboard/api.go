package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/stream"
)

func (s *Server) apiRoutes(handle func(string, http.HandlerFunc)) {
	handle("GET /api/v1/me", s.authed(s.apiMe))
	handle("GET /api/v1/classes/{class}/tiles", s.authed(s.apiClassTiles))
	handle("GET /api/v1/students/{id}", s.authed(s.apiStudent))
	handle("GET /api/v1/warnings", s.authed(s.apiWarnings))
	handle("GET /api/v1/warnings/{ref}", s.authed(s.apiWarning))
	handle("GET /api/v1/warnings/{ref}/reasons", s.authed(s.apiReasons))
	handle("POST /api/v1/warnings/{ref}/steps", s.authed(s.apiPostStep))
	handle("GET /api/v1/warnings/{ref}/notice", s.authed(s.apiNotice))
	handle("GET /api/v1/summary", s.authed(s.apiSummary))
	handle("PUT /api/v1/roster", s.authed(s.apiPutRoster))
	s.helpLoopRoutes(handle)
	handle("POST /api/v1/admin/revocations", s.authed(s.apiRevoke))
	handle("GET /api/v1/admin/revocations", s.authed(s.apiRevocations))
	handle("/api/", s.authed(func(w http.ResponseWriter, r *http.Request, _ *Principal) {
		writeErr(w, http.StatusNotFound, "", "no such API route; see docs/api.md")
	}))
}

func (s *Server) apiMe(w http.ResponseWriter, _ *http.Request, p *Principal) {
	writeJSON(w, http.StatusOK, p.Claims)
}

func (s *Server) apiClassTiles(w http.ResponseWriter, r *http.Request, p *Principal) {
	class := r.PathValue("class")
	if !validIdent(class) {
		writeErr(w, http.StatusBadRequest, "class", "not an id")
		return
	}
	if !p.CanSeeClass(class) {
		s.deny(w, r, p, http.StatusForbidden, "class "+class+" is not one of your classes")
		return
	}
	tiles, err := s.classTiles(r.Context(), class)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", "redis: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"class": class, "tiles": tiles})
}

// studentAccess loads what decides access to a student and checks it.
func (s *Server) studentAccess(ctx context.Context, p *Principal, student string) (unit string, ok bool) {
	unit, _ = s.store.Unit(ctx, student)
	inClass := p.Role == RoleInstructor && s.inInstructorClass(ctx, p, student)
	return unit, p.CanSeeStudent(student, unit, inClass)
}

// recordVisible decides whether p sees a queue record.
func (s *Server) recordVisible(p *Principal, rec *queue.Record) bool {
	if s.hideEmotions() && emotionDerived(rec.Rule, rec.Evidence) {
		return false
	}
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleCounsellor:
		return !liveSignal(rec.Category) && rec.Student != "" && p.CanWorkOn(rec.Student, rec.Unit)
	case RoleInstructor:
		return (rec.Session != "" && slices.Contains(p.Classes, rec.Session)) || (rec.Course != "" && slices.Contains(p.Classes, rec.Course))
	case RoleStudent, RoleGuardian:
		return !liveSignal(rec.Category) && p.CanSeeStudent(rec.Student, "", false) &&
			rec.Confirmed && slices.Contains(s.cfg.ReleaseCategories, rec.Category)
	}
	return false
}

type studentView struct {
	Student  string             `json:"student"`
	Roster   *queue.RosterEntry `json:"roster,omitempty"`
	Live     *LiveSeries        `json:"live,omitempty"`
	Academic *Academic          `json:"academic,omitempty"`
	// Learner is for staff only (learnerFor).
	Learner *LearnerView `json:"learner,omitempty"`
	// Missing names the parts that are not available, with why.
	Missing  map[string]string `json:"missing,omitempty"`
	Warnings []*recordView     `json:"warnings"`
	CanWork  bool              `json:"can_work"`
}

type recordView struct {
	*queue.Record
	Steps []*stream.Intervention `json:"steps,omitempty"`
}

func (s *Server) apiStudent(w http.ResponseWriter, r *http.Request, p *Principal) {
	id := r.PathValue("id")
	if !validIdent(id) {
		writeErr(w, http.StatusBadRequest, "id", "not a student id")
		return
	}
	ctx := r.Context()
	unit, ok := s.studentAccess(ctx, p, id)
	if !ok {
		s.deny(w, r, p, http.StatusForbidden, "student "+id+" is not in your scope")
		return
	}
	s.recordRead(ctx, p, id, "GET /api/v1/students/{id}")
	v := studentView{Student: id, Missing: map[string]string{}, Warnings: []*recordView{}, CanWork: p.CanWorkOn(id, unit)}
	if e, err := s.store.Roster(ctx, id); err == nil {
		v.Roster = e
	}
	// Live signals are for the instructor and staff, never the student.
	if p.Role.Staff() {
		if l, err := s.students.Live(ctx, id); err == nil {
			s.stripLive(l)
			v.Live = l
		} else {
			v.Missing["live"] = err.Error()
		}
	}
	v.Learner = s.learnerFor(ctx, p, id, v.Missing)
	if a, err := s.students.Academic(ctx, id, r.URL.Query().Get("term")); err == nil {
		v.Academic = a
	} else {
		v.Missing["academic"] = err.Error()
	}
	recs, _, err := s.store.List(ctx, queue.Filter{Student: id, Limit: 1000})
	if err != nil {
		v.Missing["warnings"] = err.Error()
	}
	for _, rec := range recs {
		if !s.recordVisible(p, rec) {
			continue
		}
		rv := &recordView{Record: rec}
		if steps, err := s.store.Steps(ctx, rec.Ref); err == nil {
			rv.Steps = visibleSteps(p, steps)
		}
		v.Warnings = append(v.Warnings, rv)
	}
	writeJSON(w, http.StatusOK, v)
}

// visibleSteps drops the staff-only steps for students and guardians.
func visibleSteps(p *Principal, steps []*stream.Intervention) []*stream.Intervention {
	if p.Role.Staff() {
		return steps
	}
	out := steps[:0:0]
	for _, st := range steps {
		if studentActions[st.Action] {
			out = append(out, st)
		}
	}
	return out
}

// queueFilter reads the filter query parameters; the error names the field.
func queueFilter(r *http.Request) (queue.Filter, string, error) {
	q := r.URL.Query()
	f := queue.Filter{
		Category: q.Get("category"), Level: q.Get("level"), State: q.Get("state"), Loop: q.Get("loop"),
		Course: q.Get("course"), Unit: q.Get("unit"), Student: q.Get("student"), Owner: q.Get("owner"), Term: q.Get("term"),
	}
	checks := []struct {
		field, v string
		allowed  []string
	}{
		{"category", f.Category, stream.WarningCategories},
		{"level", f.Level, stream.WarningLevels},
		{"state", f.State, stream.WarningStates},
		{"loop", f.Loop, []string{"open", "assigned", "in_progress", "escalated", "closed"}},
	}
	for _, c := range checks {
		if c.v != "" && !slices.Contains(c.allowed, c.v) {
			return f, c.field, fmt.Errorf("%q is not one of %v", c.v, c.allowed)
		}
	}
	for field, v := range map[string]string{"course": f.Course, "unit": f.Unit, "student": f.Student, "owner": f.Owner, "term": f.Term} {
		if v != "" && !validIdent(v) {
			return f, field, errors.New("not an id (letters, digits, -_.:@)")
		}
	}
	for field, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(field); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100000 {
				return f, field, errors.New("not a whole number in 0..100000")
			}
			*dst = n
		}
	}
	return f, "", nil
}

// scopeFilter restricts a filter to what p may see, or reports that p may
// not use the queue at all.
func scopeFilter(p *Principal, f *queue.Filter) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleCounsellor:
		f.ScopeStudents, f.ScopeUnits = append([]string{}, p.Students...), append([]string{}, p.Units...)
		f.ExcludeCategories = []string{stream.CategoryEngagement, stream.CategoryClass}
		return true
	}
	return false
}

func (s *Server) apiWarnings(w http.ResponseWriter, r *http.Request, p *Principal) {
	f, field, err := queueFilter(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, field, err.Error())
		return
	}
	if p.Role == RoleStudent || p.Role == RoleGuardian {
		// Their own released warnings, through the same check as the page.
		who := p.Subject
		if p.Role == RoleGuardian {
			who = p.Students[0]
		}
		if f.Student != "" && f.Student != who {
			s.deny(w, r, p, http.StatusForbidden, "student "+f.Student+" is not in your scope")
			return
		}
		f.Student = who
	} else if !scopeFilter(p, &f) {
		s.deny(w, r, p, http.StatusForbidden, "the warning queue is for counsellors and admins")
		return
	}
	recs, total, err := s.store.List(r.Context(), f)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	out := make([]*queue.Record, 0, len(recs))
	for _, rec := range recs {
		if s.recordVisible(p, rec) {
			out = append(out, rec)
		}
	}
	if !p.Role.Staff() {
		total = len(out)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "warnings": out})
}

// loadRecord fetches a warning record the principal may see, answering
// 400/404/403 itself, and audits a staff member's read of it.
func (s *Server) loadRecord(w http.ResponseWriter, r *http.Request, p *Principal) *queue.Record {
	ref := r.PathValue("ref")
	if !validIdent(ref) {
		writeErr(w, http.StatusBadRequest, "ref", "not a warning ref")
		return nil
	}
	rec, err := s.store.Get(r.Context(), ref)
	if errors.Is(err, queue.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "ref", "no such warning")
		return nil
	}
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return nil
	}
	if !s.recordVisible(p, rec) {
		s.deny(w, r, p, http.StatusForbidden, "warning "+ref+" is not in your scope")
		return nil
	}
	// Every staff read of a student's warning (the record, its reasons,
	// notice, plan, deliveries — any GET route through here) is audited;
	// a posted step is audited as the step itself.
	if r.Method == http.MethodGet {
		s.recordRead(r.Context(), p, rec.Student, r.Pattern)
	}
	return rec
}

func (s *Server) apiWarning(w http.ResponseWriter, r *http.Request, p *Principal) {
	rec := s.loadRecord(w, r, p)
	if rec == nil {
		return
	}
	steps, err := s.store.Steps(r.Context(), rec.Ref)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, recordView{Record: rec, Steps: visibleSteps(p, steps)})
}

// apiReasons explains a warning in plain language: the sentence the rule
// wrote and each number that triggered it. A student may ask this of any
// warning released to them.
func (s *Server) apiReasons(w http.ResponseWriter, r *http.Request, p *Principal) {
	rec := s.loadRecord(w, r, p)
	if rec == nil {
		return
	}
	writeJSON(w, http.StatusOK, explain(rec))
}

// stepBody is the body of POST /api/v1/warnings/{ref}/steps.
type stepBody struct {
	Action  string   `json:"action"`
	Channel string   `json:"channel,omitempty"`
	Owner   string   `json:"owner,omitempty"`
	Notes   string   `json:"notes,omitempty"`
	Tasks   []string `json:"tasks,omitempty"`
	Due     string   `json:"due,omitempty"`
	Result  string   `json:"result,omitempty"`
}

// stepEvent turns a posted step into the intervention event to publish;
// the error is a *stream.FieldError or names the field.
func stepEvent(body *stepBody, rec *queue.Record, by string, now time.Time) (*stream.Intervention, string, error) {
	iv := &stream.Intervention{
		Header:  stream.NewHeader(rec.Student, now),
		Warning: rec.Ref, Action: body.Action, Channel: body.Channel, By: by, Owner: body.Owner,
		Notes: body.Notes, Tasks: body.Tasks, Result: body.Result,
	}
	if body.Due != "" {
		t, err := time.Parse(time.RFC3339, body.Due)
		if err != nil {
			if d, derr := time.Parse("2006-01-02", body.Due); derr == nil {
				t = d
			} else {
				return nil, "due", errors.New("not a date (YYYY-MM-DD) or RFC 3339 time")
			}
		}
		at := stream.At(t)
		iv.Due = &at
	}
	if rec.Student == "" {
		return nil, "ref", errors.New("a class-level warning has no help loop")
	}
	if err := iv.Validate(); err != nil {
		var fe *stream.FieldError
		if errors.As(err, &fe) {
			return nil, fe.Field, errors.New(fe.Reason)
		}
		return nil, "", err
	}
	return iv, "", nil
}

func (s *Server) apiPostStep(w http.ResponseWriter, r *http.Request, p *Principal) {
	rec := s.loadRecord(w, r, p)
	if rec == nil {
		return
	}
	if !p.CanWorkOn(rec.Student, rec.Unit) {
		s.deny(w, r, p, http.StatusForbidden, "only the student's counsellors record help-loop steps")
		return
	}
	var body stepBody
	if field, err := decodeBody(r, s.cfg.maxBodyBytes(), &body); err != nil {
		writeErr(w, http.StatusBadRequest, field, err.Error())
		return
	}
	if body.Action == stream.ActionConfirm && !slices.Contains(s.cfg.ReleaseCategories, rec.Category) {
		writeErr(w, http.StatusBadRequest, "action", "warnings of category "+rec.Category+" are never released to students")
		return
	}
	iv, field, err := stepEvent(&body, rec, p.Subject, s.now())
	if err != nil {
		writeErr(w, http.StatusBadRequest, field, err.Error())
		return
	}
	if s.pub == nil {
		writeErr(w, http.StatusServiceUnavailable, "", "this dashboard has no Kafka producer; help-loop steps cannot be recorded")
		return
	}
	if err := s.pub.Publish(r.Context(), iv); err != nil {
		s.logger.Error("publishing a help-loop step", "err", err)
		writeErr(w, http.StatusServiceUnavailable, "", "could not record the step: "+err.Error())
		return
	}
	s.record(r.Context(), p, stream.AuditHelpStep, rec.Student, "warning:"+rec.Ref, "step "+iv.Action+", event "+iv.ID)
	writeJSON(w, http.StatusAccepted, iv)
}

func (s *Server) apiPutRoster(w http.ResponseWriter, r *http.Request, p *Principal) {
	if p.Role != RoleAdmin {
		s.deny(w, r, p, http.StatusForbidden, "only admins upload the roster")
		return
	}
	var entries []queue.RosterEntry
	if field, err := decodeBody(r, 64*s.cfg.maxBodyBytes(), &entries); err != nil {
		writeErr(w, http.StatusBadRequest, field, err.Error())
		return
	}
	for i, e := range entries {
		if !validIdent(e.Student) {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("[%d].student", i), "not a student id")
			return
		}
		if e.Unit != "" && !validIdent(e.Unit) {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("[%d].unit", i), "not a unit id")
			return
		}
		if e.Class != "" && !validIdent(e.Class) {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("[%d].class", i), "not a class id")
			return
		}
		if len(e.Name) > 200 {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("[%d].name", i), "longer than 200 bytes")
			return
		}
	}
	if err := s.store.SetRoster(r.Context(), entries); err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	s.hub.roster.forget()
	writeJSON(w, http.StatusOK, map[string]int{"stored": len(entries)})
}
