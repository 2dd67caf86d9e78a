package lifecycle_test

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// jarServer is an https artifact server with a self-signed certificate:
// /jobs/counter.jar needs the X-Api-Key header, and /maven is a Maven
// repository holding io.example:counter-job:1.0.0 that needs X-Repo-Token.
type jarServer struct {
	url, caFile, tokenFile, apiKey string
	refused                        atomic.Int64 // requests without the right header
	served                         atomic.Int64 // jars served
}

func serveJars(t *testing.T, jar string) *jarServer {
	t.Helper()
	b, err := os.ReadFile(jar)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(b)
	s := &jarServer{apiKey: "key-for-job-a", tokenFile: filepath.Join(t.TempDir(), "token")}
	if err := os.WriteFile(s.tokenFile, []byte("repo-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const mvn = "/maven/io/example/counter-job/1.0.0/counter-job-1.0.0.jar"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/jobs/counter.jar" && r.Header.Get("X-Api-Key") == s.apiKey:
			s.served.Add(1)
			w.Write(b)
		case strings.HasPrefix(r.URL.Path, "/maven/") && r.Header.Get("X-Repo-Token") != "repo-token":
			s.refused.Add(1)
			http.Error(w, "no token", http.StatusUnauthorized)
		case r.URL.Path == mvn:
			s.served.Add(1)
			w.Write(b)
		case r.URL.Path == mvn+".sha1":
			w.Write([]byte(hex.EncodeToString(sum[:])))
		case r.URL.Path == "/jobs/counter.jar":
			s.refused.Add(1)
			http.Error(w, "no key", http.StatusForbidden)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n := s.refused.Load(); n > 0 {
			t.Errorf("the artifact server refused %d requests that lacked their header", n)
		}
	})
	return s
}
