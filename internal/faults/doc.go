// Package faults holds fault-injection tests that run the real classpulse
// binary as child processes against a real redis-server and the embedded
// Kafka-protocol broker, and break them on purpose: the processor killed
// with SIGKILL at random points while events flow, redis-server restarted
// mid-stream. Each test compares the final per-student state with a clean
// run of the same events and with the sums the events imply, so a lost or
// double-counted event fails it.
//
// The package has no non-test code. The binary is built once in TestMain.
// Sizes are bounded for CI; CLASSPULSE_FAULT_EVENTS and
// CLASSPULSE_FAULT_KILLS raise them (the full size is 100000 and 5).
package faults
