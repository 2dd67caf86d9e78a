package lifecycle

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	"github.com/flink-gitops/flink-gitops/tests/testbed/pki"
)

func TestRESTAccessTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.crt", "CA-FILE"), write("tls.crt", "CERT-FILE"), write("tls.key", "KEY-FILE")
	bigFile := write("big.crt", strings.Repeat("x", flinkclient.MaxPEMBytes+1))
	deployed := func(conf, defaults map[string]string) *Record {
		js := specJSON(&v1beta1.FlinkDeploymentSpec{Image: "flink:2.2", FlinkConfiguration: conf})
		return &Record{Kind: KindDeployment, Namespace: "apps", Name: "orders",
			Deployment: &v1beta1.FlinkDeploymentStatus{},
			Deployed:   &Deployed{Spec: js, FlinkDefaults: defaults}}
	}
	ssl := map[string]string{"security.ssl.rest.enabled": "true"}
	withSecret := map[string]string{"security.ssl.rest.enabled": "true", "flink-gitops.rest.tls.secret": "orders-tls", "flink-gitops.rest.tls.server-name": "orders.example"}
	mutualSecret := map[string]string{"security.ssl.rest.enabled": "true", "security.ssl.rest.authentication-enabled": "true", "flink-gitops.rest.tls.secret": "orders-tls"}
	mutual := map[string]string{"security.ssl.rest.enabled": "true", "security.ssl.rest.authentication-enabled": "true"}
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "orders-tls", Namespace: "apps"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	full := secret(map[string]string{"ca.crt": "CA", "tls.crt": "CERT", "tls.key": "KEY"})
	tests := []struct {
		name    string
		rec     *Record // nil: no record
		secret  *corev1.Secret
		files   TLSFiles
		want    *flinkclient.TLS
		wantErr string
	}{
		{name: "not deployed", rec: nil},
		{name: "plain HTTP", rec: deployed(map[string]string{"a": "b"}, nil)},
		{name: "Secret, server name", rec: deployed(withSecret, nil), secret: full,
			want: &flinkclient.TLS{CA: []byte("CA"), ServerName: "orders.example"}},
		{name: "mutual from Secret", rec: deployed(mutualSecret, nil), secret: full,
			want: &flinkclient.TLS{CA: []byte("CA"), Cert: []byte("CERT"), Key: []byte("KEY")}},
		{name: "SSL from the defaults the cluster was built with", rec: deployed(nil, ssl), files: TLSFiles{CAFile: caFile},
			want: &flinkclient.TLS{CA: []byte("CA-FILE")}},
		{name: "daemon files", rec: deployed(mutual, nil), files: TLSFiles{CAFile: caFile, CertFile: certFile, KeyFile: keyFile},
			want: &flinkclient.TLS{CA: []byte("CA-FILE"), Cert: []byte("CERT-FILE"), Key: []byte("KEY-FILE")}},
		{name: "Secret missing", rec: deployed(withSecret, nil), wantErr: "Secret apps/orders-tls (flink-gitops.rest.tls.secret) does not exist: create it with ca.crt (PEM)"},
		{name: "Secret without ca.crt", rec: deployed(withSecret, nil), secret: secret(map[string]string{"tls.crt": "CERT"}), wantErr: "has no ca.crt"},
		{name: "mutual Secret without key", rec: deployed(mutualSecret, nil), secret: secret(map[string]string{"ca.crt": "CA", "tls.crt": "CERT"}),
			wantErr: "has no tls.key: it needs ca.crt, tls.crt and tls.key"},
		{name: "Secret value too large", rec: deployed(withSecret, nil), secret: secret(map[string]string{"ca.crt": strings.Repeat("x", flinkclient.MaxPEMBytes+1)}),
			wantErr: "ca.crt is 65537 bytes"},
		{name: "no CA anywhere", rec: deployed(ssl, nil), wantErr: "neither flink-gitops.rest.tls.secret nor the daemon's flink.tls.caFile"},
		{name: "mutual without client files", rec: deployed(mutual, nil), files: TLSFiles{CAFile: caFile}, wantErr: "flink.tls.certFile and keyFile"},
		{name: "CA file too large", rec: deployed(ssl, nil), files: TLSFiles{CAFile: bigFile}, wantErr: "larger than 65536 bytes"},
		{name: "CA file missing", rec: deployed(ssl, nil), files: TLSFiles{CAFile: filepath.Join(dir, "nope")}, wantErr: "flink.tls.caFile: open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kc := fake.NewClientset()
			store := &Store{Client: kc}
			ctx := context.Background()
			if tc.rec != nil {
				if err := store.Save(ctx, tc.rec); err != nil {
					t.Fatal(err)
				}
			}
			if tc.secret != nil {
				if _, err := kc.CoreV1().Secrets("apps").Create(ctx, tc.secret, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			a := &RESTAccess{Kube: kc, Store: store, Defaults: func() (TLSFiles, map[string]string) { return tc.files, nil }}
			got, err := a.TLS(ctx, "apps", "orders")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, secretValue := range []string{"CERT", "KEY", "CA-FILE"} {
					if strings.Contains(err.Error(), secretValue) {
						t.Fatalf("error %q shows a secret value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && got.Fingerprint() != tc.want.Fingerprint() {
				t.Fatalf("TLS = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRunningConfiguration: the running cluster's configuration, not Git's,
// decides how the daemon talks to it.
func TestRunningConfiguration(t *testing.T) {
	t.Parallel()
	js := func(conf map[string]string) string {
		s := specJSON(&v1beta1.FlinkDeploymentSpec{FlinkConfiguration: conf})
		return s
	}
	tests := []struct {
		name     string
		rec      *Record
		defaults map[string]string
		want     map[string]string
	}{
		{"nothing deployed", &Record{Deployment: &v1beta1.FlinkDeploymentStatus{}}, map[string]string{"a": "1"}, nil},
		{"last reconciled spec over current defaults",
			&Record{Deployment: &v1beta1.FlinkDeploymentStatus{ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: js(map[string]string{"b": "2"})}}},
			map[string]string{"a": "1", "b": "0"}, map[string]string{"a": "1", "b": "2"}},
		{"deployed spec over its own defaults",
			&Record{Deployment: &v1beta1.FlinkDeploymentStatus{ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: js(map[string]string{"b": "git"})}},
				Deployed: &Deployed{Spec: js(map[string]string{"b": "running"}), FlinkDefaults: map[string]string{"c": "3"}}},
			map[string]string{"a": "1"}, map[string]string{"b": "running", "c": "3"}},
	}
	for _, tc := range tests {
		got := RunningConfiguration(tc.rec, tc.defaults)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}

// TestRESTClients: a cluster is reached over plain HTTP until its running
// configuration enables REST SSL, then over HTTPS verified with its
// Secret's CA; the client is reused while nothing changes and replaced
// when the Secret rotates.
func TestRESTClients(t *testing.T) {
	t.Parallel()
	set, err := pki.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(set.Server.Cert, set.Server.Key)
	if err != nil {
		t.Fatal(err)
	}
	overview := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"taskmanagers":1,"flink-version":"2.2.1"}`))
	})
	plainSrv := httptest.NewServer(overview)
	defer plainSrv.Close()
	tlsSrv := httptest.NewUnstartedServer(overview)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	ctx := context.Background()
	kc := fake.NewClientset()
	store := &Store{Client: kc}
	rec := &Record{Kind: KindDeployment, Namespace: "apps", Name: "orders", Deployment: &v1beta1.FlinkDeploymentStatus{},
		Deployed: &Deployed{Spec: specJSON(&v1beta1.FlinkDeploymentSpec{}), FlinkDefaults: map[string]string{}}}
	if err := store.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	target := plainSrv.URL
	clients := &RESTClients{
		Access:   &RESTAccess{Kube: kc, Store: store, Defaults: func() (TLSFiles, map[string]string) { return TLSFiles{}, nil }},
		Endpoint: func(ns, name string) (string, time.Duration, error) { return target, 5 * time.Second, nil },
		Plain:    plainSrv.Client(),
	}
	get := func() *flinkclient.Client {
		t.Helper()
		f, err := clients.Flink("apps", "orders")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Overview(ctx); err != nil {
			t.Fatalf("overview over %s: %v", f.(*flinkclient.Client).BaseURL(), err)
		}
		return f.(*flinkclient.Client)
	}
	c1 := get()
	if !strings.HasPrefix(c1.BaseURL(), "http://") || get() != c1 {
		t.Fatalf("plain client %s not reused", c1.BaseURL())
	}

	// The cluster is redeployed with REST SSL.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "orders-tls", Namespace: "apps"}, Data: map[string][]byte{"ca.crt": set.CA.Cert}}
	if _, err := kc.CoreV1().Secrets("apps").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// (The fake clientset keeps no resourceVersions: write the record anew.)
	if err := store.Delete(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.resourceVersion = ""
	rec.Deployed.Spec = specJSON(&v1beta1.FlinkDeploymentSpec{FlinkConfiguration: map[string]string{
		"security.ssl.rest.enabled": "true", "flink-gitops.rest.tls.secret": "orders-tls"}})
	if err := store.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	target = tlsSrv.URL
	target = "http://" + strings.TrimPrefix(target, "https://") // as the daemon's template renders it
	c2 := get()
	if !strings.HasPrefix(c2.BaseURL(), "https://") || get() != c2 {
		t.Fatalf("TLS client %s not reused", c2.BaseURL())
	}

	// The Secret rotates to another CA: a new client, which refuses the
	// server's certificate.
	other, err := pki.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sec.Data["ca.crt"] = other.CA.Cert
	if _, err := kc.CoreV1().Secrets("apps").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := clients.Flink("apps", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if f == Flink(c2) {
		t.Fatal("client not replaced after the Secret changed")
	}
	if _, err := f.Overview(ctx); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("overview with the wrong CA: %v", err)
	}
}

func TestHTTPSURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://orders-rest.apps:8081":        "https://orders-rest.apps:8081",
		"https://orders-rest.apps:8081":       "https://orders-rest.apps:8081",
		"http://127.0.0.1:9000/apps/orders-x": "https://127.0.0.1:9000/apps/orders-x",
	} {
		if got := HTTPSURL(in); got != want {
			t.Errorf("HTTPSURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestRESTTLSFailureReported: a JobManager the daemon cannot reach because
// of its REST TLS material (here: the Secret lacks ca.crt) is reported
// with that reason when the deploy does not become ready in time, not
// only as DEPLOYED_NOT_READY.
func TestRESTTLSFailureReported(t *testing.T) {
	w := newSimWorld(t)
	const why = "REST TLS of FlinkDeployment apps/app: Secret apps/app-tls has no ca.crt: it needs ca.crt (PEM)"
	w.rec.Flink = func(namespace, name string) (Flink, error) { return nil, errors.New(why) }
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyReadinessTimeout, "30s")))
	r := w.until(KindDeployment, "app", d, "not-running failure reported", func(r *Record) bool {
		return strings.Contains(r.Common().Error, "its REST API: "+why)
	})
	if got := r.Deployment.JobManagerDeploymentStatus; got != v1beta1.JMDeployedNotReady {
		t.Fatalf("JobManager status %s, want %s", got, v1beta1.JMDeployedNotReady)
	}
}
