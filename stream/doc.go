// Package stream owns classpulse's event log: the v1 event types of
// DESIGN.md §4 with their strict validation and JSON encoding, the topic
// names, the Kafka producer and consumer-group reader (franz-go's kgo; the
// Message type and the rebuild's partition readers are segmentio/kafka-go's),
// the dead-letter queue, and the embedded Kafka-protocol broker used by
// `classpulse demo` and the tests.
//
// It does not own per-student state (package stream/state), the stream
// processor (stream/processor) or the warning policy (package rules).
package stream
