package stream

import (
	"fmt"
	"sort"
)

// TopicAudit is the append-only audit log: who did what to whose data.
// It is keyed by the student concerned (or by the actor when no student
// is), so one student's audit trail stays in order on one partition.
// Operators give it a long retention and no compaction.
const TopicAudit = "classpulse.audit.v1"

// Audit actions.
const (
	AuditErase         = "erase"          // a student's data erased (classpulse erase)
	AuditReadStudent   = "read_student"   // staff opened a student's page
	AuditConsentChange = "consent_change" // consent granted or revoked
	AuditHelpStep      = "help_step"      // a help-loop step recorded
	AuditRevoke        = "revoke_token"   // an admin revoked a token or every token of a user
)

// AuditActions lists every action an audit record may name.
var AuditActions = []string{AuditErase, AuditReadStudent, AuditConsentChange, AuditHelpStep, AuditRevoke}

// maxAuditCounts bounds the counts map, so a record stays small.
const maxAuditCounts = 64

// Audit is one append-only audit record. Student is the person whose data
// was touched (empty for actions on no one's data); Actor is who acted, as
// the token subject or "cli:<os user>" for an operator command. Counts
// says how much was touched, per kind (e.g. "redis_keys": 9); Detail is a
// human sentence. TokenID is the id (jti) of the sign-in token the actor
// used, so a record can be tied to one token without holding the token. An
// audit record never carries the data itself, nor any secret.
type Audit struct {
	Header
	Actor   string           `json:"actor"`
	Role    string           `json:"role,omitempty"`
	TokenID string           `json:"jti,omitempty"`
	Action  string           `json:"action"`
	Target  string           `json:"target,omitempty"`
	Counts  map[string]int64 `json:"counts,omitempty"`
	Detail  string           `json:"detail,omitempty"`
}

// Topic implements Event.
func (*Audit) Topic() string { return TopicAudit }

// Key implements Event: the student, or the actor for actions on no
// student.
func (a *Audit) Key() string {
	if a.Student != "" {
		return a.Student
	}
	return a.Actor
}

// Validate implements Event.
func (a *Audit) Validate() error {
	if err := a.Header.validate(false); err != nil {
		return err
	}
	if err := checkIdent("actor", a.Actor, true); err != nil {
		return err
	}
	if err := checkIdent("role", a.Role, false); err != nil {
		return err
	}
	if err := checkIdent("jti", a.TokenID, false); err != nil {
		return err
	}
	if err := oneOf("action", a.Action, AuditActions); err != nil {
		return err
	}
	if a.Action == AuditErase && a.Student == "" {
		return fieldErr("student", "required for action erase")
	}
	if err := checkText("target", a.Target, 256); err != nil {
		return err
	}
	if len(a.Counts) > maxAuditCounts {
		return fieldErr("counts", fmt.Sprintf("%d entries, at most %d", len(a.Counts), maxAuditCounts))
	}
	names := make([]string, 0, len(a.Counts))
	for k := range a.Counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := checkIdent("counts key", k, true); err != nil {
			return err
		}
		if a.Counts[k] < 0 {
			return fieldErr("counts."+k, fmt.Sprintf("%d is negative", a.Counts[k]))
		}
	}
	return checkText("detail", a.Detail, 1024)
}
