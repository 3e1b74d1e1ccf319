package dashboard

import (
	"encoding/csv"
	"net/http"

	"github.com/classpulse/classpulse/dashboard/queue"
	"github.com/classpulse/classpulse/helploop"
)

// apiEffectiveness answers GET /api/v1/reports/effectiveness?term=…
// [&format=csv]: how many warned students recovered in the term, by
// category and playbook, and how fast (helploop.Report). Admins see every
// warning, counsellors those in their scope; the term defaults to the
// current one.
func (s *Server) apiEffectiveness(w http.ResponseWriter, r *http.Request, p *Principal) {
	term := r.URL.Query().Get("term")
	if term == "" {
		term = queue.TermOf(s.now())
	}
	if !validIdent(term) {
		writeErr(w, http.StatusBadRequest, "term", "not a term id such as 2026-autumn")
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "csv" && format != "json" {
		writeErr(w, http.StatusBadRequest, "format", "csv or json")
		return
	}
	var f queue.Filter
	if !scopeFilter(p, &f) {
		s.deny(w, r, p, http.StatusForbidden, "the effectiveness report is for counsellors and admins")
		return
	}
	rep, err := helploop.Report(r.Context(), s.rdb, term, f)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="effectiveness-`+term+`.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.WriteAll(rep.CSV())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
