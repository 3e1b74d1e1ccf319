// Package spool is a bounded, crash-safe on-disk queue of encoded events: the
// outbox of a client (the edge worker, the simulator) whose broker may be
// unreachable for a while. Appended records are kept in order in segment
// files under one folder; when the folder would grow past its byte limit the
// oldest segment is dropped and counted in a metric; Drain hands records, in
// order, to a publish function and advances a persisted cursor only after it
// succeeded, so delivery is at-least-once and survives restarts.
//
// It stores bytes it is given and never looks inside them; it does not own
// the event types (package stream) or the Kafka producer. It is pure Go.
package spool
