package config

import (
	"strings"
	"testing"
)

func TestSplitBucketEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, bucket, prefix string
		bad                bool
	}{
		{in: "jars", bucket: "jars"},
		{in: "jars/flink/", bucket: "jars", prefix: "flink/"},
		{in: "my.jars-1/a/b/", bucket: "my.jars-1", prefix: "a/b/"},
		{in: "jars/flink", bad: true},                                   // a prefix ends in /
		{in: "jars/a//", bad: true},                                     // empty segment
		{in: "jars/../", bad: true},                                     // leaves the prefix
		{in: "jars/a/./", bad: true},                                    // dot segment
		{in: "", bad: true},                                             // no bucket
		{in: "Jars", bad: true},                                         // upper case
		{in: "j", bad: true},                                            // too short
		{in: "*", bad: true},                                            // no globs
		{in: "/jars/", bad: true},                                       // no bucket
		{in: "jars-/", bad: true},                                       // ends with -
		{in: "jars/\x00/", bad: false, bucket: "jars", prefix: "\x00/"}, // the store refuses it
	} {
		b, p, err := SplitBucketEntry(tc.in)
		if (err != nil) != tc.bad || b != tc.bucket || p != tc.prefix {
			t.Errorf("SplitBucketEntry(%q) = %q, %q, %v; want %q, %q, bad=%v", tc.in, b, p, err, tc.bucket, tc.prefix, tc.bad)
		}
	}
}

func TestValidateObjectStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyID := writeFile(t, dir, "id", "AKIDEXAMPLE")
	secret := writeFile(t, dir, "secret", "s3cr3t")
	for _, tc := range []struct {
		name, yaml string
		want       []string // problem keys; none means valid
	}{
		{name: "s3 with buckets and the default chain", yaml: "allowedSchemes: [https, s3, s3a]\n  s3: {allowedBuckets: [jars, shared/flink/], region: eu-west-1}"},
		{name: "s3-compatible with key files", yaml: "allowedSchemes: [s3]\n  s3: {endpoint: 'http://127.0.0.1:7070', pathStyle: true, accessKeyIDFile: " + keyID + ", secretAccessKeyFile: " + secret + ", allowedBuckets: [jars]}"},
		{name: "gcs with HMAC files", yaml: "allowedSchemes: [gs]\n  gcs: {accessKeyIDFile: " + keyID + ", secretAccessKeyFile: " + secret + ", allowedBuckets: [jars]}"},
		{name: "buckets without the scheme are unused, not wrong", yaml: "allowedSchemes: [https]\n  s3: {allowedBuckets: [jars]}"},
		{name: "s3 without allow-list", yaml: "allowedSchemes: [s3p]", want: []string{"artifacts.s3.allowedBuckets"}},
		{name: "gs without allow-list or keys", yaml: "allowedSchemes: [gs]", want: []string{"artifacts.gcs.allowedBuckets", "artifacts.gcs.accessKeyIDFile"}},
		{name: "unknown scheme", yaml: "allowedSchemes: [s4]", want: []string{"artifacts.allowedSchemes"}},
		{name: "bad entry", yaml: "allowedSchemes: [s3]\n  s3: {allowedBuckets: [jars, 'jars/x']}", want: []string{"artifacts.s3.allowedBuckets[1]"}},
		{name: "one key file only", yaml: "allowedSchemes: [s3]\n  s3: {allowedBuckets: [jars], accessKeyIDFile: " + keyID + "}", want: []string{"artifacts.s3.secretAccessKeyFile"}},
		{name: "missing key file", yaml: "allowedSchemes: [s3]\n  s3: {allowedBuckets: [jars], accessKeyIDFile: /nonexistent/id, secretAccessKeyFile: " + secret + "}", want: []string{"artifacts.s3.accessKeyIDFile"}},
		{name: "endpoint with a user", yaml: "allowedSchemes: [s3]\n  s3: {allowedBuckets: [jars], endpoint: 'https://key:secret@minio.example'}", want: []string{"artifacts.s3.endpoint"}},
		{name: "endpoint not http", yaml: "allowedSchemes: [s3]\n  s3: {allowedBuckets: [jars], endpoint: 'ftp://minio.example'}", want: []string{"artifacts.s3.endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(Sources{File: writeFile(t, t.TempDir(), "c.yaml", minimal+"artifacts:\n  "+tc.yaml+"\n")})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			got := map[string]bool{}
			for _, p := range problems(t, err) {
				got[p.Key] = true
				if strings.Contains(p.Message, "secret") && strings.Contains(tc.yaml, "key:secret@") {
					t.Errorf("problem repeats the endpoint's credentials: %s", p.Message)
				}
			}
			for _, k := range tc.want {
				if !got[k] {
					t.Errorf("no problem for %s in %v", k, err)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems %v, want only %v", got, tc.want)
			}
		})
	}
}
