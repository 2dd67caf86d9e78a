package lifecycle_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/pki"
)

// TestRESTTLSLifecycle runs an application cluster whose REST API speaks
// TLS on real Flink 2.2: deploy, a savepoint upgrade that also switches on
// mutual TLS (the old JobManager is stopped over server-only TLS, the new
// one is reached with the client certificate), delete. The reconciler
// reaches the JobManager as the daemon does (RESTClients: status record,
// Secret, https URL of the Service's DNS name), through the node agent's
// CONNECT tunnel, so it verifies Flink's own certificate under
// <name>-rest.<namespace> with the Secret's CA and nothing else.
func TestRESTTLSLifecycle(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	const name = "tls"
	start := time.Now()
	set, proxy, tlsConf := restTLS(t, b, name)
	dir := t.TempDir()
	spec := func(mutual bool, progress string, parallelism int) string {
		s := b.appSpec(name, "flink:2.2", "v2_2", "savepoint", tlsConf(mutual), parallelism)
		return strings.Replace(s, `"--checkpoint-interval-ms", "1000"]`, `"--checkpoint-interval-ms", "1000", "--progress-file", "`+progress+`"]`, 1)
	}
	progress := func(path string, atLeast int64) int64 {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			n, err := flinktb.ProgressFromFiles(path)
			if err == nil && n >= atLeast {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("counter in %s did not reach %d: %d, %v", path, atLeast, n, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Deploy with server-side TLS.
	p1, p2 := filepath.Join(dir, "p1"), filepath.Join(dir, "p2")
	r := b.until(lifecycle.KindDeployment, name, b.render(spec(false, p1, 1)), "TLS deploy to be stable", 3*time.Minute, stable)
	job1 := r.Common().JobStatus.JobID
	before := progress(p1, 30)
	t.Logf("deployed job %s over REST TLS after %s, counter %d", job1, time.Since(start).Round(time.Second), before)

	// Flink really serves TLS: plain HTTP through the path proxy fails...
	plain := flinkclient.New(b.restURL(name), flinkclient.WithTimeout(5*time.Second))
	if _, err := plain.Overview(ctx); err == nil {
		t.Fatal("the JobManager answered plain HTTP with REST SSL on")
	}
	// ...and a client that trusts another CA is refused.
	other, err := pki.New("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := overviewWith(ctx, &flinkclient.TLS{CA: other.CA.Cert}, proxy, name, b.ns); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a client trusting another CA: %v, want unknown authority", err)
	}

	// Savepoint upgrade that switches on mutual TLS.
	r = b.until(lifecycle.KindDeployment, name, b.render(spec(true, p2, 2)), "savepoint upgrade to mutual TLS", 4*time.Minute, func(r *lifecycle.Record) bool {
		return stable(r) && r.Common().JobStatus.JobID != job1
	})
	job2 := r.Common().JobStatus.JobID
	si := r.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed == nil || r.Deployed.RestorePath != si.LastSavepoint.Location {
		t.Fatalf("upgrade savepoint not taken or not restored from: %+v, deployed %+v", si, r.Deployed)
	}
	after := progress(p2, 1)
	if after < before {
		t.Fatalf("state lost across the upgrade: counter %d, then %d", before, after)
	}
	t.Logf("upgraded to job %s with mutual TLS from %s after %s, counter %d -> %d", job2, si.LastSavepoint.Location, time.Since(start).Round(time.Second), before, after)
	// Mutual TLS is really required: the right CA without a client
	// certificate is refused, with the Secret's client certificate served.
	if err := overviewWith(ctx, &flinkclient.TLS{CA: set.CA.Cert}, proxy, name, b.ns); err == nil {
		t.Fatal("the JobManager answered a client without a certificate with mutual TLS on")
	}
	if err := overviewWith(ctx, &flinkclient.TLS{CA: set.CA.Cert, Cert: set.Client.Cert, Key: set.Client.Key}, proxy, name, b.ns); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}

	// Delete.
	b.until(lifecycle.KindDeployment, name, nil, "deleted", 2*time.Minute, func(r *lifecycle.Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleDeleted
	})
	if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("JobManager Deployment still there after delete: %v", err)
	}
	t.Logf("TestRESTTLSLifecycle wall time %s", time.Since(start).Round(time.Second))
}

// overviewWith calls /overview of cluster name with its own TLS client.
func overviewWith(ctx context.Context, t *flinkclient.TLS, proxy *url.URL, name, ns string) error {
	tr, err := flinkclient.NewTLSTransport(t)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	tr.Proxy = http.ProxyURL(proxy)
	c := flinkclient.New(fmt.Sprintf("https://%s-rest.%s:8081", name, ns), flinkclient.WithHTTPClient(&http.Client{Transport: tr}), flinkclient.WithTimeout(10*time.Second))
	_, err = c.Overview(ctx)
	return err
}

