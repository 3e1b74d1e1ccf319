package consent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// PolicyVersion names the notice below; a new notice needs a new answer.
const PolicyVersion = "edge-notice-2025-1"

// Notice is shown before the first capture.
const Notice = `classpulse camera consent (` + PolicyVersion + `)

What is measured, on this computer only: whether your face is in view,
where your head points and whether your eyes are open (attention), whether
a mask covers the lower face, and - only if you also allow "emotion" and the
law where you are permits it - the likelihood of seven basic emotions and of
four learning states (engaged, confused, bored, frustrated).

What is sent: one summary per second (numbers only: shares and averages
over that second, plus the model version) to your school's classpulse
server. No picture, video frame, face crop or face description ever leaves
this computer or is written to its disk.

Why: so your teachers can notice early when a class loses attention or
when you may need help. You can revoke at any time with
"classpulse-edge consent revoke"; capture stops and the server deletes the
camera-derived data it holds about you.
`

// ErrNotRecorded means no answer was recorded yet.
var ErrNotRecorded = errors.New("consent: no answer recorded yet (run `classpulse-edge consent`)")

// Record is the learner's answer, stored on the machine.
type Record struct {
	Student       string    `json:"student"`
	PolicyVersion string    `json:"policy_version"`
	Camera        bool      `json:"camera"`
	Emotion       bool      `json:"emotion"`
	Guardian      string    `json:"guardian,omitempty"`
	At            time.Time `json:"at"`
}

// Load reads the record at path.
func Load(path string) (Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, ErrNotRecorded
	}
	if err != nil {
		return Record{}, fmt.Errorf("consent: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("consent: %s is unreadable (%v); record the answer again", path, err)
	}
	if r.PolicyVersion != PolicyVersion {
		return Record{}, fmt.Errorf("%w: the notice changed (%s → %s)", ErrNotRecorded, r.PolicyVersion, PolicyVersion)
	}
	return r, nil
}

// Save writes r to path atomically.
func Save(path string, r Record) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	return os.Rename(tmp, path)
}

// CaptureAllowed reports whether r allows the camera to run.
func (r Record) CaptureAllowed() bool { return r.Camera && r.PolicyVersion == PolicyVersion }

// Events returns one validated stream.Consent per scope for r at now.
func (r Record) Events(now time.Time) ([]stream.Event, error) {
	var out []stream.Event
	for _, s := range []struct {
		scope string
		ok    bool
	}{{stream.ScopeCamera, r.Camera}, {stream.ScopeEmotion, r.Emotion && r.Camera}} {
		e := &stream.Consent{Header: stream.NewHeader(r.Student, now), Scope: s.scope, Granted: s.ok,
			PolicyVersion: r.PolicyVersion, Guardian: r.Guardian}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("consent event: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
