package cli

import (
	"os"
	"testing"
	"time"
)

func TestCPUSecondsGrowsWithWorkDone(t *testing.T) {
	before := CPUSeconds(0)
	spin := time.Now().Add(150 * time.Millisecond)
	x := 0
	for time.Now().Before(spin) {
		x++
	}
	after := CPUSeconds(0)
	if after <= before {
		t.Fatalf("CPU seconds went from %v to %v after spinning (%d rounds)", before, after, x)
	}
	if own := CPUSeconds(os.Getpid()); own < after {
		t.Fatalf("CPUSeconds(own pid) = %v, below CPUSeconds(0) = %v read before it", own, after)
	}
}

func TestCPUSecondsOfAMissingProcessIsZero(t *testing.T) {
	if got := CPUSeconds(1 << 30); got != 0 {
		t.Fatalf("CPUSeconds(no such pid) = %v, want 0", got)
	}
}
