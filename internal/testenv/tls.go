package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// TLSFiles are PEM files of a test certificate authority and of one
// certificate it signed for 127.0.0.1, ::1 and localhost.
type TLSFiles struct {
	CA, Cert, Key string
}

// NewTLS makes a fresh CA and a server/client certificate signed by it in
// the test's temporary folder (ECDSA P-256, valid for an hour).
func NewTLS(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "classpulse test CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	for path, block := range map[string]*pem.Block{
		f.CA: {Type: "CERTIFICATE", Bytes: caDER}, f.Cert: {Type: "CERTIFICATE", Bytes: der}, f.Key: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// StartTLSBroker starts the embedded Kafka-protocol broker on a free
// loopback port accepting only TLS, with the certificate of files (see
// NewTLS) and every classpulse topic; closed when the test ends.
func StartTLSBroker(t testing.TB, partitions int, files TLSFiles) *stream.EmbeddedBroker {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := stream.StartEmbeddedBroker(stream.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: partitions,
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}}, nil)
	if err != nil {
		t.Fatalf("embedded TLS broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// StartRedisTLS starts redis-server (see StartRedis) with a TLS port as
// well, its certificate from a fresh CA (NewTLS); authClients is its
// --tls-auth-clients ("no", "optional" or "yes"). It returns the TLS
// port's host:port and the certificate files.
func StartRedisTLS(t testing.TB, authClients string) (string, TLSFiles) {
	t.Helper()
	files := NewTLS(t)
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	StartRedis(t, "--tls-port", strconv.Itoa(port), "--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--tls-ca-cert-file", files.CA, "--tls-auth-clients", authClients)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), files
}
