// Package config reads operator settings: command-line flags, each with a
// CLASSPULSE_* environment variable as fallback, and the shared logger set-up.
// It does not hold any component's settings; those live in each package's
// Config struct.
package config
