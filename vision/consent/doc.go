// Package consent owns the edge worker's local consent record: the notice
// shown on first run (what is measured, what is sent, why), the learner's
// answer per scope (camera, emotion) stored on the machine, and the
// stream.Consent events that tell the servers. It does not capture or
// publish anything itself.
package consent
