// Package replay backtests a warning policy: it runs a file of past v1
// input events through the same state script (package state) and the same
// processor code (package processor: apply, evaluate, lifecycle, class
// stage) that run in production, with the clock taken from the events, and
// hands back every warning the processor would have published.
//
// A replay owns its state: by default a fresh in-process Redis-protocol
// server that lives as long as one Run. It reads no Kafka topic and
// publishes nothing; the warnings go to the caller's writer as JSON lines.
//
// The line format of the events file is documented on ParseLine.
package replay
