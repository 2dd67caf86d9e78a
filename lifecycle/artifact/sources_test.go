package artifact

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flink-gitops/flink-gitops/render"
)

// repo is an https server with a self-signed certificate that serves a
// Maven repository layout and plain files, and records what it was asked.
type repo struct {
	srv    *httptest.Server
	caFile string
	mu     sync.Mutex
	files  map[string][]byte
	asked  []string
	header http.Header // headers of the last request
	need   [2]string   // a header every request must carry (name, value)
}

func newRepo(t *testing.T) *repo {
	r := &repo{files: map[string][]byte{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.asked = append(r.asked, req.URL.Path)
		r.header = req.Header.Clone()
		if r.need[0] != "" && req.Header.Get(r.need[0]) != r.need[1] {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if strings.HasPrefix(req.URL.Path, "/redirect/") {
			http.Redirect(w, req, req.URL.Query().Get("to"), http.StatusFound)
			return
		}
		b, ok := r.files[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(r.srv.Close)
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *repo) put(path string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[path] = b
}

func (r *repo) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// policy trusts the repo's CA and loopback (the test servers' address).
func (r *repo) policy() render.ArtifactPolicy {
	return render.ArtifactPolicy{AllowedSchemes: []string{"https", "maven"}, AllowedHosts: []string{"127.0.0.1"}, CAFile: r.caFile}
}

// TestHTTPSHeaders: an https server with a self-signed CA that requires a
// header: refused without it, fetched with the spec's header or the daemon's
// header for that host; the headers do not follow a redirect to another host.
func TestHTTPSHeaders(t *testing.T) {
	r := newRepo(t)
	other := newRepo(t)
	jar := []byte("PK-the-job")
	r.put("/job.jar", jar)
	other.put("/job.jar", jar)
	r.need = [2]string{"X-Api-Key", "s3cret"}
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("s3cret\n"), 0o600)
	ctx := context.Background()
	f := &Fetcher{}

	p := r.policy()
	if _, _, err := f.Fetch(ctx, p, Request{URI: r.srv.URL + "/job.jar"}); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("without the header: err = %v, want HTTP 403", err)
	}
	noCA := p
	noCA.CAFile = ""
	if _, _, err := f.Fetch(ctx, noCA, Request{URI: r.srv.URL + "/job.jar", Headers: map[string]string{"X-Api-Key": "s3cret"}}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: err = %v, want a certificate error", err)
	}
	j, release, err := f.Fetch(ctx, p, Request{URI: r.srv.URL + "/job.jar", Headers: map[string]string{"x-api-key": "s3cret"}})
	if err != nil {
		t.Fatalf("spec header: %v", err)
	}
	release()
	if j.SHA256 != hexSum(jar) || j.Name != "job.jar" {
		t.Errorf("jar = %+v", j)
	}
	daemon := p
	daemon.Headers = []render.HostHeader{{Hosts: []string{"127.0.0.1"}, Name: "X-Api-Key", ValueFile: keyFile}}
	if _, release, err := f.Fetch(ctx, daemon, Request{URI: r.srv.URL + "/job.jar"}); err != nil {
		t.Fatalf("daemon header: %v", err)
	} else {
		release()
	}
	// A header for another host is not sent.
	elsewhere := p
	elsewhere.Headers = []render.HostHeader{{Hosts: []string{"artifacts.example.com"}, Name: "X-Api-Key", ValueFile: keyFile}}
	if _, _, err := f.Fetch(ctx, elsewhere, Request{URI: r.srv.URL + "/job.jar"}); err == nil {
		t.Fatal("a header configured for another host was sent")
	}
	// Redirected to another server (another port: the header's rule is per
	// host:port): the header stays behind.
	r.need = [2]string{}
	to := other.srv.URL + "/job.jar"
	redir := daemon
	if _, release, err := f.Fetch(ctx, redir, Request{URI: r.srv.URL + "/redirect/?to=" + to, Headers: map[string]string{"X-Spec": "v"}}); err != nil {
		t.Fatalf("redirect: %v", err)
	} else {
		release()
	}
	if got := other.header.Get("X-Api-Key") + other.header.Get("X-Spec"); got != "" {
		t.Errorf("headers followed the redirect to another host: %q", got)
	}
}

// TestMaven resolves coordinates against repositories in order, verifies
// the repository's checksum, and refuses a jar without one or with a wrong one.
func TestMaven(t *testing.T) {
	first, second := newRepo(t), newRepo(t)
	jar := []byte("PK-maven-job")
	s1 := sha1.Sum(jar)
	second.put("/org/example/job/1.2.0/job-1.2.0.jar", jar)
	second.put("/org/example/job/1.2.0/job-1.2.0.jar.sha1", []byte(hex.EncodeToString(s1[:])+"  job-1.2.0.jar\n"))
	second.put("/org/example/job/1.2.0/job-1.2.0-all.jar", jar)
	second.put("/org/example/job/1.2.0/job-1.2.0-all.jar.sha256", []byte(hexSum(jar)))
	second.put("/org/example/job/1.3.0/job-1.3.0.jar", jar)
	second.put("/org/example/job/1.3.0/job-1.3.0.jar.sha1", []byte(strings.Repeat("0", 40)))
	second.put("/org/example/job/1.4.0/job-1.4.0.jar", jar) // no checksum
	p := first.policy()
	p.MavenRepositories = []string{first.srv.URL + "/", second.srv.URL}
	ctx := context.Background()
	cache, err := NewCache(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Cache: cache}
	for _, tc := range []struct{ uri, wantErr, name string }{
		{"maven:org.example:job:1.2.0", "", "job-1.2.0.jar"},
		{"maven:org.example:job:1.2.0:all", "", "job-1.2.0-all.jar"},
		{"maven:org.example:job:1.3.0", "does not match the repository's checksum", ""},
		{"maven:org.example:job:1.4.0", "in none of the Maven repositories", ""},
		{"maven:org.example:job:1.0-SNAPSHOT", "SNAPSHOT", ""},
		{"maven:org.example:../job:1.0", "must be letters", ""},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			j, release, err := f.Fetch(ctx, p, Request{URI: tc.uri})
			defer release()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want an invalid-jar error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.SHA256 != hexSum(jar) || j.Name != tc.name {
				t.Errorf("jar = %+v", j)
			}
		})
	}
	// A release fetched once is served from the cache: no request at all.
	before := len(second.requests())
	j, release, err := f.Fetch(ctx, p, Request{URI: "maven:org.example:job:1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if n := len(second.requests()) - before; n != 0 || j.SHA256 != hexSum(jar) {
		t.Errorf("second fetch of a release made %d requests (jar %+v), want 0 from the cache", n, j)
	}
	// Without repositories, maven: is refused up front.
	p.MavenRepositories = nil
	if _, _, err := f.Fetch(ctx, p, Request{URI: "maven:org.example:job:1.2.0"}); err == nil || !strings.Contains(err.Error(), "artifacts.maven.repositories") {
		t.Errorf("err = %v, want a refusal naming artifacts.maven.repositories", err)
	}
}

// TestCache: a pinned digest in the cache is not fetched again; the cache
// stays within its bound by evicting the least recently used jars, never
// one that is held.
func TestCache(t *testing.T) {
	r := newRepo(t)
	dir := t.TempDir()
	cache, err := NewCache(dir, 25)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Cache: cache}
	p := r.policy()
	ctx := context.Background()
	jars := map[string][]byte{}
	for i := range 4 {
		b := []byte(fmt.Sprintf("PK-jar-number-%d", i)) // 16 bytes each
		jars[fmt.Sprint(i)] = b
		r.put(fmt.Sprintf("/%d.jar", i), b)
	}
	fetch := func(i int, pin bool) (Jar, func()) {
		t.Helper()
		req := Request{URI: fmt.Sprintf("%s/%d.jar", r.srv.URL, i)}
		if pin {
			req.SHA256 = hexSum(jars[fmt.Sprint(i)])
		}
		j, release, err := f.Fetch(ctx, p, req)
		if err != nil {
			t.Fatal(err)
		}
		return j, release
	}
	j0, release0 := fetch(0, false)
	_, release1 := fetch(1, false) // 32 bytes > 25: 0 is held, so 1... both held
	release1()
	_, release2 := fetch(2, false) // evicts 1 (released, least recent); 0 is held
	release2()
	if _, err := os.Stat(j0.Path); err != nil {
		t.Fatalf("a held jar was evicted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, hexSum(jars["1"])+".jar")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jar 1 not evicted: %v", err)
	}
	release0()
	before := len(r.requests())
	j2, release := fetch(2, true)
	release()
	if n := len(r.requests()) - before; n != 0 || j2.SHA256 != hexSum(jars["2"]) {
		t.Errorf("a pinned, cached jar made %d requests", n)
	}
	// A wrong pin fails before anything is kept.
	if _, _, err := f.Fetch(ctx, p, Request{URI: r.srv.URL + "/3.jar", SHA256: hexSum([]byte("other"))}); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong pin: err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var total int64
	for _, e := range entries {
		info, _ := e.Info()
		total += info.Size()
		if strings.HasPrefix(e.Name(), ".fetch-") {
			t.Errorf("leftover temporary file %s", e.Name())
		}
	}
	if total > 25+16 { // the bound, plus the one jar just added while another was held
		t.Errorf("cache holds %d bytes", total)
	}
}
