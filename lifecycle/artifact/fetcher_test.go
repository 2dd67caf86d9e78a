package artifact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flink-gitops/flink-gitops/render"
)

// TestFetchPolicy checks the artifact policy at fetch time against a
// real HTTP server on 127.0.0.1 and real files: loopback is refused by
// default (the server must receive nothing); opt-ins allow it; file:// jars must resolve inside the
// configured directory (symlinks included); the size limit holds.
func TestFetchPolicy(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "PK-jar-bytes")
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	dir := t.TempDir()
	jar := filepath.Join(dir, "job.jar")
	if err := os.WriteFile(jar, []byte("PK-jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.jar")
	if err := os.WriteFile(outside, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.jar")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	httpPrivate := render.ArtifactPolicy{AllowedSchemes: []string{"http"}, AllowPrivateHosts: true}
	tests := []struct {
		name    string
		policy  render.ArtifactPolicy
		uri     string
		wantErr string // "" for success
		hits    int64  // requests the server must have received
	}{
		{"http refused by default", render.ArtifactPolicy{}, srv.URL + "/job.jar", "does not fetch session job jars over http://", 0},
		{"loopback refused even with http allowed", render.ArtifactPolicy{AllowedSchemes: []string{"http"}}, srv.URL + "/job.jar", "loopback address", 0},
		{"a host allowed by name is fetched", render.ArtifactPolicy{AllowedSchemes: []string{"http"}, AllowedHosts: []string{"localhost"}}, "http://localhost:" + port + "/job.jar", "", 1},
		{"metadata address refused", render.ArtifactPolicy{AllowedSchemes: []string{"http"}}, "http://169.254.169.254/latest/meta-data/", "link-local", 0},
		{"loopback allowed by CIDR", render.ArtifactPolicy{AllowedSchemes: []string{"http"}, AllowedHosts: []string{"127.0.0.0/8"}}, srv.URL + "/job.jar", "", 1},
		{"loopback allowed by opt-in", httpPrivate, srv.URL + "/job.jar", "", 1},
		{"size limit", render.ArtifactPolicy{AllowedSchemes: []string{"http"}, AllowPrivateHosts: true, MaxBytes: 4}, srv.URL + "/job.jar", "larger than the artifact limit of 4 bytes", 1},
		{"file refused without a directory", render.ArtifactPolicy{AllowedSchemes: []string{"file"}}, "file://" + jar, "names no directory", 0},
		{"file inside the directory", render.ArtifactPolicy{AllowedSchemes: []string{"file"}, FileDirectory: dir}, "file://" + jar, "", 0},
		{"file outside the directory", render.ArtifactPolicy{AllowedSchemes: []string{"file"}, FileDirectory: dir}, "file:///var/run/secrets/kubernetes.io/serviceaccount/token", "outside the directory", 0},
		{"symlink leaving the directory", render.ArtifactPolicy{AllowedSchemes: []string{"file"}, FileDirectory: dir}, "file://" + link, "resolves to", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			jar, release, err := (&Fetcher{}).Fetch(context.Background(), tc.policy, Request{URI: tc.uri})
			defer release()
			path := jar.Path
			if tc.wantErr == "" && err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want an invalid-jar error containing %q", err, tc.wantErr)
				}
			} else if _, statErr := os.Stat(path); statErr != nil {
				t.Fatalf("no jar at %s: %v", path, statErr)
			}
			if got := hits.Load(); got != tc.hits {
				t.Errorf("the server received %d requests, want %d", got, tc.hits)
			}
		})
	}
}

// TestFetchRebinding resolves a public-looking name to loopback at
// fetch time (the dialer sees only the address), as DNS rebinding would:
// the connection is refused and the server receives nothing.
func TestFetchRebinding(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	// Validation refuses "localhost" by name; going through the client
	// directly is what a name that passed validation and then resolves to
	// loopback (rebinding) looks like to the dialer.
	p := render.ArtifactPolicy{AllowedSchemes: []string{"http"}}
	_, err := p.Client().Get("http://localhost:" + port + "/job.jar")
	if !errors.Is(err, render.ErrArtifactRefused) {
		t.Fatalf("err = %v, want the dial refused by the artifact policy", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the server received %d requests", hits.Load())
	}
}
