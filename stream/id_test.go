package stream

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestDerivedIDIsStablePerSourceAndPurposeAndStampedAtTs(t *testing.T) {
	ts := time.Date(2026, 12, 7, 6, 0, 0, 123e6, time.UTC)
	src := NewID(ts)
	a := DerivedID(src, ts, AuditConsentChange)
	if a != DerivedID(src, ts, AuditConsentChange) {
		t.Fatal("the same source and purpose gave two ids")
	}
	for name, other := range map[string]string{
		"another source":  DerivedID(NewID(ts), ts, AuditConsentChange),
		"another purpose": DerivedID(src, ts, AuditErase),
		"the source":      src,
	} {
		if other == a {
			t.Errorf("%s gives the same id %s", name, a)
		}
	}
	id, err := ulid.ParseStrict(a)
	if err != nil {
		t.Fatalf("%s is not a ULID: %v", a, err)
	}
	if got := ulid.Time(id.Time()); !got.Equal(ts) {
		t.Errorf("id time %v, want %v", got, ts)
	}
	if err := checkIdent("id", a, true); err != nil {
		t.Errorf("a derived id fails event validation: %v", err)
	}
}
