package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// auditReader reads classpulse.audit.v1 (one partition) from the start.
type auditReader struct {
	t *testing.T
	r *kafka.Reader
}

func newAuditReader(t *testing.T, addr string) *auditReader {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: stream.TopicAudit, Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { r.Close() })
	return &auditReader{t: t, r: r}
}

// next returns the next audit record and its raw bytes.
func (a *auditReader) next() (stream.Audit, string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := a.r.ReadMessage(ctx)
	if err != nil {
		a.t.Fatalf("reading the audit topic: %v", err)
	}
	var rec stream.Audit
	if err := stream.DecodeInto(m.Value, &rec); err != nil {
		a.t.Fatalf("audit record %s: %v", m.Value, err)
	}
	if string(m.Key) != rec.Key() {
		a.t.Errorf("audit record keyed %q, want %q (the student, else the actor)", m.Key, rec.Key())
	}
	return rec, string(m.Value)
}

func tokenID(t *testing.T, h *harness, tok string) string {
	t.Helper()
	c, err := ParseToken(h.srv.Keys(), tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestStaffReadsAndHelpStepsArePublishedToTheAuditTopic: a counsellor
// reading a student's page, a warning and its reasons, subscribing to the
// student's channel and recording a help-loop step each leave one record
// on classpulse.audit.v1 (read back from the broker) naming actor, role,
// token id and student — never the token. The student reading their own
// page leaves none.
func TestStaffReadsAndHelpStepsArePublishedToTheAuditTopic(t *testing.T) {
	broker := testenv.StartBroker(t, 1)
	prod, err := stream.NewProducer(stream.ProducerConfig{Brokers: []string{broker.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	h := startHarness(t, Config{}, prod)
	w := matrixFixture(t, h)
	counsellor := h.token(matrixPrincipals["counsellor"])
	student := h.token(matrixPrincipals["student"])
	jti := tokenID(t, h, counsellor)
	audits := newAuditReader(t, broker.Addr())

	// Not audited: a student's own read comes first, so if it were
	// recorded it would be the first record read back.
	if code, _, body := h.do("GET", "/api/v1/students/s1", student, ""); code != 200 {
		t.Fatalf("student reads own page: %d %s", code, body)
	}
	steps := []struct {
		name, action, target string
		do                   func()
	}{
		{"student page", stream.AuditReadStudent, "GET /api/v1/students/{id}", func() { h.mustDo("GET", "/api/v1/students/s1", counsellor, "", 200) }},
		{"warning", stream.AuditReadStudent, "GET /api/v1/warnings/{ref}", func() { h.mustDo("GET", "/api/v1/warnings/"+w.Ref, counsellor, "", 200) }},
		{"reasons", stream.AuditReadStudent, "GET /api/v1/warnings/{ref}/reasons", func() { h.mustDo("GET", "/api/v1/warnings/"+w.Ref+"/reasons", counsellor, "", 200) }},
		{"notice", stream.AuditReadStudent, "GET /api/v1/warnings/{ref}/notice", func() { h.mustDo("GET", "/api/v1/warnings/"+w.Ref+"/notice", counsellor, "", 200) }},
		{"student channel", stream.AuditReadStudent, "ws student:<id>", func() {
			c, _, err := h.dial(counsellor, nil)
			if err != nil {
				t.Fatal(err)
			}
			send(t, c, map[string]any{"op": "subscribe", "channel": "student:s1"})
			next(t, c, "subscribed", 5*time.Second)
		}},
		{"help-loop step", stream.AuditHelpStep, "warning:" + w.Ref, func() {
			h.mustDo("POST", "/api/v1/warnings/"+w.Ref+"/steps", counsellor, `{"action":"talk","channel":"phone"}`, 202)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			a, raw := audits.next()
			if a.Action != st.action || a.Actor != "c1" || a.Role != "counsellor" || a.TokenID != jti || a.Student != "s1" || a.Target != st.target {
				t.Fatalf("audit record %s, want action %s actor c1 role counsellor jti %s student s1 target %q", raw, st.action, jti, st.target)
			}
			if strings.Contains(raw, counsellor) || strings.Contains(raw, strings.Split(counsellor, ".")[3]) {
				t.Fatalf("the audit record carries the token: %s", raw)
			}
			if st.action == stream.AuditHelpStep && !strings.Contains(a.Detail, "talk") {
				t.Fatalf("help-step record %s does not name the step", raw)
			}
		})
	}
	if n := testutil.ToFloat64(h.srv.metrics.audits.WithLabelValues("published")); n != float64(len(steps)) {
		t.Fatalf("audit_records_total{outcome=published} = %v, want %d", n, len(steps))
	}
	// An admin's revocation is audited too, keyed by the actor.
	admin := h.token(Claims{Role: RoleAdmin, Subject: "root"})
	h.mustDo("POST", "/api/v1/admin/revocations", admin, `{"sub":"c9","reason":"left"}`, 201)
	a, raw := audits.next()
	if a.Action != stream.AuditRevoke || a.Actor != "root" || a.Role != "admin" || a.TokenID != tokenID(t, h, admin) || a.Target != "sub:c9" || a.Student != "" {
		t.Fatalf("revocation audit record %s", raw)
	}
	problems, err := testutil.GatherAndLint(h.reg, "classpulse_dashboard_audit_records_total")
	if err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
}

// mustDo makes a request and fails the test unless it answers want.
func (h *harness) mustDo(method, path, tok, body string, want int) {
	h.t.Helper()
	if code, _, b := h.do(method, path, tok, body); code != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
}
