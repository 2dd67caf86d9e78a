package artifact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flink-gitops/flink-gitops/config"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestS3CheckURI(t *testing.T) {
	t.Parallel()
	c := S3Config{
		S3:  config.ObjectStore{AllowedBuckets: []string{"jars", "shared/flink/", "bad entry"}},
		GCS: config.ObjectStore{AllowedBuckets: []string{"gjars/prod/"}},
	}
	for _, tc := range []struct {
		uri  string
		want string // substring of msg; "" means allowed
	}{
		{"s3://jars/job.jar", ""},
		{"s3a://jars/a/b/job-1.0.jar", ""},
		{"s3p://jars/job.jar", ""},
		{"S3://jars/job.jar", ""},
		{"s3://shared/flink/job.jar", ""},
		{"gs://gjars/prod/job.jar", ""},
		{"s3://shared/other/job.jar", `bucket "shared" (key "other/job.jar") is not in artifacts.s3.allowedBuckets`},
		{"s3://shared/flink-private/job.jar", "is not in artifacts.s3.allowedBuckets"},
		{"s3://secrets/creds.json", `bucket "secrets"`},
		{"gs://jars/job.jar", "is not in artifacts.gcs.allowedBuckets"},      // S3's list does not admit GCS
		{"s3://gjars/prod/job.jar", "is not in artifacts.s3.allowedBuckets"}, // and the other way round
		{"s3://shared/flink/../secret.json", `has a ".." segment`},
		{"s3://jars/./job.jar", `has a "." segment`},
		{"s3://jars/", "names no object key"},
		{"s3://jars", "names no object key"},
		{"s3://jars/dir/", "ends in /"},
		{"s3://jars/a%0Ab.jar", "control characters"},
		{"s3://jars/" + strings.Repeat("k", 1025), "longer than 1024"},
		{"s3:///job.jar", "names no bucket"},
		{"s3://jars:9000/job.jar", "has a user, port, query or fragment"},
		{"s3://user:pw@jars/job.jar", "has a user, port, query or fragment"},
		{"s3://jars/job.jar?versionId=1", "has a user, port, query or fragment"},
		{"s3:jars/job.jar", "has a user, port, query or fragment"},
		{"https://jars/job.jar", "not an object-store URI"},
	} {
		u, err := url.Parse(tc.uri)
		if err != nil {
			t.Fatalf("parse %s: %v", tc.uri, err)
		}
		msg, fix := c.CheckURI(u)
		if tc.want == "" {
			if msg != "" {
				t.Errorf("CheckURI(%s) = %q, want allowed", tc.uri, msg)
			}
			continue
		}
		if !strings.Contains(msg, tc.want) || fix == "" {
			t.Errorf("CheckURI(%s) = %q, %q; want a message with %q and a fix", tc.uri, msg, fix, tc.want)
		}
		if strings.Contains(msg, "pw") {
			t.Errorf("CheckURI(%s) repeats the password: %q", tc.uri, msg)
		}
	}

	// No allow-list: nothing is read, and the fix names the key.
	msg, fix := S3Config{}.CheckURI(mustURL(t, "s3://jars/job.jar"))
	if !strings.Contains(msg, "artifacts.s3.allowedBuckets is empty") || !strings.Contains(fix, `add "jars"`) {
		t.Errorf("empty allow-list: %q, %q", msg, fix)
	}
}

func TestReadKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got, err := readKeyFile(write("ok", "AKID\n")); err != nil || got != "AKID" {
		t.Errorf("readKeyFile = %q, %v", got, err)
	}
	for name, content := range map[string]string{"empty": " \n", "big": strings.Repeat("x", maxKeyFileBytes+1)} {
		_, err := readKeyFile(write(name, content))
		if err == nil || strings.Contains(err.Error(), "xxxx") {
			t.Errorf("readKeyFile(%s) = %v; want an error without the content", name, err)
		}
	}
	f := fileCredentials{key: "artifacts.s3", idFile: write("id", "AKIDSECRETISH"), secretFile: filepath.Join(dir, "missing")}
	_, err := f.Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "artifacts.s3.secretAccessKeyFile") || strings.Contains(err.Error(), "AKIDSECRETISH") {
		t.Errorf("Retrieve with a missing secret file = %v", err)
	}
}

// TestS3ErrorClassification: the store's answers map to permanent or
// transient errors (a stand-in server answering with S3's XML errors; the
// real store is in s3_testbed_test.go).
func TestS3ErrorClassification(t *testing.T) {
	t.Parallel()
	var status atomic.Int64
	var code atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(int(status.Load()))
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>told by the store</Message><RequestId>r1</RequestId></Error>`, code.Load())
	}))
	defer srv.Close()
	dir := t.TempDir()
	id, secret := filepath.Join(dir, "id"), filepath.Join(dir, "secret")
	os.WriteFile(id, []byte("AKIDEXAMPLE"), 0o600)
	os.WriteFile(secret, []byte("SECRETEXAMPLE"), 0o600)
	store := config.ObjectStore{Endpoint: srv.URL, Region: "us-east-1", PathStyle: true,
		AccessKeyIDFile: id, SecretAccessKeyFile: secret, AllowedBuckets: []string{"jars"}}
	s, err := NewS3(context.Background(), S3Config{S3: store})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status    int
		code      string
		permanent bool
	}{
		{404, "NoSuchKey", true},
		{404, "NoSuchBucket", true},
		{403, "AccessDenied", true},
		{403, "InvalidAccessKeyId", true},
		{403, "SignatureDoesNotMatch", true},
		{503, "SlowDown", false},
		{500, "InternalError", false},
	} {
		status.Store(int64(tc.status))
		code.Store(tc.code)
		ctx, cancel := context.WithTimeout(context.Background(), 30e9)
		_, err := s.Open(ctx, mustURL(t, "s3://jars/job.jar"))
		cancel()
		var oe *ObjectError
		if !errors.As(err, &oe) || oe.Code != tc.code || IsPermanent(err) != tc.permanent || errors.Is(err, ErrInvalid) != tc.permanent {
			t.Errorf("%d %s: err %v (permanent %v), want code %s permanent %v", tc.status, tc.code, err, IsPermanent(err), tc.code, tc.permanent)
			continue
		}
		if strings.Contains(err.Error(), "SECRETEXAMPLE") {
			t.Errorf("error repeats the secret: %v", err)
		}
		if !strings.Contains(err.Error(), "s3://jars/job.jar") {
			t.Errorf("error does not name the jarURI: %v", err)
		}
	}
}
