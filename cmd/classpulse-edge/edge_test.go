package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gocv.io/x/gocv"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/vision"
	"github.com/classpulse/classpulse/vision/consent"
	"github.com/classpulse/classpulse/vision/models"
)

// The model set and photos come from `make models` (build/npm, models/).
const (
	modelDir = "../../models"
	demoDir  = "../../build/npm/node_modules/@vladmandic/face-api/demo"
)

// writeClip writes a 640×480 MJPEG clip of seconds×fps frames: demo photos
// held one second each, drifting a pixel a frame. It stands in for the
// camera.
func writeClip(t *testing.T, seconds, fps int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "camera.avi")
	vw, err := gocv.VideoWriterFile(path, "MJPG", float64(fps), 640, 480, true)
	if err != nil {
		t.Fatal(err)
	}
	defer vw.Close()
	big := gocv.NewMat()
	defer big.Close()
	for s := 0; s < seconds; s++ {
		img, err := vision.ReadImage(filepath.Join(demoDir, []string{"sample1.jpg", "sample2.jpg", "sample4.jpg"}[s%3]))
		if err != nil {
			t.Fatalf("%v (run `make models` first)", err)
		}
		gocv.Resize(img, &big, image.Pt(680, 510), 0, 0, gocv.InterpolationArea)
		img.Close()
		for i := 0; i < fps; i++ {
			r := big.Region(image.Rect(i, i, 640+i, 480+i))
			f := r.Clone()
			if err := vw.Write(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			r.Close()
		}
	}
	return path
}

// runCounts are the counts of the worker's "capture ended" log line.
type runCounts struct {
	frames, dropped, scored int
	seconds, scoreMS        float64
}

