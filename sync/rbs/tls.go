package rbs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfig builds the channel's TLS configuration from PEM files: the
// router's certificate and key, and the CA that signs both routers'
// certificates. The result is used by both sides (the dialer as client,
// the listener as server): TLS 1.3 only, mutual authentication required.
// The dialing side verifies the peer certificate against the peer address
// (an IP SAN) unless ServerName is set on the result.
func TLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("rbs: load certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("rbs: read ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("rbs: ca %s: no PEM certificates", caFile)
	}
	return NewTLSConfig(cert, pool), nil
}

// NewTLSConfig is TLSConfig with already loaded material.
func NewTLSConfig(cert tls.Certificate, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca,
		ClientCAs:    ca,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}
