package render

import (
	"strings"
	"testing"
)

// TestRESTTLSRules: a cluster whose REST API the daemon cannot reach as its
// configuration asks is refused at plan with file, field and fix.
func TestRESTTLSRules(t *testing.T) {
	t.Parallel()
	const conf = "spec/flinkConfiguration/"
	tests := []struct {
		name string
		keys map[string]any
		opts Options
		want []string // substrings of the one problem; nil = valid
	}{
		{"plain HTTP", nil, Options{}, nil},
		{"SSL with a Secret", map[string]any{KeyRESTSSLEnabled: "true", KeyRESTTLSSecret: "orders-rest-tls"}, Options{}, nil},
		{"mutual TLS with a Secret", map[string]any{KeyRESTSSLEnabled: "true", KeyRESTSSLMutual: "true", KeyRESTTLSSecret: "orders-rest-tls",
			KeyRESTTLSServerName: "orders-rest.flink"}, Options{}, nil},
		{"SSL with the daemon's CA", map[string]any{KeyRESTSSLEnabled: "TRUE"}, Options{RESTTLS: RESTTLSDefaults{CA: true}}, nil},
		{"SSL from the daemon's defaults with its CA", nil,
			Options{DefaultConfiguration: map[string]string{KeyRESTSSLEnabled: "true"}, RESTTLS: RESTTLSDefaults{CA: true}}, nil},
		{"SSL without any CA", map[string]any{KeyRESTSSLEnabled: "true"}, Options{},
			[]string{`app/r.yaml: FlinkDeployment flink/orders: spec.flinkConfiguration["security.ssl.rest.enabled"]:`,
				"no CA certificate", "fix: create a Secret", "flink-gitops.rest.tls.secret", "flink.tls"}},
		{"SSL from the daemon's defaults without any CA", nil, Options{DefaultConfiguration: map[string]string{KeyRESTSSLEnabled: "true"}},
			[]string{"security.ssl.rest.enabled", "no CA certificate"}},
		{"SSL with only a JKS truststore", map[string]any{KeyRESTSSLEnabled: "true", "security.ssl.rest.truststore": "/certs/truststore.jks"}, Options{},
			[]string{"reads PEM only, not the truststore /certs/truststore.jks", "keytool -exportcert -rfc", "ca.crt"}},
		{"mutual TLS without a client certificate", map[string]any{KeyRESTSSLEnabled: "true", KeyRESTSSLMutual: "true"}, Options{RESTTLS: RESTTLSDefaults{CA: true}},
			[]string{`spec.flinkConfiguration["security.ssl.rest.authentication-enabled"]`, "no client certificate", "tls.crt and tls.key", "flink.tls.certFile"}},
		{"mutual TLS with the daemon's client certificate", map[string]any{KeyRESTSSLEnabled: "true", KeyRESTSSLMutual: "true"},
			Options{RESTTLS: RESTTLSDefaults{CA: true, ClientCert: true}}, nil},
		{"Secret without SSL", map[string]any{KeyRESTTLSSecret: "orders-rest-tls"}, Options{},
			[]string{`spec.flinkConfiguration["flink-gitops.rest.tls.secret"]`, "would ignore it", `set security.ssl.rest.enabled: "true"`}},
		{"server name without SSL", map[string]any{KeyRESTTLSServerName: "x"}, Options{RESTTLS: RESTTLSDefaults{CA: true}},
			[]string{`flink-gitops.rest.tls.server-name`, "would ignore it"}},
		{"Secret name invalid", map[string]any{KeyRESTSSLEnabled: "true", KeyRESTTLSSecret: "Not_A_Name"}, Options{},
			[]string{"is not a Secret name"}},
		{"the daemon's own Secret", map[string]any{KeyRESTSSLEnabled: "true", KeyRESTTLSSecret: "flink-gitops-git"},
			Options{PodPolicy: PodPolicy{ForbiddenSecrets: []string{"flink-gitops-git"}}}, []string{"daemon's own credentials"}},
		{"SSL flag not a boolean", map[string]any{KeyRESTSSLEnabled: "yes"}, Options{RESTTLS: RESTTLSDefaults{CA: true}}, []string{"not a boolean"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := validDeployment("orders")
			for k, v := range tc.keys {
				set(d, conf+k, v)
			}
			tc.opts.DefaultNamespace = "flink"
			res := renderFiles(t, map[string]string{
				"app/kustomization.yaml": "resources:\n- r.yaml\n",
				"app/r.yaml":             string(yamlDocs(t, d)),
			}, tc.opts)
			got := problemLines(res.Problems)
			if tc.want == nil {
				if len(got) != 0 || len(res.Resources) != 1 {
					t.Fatalf("want valid, got problems %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one problem, got %q", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("problem %q does not contain %q", got[0], w)
				}
			}
		})
	}
}

func TestRESTTLSOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		conf map[string]string
		want RESTTLS
	}{
		{nil, RESTTLS{}},
		{map[string]string{KeyRESTSSLMutual: "true"}, RESTTLS{}}, // Flink ignores it without REST SSL
		{map[string]string{KeyRESTSSLEnabled: " True ", KeyRESTSSLMutual: "true", KeyRESTTLSSecret: " s ", KeyRESTTLSServerName: "n"},
			RESTTLS{Enabled: true, Mutual: true, Secret: "s", ServerName: "n"}},
	}
	for _, tc := range tests {
		if got := RESTTLSOf(tc.conf); got != tc.want {
			t.Errorf("RESTTLSOf(%v) = %+v, want %+v", tc.conf, got, tc.want)
		}
	}
}

func TestSessionJobRESTTLSRefused(t *testing.T) {
	t.Parallel()
	cluster := validSessionCluster("session")
	set(cluster, "spec/flinkConfiguration/"+KeyRESTSSLEnabled, "true")
	set(cluster, "spec/flinkConfiguration/"+KeyRESTTLSSecret, "session-tls")
	job := validSessionJob("job", "session")
	set(job, "spec/flinkConfiguration/"+KeyRESTTLSSecret, "other")
	res := renderFiles(t, map[string]string{
		"app/kustomization.yaml": "resources:\n- r.yaml\n",
		"app/r.yaml":             string(yamlDocs(t, cluster, job)),
	}, Options{DefaultNamespace: "flink"})
	got := problemLines(res.Problems)
	if len(got) != 1 || !strings.Contains(got[0], "FlinkSessionJob flink/job: spec.flinkConfiguration[\"flink-gitops.rest.tls.secret\"]: flink-gitops.rest.tls.secret has no effect on a session job") {
		t.Fatalf("problems %q", got)
	}
}
