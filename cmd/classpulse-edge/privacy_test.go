package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/classpulse/classpulse/stream"
	"github.com/classpulse/classpulse/stream/spool"
)

// buildEdge builds this command into a temporary folder.
func buildEdge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "classpulse-edge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// snapshot lists every file under dir with its size.
func snapshot(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = st.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	straceOpen    = regexp.MustCompile(`^\d+\s+(?:openat|open|creat)\((?:AT_FDCWD(?:<[^>]*>)?, |\d+<[^>]*>, |\d+, )?"([^"]*)"(?:, ([A-Z_|]+))?.*\) = (-?\d+)`)
	straceConnect = regexp.MustCompile(`^\d+\s+connect\(\d+(?:<[^>]*>)?, \{sa_family=(AF_\w+)(?:, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\))?(?:, sun_path="([^"]*)")?`)
	straceRename  = regexp.MustCompile(`^\d+\s+(?:rename|renameat2?|link|linkat|symlink|symlinkat|mkdir|mkdirat|truncate)\(.*?"([^"]+)"`)
)

// TestEdgeWritesNoFrameCropOrEmbeddingAnywhere runs the real edge binary,
// with camera and emotion consent, on a 3 s video under strace -f, with its
// own TMPDIR and working folder, and checks what it leaves behind:
//
//   - every file it opened for writing, created, renamed or made is in its
//     state folder, and is the consent record or a spool segment/cursor;
//     the working folder and TMPDIR are unchanged;
//   - it connected to nothing but the broker (no Redis, no other host);
//   - every spool record and every record it published decodes strictly
//     as a Score or a Consent, with numbers only: no array, no string
//     longer than 64 characters, no record over 2 KiB. A 640×480 frame is
//     900 KiB raw, a 112×112 crop 37 KiB, the 68-point landmark set or a
//     128-float embedding over 1 KiB as JSON numbers.
func TestEdgeWritesNoFrameCropOrEmbeddingAnywhere(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace not installed (scripts/install-deps.sh installs it): %v", err)
	}
	bin := buildEdge(t)
	b := testenv.StartBroker(t, 1)
	state, tmp, cwd := t.TempDir(), t.TempDir(), t.TempDir()
	clip := writeClip(t, 3, 15)
	models, err := filepath.Abs(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := consentAsk(context.Background(), edgeArgs(b.Addr(), state, "p1", "--answer", "camera+emotion")); err != nil {
		t.Fatal(err)
	}
	beforeState, beforeTmp, beforeCwd := snapshot(t, state), snapshot(t, tmp), snapshot(t, cwd)
	trace := filepath.Join(t.TempDir(), "strace.out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, append([]string{"-f", "-qq", "-y", "-s", "256", "-e", "signal=none", "-o", trace,
		"-e", "trace=open,openat,creat,connect,rename,renameat,renameat2,link,linkat,symlink,symlinkat,mkdir,mkdirat,truncate",
		bin, "run"}, edgeArgs(b.Addr(), state, "p1", "--session", "priv1", "--course", "C1",
		"--source", clip, "--fps", "15", "--model-dir", models,
		// Metrics on: the run must still end when the video does.
		"--metrics-addr", "127.0.0.1:0")...)...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("edge run under strace: %v\n%s", err, out)
	}

	// What it wrote, made or renamed on disk, and where it connected.
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	allowedFile := func(p string) bool {
		rel, err := filepath.Rel(state, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			return false
		}
		return rel == "." || rel == "consent.json" || rel == "consent.json.tmp" || rel == "spool" || rel == "consent-spool" ||
			regexp.MustCompile(`^(consent-)?spool/(\d{16}\.seg|cursor|cursor\.tmp)$`).MatchString(rel)
	}
	written, connects := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := straceOpen.FindStringSubmatch(line); m != nil {
			writes := strings.Contains(m[2], "O_WRONLY") || strings.Contains(m[2], "O_RDWR") || strings.Contains(m[2], "O_CREAT") || strings.Contains(line, "creat(")
			if !writes || strings.HasPrefix(m[3], "-") {
				continue
			}
			p := m[1]
			if !filepath.IsAbs(p) {
				p = filepath.Join(cwd, p)
			}
			// Devices and the process's own /proc entries are not disk.
			if p == "/dev/null" || p == "/dev/tty" || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/") {
				continue
			}
			written++
			if !allowedFile(p) {
				t.Errorf("the edge opened %s for writing: %s", p, line)
			}
			continue
		}
		if m := straceConnect.FindStringSubmatch(line); m != nil {
			connects++
			if m[1] != "AF_INET" && m[1] != "AF_INET6" {
				t.Errorf("the edge connected a %s socket: %s", m[1], line)
				continue
			}
			if m[3]+":"+m[2] != b.Addr() {
				t.Errorf("the edge connected to %s:%s, not the broker %s: %s", m[3], m[2], b.Addr(), line)
			}
			continue
		}
		if m := straceRename.FindStringSubmatch(line); m != nil && !strings.Contains(line, "= -1") {
			if !allowedFile(m[1]) && !allowedFile(filepath.Join(cwd, m[1])) {
				t.Errorf("the edge made or moved %s: %s", m[1], line)
			}
		}
	}
	if written == 0 || connects == 0 {
		t.Fatalf("strace saw %d files opened for writing and %d connects: the trace is not being read", written, connects)
	}
	t.Logf("strace: %d files opened for writing, %d connects, all allowed", written, connects)

	// The folders afterwards.
	for name, c := range map[string]struct{ before, after map[string]int64 }{
		"TMPDIR": {beforeTmp, snapshot(t, tmp)}, "working folder": {beforeCwd, snapshot(t, cwd)},
	} {
		if len(c.after) != len(c.before) {
			t.Errorf("%s changed: %v → %v", name, c.before, c.after)
		}
	}
	afterState := snapshot(t, state)
	var names []string
	for n := range afterState {
		names = append(names, n)
		if !allowedFile(filepath.Join(state, n)) {
			t.Errorf("state folder gained %s", n)
		}
	}
	sort.Strings(names)
	t.Logf("state folder before %v, after %v", beforeState, names)
	noImagesOrDumps(t, state)

	// Every spooled and every published record: Score or Consent, numbers.
	check := func(where, topic string, value []byte) {
		if len(value) > 2048 {
			t.Errorf("%s: a %d-byte record on %s", where, len(value), topic)
		}
		switch topic {
		case stream.TopicScores:
			var sc stream.Score
			decodeStrict(t, value, &sc)
		case stream.TopicConsent:
			var c stream.Consent
			decodeStrict(t, value, &c)
		default:
			t.Errorf("%s: a record for topic %s", where, topic)
		}
		var raw map[string]any
		if err := json.Unmarshal(value, &raw); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		noBulk(t, where, raw)
	}
	for _, dir := range []string{"spool", "consent-spool"} {
		sp, err := spool.Open(spool.Config{Dir: filepath.Join(state, dir)}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := sp.Next(1 << 20)
		sp.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range batch.Messages {
			check(dir, m.Topic, m.Value)
		}
	}
	scores := 0
	for topic, msgs := range readAll(t, b.Addr()) {
		for _, m := range msgs {
			check("broker", topic, m.Value)
			if topic == stream.TopicScores {
				scores++
			}
		}
	}
	if scores < 3 {
		t.Fatalf("%d scores published for 3 s of video: the capture did not run", scores)
	}
}
