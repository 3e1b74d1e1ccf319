package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// TLS is the TLS set-up of one client connection kind (Kafka, Redis),
// from flags. The zero value is plain TCP.
type TLS struct {
	// Enabled turns TLS on, verifying the server against the system's
	// roots (or CA). Giving CA or Cert turns it on too.
	Enabled bool
	// CA is a PEM file of the certificate authorities to trust instead of
	// the system's.
	CA string
	// Cert and Key are PEM files of a client certificate, for servers that
	// require one (mutual TLS).
	Cert, Key string
	// ServerName overrides the name verified in the server's certificate
	// (default: the host dialled).
	ServerName string
}

// Register adds --<name>-tls, --<name>-tls-ca, --<name>-tls-cert,
// --<name>-tls-key and --<name>-tls-server-name to fs; what names the
// server kind in the help text ("Kafka", "Redis").
func (t *TLS) Register(fs *flag.FlagSet, name, what string) {
	fs.BoolVar(&t.Enabled, name+"-tls", false, "connect to "+what+" over TLS (implied by --"+name+"-tls-ca or --"+name+"-tls-cert)")
	fs.StringVar(&t.CA, name+"-tls-ca", "", "PEM file of the CAs that sign "+what+"'s certificate (default: the system's)")
	fs.StringVar(&t.Cert, name+"-tls-cert", "", "PEM file of a client certificate for "+what+" (mutual TLS)")
	fs.StringVar(&t.Key, name+"-tls-key", "", "PEM file of the key of --"+name+"-tls-cert")
	fs.StringVar(&t.ServerName, name+"-tls-server-name", "", "name to verify in "+what+"'s certificate (default: the host dialled)")
}

// On reports whether TLS is asked for.
func (t *TLS) On() bool { return t.Enabled || t.CA != "" || t.Cert != "" }

// Client builds the client TLS configuration, or nil for plain TCP. It
// reads the files now, so a missing or bad file is a start-up error.
func (t *TLS) Client() (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", t.CA)
		}
		c.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("tls: give both a client certificate and its key, or neither")
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// ServerTLS builds a server TLS configuration from a certificate chain and
// its key (PEM files), or nil when both are empty.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: give both --tls-cert and --tls-key, or neither")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}
