// Package simulate generates a synthetic live class: students with distinct
// behaviour (attentive, drifting, absent, confused, no camera) whose edge
// workers publish one score event per second, and whose LMS publishes
// clickstream and study-time events. It feeds `classpulse demo`, the
// `simulate` command, the benchmarks and the end-to-end tests.
//
// It does not model learner cohorts for profiling; package profile does.
package simulate
