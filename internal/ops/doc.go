// Package ops serves the operator endpoints every classpulse server process
// has: /metrics for Prometheus, /healthz (the process is alive) and /readyz
// (its dependencies answer). It does not serve product pages; the dashboard
// does.
package ops
