package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestStartCPUProfileWritesAProfileAndStopsOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	stop, err := StartCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second profile cannot start while the first runs.
	if _, err := StartCPUProfile(filepath.Join(dir, "other.pprof")); err == nil {
		t.Error("a second CPU profile started while one was running")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("profile of %d bytes is not a gzipped pprof profile", len(b))
	}
	// Stopped for good: the next one starts.
	again, err := StartCPUProfile(filepath.Join(dir, "again.pprof"))
	if err != nil {
		t.Fatalf("after stop: %v", err)
	}
	if err := again(); err != nil {
		t.Fatal(err)
	}
}

func TestStartCPUProfileWithoutAPathProfilesNothing(t *testing.T) {
	stop, err := StartCPUProfile("")
	if err != nil || stop() != nil {
		t.Fatalf("err %v", err)
	}
}

func TestStartCPUProfileRefusesAnUnwritablePath(t *testing.T) {
	if _, err := StartCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.pprof")); err == nil {
		t.Error("no error for a folder that does not exist")
	}
}
