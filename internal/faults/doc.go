// Package faults holds fault-injection tests that run the real classpulse
// and classpulse-edge binaries as child processes against a real
// redis-server and the embedded Kafka-protocol broker, and break them on
// purpose: the processor killed with SIGKILL at random points while events
// flow, redis-server restarted mid-stream, the broker away for 30 s under
// the edge worker and the simulators (their on-disk spools), the dashboard
// killed under a connected WebSocket client and a browser page. Each test
// compares what arrived with what was sent (the final per-student state
// with a clean run and with the sums the events imply; the events and
// warnings by id and order), so a lost, reordered or double-counted event
// fails it.
//
// The package has no non-test code. The binaries (classpulse, and the cgo
// classpulse-edge, which needs `make models`) are built once in TestMain.
// Sizes are bounded for CI; CLASSPULSE_FAULT_EVENTS and
// CLASSPULSE_FAULT_KILLS raise them (the full size is 100000 and 5).
package faults
