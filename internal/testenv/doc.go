// Package testenv starts the real infrastructure tests talk to: a
// redis-server process on a free loopback port and the embedded
// Kafka-protocol broker, and offers WaitFor to poll instead of sleeping.
// It is imported only from _test.go files and benchmark commands.
package testenv
