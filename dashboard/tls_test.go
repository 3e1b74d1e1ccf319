package dashboard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/internal/testenv"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// TestDashboardServesHTTPSAndWSSWithTheConfiguredCertificate starts the
// server with a certificate from a CA made in the test: a client that
// trusts the CA gets the API and a WebSocket over TLS and a Secure session
// cookie; a client that does not, or speaks plain HTTP, gets nothing.
func TestDashboardServesHTTPSAndWSSWithTheConfiguredCertificate(t *testing.T) {
	files := testenv.NewTLS(t)
	rdb := testenv.StartRedis(t).Client(t)
	s, err := New(Config{Addr: "127.0.0.1:0", TLSCert: files.Cert, TLSKey: files.Key}, rdb, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-s.Started()
	base := "https://" + s.Addr()
	if !strings.HasPrefix(s.SignInURL("x"), base+"/login") {
		t.Fatalf("sign-in URL %q does not use https", s.SignInURL("x"))
	}
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	trusting := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tok, err := s.IssueToken(Claims{Role: RoleAdmin, Subject: "a1", Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := trusting.Do(req)
	if err != nil {
		t.Fatalf("HTTPS with the CA trusted: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("HTTPS answer %d, TLS state %+v", resp.StatusCode, resp.TLS)
	}

	resp, err = trusting.Get(base + "/login?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Fatalf("sign-in over HTTPS: %d, cookies %+v; want one Secure HttpOnly cookie", resp.StatusCode, resp.Cookies())
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	c, _, err := websocket.Dial(wctx, "wss://"+s.Addr()+"/ws", &websocket.DialOptions{HTTPClient: trusting, HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatalf("WSS: %v", err)
	}
	defer c.CloseNow()
	send(t, c, map[string]any{"op": "ping"})
	next(t, c, "pong", 5*time.Second)

	var unknown *tls.CertificateVerificationError
	if _, err := http.Get(base + "/healthz"); !errors.As(err, &unknown) {
		t.Fatalf("a client without the CA: %v, want a certificate verification error", err)
	}
	if resp, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP was served on the TLS port")
		}
	}
}

func TestDashboardTLSConfigErrors(t *testing.T) {
	files := testenv.NewTLS(t)
	rdb := testenv.StartRedis(t).Client(t)
	for _, tc := range []struct {
		name      string
		cert, key string
	}{
		{"certificate without key", files.Cert, ""},
		{"key without certificate", "", files.Key},
		{"missing file", files.Cert, files.Key + ".gone"},
		{"key that is not a key", files.Cert, files.CA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Config{Addr: "127.0.0.1:0", TLSCert: tc.cert, TLSKey: tc.key}, rdb, nil, nil, nil); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
