package stream

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckJurisdictionRejectsEmotionDataUnderEU(t *testing.T) {
	noEmotions := validScore()
	noEmotions.Emotions, noEmotions.Learning = nil, nil
	onlyLearning := validScore()
	onlyLearning.Emotions = nil
	onlyEmotions := validScore()
	onlyEmotions.Learning = nil
	grant := &Consent{Header: Header{V: 1, ID: "k1", TS: At(now), Student: "stu-0001"}, Scope: ScopeEmotion, Granted: true, PolicyVersion: "2026-09"}
	revoke := *grant
	revoke.Granted = false
	camera := *grant
	camera.Scope = ScopeCamera
	tile := &Tile{Header: Header{V: 1, ID: "t1", TS: At(now), Student: "stu-0001"}, Session: "S1", Course: "law", Captured: true, Dominant: "confused"}
	plainTile := *tile
	plainTile.Dominant = ""

	cases := []struct {
		name         string
		e            Event
		jurisdiction string
		wantFields   []string // nil: allowed
	}{
		{"score with emotions and learning rejected under eu", validScore(), "eu", []string{"emotions", "learning"}},
		{"score with learning only rejected under eu", onlyLearning, "eu", []string{"learning"}},
		{"score with emotions only rejected under eu", onlyEmotions, "eu", []string{"emotions"}},
		{"profile name is case-insensitive", validScore(), "EU", []string{"emotions", "learning"}},
		{"score without emotion fields allowed under eu", noEmotions, "eu", nil},
		{"score with emotions allowed under default", validScore(), "default", nil},
		{"score with emotions allowed with no profile", validScore(), "", nil},
		{"score with emotions allowed under us", validScore(), "us", nil},
		{"tile with dominant learning emotion rejected under eu", tile, "eu", []string{"dominant"}},
		{"tile without dominant allowed under eu", &plainTile, "eu", nil},
		{"emotion consent grant rejected under eu", grant, "eu", []string{"scope"}},
		{"emotion consent revocation allowed under eu", &revoke, "eu", nil},
		{"camera consent grant allowed under eu", &camera, "eu", nil},
		{"click allowed under eu", validClick(), "eu", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckJurisdiction(c.e, c.jurisdiction)
			if c.wantFields == nil {
				if err != nil {
					t.Fatalf("CheckJurisdiction = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckJurisdiction = %v, want an ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if got := strings.Split(fe.Field, ","); strings.Join(got, ",") != strings.Join(c.wantFields, ",") {
				t.Errorf("fields = %v, want %v", got, c.wantFields)
			}
			if !strings.Contains(err.Error(), `"eu"`) {
				t.Errorf("error %q does not name the profile", err)
			}
		})
	}
}

func TestParseJurisdictionAcceptsKnownProfilesOnly(t *testing.T) {
	cases := []struct {
		in, want string
		wantErr  bool
	}{
		{"", JurisdictionDefault, false},
		{"default", JurisdictionDefault, false},
		{" EU ", JurisdictionEU, false},
		{"us", "us", false},
		{"none", "none", false},
		{"fr", "", true},
		{"eu,default", "", true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseJurisdiction(c.in)
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("ParseJurisdiction(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.wantErr)
			}
		})
	}
}
