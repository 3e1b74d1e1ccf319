package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
)

// StartCPUProfile starts a Go CPU profile written to path, for the
// benchmarks' --cpuprofile flags, and returns the function that stops it
// and closes the file; stop may be called more than once (a deferred call
// after an explicit one is a no-op). An empty path profiles nothing.
func StartCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	var once sync.Once
	var closeErr error
	return func() error {
		once.Do(func() {
			pprof.StopCPUProfile()
			closeErr = f.Close()
		})
		return closeErr
	}, nil
}
