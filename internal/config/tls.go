package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
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

// ClientChecked is Client, and with TLS on it also shakes hands with the
// first of addrs (host:port) that accepts a TCP connection, so that a CA
// that does not sign the server's certificate, a name that does not match
// or a server that does not speak TLS stops a command at start with that
// error, instead of its clients retrying quietly forever. Servers that
// cannot be reached now are skipped: being down is not a TLS error, and
// the clients retry them.
func (t *TLS) ClientChecked(ctx context.Context, addrs []string) (*tls.Config, error) {
	c, err := t.Client()
	if err != nil || c == nil {
		return c, err
	}
	for _, addr := range addrs {
		err := handshake(ctx, c, addr)
		if errors.Is(err, errUnreachable) {
			continue
		}
		return c, err
	}
	return c, nil
}

var errUnreachable = errors.New("unreachable")

// handshakeTimeout bounds the connect and the handshake of ClientChecked.
const handshakeTimeout = 5 * time.Second

func handshake(ctx context.Context, c *tls.Config, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return errUnreachable
	}
	defer raw.Close()
	c = c.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("tls: %s is not host:port", addr)
		}
		c.ServerName = host
	}
	if err := tls.Client(raw, c).HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("tls handshake with %s: no answer within %v (does it speak TLS?): %w", addr, handshakeTimeout, err)
		}
		return fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return nil
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
