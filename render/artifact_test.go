package render

import (
	"fmt"
	"strings"
	"testing"
)

// TestArtifactPolicyCheckURI covers the validation-time check: schemes,
// the file directory, literal non-public addresses and internal names.
func TestArtifactPolicyCheckURI(t *testing.T) {
	t.Parallel()
	def := ArtifactPolicy{}
	open := ArtifactPolicy{AllowedSchemes: []string{"https", "http", "file"}, FileDirectory: "/opt/jars"}
	maven := ArtifactPolicy{AllowedSchemes: []string{"maven"}, MavenRepositories: []string{"https://repo1.maven.org/maven2"}}
	tests := []struct {
		name   string
		policy ArtifactPolicy
		uri    string
		want   string // substring of the message; "" means allowed
	}{
		{"public https", def, "https://repo.example.com/job.jar", ""},
		{"http by default", def, "http://repo.example.com/job.jar", "over http://"},
		{"s3 is never fetched by the daemon", open, "s3://bucket/job.jar", "over s3://"},
		{"file by default", def, "file:///opt/jars/job.jar", "over file://"},
		{"file inside the directory", open, "file:///opt/jars/team/job.jar", ""},
		{"file outside the directory", open, "file:///var/run/secrets/kubernetes.io/serviceaccount/token", "outside the directory"},
		{"file dot-dot out of the directory", open, "file:///opt/jars/../../etc/passwd", "outside the directory"},
		{"file prefix is not the directory", open, "file:///opt/jars-evil/job.jar", "outside the directory"},
		{"file with a host", open, "file://server/opt/jars/job.jar", "names host"},
		{"metadata IPv4", open, "http://169.254.169.254/latest/meta-data/", "link-local"},
		{"metadata name", open, "http://metadata.google.internal/computeMetadata/v1/", "metadata service"},
		{"loopback", open, "http://127.0.0.1:8080/job.jar", "loopback"},
		{"loopback IPv6", open, "http://[::1]/job.jar", "loopback"},
		{"IPv4-mapped loopback", open, "http://[::ffff:127.0.0.1]/job.jar", "loopback"},
		{"localhost", open, "https://localhost/job.jar", "the machine itself"},
		{"sub.localhost", open, "https://a.localhost/job.jar", "the machine itself"},
		{"private 10/8", open, "https://10.1.2.3/job.jar", "private"},
		{"private 192.168", open, "https://192.168.0.10/job.jar", "private"},
		{"shared address space", open, "https://100.64.0.1/job.jar", "private"},
		{"unspecified", open, "https://0.0.0.0/job.jar", "non-routable"},
		{"decimal loopback", open, "http://2130706433/job.jar", "is a number"},
		{"hex loopback", open, "http://0x7f.0x0.0x0.0x1/job.jar", "is a number"},
		{"no host", open, "https:///job.jar", "no host"},
		{"private allowed by opt-in", ArtifactPolicy{AllowedSchemes: []string{"http"}, AllowPrivateHosts: true}, "http://127.0.0.1:8080/job.jar", ""},
		{"private allowed by CIDR", ArtifactPolicy{AllowedHosts: []string{"10.0.0.0/8"}}, "https://10.1.2.3/job.jar", ""},
		{"internal name allowed by name", ArtifactPolicy{AllowedHosts: []string{"localhost"}}, "https://localhost/job.jar", ""},
		{"public IPv4", def, "https://93.184.215.14/job.jar", ""},
		{"no scheme", def, "job.jar", "has no scheme"},
		{"local is inside an image", def, "local:///opt/flink/usrlib/job.jar", "inside an image"},
		{"maven by default", def, "maven:org.example:job:1.0", "over maven://"},
		{"maven without repositories", ArtifactPolicy{AllowedSchemes: []string{"maven"}}, "maven:org.example:job:1.0", "names no Maven repository"},
		{"maven release", maven, "maven:org.example:job:1.0", ""},
		{"maven with classifier", maven, "maven:org.example:job:1.0:all", ""},
		{"maven SNAPSHOT", maven, "maven:org.example:job:1.0-SNAPSHOT", "SNAPSHOT"},
		{"maven two parts", maven, "maven:org.example:job", "not groupId:artifactId:version"},
		{"maven path escape", maven, "maven:org.example:..:1.0", "must be letters"},
		{"maven slash", maven, "maven:org/example:job:1.0", "must be letters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg, fix := tc.policy.CheckURI(tc.uri)
			if tc.want == "" {
				if msg != "" {
					t.Fatalf("refused: %s", msg)
				}
				return
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q, want it to contain %q", msg, tc.want)
			}
			if fix == "" {
				t.Errorf("no fix for %q", msg)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	for _, tc := range []struct{ in, want, wantErr string }{
		{"Authorization: Bearer x", "map[Authorization:Bearer x]", ""},
		{"X-Api-Key:k1, x-team:data", "map[X-Api-Key:k1 X-Team:data]", ""},
		{"", "map[]", ""},
		{"no-colon", "", "not headerName:value"},
		{"Bad Name:v", "", "not a valid HTTP header name"},
		{":v", "", "not headerName:value"},
	} {
		h, err := ParseHeaders(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(h) != tc.want {
			t.Errorf("%q = %v, %v; want %s", tc.in, h, err, tc.want)
		}
	}
	if _, err := ParseHeaders("X-A:a\r\nInjected: b"); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("a header value with CR LF: err = %v, want a control character refusal", err)
	}
}
