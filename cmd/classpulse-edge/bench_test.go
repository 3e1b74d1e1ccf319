package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// stdoutOf runs fn with os.Stdout captured.
func stdoutOf(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	err = fn()
	os.Stdout = old
	w.Close()
	return <-done, err
}

// TestBenchDetectorsPrintsATableAndALastLine: one row per chain asked for,
// scored against the ground truth, and the documented last line.
func TestBenchDetectorsPrintsATableAndALastLine(t *testing.T) {
	out, err := stdoutOf(t, func() error {
		return benchDetectors(context.Background(), []string{"--model-dir", modelDir, "--demo", demoDir,
			"--repeat", "1", "--detectors", "haar+pigo,blazeface-back"})
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want a header, a column line, 2 rows and a last line; got:\n%s", out)
	}
	for i, chain := range []string{"haar+pigo", "blazeface-back"} {
		if f := strings.Fields(lines[2+i]); len(f) != 10 || f[0] != chain {
			t.Errorf("row %d = %q, want 10 columns for %s", i, lines[2+i], chain)
		}
	}
	last := lines[4]
	if !strings.HasPrefix(last, "detectors best=blazeface-back ") || !strings.Contains(last, " default=blazeface-back") {
		t.Errorf("last line %q", last)
	}
}

func TestBenchRefusesUnknownDetectors(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
	}{
		{"bench detectors", func() error {
			return benchDetectors(context.Background(), []string{"--model-dir", modelDir, "--demo", demoDir, "--detectors", "retinaface"})
		}},
		{"bench --video", func() error {
			return bench(context.Background(), []string{"--video", "x.avi", "--detector", "retinaface"})
		}},
		{"score", func() error {
			return scoreImage(context.Background(), []string{"--image", "x.jpg", "--detector", "retinaface"})
		}},
		{"bench detectors without photos", func() error {
			return benchDetectors(context.Background(), []string{"--model-dir", modelDir, "--demo", t.TempDir()})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := stdoutOf(t, tc.run); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
