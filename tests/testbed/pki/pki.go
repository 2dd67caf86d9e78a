// Package pki makes the test bed's TLS material: a CA, a server
// certificate for given DNS names and IPs, and a client certificate, all
// PEM (RSA 2048: Flink's default security.ssl.algorithms offer only
// ECDHE-RSA suites).
package pki

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Pair is a PEM certificate and its PEM private key.
type Pair struct {
	Cert, Key []byte
}

// Set is one CA with a server and a client certificate it signed.
type Set struct {
	CA     Pair
	Server Pair
	Client Pair
}

// New makes a CA and, signed by it, a server certificate for hosts (DNS
// names or IP addresses) and a client certificate (CN flink-gitops). They
// are valid from an hour ago for a day.
func New(hosts ...string) (*Set, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "flink-gitops test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	s := &Set{CA: Pair{Cert: pemBlock("CERTIFICATE", caDER)}}
	if s.CA.Key, err = keyPEM(caKey); err != nil {
		return nil, err
	}
	srv := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "flink-jobmanager"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	if s.Server, err = leaf(srv, ca, caKey); err != nil {
		return nil, err
	}
	cli := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "flink-gitops"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if s.Client, err = leaf(cli, ca, caKey); err != nil {
		return nil, err
	}
	return s, nil
}

func leaf(tmpl, ca *x509.Certificate, caKey *rsa.PrivateKey) (Pair, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Pair{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		return Pair{}, fmt.Errorf("sign %s: %w", tmpl.Subject.CommonName, err)
	}
	kp, err := keyPEM(k)
	if err != nil {
		return Pair{}, err
	}
	return Pair{Cert: pemBlock("CERTIFICATE", der), Key: kp}, nil
}

func keyPEM(k *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// WriteFlinkStores writes the server certificate (with the CA) as a PKCS#12
// keystore and the CA as a PKCS#12 truststore into dir, both with
// password, as Flink's security.ssl.rest.keystore and truststore read them
// (openssl makes the keystore, the JDK's keytool the truststore).
func (s *Set) WriteFlinkStores(ctx context.Context, dir, password string) (keystore, truststore string, err error) {
	files := map[string][]byte{"ca.crt": s.CA.Cert, "server.crt": s.Server.Cert, "server.key": s.Server.Key}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", "", err
		}
	}
	keystore, truststore = filepath.Join(dir, "keystore.p12"), filepath.Join(dir, "truststore.p12")
	for _, args := range [][]string{
		{"openssl", "pkcs12", "-export", "-in", filepath.Join(dir, "server.crt"), "-inkey", filepath.Join(dir, "server.key"),
			"-certfile", filepath.Join(dir, "ca.crt"), "-name", "flink", "-out", keystore, "-passout", "pass:" + password},
		{"keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", filepath.Join(dir, "ca.crt"),
			"-keystore", truststore, "-storetype", "PKCS12", "-storepass", password},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("%s: %w: %s", args[0], err, out)
		}
	}
	return keystore, truststore, nil
}
