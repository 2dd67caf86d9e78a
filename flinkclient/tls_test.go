package flinkclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/tests/testbed/pki"
)

// tlsServer serves /overview over TLS with the server certificate of set;
// clientAuth asks for (and verifies) a client certificate.
func tlsServer(t testing.TB, set *pki.Set, clientAuth bool) *httptest.Server {
	t.Helper()
	pair, err := tls.X509KeyPair(set.Server.Cert, set.Server.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"taskmanagers":1,"slots-total":2,"slots-available":2,"jobs-running":0,"jobs-finished":0,"jobs-cancelled":0,"jobs-failed":0,"flink-version":"2.2.1","flink-commit":"x"}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	if clientAuth {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(set.CA.Cert)
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLSTransport(t *testing.T) {
	t.Parallel()
	set, err := pki.New("127.0.0.1", "app-rest.ns")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	plain := tlsServer(t, set, false)
	mutual := tlsServer(t, set, true)
	cases := []struct {
		name    string
		url     string
		tls     flinkclient.TLS
		wantErr string // "" = the call succeeds
	}{
		{"server verified", plain.URL, flinkclient.TLS{CA: set.CA.Cert}, ""},
		{"server name override in SANs", plain.URL, flinkclient.TLS{CA: set.CA.Cert, ServerName: "app-rest.ns"}, ""},
		{"server name not in SANs", plain.URL, flinkclient.TLS{CA: set.CA.Cert, ServerName: "other-rest.ns"}, "certificate is valid for"},
		{"other CA", plain.URL, flinkclient.TLS{CA: other.CA.Cert}, "certificate signed by unknown authority"},
		{"mutual with client cert", mutual.URL, flinkclient.TLS{CA: set.CA.Cert, Cert: set.Client.Cert, Key: set.Client.Key}, ""},
		{"mutual without client cert", mutual.URL, flinkclient.TLS{CA: set.CA.Cert}, "certificate"},
		{"mutual with a cert of another CA", mutual.URL, flinkclient.TLS{CA: set.CA.Cert, Cert: other.Client.Cert, Key: other.Client.Key}, "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := flinkclient.NewTLSTransport(&tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			c := flinkclient.New(tc.url, flinkclient.WithHTTPClient(&http.Client{Transport: tr}))
			ov, err := c.Overview(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Overview: %v", err)
				}
				if ov.FlinkVersion != "2.2.1" {
					t.Fatalf("overview %+v", ov)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestTLSConfigRefusals(t *testing.T) {
	t.Parallel()
	set, err := pki.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, flinkclient.MaxPEMBytes+1)
	cases := []struct {
		name, want string
		tls        flinkclient.TLS
	}{
		{"no CA", "no CA certificate", flinkclient.TLS{}},
		{"CA not PEM", "no PEM CERTIFICATE block", flinkclient.TLS{CA: []byte("not a pem")}},
		{"CA too large", "more than the", flinkclient.TLS{CA: big}},
		{"key too large", "client key is", flinkclient.TLS{CA: set.CA.Cert, Cert: set.Client.Cert, Key: big}},
		{"cert without key", "both a client certificate and its key", flinkclient.TLS{CA: set.CA.Cert, Cert: set.Client.Cert}},
		{"key of another cert", "client certificate and key", flinkclient.TLS{CA: set.CA.Cert, Cert: set.Client.Cert, Key: set.Server.Key}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.tls.Config()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			// No key material in the message.
			for _, secret := range [][]byte{set.Client.Key, set.Server.Key} {
				if strings.Contains(err.Error(), strings.TrimSpace(string(secret[30:60]))) {
					t.Fatalf("error %q shows key material", err)
				}
			}
		})
	}
}

func TestTLSFingerprint(t *testing.T) {
	t.Parallel()
	a := flinkclient.TLS{CA: []byte("a"), Cert: []byte("bc")}
	b := flinkclient.TLS{CA: []byte("ab"), Cert: []byte("c")}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("fingerprints of different inputs are equal")
	}
	c := a
	if a.Fingerprint() != c.Fingerprint() {
		t.Fatal("fingerprints of equal inputs differ")
	}
}

// BenchmarkOverviewTLS compares one REST call over plain HTTP and over TLS
// (kept-alive connections, as the daemon's clients are reused) and the
// cost of a new TLS client (first call: handshake), for docs/benchmarks.md.
func BenchmarkOverviewTLS(b *testing.B) {
	set, err := pki.New("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	srv := tlsServer(b, set, false)
	plain := httptest.NewServer(srv.Config.Handler)
	defer plain.Close()
	ctx := context.Background()
	b.Run("plain", func(b *testing.B) {
		c := flinkclient.New(plain.URL)
		for b.Loop() {
			if _, err := c.Overview(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tls", func(b *testing.B) {
		tr, _ := flinkclient.NewTLSTransport(&flinkclient.TLS{CA: set.CA.Cert})
		c := flinkclient.New(srv.URL, flinkclient.WithHTTPClient(&http.Client{Transport: tr}))
		for b.Loop() {
			if _, err := c.Overview(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tls-new-client", func(b *testing.B) {
		for b.Loop() {
			tr, _ := flinkclient.NewTLSTransport(&flinkclient.TLS{CA: set.CA.Cert})
			c := flinkclient.New(srv.URL, flinkclient.WithHTTPClient(&http.Client{Transport: tr}))
			if _, err := c.Overview(ctx); err != nil {
				b.Fatal(err)
			}
			tr.CloseIdleConnections()
		}
	})
}
