// Package scale is the one-machine scale-out harness of docs/operations.md:
// a Redis Cluster of real redis-server processes (Debian's package) on
// loopback ports, formed with `redis-cli --cluster create`, for tests that
// show per-student state landing on the shard that owns its hash slot and
// several `classpulse processor` processes sharing one consumer group.
//
// It owns the Redis Cluster processes it starts and nothing else; the
// Kafka side is the embedded broker of package stream.
package scale