// captureEnded finds the worker's "capture ended" line in logs.
func captureEnded(t *testing.T, logs string) runCounts {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="capture ended"`) {
			continue
		}
		var r runCounts
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "frames":
				r.frames, _ = strconv.Atoi(v)
			case "dropped":
				r.dropped, _ = strconv.Atoi(v)
			case "scored":
				r.scored, _ = strconv.Atoi(v)
			case "score_ms_mean":
				r.scoreMS, _ = strconv.ParseFloat(v, 64)
			case "seconds":
				r.seconds, _ = strconv.ParseFloat(v, 64)
			}
		}
		return r
	}
	t.Fatalf("no \"capture ended\" line in the run's log:\n%s", logs)
	return runCounts{}
}

// stderrOf runs fn with os.Stderr captured (the commands log there).
func stderrOf(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	err = fn()
	os.Stderr = old
	w.Close()
	return <-done, err
}

// readAll returns every message of every topic the broker holds, including
// topics created on the fly: nothing may leave the machine unseen.
func readAll(t *testing.T, addr string) map[string][]kafka.Message {
	t.Helper()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]kafka.Message{}
	for _, p := range parts {
		lc, err := kafka.DialLeader(context.Background(), "tcp", addr, p.Topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := lc.ReadLastOffset()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: p.Topic, Partition: p.ID, MaxWait: 50 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("%s/%d: %v", p.Topic, p.ID, err)
			}
			out[p.Topic] = append(out[p.Topic], m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// decodeStrict decodes an event's JSON into its type, refusing any field
// the type does not declare.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// noBulk fails on any string longer than 64 characters or any array in an
// event: a frame, crop, landmark set or feature vector would need one.
// Score and Consent declare no array fields.
func noBulk(t *testing.T, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case string:
		if len(x) > 64 {
			t.Errorf("%s: %d-character string leaves the machine", path, len(x))
		}
	case []any:
		t.Errorf("%s: an array of %d leaves the machine", path, len(x))
	case map[string]any:
		for k, e := range x {
			noBulk(t, path+"."+k, e)
		}
	}
}

// noImagesOrDumps fails on any file under dir that is not the consent
// record or a spool file, or whose bytes look like an image.
func noImagesOrDumps(t *testing.T, dir string) {
	t.Helper()
	magic := [][]byte{{0xff, 0xd8, 0xff}, []byte("\x89PNG"), []byte("BM"), []byte("RIFF"), []byte("GIF8"), []byte("\x93NUMPY")}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "consent.json" && !strings.HasPrefix(rel, "spool"+string(filepath.Separator)) &&
			!strings.HasPrefix(rel, "consent-spool"+string(filepath.Separator)) {
			t.Errorf("unexpected file %s after a run", rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range magic {
			if bytes.HasPrefix(b, m) {
				t.Errorf("%s starts like an image/array dump (%q)", rel, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

func modelVersion(t *testing.T) string {
	t.Helper()
	man, _, err := models.ReadManifest(modelDir)
	if err != nil {
		t.Fatalf("%v (run `make models` first)", err)
	}
	return man.Version
}

func edgeArgs(broker, state, student string, more ...string) []string {
	return append([]string{"--brokers", broker, "--state-dir", state, "--student", student, "--log-level", "warn"}, more...)
}

// TestRunPublishesOneScorePerSecondAndNothingElse runs `consent` and `run`
// against the embedded broker with a 3 s, 30 fps clip as the camera read
// at 15 frames/s (every other frame skipped): one Score per second of video on classpulse.scores.v1 with the model-set
// version, the consent events, and nothing else, on any topic or on disk.
func TestRunPublishesOneScorePerSecondAndNothingElse(t *testing.T) {
	b := testenv.StartBroker(t, 1)
	state := t.TempDir()
	clip := writeClip(t, 3, 30)
	cwd, _ := os.Getwd()
	before := listDir(t, cwd)
	ctx := context.Background()
	if err := consentAsk(ctx, edgeArgs(b.Addr(), state, "s1", "--answer", "camera+emotion")); err != nil {
		t.Fatal(err)
	}
	logs, err := stderrOf(t, func() error {
		return runCapture(ctx, edgeArgs(b.Addr(), state, "s1", "--session", "live1", "--course", "C1",
			"--source", clip, "--fps", "15", "--model-dir", modelDir, "--log-level", "info")) // info: the counts line
	})
	if err != nil {
		t.Fatal(err)
	}
	run := captureEnded(t, logs)
	t.Logf("capture: %+v", run)
	msgs := readAll(t, b.Addr())
	for topic := range msgs {
		if topic != stream.TopicScores && topic != stream.TopicConsent {
			t.Errorf("%d messages on %s; only scores and consent may leave the machine", len(msgs[topic]), topic)
		}
	}
	scores := msgs[stream.TopicScores]
	// The file plays in real time, so wall-clock windows are seconds of
	// video: three full ones, and at most one short tail.
	if len(scores) < 3 || len(scores) > 4 {
		t.Fatalf("%d Score events for 3 s of video, want 3 (+1 tail)", len(scores))
	}
	want := modelVersion(t)
	// What the scorer could have scored in the run at the speed it
	// actually had (the machine may be shared and loaded): every frame
	// read while it keeps up, fewer when a frame costs more than the 67 ms
	// between reads. The queue may drop what it cannot score, never most
	// of what it could. On an idle machine (a frame ~10-25 ms) this is all
	// 45 frames read, so the floors below are those of a quiet run: at
	// least 5 frames in each full window, at least 20 in all. When the
	// scorer manages less than half the 15 frames/s read (a frame over
	// 133 ms), how its frames fall into windows depends on the scheduler
	// (a starved core hands out time in chunks of a second and more), so
	// only the total is checked then. What does not depend on the load:
	// one summary per second of video, and every frame read accounted for.
	perSecond := 1000 / max(run.scoreMS, 1e-3)
	capacity := min(float64(run.frames), run.seconds*perSecond)
	share := min(1, perSecond/15)
	frames, withFace := 0, 0
	for i, m := range scores {
		var sc stream.Score
		decodeStrict(t, m.Value, &sc)
		if err := sc.Validate(); err != nil {
			t.Errorf("score %d: %v", i, err)
		}
		if sc.Model != want || sc.Student != "s1" || sc.Session != "live1" || string(m.Key) != "s1" {
			t.Errorf("score %d: model %q student %q session %q key %q; want %q s1 live1 s1", i, sc.Model, sc.Student, sc.Session, m.Key, want)
		}
		// 15 frames a second are read; a loaded machine may drop some in
		// the queue, never most of those it had time to score.
		if floor := int(5 * share); i < 3 && perSecond >= 7.5 && sc.Frames < floor {
			t.Errorf("score %d covers %d frames of a 15 fps second; want ≥ %d (the scorer manages %.1f frames/s)", i, sc.Frames, floor, perSecond)
		}
		t.Logf("score %d: frames=%d face_ratio=%.2f attention=%.2f", i, sc.Frames, sc.FaceRatio, sc.Attention)
		frames += sc.Frames
		if sc.FaceRatio > 0.5 {
			withFace++
			if sc.Emotions == nil || sc.Learning == nil || sc.Head == nil {
				t.Errorf("score %d with a face and emotion consent lacks emotions/learning/head: %s", i, m.Value)
			}
		}
		var raw map[string]any
		_ = json.Unmarshal(m.Value, &raw)
		noBulk(t, "score", raw)
	}
	// Every frame read is either scored or dropped by the queue, and every
	// frame scored is in exactly one summary.
	if run.scored+run.dropped != run.frames || frames != run.scored {
		t.Errorf("%d frames read, %d scored + %d dropped, %d in the summaries", run.frames, run.scored, run.dropped, frames)
	}
	if run.frames > 46 || float64(frames) < min(20, 0.45*capacity) || withFace < 3 {
		t.Errorf("%d frames read (at most the 45 of 3 s at 15 fps), %d scored (want ≥ %.0f), %d windows with a face (want ≥ 3)",
			run.frames, frames, min(20, 0.45*capacity), withFace)
	}
	cons := msgs[stream.TopicConsent]
	if len(cons) != 2 {
		t.Errorf("%d consent events, want camera and emotion", len(cons))
	}
	for _, m := range cons {
		var c stream.Consent
		decodeStrict(t, m.Value, &c)
		var raw map[string]any
		_ = json.Unmarshal(m.Value, &raw)
		noBulk(t, "consent", raw)
	}
	noImagesOrDumps(t, state)
	if after := listDir(t, cwd); after != before {
		t.Errorf("working directory changed by a run: %s → %s", before, after)
	}
}

// TestRevokeStopsARunningCapture revokes while `run` loops a clip: capture
// stops within a window, the revocation is published, and no Score is
// stamped after it.
func TestRevokeStopsARunningCapture(t *testing.T) {
	b := testenv.StartBroker(t, 1)
	state := t.TempDir()
	clip := writeClip(t, 1, 15)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := consentAsk(ctx, edgeArgs(b.Addr(), state, "s2", "--answer", "camera")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- runCapture(ctx, edgeArgs(b.Addr(), state, "s2", "--session", "live2", "--course", "C2",
			"--source", clip, "--loop", "--model-dir", modelDir))
	}()
	testenv.WaitFor(t, 10*time.Second, "a first Score from the running capture", func() bool {
		return len(readAll(t, b.Addr())[stream.TopicScores]) > 0
	})
	revokedAt := time.Now()
	if err := consentRevoke(context.Background(), edgeArgs(b.Addr(), state, "s2")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("run still going 6 s after the revocation")
	}
	msgs := readAll(t, b.Addr())
	last := time.Time{}
	for _, m := range msgs[stream.TopicScores] {
		var sc stream.Score
		decodeStrict(t, m.Value, &sc)
		if ts := sc.TS.Time; ts.After(last) {
			last = ts
		}
	}
	// The revocation is saved before it is published and the worker
	// re-reads the record every 250 ms: no Score may be stamped after the
	// revocation command started, beyond that check interval.
	if stop := last.Sub(revokedAt); stop > 300*time.Millisecond {
		t.Errorf("last Score stamped %v after the revocation", stop)
	}
	revoked := false
	for _, m := range msgs[stream.TopicConsent] {
		var c stream.Consent
		decodeStrict(t, m.Value, &c)
		if c.Scope == "camera" && !c.Granted {
			revoked = true
		}
	}
	if !revoked {
		t.Error("the camera revocation was not published")
	}
	noImagesOrDumps(t, state)
}

// TestMinorCaptureNeedsGuardianConsent runs `consent` and `run` for a
// student under 14 (by birth date, by the roster flag, by its environment
// variable): a student's own answer is refused at `consent`, a student's
// answer recorded earlier does not let `run` start, and nothing reaches the
// broker until a guardian has answered. With the guardian's answer the
// capture runs and every published consent names the guardian.
func TestMinorCaptureNeedsGuardianConsent(t *testing.T) {
	thirteen := time.Now().AddDate(-13, 0, 0).Format(time.DateOnly)
	tests := []struct {
		name    string
		env     map[string]string
		age     []string // flags saying how old the student is
		ownWant error    // the student's own `consent --answer camera`
	}{
		{"birth date", nil, []string{"--birth-date", thirteen}, consent.ErrGuardianRequired},
		{"roster flag", nil, []string{"--minor-under-14"}, consent.ErrGuardianRequired},
		{"environment", map[string]string{"CLASSPULSE_MINOR_UNDER_14": "true"}, nil, consent.ErrGuardianRequired},
	}
	clip := writeClip(t, 1, 15)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			b := testenv.StartBroker(t, 1)
			state := t.TempDir()
			student := fmt.Sprintf("minor-%d", i)
			ctx := context.Background()
			err := consentAsk(ctx, edgeArgs(b.Addr(), state, student, append(tc.age, "--answer", "camera")...))
			if !errors.Is(err, tc.ownWant) {
				t.Fatalf("own answer of a minor: err = %v, want %v", err, tc.ownWant)
			}
			if _, err := os.Stat(filepath.Join(state, "consent.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a refused answer was recorded: %v", err)
			}
			// An answer the student gave before the edge knew the age
			// (recorded without the age flags) does not let capture start.
			if err := consentAsk(ctx, edgeArgs(b.Addr(), state, student, "--answer", "camera")); err != nil && tc.env == nil {
				t.Fatal(err)
			}
			if tc.env != nil {
				// The environment says minor for every command: write the
				// student's own answer directly.
				if err := consent.Save(filepath.Join(state, "consent.json"), consent.Record{Student: student,
					PolicyVersion: consent.PolicyVersion, Camera: true, At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			runArgs := edgeArgs(b.Addr(), state, student, append(tc.age, "--session", "m1", "--course", "C1",
				"--source", clip, "--model-dir", modelDir)...)
			if err := runCapture(ctx, runArgs); !errors.Is(err, vision.ErrNoConsent) || !strings.Contains(err.Error(), "under 14") {
				t.Fatalf("run of a minor on the student's own consent: err = %v, want a guardian refusal", err)
			}
			if n := len(readAll(t, b.Addr())[stream.TopicScores]); n != 0 {
				t.Fatalf("%d scores published for a minor without guardian consent", n)
			}
			if err := consentAsk(ctx, edgeArgs(b.Addr(), state, student, append(tc.age, "--answer", "camera", "--guardian", "g-"+student)...)); err != nil {
				t.Fatalf("guardian's answer: %v", err)
			}
			if err := runCapture(ctx, runArgs); err != nil {
				t.Fatalf("run with guardian consent: %v", err)
			}
			msgs := readAll(t, b.Addr())
			if len(msgs[stream.TopicScores]) == 0 {
				t.Fatal("no score after the guardian's consent")
			}
			var camera stream.Consent // the last camera-scope consent published
			for _, m := range msgs[stream.TopicConsent] {
				var c stream.Consent
				decodeStrict(t, m.Value, &c)
				if c.Scope == stream.ScopeCamera {
					camera = c
				}
			}
			if camera.Guardian != "g-"+student || camera.PolicyVersion != consent.PolicyVersion || !camera.Granted {
				t.Fatalf("last camera consent published %+v: want the guardian's grant for the current notice", camera)
			}
		})
	}
}
