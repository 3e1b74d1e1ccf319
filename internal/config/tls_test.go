package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/classpulse/classpulse/internal/testenv"
)

func TestTLSClientAndServerConfigFromFiles(t *testing.T) {
	f := testenv.NewTLS(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		on, err bool
		certs   int
	}{
		{"nothing: plain TCP", nil, false, false, 0},
		{"--x-tls: system roots", []string{"--x-tls"}, true, false, 0},
		{"a CA implies TLS", []string{"--x-tls-ca", f.CA}, true, false, 0},
		{"client certificate", []string{"--x-tls-ca", f.CA, "--x-tls-cert", f.Cert, "--x-tls-key", f.Key}, true, false, 1},
		{"certificate without key", []string{"--x-tls-cert", f.Cert}, true, true, 0},
		{"missing CA file", []string{"--x-tls-ca", f.CA + ".gone"}, true, true, 0},
		{"CA file without a certificate", []string{"--x-tls-ca", garbage}, true, true, 0},
		{"key that does not match", []string{"--x-tls-cert", f.Cert, "--x-tls-key", garbage}, true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var c TLS
			c.Register(fs, "x", "X")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if c.On() != tc.on {
				t.Fatalf("On() = %v, want %v", c.On(), tc.on)
			}
			got, err := c.Client()
			if (err != nil) != tc.err {
				t.Fatalf("Client() error %v, want error %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if (got != nil) != tc.on || (got != nil && len(got.Certificates) != tc.certs) {
				t.Fatalf("Client() = %+v, want TLS %v with %d client certificates", got, tc.on, tc.certs)
			}
		})
	}
	for _, tc := range []struct {
		name      string
		cert, key string
		nilConf   bool
		err       bool
	}{
		{"none", "", "", true, false},
		{"pair", f.Cert, f.Key, false, false},
		{"cert only", f.Cert, "", true, true},
		{"bad key", f.Cert, garbage, true, true},
	} {
		t.Run("server "+tc.name, func(t *testing.T) {
			c, err := ServerTLS(tc.cert, tc.key)
			if (err != nil) != tc.err || (c == nil) != tc.nilConf {
				t.Fatalf("ServerTLS = %v, %v", c, err)
			}
		})
	}
}
