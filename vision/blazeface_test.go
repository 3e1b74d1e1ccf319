package vision

import (
	"errors"
	"image"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/classpulse/classpulse/vision/models"
)

func TestMatchFacesPairsBestOverlapsOnce(t *testing.T) {
	truth := []image.Rectangle{image.Rect(0, 0, 100, 100), image.Rect(200, 0, 300, 100)}
	tests := []struct {
		name       string
		found      []image.Rectangle
		tp, fp, fn int
	}{
		{"both found", []image.Rectangle{image.Rect(10, 10, 110, 110), image.Rect(200, 0, 300, 100)}, 2, 0, 0},
		{"one twice", []image.Rectangle{image.Rect(0, 0, 100, 100), image.Rect(5, 5, 105, 105)}, 1, 1, 1},
		{"off target", []image.Rectangle{image.Rect(500, 500, 600, 600)}, 0, 1, 2},
		{"too small an overlap", []image.Rectangle{image.Rect(70, 70, 170, 170)}, 0, 1, 2},
		{"nothing", nil, 0, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, fp, fn, _ := MatchFaces(truth, tc.found, MatchIoU)
			if tp != tc.tp || fp != tc.fp || fn != tc.fn {
				t.Errorf("tp/fp/fn %d/%d/%d, want %d/%d/%d", tp, fp, fn, tc.tp, tc.fp, tc.fn)
			}
		})
	}
}

// TestBrokenBlazeFaceFileIsAClearError: LoadModels checks the BlazeFace
// files against the manifest before OpenCV parses them.
func TestBrokenBlazeFaceFileIsAClearError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(p string)
	}{
		{"missing", func(p string) { os.Remove(p) }},
		{"truncated", func(p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}},
		{"one byte altered", func(p string) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}},
		{"empty", func(p string) { os.WriteFile(p, nil, 0o644) }},
	} {
		for _, file := range []string{"blazeface_front128.onnx", "blazeface_back256.onnx"} {
			t.Run(tc.name+" "+file, func(t *testing.T) {
				dir := t.TempDir()
				entries, _ := os.ReadDir(modelDir)
				for _, e := range entries {
					b, _ := os.ReadFile(filepath.Join(modelDir, e.Name()))
					os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
				}
				tc.breakIt(filepath.Join(dir, file))
				m, err := LoadModels(dir)
				if err == nil {
					m.Close()
					t.Fatal("broken BlazeFace file loaded")
				}
				if !errors.Is(err, models.ErrModel) {
					t.Fatalf("err = %v, want ErrModel", err)
				}
			})
		}
	}
}

// TestModelsBuildRefusesAnUnpinnedBlazeFaceFile: `models build` copies the
// BlazeFace nets only when they are the pinned npm files.
func TestModelsBuildRefusesAnUnpinnedBlazeFaceFile(t *testing.T) {
	pkg := t.TempDir()
	os.MkdirAll(filepath.Join(pkg, "ONNX"), 0o755)
	for _, f := range blazeFaceFiles {
		b, err := os.ReadFile(filepath.Join(modelDir, f.out))
		if err != nil {
			t.Fatalf("%v (run `make models` first)", err)
		}
		if f.role == models.RoleBlazeFace {
			b[100] ^= 1
		}
		os.WriteFile(filepath.Join(pkg, "ONNX", f.src), b, 0o644)
	}
	man := &models.Manifest{Files: map[string]models.FileEntry{}}
	err := copyBlazeFace(man, pkg, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || len(man.Files) != 0 {
		t.Fatalf("altered BlazeFace file accepted: %v %v", err, man.Files)
	}
}

func TestUnknownDetectorChainIsAnError(t *testing.T) {
	for _, c := range append([]string{""}, Chains...) {
		if err := CheckChain(c); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
	for _, c := range []string{"retinaface", "MTCNN", "BlazeFace", "haar+"} {
		if err := CheckChain(c); err == nil {
			t.Errorf("%q accepted", c)
		}
		wc := WorkerConfig{Student: "s1", Session: "x", Course: "c", ConsentPath: "/tmp/c.json", Detector: c}
		wc.applyDefaults()
		if err := wc.Validate(); err == nil {
			t.Errorf("worker with detector %q validated", c)
		}
	}
}
