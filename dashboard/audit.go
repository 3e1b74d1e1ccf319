package dashboard

import (
	"context"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// auditTimeout bounds publishing one audit record, so a slow broker delays
// a staff read by at most this long.
const auditTimeout = 5 * time.Second

// record publishes an audit record to classpulse.audit.v1 (stream.Audit):
// who (subject, role, token id — never the token) did action to whose data
// (student), through what (target, e.g. the API route), with a detail
// sentence. It is also written to the audit log. The request it belongs to
// is answered even when publishing fails: the failure is logged at error
// level and counted in classpulse_dashboard_audit_records_total
// {outcome="failed"}, which operators alert on. Without a publisher (a
// dashboard started with no Kafka producer) the record is only logged and
// counted as outcome="unpublished".
func (s *Server) record(ctx context.Context, p *Principal, action, student, target, detail string) {
	a := &stream.Audit{
		Header: stream.NewHeader(student, s.now()),
		Actor:  p.Subject, Role: string(p.Role), TokenID: p.ID,
		Action: action, Target: target, Detail: detail,
	}
	attrs := []any{"action", action, "sub", p.Subject, "role", string(p.Role), "jti", p.ID, "student", student, "target", target, "audit_id", a.ID}
	if err := a.Validate(); err != nil {
		// Only a malformed token subject or id could get here; tokens are
		// validated on parse, so this is a bug worth shouting about.
		s.metrics.audits.WithLabelValues("failed").Inc()
		s.auditLog.Error("audit record invalid", append(attrs, "err", err)...)
		return
	}
	if s.pub == nil {
		s.metrics.audits.WithLabelValues("unpublished").Inc()
		s.auditLog.Info(action, attrs...)
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.pub.Publish(pctx, a); err != nil {
		s.metrics.audits.WithLabelValues("failed").Inc()
		s.auditLog.Error("audit record not published to "+stream.TopicAudit, append(attrs, "err", err)...)
		return
	}
	s.metrics.audits.WithLabelValues("published").Inc()
	s.auditLog.Info(action, attrs...)
}

// recordRead audits a staff member's read of a student's data; reads by
// the student or their guardian are not audited (it is their own data).
func (s *Server) recordRead(ctx context.Context, p *Principal, student, target string) {
	if student == "" || !p.Role.Staff() {
		return
	}
	s.record(ctx, p, stream.AuditReadStudent, student, target, "")
}
