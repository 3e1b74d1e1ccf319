package consent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

func TestConsentRecordRoundTripsAndGatesCapture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "consent.json")
	if _, err := Load(path); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("fresh machine: err = %v, want ErrNotRecorded", err)
	}
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name              string
		rec               Record
		capture           bool
		cameraEv, emoteEv bool
	}{
		{"camera and emotion", Record{Student: "s1", PolicyVersion: PolicyVersion, Camera: true, Emotion: true, At: now}, true, true, true},
		{"camera only", Record{Student: "s1", PolicyVersion: PolicyVersion, Camera: true, At: now}, true, true, false},
		{"revoked", Record{Student: "s1", PolicyVersion: PolicyVersion, Emotion: true, At: now}, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Save(path, tc.rec); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.CaptureAllowed() != tc.capture {
				t.Fatalf("CaptureAllowed = %v, want %v", got.CaptureAllowed(), tc.capture)
			}
			evs, err := got.Events(now)
			if err != nil {
				t.Fatal(err)
			}
			c0, c1 := evs[0].(*stream.Consent), evs[1].(*stream.Consent)
			if c0.Scope != stream.ScopeCamera || c0.Granted != tc.cameraEv || c1.Scope != stream.ScopeEmotion || c1.Granted != tc.emoteEv {
				t.Fatalf("events %+v %+v", c0, c1)
			}
		})
	}
}

func TestConsentOldNoticeOrGarbageNeedsNewAnswer(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	Save(old, Record{Student: "s1", PolicyVersion: "edge-notice-0", Camera: true})
	if _, err := Load(old); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("old notice: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if r, err := Load(bad); err == nil || r.CaptureAllowed() {
		t.Fatal("garbage consent file allowed capture")
	}
}