// restTLS makes REST TLS material for cluster name (certificates for its
// Service's DNS names, Flink's PKCS#12 stores, the cert-manager-layout
// Secret with the daemon's client pair), points the bed's reconciler at
// the daemon's RESTClients through the node agent's CONNECT tunnel, and
// returns the flinkConfiguration lines that switch REST TLS on (mutual:
// client certificates required too).
func restTLS(t *testing.T, b *bed, name string) (*pki.Set, *url.URL, func(mutual bool) string) {
	t.Helper()
	ctx := context.Background()
	const password = "changeit1"
	secret := name + "-rest-tls"
	set, err := pki.New(name+"-rest."+b.ns, name+"-rest."+b.ns+".svc")
	if err != nil {
		t.Fatal(err)
	}
	keystore, truststore, err := set.WriteFlinkStores(ctx, t.TempDir(), password)
	if err != nil {
		t.Fatal(err)
	}
	// The cert-manager layout: ca.crt and the daemon's client pair.
	if _, err := b.rec.Kube.CoreV1().Secrets(b.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secret},
		Data:       map[string][]byte{"ca.crt": set.CA.Cert, "tls.crt": set.Client.Cert, "tls.key": set.Client.Key},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	proxy, err := url.Parse(b.agent.ProxyURL)
	if err != nil {
		t.Fatal(err)
	}
	clients := &lifecycle.RESTClients{
		Access: &lifecycle.RESTAccess{Kube: b.rec.Kube, Store: b.rec.Store,
			Defaults: func() (lifecycle.TLSFiles, map[string]string) { return lifecycle.TLSFiles{}, nil }},
		// The daemon's default template: the Service's DNS name.
		Endpoint: func(ns, n string) (string, time.Duration, error) {
			return fmt.Sprintf("http://%s-rest.%s:8081", n, ns), 5 * time.Second, nil
		},
		Proxy: http.ProxyURL(proxy),
	}
	b.rec.Flink = clients.Flink
	return set, proxy, func(mutual bool) string {
		s := fmt.Sprintf(`    security.ssl.rest.enabled: "true"
    security.ssl.rest.keystore: %s
    security.ssl.rest.keystore-password: %s
    security.ssl.rest.key-password: %s
    flink-gitops.rest.tls.secret: %s`, keystore, password, password, secret)
		if mutual {
			s += fmt.Sprintf(`
    security.ssl.rest.authentication-enabled: "true"
    security.ssl.rest.truststore: %s
    security.ssl.rest.truststore-password: %s`, truststore, password)
		}
		return s
	}
}

// TestRESTTLSSessionJob runs a session cluster whose REST API requires
// mutual TLS on real Flink 2.2, and a session job on it: the jar is
// uploaded and run, savepointed, upgraded and cancelled over mutual TLS,
// then the job and the cluster are deleted.
func TestRESTTLSSessionJob(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	const cl = "tlss"
	start := time.Now()
	set, proxy, tlsConf := restTLS(t, b, cl)
	jar, err := flinktb.TestJobJar(ctx, flinktb.Version2)
	if err != nil {
		t.Fatal(err)
	}
	app := b.appSpec(cl, "flink:2.2", "v2_2", "stateless", tlsConf(true), 1)
	clusterDoc := app[:strings.Index(app, "  job:\n")]
	specs := b.renderAll(clusterDoc, b.sessionJobSpec("job", cl, jar, 40))
	b.until(lifecycle.KindDeployment, cl, specs[cl], "mutual-TLS session cluster", 3*time.Minute, func(r *lifecycle.Record) bool {
		return settled(v1beta1.LifecycleStable)(r) && r.Deployment.JobManagerDeploymentStatus == v1beta1.JMReady
	})
	r := b.until(lifecycle.KindSessionJob, "job", specs["job"], "session job running over mutual TLS", 2*time.Minute, stable)
	first := r.Common().JobStatus.JobID
	if err := overviewWith(ctx, &flinkclient.TLS{CA: set.CA.Cert}, proxy, cl, b.ns); err == nil {
		t.Fatal("the session cluster answered a client without a certificate")
	}
	t.Logf("session job %s submitted over mutual TLS after %s", first, time.Since(start).Round(time.Second))

	specs = b.renderAll(clusterDoc, b.sessionJobSpec("job", cl, jar, 60))
	r = b.until(lifecycle.KindSessionJob, "job", specs["job"], "savepoint upgrade over mutual TLS", 2*time.Minute, newJob(first))
	si := r.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed.RestorePath != si.LastSavepoint.Location {
		t.Fatalf("not restored from the upgrade savepoint: deployed %+v, savepoints %+v", r.Deployed, si)
	}
	t.Logf("upgraded to job %s from %s", r.Common().JobStatus.JobID, si.LastSavepoint.Location)

	b.until(lifecycle.KindSessionJob, "job", nil, "session job deleted", time.Minute, settled(v1beta1.LifecycleDeleted))
	b.until(lifecycle.KindDeployment, cl, nil, "session cluster deleted", 2*time.Minute, settled(v1beta1.LifecycleDeleted))
	t.Logf("TestRESTTLSSessionJob wall time %s", time.Since(start).Round(time.Second))
}
