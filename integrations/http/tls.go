package http

import (
	"crypto/tls"

	"github.com/medshare/medshare/consent"
)

// tlsConfig returns the TLS configuration of Config's certificate and key,
// or nil when neither is set. TLS 1.2 at least, HTTP/1.1 only (Fiber does
// not speak HTTP/2).
func (s *Server) tlsConfig() (*tls.Config, error) {
	cert, key := s.cfg.TLSCertFile, s.cfg.TLSKeyFile
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "" || key == "":
		return nil, consent.Errorf(consent.EINVALID, "TLS needs both a certificate and a key file")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "load TLS certificate %s and key %s", cert, key)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}
