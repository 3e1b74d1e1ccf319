// Package state owns the per-student state in Redis (DESIGN.md §5): the key
// shapes under the hash tag {s:<student>}, the Lua script that applies one
// event atomically and skips redeliveries by (partition, offset), the
// rolling live windows, the academic counters, the live feed the dashboards
// read, and the embedded Redis-protocol server `classpulse demo` runs on.
//
// It does not decide anything about a student: package rules does, from
// the snapshots read here.
package state
