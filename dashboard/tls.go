package dashboard

import (
	"crypto/tls"
	"net"

	"github.com/classpulse/classpulse/internal/config"
)

// loadTLS reads Config.TLSCert and TLSKey; nil when the server speaks
// plain HTTP.
func (s *Server) loadTLS() error {
	c, err := config.ServerTLS(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return err
	}
	s.tlsConf = c
	return nil
}

// listen binds Addr, serving TLS on it when a certificate is configured.
func (s *Server) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil || s.tlsConf == nil {
		return ln, err
	}
	return tls.NewListener(ln, s.tlsConf), nil
}

// scheme is the URL scheme the server answers on.
func (s *Server) scheme() string {
	if s.tlsConf != nil {
		return "https"
	}
	return "http"
}
