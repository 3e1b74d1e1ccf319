package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// CPUSeconds is the user+system CPU time process pid (0: this one) has
// used so far, from /proc; 0 if unreadable. Benchmarks report CPU per unit
// of work with it: on a shared machine that moves far less than a rate.
func CPUSeconds(pid int) float64 {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces), from the
	// state (field 3): utime and stime are fields 14 and 15, in clock ticks.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
