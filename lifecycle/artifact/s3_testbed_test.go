package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/render"
	s3tb "github.com/flink-gitops/flink-gitops/tests/testbed/s3"
)

// TestS3OnTestbed reads jars from a real S3-compatible store (versitygw)
// through every scheme, and checks the refusals and error classes against
// it. One server for all checks; a counting proxy in front of it shows
// which checks reached the store.
func TestS3OnTestbed(t *testing.T) {
	srv := s3tb.Start(t) // skips under -short
	jar := bytes.Repeat([]byte("PK\x03\x04flink-job"), 1<<14)
	srv.Put(t, "jars", "flink/job.jar", jar)
	srv.Put(t, "secrets", "creds.json", []byte(`{"token":"do-not-copy"}`))
	srv.CreateBucket(t, "empty")

	var requests atomic.Int64
	target := mustURL(t, srv.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	id, secret := write("id", srv.AccessKey), write("secret", srv.SecretKey)
	store := func(endpoint, idFile, secretFile string, buckets ...string) config.ObjectStore {
		return config.ObjectStore{Endpoint: endpoint, Region: srv.Region, PathStyle: true,
			AccessKeyIDFile: idFile, SecretAccessKeyFile: secretFile, AllowedBuckets: buckets}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The same server plays S3 and (as an endpoint override) GCS.
	s, err := NewS3(ctx, S3Config{
		S3:  store(proxy.URL, id, secret, "jars/flink/", "empty", "nobucket"),
		GCS: store(proxy.URL, id, secret, "jars"),
	})
	if err != nil {
		t.Fatal(err)
	}
	read := func(s *S3, uri string) ([]byte, error) {
		rc, err := s.Open(ctx, mustURL(t, uri))
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}

	for _, uri := range []string{"s3://jars/flink/job.jar", "s3a://jars/flink/job.jar", "s3p://jars/flink/job.jar", "gs://jars/flink/job.jar"} {
		got, err := read(s, uri)
		if err != nil || !bytes.Equal(got, jar) {
			t.Errorf("%s: read %d bytes, %v; want the %d-byte jar", uri, len(got), err, len(jar))
		}
	}
	if requests.Load() == 0 {
		t.Fatal("the reads did not go through the counting proxy")
	}

	// Refused before any request: outside the allow-list, bad keys.
	before := requests.Load()
	for _, uri := range []string{"s3://secrets/creds.json", "s3://jars/other/job.jar", "gs://secrets/creds.json", "s3://jars/flink/../../secrets/creds.json"} {
		_, err := read(s, uri)
		var oe *ObjectError
		if !errors.As(err, &oe) || oe.Code != "NotAllowed" || !IsPermanent(err) {
			t.Errorf("%s: err %v, want a permanent NotAllowed refusal", uri, err)
		}
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("refused URIs made %d requests to the store, want none", n)
	}

	// The store's own answers: missing key, missing bucket → permanent.
	for uri, code := range map[string]string{
		"s3://jars/flink/missing.jar": "NoSuchKey",
		"s3://empty/job.jar":          "NoSuchKey",
		"s3://nobucket/job.jar":       "NoSuchBucket",
	} {
		_, err := read(s, uri)
		var oe *ObjectError
		if !errors.As(err, &oe) || oe.Code != code || !IsPermanent(err) {
			t.Errorf("%s: err %v, want permanent %s", uri, err, code)
		}
	}

	// Wrong credentials → permanent, and the error does not repeat them.
	for name, files := range map[string][2]string{
		"wrong secret":   {id, write("wrong-secret", "not-the-secret-0123456789")},
		"unknown key id": {write("wrong-id", "AKIDUNKNOWN0000"), secret},
	} {
		bad, err := NewS3(ctx, S3Config{S3: store(srv.Endpoint, files[0], files[1], "jars")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = read(bad, "s3://jars/flink/job.jar")
		if !IsPermanent(err) {
			t.Errorf("%s: err %v, want a permanent error", name, err)
		}
		if err != nil && (bytes.Contains([]byte(err.Error()), []byte(srv.SecretKey)) || bytes.Contains([]byte(err.Error()), []byte("not-the-secret"))) {
			t.Errorf("%s: error repeats a secret: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}

	// Through the Fetcher, as the reconciler fetches: the pin is checked,
	// and refusals and store answers are ErrInvalid.
	f := &Fetcher{Sources: func(render.ArtifactPolicy, string) (Source, error) { return s, nil }}
	policy := render.ArtifactPolicy{AllowedSchemes: []string{"s3", "gs"}, CheckObject: s.cfg.CheckURI}
	sum := sha256.Sum256(jar)
	j, release, err := f.Fetch(ctx, policy, Request{URI: "gs://jars/flink/job.jar", SHA256: hex.EncodeToString(sum[:])})
	if err != nil || j.Size != int64(len(jar)) || j.Name != "job.jar" {
		t.Errorf("Fetch: %+v, %v; want the %d-byte job.jar", j, err, len(jar))
	}
	release()
	for uri, pin := range map[string]string{
		"s3://jars/flink/job.jar":     strings.Repeat("0", 64), // wrong pin
		"s3://secrets/creds.json":     "",                      // not allowed
		"s3://jars/flink/missing.jar": "",                      // NoSuchKey
	} {
		_, release, err := f.Fetch(ctx, policy, Request{URI: uri, SHA256: pin})
		release()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Fetch %s (pin %q): err %v, want ErrInvalid", uri, pin, err)
		}
	}

	// A rotated Secret is read again once the cached pair expires (TTL 0
	// here: every request reads the files).
	ttl := keyFileTTL
	keyFileTTL = 0
	t.Cleanup(func() { keyFileTTL = ttl })
	rotating := write("rotating-secret", "stale-secret-0123456789")
	rot, err := NewS3(ctx, S3Config{S3: store(srv.Endpoint, id, rotating, "jars")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := read(rot, "s3://jars/flink/job.jar"); !IsPermanent(err) {
		t.Errorf("stale secret: err %v, want a permanent error", err)
	}
	write("rotating-secret", srv.SecretKey)
	if got, err := read(rot, "s3://jars/flink/job.jar"); err != nil || !bytes.Equal(got, jar) {
		t.Errorf("after rotation: read %d bytes, %v; want the jar", len(got), err)
	}

	// The store gone (connection refused; a gateway answering 502): transient, worth a retry.
	direct, err := NewS3(ctx, S3Config{S3: store(srv.Endpoint, id, secret, "jars")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*S3{"direct": direct, "through a proxy": s} {
		_, err = read(s, "s3://jars/flink/job.jar")
		if err == nil || IsPermanent(err) {
			t.Errorf("store down, %s: err %v, want a transient error", name, err)
		}
		t.Logf("store down, %s: %v", name, err)
	}
}

// BenchmarkS3OpenTestbed: one 8 MiB jar read from the real store (request,
// signing, key files, body), the cost a session job pays per fetch.
func BenchmarkS3OpenTestbed(b *testing.B) {
	srv := s3tb.Start(b)
	jar := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	srv.Put(b, "jars", "job.jar", jar)
	dir := b.TempDir()
	id, secret := filepath.Join(dir, "id"), filepath.Join(dir, "secret")
	if err := os.WriteFile(id, []byte(srv.AccessKey), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte(srv.SecretKey), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := NewS3(ctx, S3Config{S3: config.ObjectStore{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKeyIDFile: id, SecretAccessKeyFile: secret, AllowedBuckets: []string{"jars"}}})
	if err != nil {
		b.Fatal(err)
	}
	u := mustURL(b, "s3://jars/job.jar")
	b.SetBytes(int64(len(jar)))
	for b.Loop() {
		rc, err := s.Open(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(len(jar)) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}
