// Package fanout is the WebSocket fan-out benchmark behind
// `classpulse bench fanout`: a real dashboard Server over a real
// redis-server in this process, N WebSocket clients in a child process (so
// the resident memory measured is the server's alone), warnings written to
// the live stream at a fixed rate, and the push latency from XADD to each
// client's receipt.
package fanout
