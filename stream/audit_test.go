package stream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func validAudit() *Audit {
	return &Audit{
		Header: Header{V: 1, ID: "a1", TS: At(now), Student: "stu-0001"},
		Actor:  "cli:root", Action: AuditErase, Target: "redis,kafka",
		Counts: map[string]int64{"redis_keys": 8, "tiles": 2},
		Detail: "erased on request",
	}
}

func TestAuditValidateAcceptsWellFormedRecords(t *testing.T) {
	read := validAudit()
	read.Action, read.Role, read.TokenID, read.Counts = AuditReadStudent, "counsellor", "9f8e7d6c5b4a39281706f5e4", nil
	noStudent := validAudit()
	noStudent.Action, noStudent.Student = AuditHelpStep, ""
	for name, a := range map[string]*Audit{"erase": validAudit(), "read by staff": read, "action on no student": noStudent} {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(a)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var back Audit
			if err := DecodeInto(b, &back); err != nil {
				t.Fatalf("DecodeInto(%s): %v", b, err)
			}
			if back.Actor != a.Actor || back.Action != a.Action || back.TokenID != a.TokenID || len(back.Counts) != len(a.Counts) || back.Key() == "" {
				t.Fatalf("round trip changed the record: %+v != %+v", back, a)
			}
		})
	}
}

func TestAuditValidateRejectsBadRecords(t *testing.T) {
	many := map[string]int64{}
	for i := 0; i < maxAuditCounts+1; i++ {
		many[fmt.Sprintf("k%d", i)] = 1
	}
	cases := []struct {
		name  string
		mut   func(*Audit)
		field string
	}{
		{"missing actor", func(a *Audit) { a.Actor = "" }, "actor"},
		{"actor with a brace", func(a *Audit) { a.Actor = "x}" }, "actor"},
		{"token id with a space", func(a *Audit) { a.TokenID = "a b" }, "jti"},
		{"unknown action", func(a *Audit) { a.Action = "delete_everything" }, "action"},
		{"erase without student", func(a *Audit) { a.Student = "" }, "student"},
		{"negative count", func(a *Audit) { a.Counts["tiles"] = -1 }, "counts.tiles"},
		{"count key with a space", func(a *Audit) { a.Counts["redis keys"] = 1 }, "counts key"},
		{"too many counts", func(a *Audit) { a.Counts = many }, "counts"},
		{"detail too long", func(a *Audit) { a.Detail = strings.Repeat("x", 1025) }, "detail"},
		{"wrong version", func(a *Audit) { a.V = 2 }, "v"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := validAudit()
			c.mut(a)
			err := a.Validate()
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a FieldError", err)
			}
			if fe.Field != c.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, c.field, err)
			}
		})
	}
}
