package flinkclient

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
)

// MaxPEMBytes bounds each PEM input of a TLS configuration (CA bundle,
// certificate chain, key): they come from Secrets and files that a spec or
// an operator names, so they are untrusted in size.
const MaxPEMBytes = 64 << 10

// TLS is what the daemon needs to talk HTTPS to one JobManager: the CA
// certificates it trusts (PEM) and, for mutual TLS, the client certificate
// chain and key it presents (PEM). ServerName, when set, is the name the
// server certificate must carry instead of the host of the REST URL.
type TLS struct {
	CA         []byte
	Cert       []byte
	Key        []byte
	ServerName string
}

// Mutual reports whether a client certificate is configured.
func (t *TLS) Mutual() bool { return len(t.Cert) > 0 || len(t.Key) > 0 }

// Fingerprint is a SHA-256 over the whole configuration: two equal
// fingerprints can share one transport. It reveals nothing of the key.
func (t *TLS) Fingerprint() string {
	h := sha256.New()
	for _, b := range [][]byte{t.CA, t.Cert, t.Key, []byte(t.ServerName)} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Config builds the crypto/tls configuration: only the given CAs are
// trusted (not the system roots: a JobManager's certificate is issued by
// the cluster's own CA), TLS 1.2 or newer, the server always verified.
// Errors say which input is wrong, never what it holds.
func (t *TLS) Config() (*tls.Config, error) {
	for _, in := range []struct {
		what string
		b    []byte
	}{{"CA certificate", t.CA}, {"client certificate", t.Cert}, {"client key", t.Key}} {
		if len(in.b) > MaxPEMBytes {
			return nil, fmt.Errorf("%s is %d bytes, more than the %d a PEM input may have", in.what, len(in.b), MaxPEMBytes)
		}
	}
	if len(t.CA) == 0 {
		return nil, errors.New("no CA certificate: the JobManager's REST certificate cannot be verified")
	}
	pool := x509.NewCertPool()
	n, err := addPEMCerts(pool, t.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if n == 0 {
		return nil, errors.New("CA certificate: no PEM CERTIFICATE block")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.Mutual() {
		if len(t.Cert) == 0 || len(t.Key) == 0 {
			return nil, errors.New("mutual TLS needs both a client certificate and its key")
		}
		pair, err := tls.X509KeyPair(t.Cert, t.Key)
		if err != nil {
			// crypto/tls's messages name PEM block types only, no key material.
			return nil, fmt.Errorf("client certificate and key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// addPEMCerts adds every CERTIFICATE block of b to pool and returns how
// many it added; a block that does not parse is an error.
func addPEMCerts(pool *x509.CertPool, b []byte) (int, error) {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return n, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
}

// NewTLSTransport returns a transport like NewTransport's that speaks
// HTTPS with t (the same dial, handshake and idle bounds).
func NewTLSTransport(t *TLS) (*http.Transport, error) {
	cfg, err := t.Config()
	if err != nil {
		return nil, err
	}
	tr := NewTransport()
	tr.TLSClientConfig = cfg
	return tr, nil
}
