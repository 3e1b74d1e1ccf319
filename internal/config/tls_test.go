package config

import (
	"context"
	"crypto/tls"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestClientCheckedRefusesAServerTheCADoesNotSign shakes hands with real
// TLS and plain listeners: the right CA passes, another CA, a wrong name
// and a plain-text server fail with the handshake error, and a server
// that is not there is left to the clients' retries.
func TestClientCheckedRefusesAServerTheCADoesNotSign(t *testing.T) {
	f := testenv.NewTLS(t)
	other := testenv.NewTLS(t)
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(ln net.Listener, tlsOn bool) string {
		if tlsOn {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}})
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if tc, ok := c.(*tls.Conn); ok {
					_ = tc.Handshake()
				} else {
					_, _ = c.Write([]byte("plain text, not TLS\n"))
				}
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	tlsAddr, plainAddr := serve(listen(), true), serve(listen(), false)
	gone := listen()
	goneAddr := gone.Addr().String()
	gone.Close()
	for _, tc := range []struct {
		name  string
		cfg   TLS
		addrs []string
		want  string // "" for no error
	}{
		{"right CA", TLS{CA: f.CA}, []string{tlsAddr}, ""},
		{"plain TCP is not checked", TLS{}, []string{plainAddr}, ""},
		{"another CA", TLS{CA: other.CA}, []string{tlsAddr}, "certificate signed by unknown authority"},
		{"name not in the certificate", TLS{CA: f.CA, ServerName: "kafka.example"}, []string{tlsAddr}, "kafka.example"},
		{"plain-text server", TLS{CA: f.CA}, []string{plainAddr}, "tls handshake with " + plainAddr},
		{"server away, the next one checked", TLS{CA: other.CA}, []string{goneAddr, tlsAddr}, "unknown authority"},
		{"every server away", TLS{CA: other.CA}, []string{goneAddr}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := tc.cfg.ClientChecked(ctx, tc.addrs)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ClientChecked: %v, want %q", err, tc.want)
			}
		})
	}
}
