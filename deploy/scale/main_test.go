package scale

import (
	"testing"

	"go.uber.org/goleak"
)

// The harness starts goroutines that wait on redis-server and classpulse
// child processes; none may outlive the test that started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
