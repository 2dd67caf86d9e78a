package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	gosync "sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render"
)

// Keys of a REST TLS Secret (the kubernetes.io/tls layout plus ca.crt, as
// cert-manager writes it).
const (
	SecretKeyCA   = "ca.crt"
	SecretKeyCert = "tls.crt"
	SecretKeyKey  = "tls.key"
)

// TLSFiles are the daemon's own PEM files (its flink.tls configuration).
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// RESTAccess tells how the daemon reaches a cluster's REST API: plain HTTP,
// or HTTPS with the TLS material of the Secret the cluster names or the
// daemon's own files. It goes by the configuration the running cluster was
// built with (its status record), not the one in Git: during an upgrade
// that switches REST SSL on, the old JobManager is still stopped over
// plain HTTP and the new one is reached over HTTPS.
type RESTAccess struct {
	Kube  kubernetes.Interface
	Store *Store
	// Defaults returns the daemon's own files (read at every call, so a
	// reload or a rotated mounted Secret applies at the next connection)
	// and its Flink defaults for records written before Deployed kept them.
	Defaults func() (TLSFiles, map[string]string)
}

// TLS returns the TLS material for cluster name in namespace, or nil when
// its REST API speaks plain HTTP (or it is not deployed). Errors say what
// is missing where, never what a Secret holds.
func (a *RESTAccess) TLS(ctx context.Context, namespace, name string) (*flinkclient.TLS, error) {
	rec, err := a.Store.Get(ctx, KindDeployment, namespace, name)
	if err != nil || rec == nil {
		return nil, err
	}
	files, defaults := a.Defaults()
	t := render.RESTTLSOf(RunningConfiguration(rec, defaults))
	if !t.Enabled {
		return nil, nil
	}
	out := &flinkclient.TLS{ServerName: t.ServerName}
	if t.Secret != "" {
		err = a.fromSecret(ctx, namespace, t, out)
	} else {
		err = fromFiles(files, t, out)
	}
	if err != nil {
		return nil, fmt.Errorf("REST TLS of FlinkDeployment %s/%s: %w", namespace, name, err)
	}
	return out, nil
}

func (a *RESTAccess) fromSecret(ctx context.Context, namespace string, t render.RESTTLS, out *flinkclient.TLS) error {
	s, err := a.Kube.CoreV1().Secrets(namespace).Get(ctx, t.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the Secret %s/%s (%s) does not exist: create it with %s", namespace, t.Secret, render.KeyRESTTLSSecret, secretLayout(t.Mutual))
	}
	if err != nil {
		return fmt.Errorf("read Secret %s/%s: %w", namespace, t.Secret, err)
	}
	get := func(k string) ([]byte, error) {
		v := s.Data[k]
		if len(v) == 0 {
			return nil, fmt.Errorf("the Secret %s/%s has no %s: it needs %s", namespace, t.Secret, k, secretLayout(t.Mutual))
		}
		if len(v) > flinkclient.MaxPEMBytes {
			return nil, fmt.Errorf("the Secret %s/%s: %s is %d bytes, more than %d", namespace, t.Secret, k, len(v), flinkclient.MaxPEMBytes)
		}
		return v, nil
	}
	if out.CA, err = get(SecretKeyCA); err != nil {
		return err
	}
	if !t.Mutual {
		return nil
	}
	if out.Cert, err = get(SecretKeyCert); err != nil {
		return err
	}
	out.Key, err = get(SecretKeyKey)
	return err
}

func secretLayout(mutual bool) string {
	if mutual {
		return "ca.crt, tls.crt and tls.key (PEM)"
	}
	return "ca.crt (PEM)"
}

func fromFiles(f TLSFiles, t render.RESTTLS, out *flinkclient.TLS) error {
	if f.CAFile == "" {
		return fmt.Errorf("%s is true but neither %s nor the daemon's flink.tls.caFile is set", render.KeyRESTSSLEnabled, render.KeyRESTTLSSecret)
	}
	var err error
	if out.CA, err = readPEMFile("flink.tls.caFile", f.CAFile); err != nil {
		return err
	}
	if !t.Mutual {
		return nil
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return fmt.Errorf("%s is true but neither %s nor the daemon's flink.tls.certFile and keyFile are set", render.KeyRESTSSLMutual, render.KeyRESTTLSSecret)
	}
	if out.Cert, err = readPEMFile("flink.tls.certFile", f.CertFile); err != nil {
		return err
	}
	out.Key, err = readPEMFile("flink.tls.keyFile", f.KeyFile)
	return err
}

// readPEMFile reads at most flinkclient.MaxPEMBytes of a file.
func readPEMFile(key, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, flinkclient.MaxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", key, path, err)
	}
	if len(b) > flinkclient.MaxPEMBytes {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes", key, path, flinkclient.MaxPEMBytes)
	}
	if len(b) == 0 {
		return nil, errors.New(key + ": " + path + " is empty")
	}
	return b, nil
}

// RunningConfiguration is the Flink configuration a FlinkDeployment's
// running cluster was built with: its deployed spec's over the defaults it
// was built with (or defaults, for a record that predates them); the last
// reconciled spec when no deployed spec is recorded; nil when neither is.
func RunningConfiguration(rec *Record, defaults map[string]string) map[string]string {
	js := ""
	if rec.Deployment != nil {
		js = rec.Deployment.ReconciliationStatus.LastReconciledSpec
	}
	if d := rec.Deployed; d != nil {
		if d.Spec != "" {
			js = d.Spec
		}
		defaults = d.defaults(defaults)
	}
	spec, err := deploymentSpec(js)
	if err != nil || spec == nil {
		return nil
	}
	out := maps.Clone(defaults)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, spec.FlinkConfiguration)
	return out
}

// RESTClients hands out the REST client of each cluster (a FlinkFor): plain
// HTTP, or HTTPS with the material RESTAccess finds, the URL's scheme
// switched to https. It keeps one client per cluster and replaces it (and
// closes the old one's idle connections) when its URL, timeout or TLS
// material changes, so a rotated certificate is used at the next pass.
type RESTClients struct {
	Access *RESTAccess
	// Endpoint returns a cluster's REST base URL and request timeout.
	Endpoint func(namespace, name string) (string, time.Duration, error)
	// Plain is the HTTP client of clusters without REST SSL.
	Plain *http.Client
	// Wrap, when set, wraps every HTTPS transport (metrics).
	Wrap func(http.RoundTripper) http.RoundTripper
	// Proxy, when set, replaces the HTTPS transports' proxy function
	// (default: from the environment, as for plain HTTP).
	Proxy func(*http.Request) (*url.URL, error)
	// Options are added to every client (logger, user agent).
	Options []flinkclient.Option

	mu      gosync.Mutex
	clients map[string]restClient
}

type restClient struct {
	key string // URL, timeout and TLS fingerprint
	c   *flinkclient.Client
	tr  *http.Transport // nil for plain HTTP (shared)
}

// Flink returns the client of cluster name in namespace; it satisfies
// FlinkFor. Each call reads the cluster's status record (and its Secret
// when it has REST SSL), bounded by the request timeout.
func (r *RESTClients) Flink(namespace, name string) (Flink, error) {
	base, timeout, err := r.Endpoint(namespace, name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t, err := r.Access.TLS(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	key := base + "|" + timeout.String()
	if t != nil {
		base = HTTPSURL(base)
		key = base + "|" + timeout.String() + "|" + t.Fingerprint()
	}
	id := namespace + "/" + name
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.clients[id]; ok && cur.key == key {
		return cur.c, nil
	}
	hc, next := r.Plain, restClient{key: key}
	if t != nil {
		tr, err := flinkclient.NewTLSTransport(t)
		if err != nil {
			return nil, fmt.Errorf("REST TLS of FlinkDeployment %s: %w", id, err)
		}
		if r.Proxy != nil {
			tr.Proxy = r.Proxy
		}
		next.tr = tr
		var rt http.RoundTripper = tr
		if r.Wrap != nil {
			rt = r.Wrap(tr)
		}
		hc = &http.Client{Transport: rt}
	}
	opts := append([]flinkclient.Option{flinkclient.WithHTTPClient(hc), flinkclient.WithTimeout(timeout)}, r.Options...)
	next.c = flinkclient.New(base, opts...)
	if r.clients == nil {
		r.clients = map[string]restClient{}
	}
	if old, ok := r.clients[id]; ok && old.tr != nil {
		old.tr.CloseIdleConnections()
	}
	r.clients[id] = next
	return next.c, nil
}

// HTTPSURL switches an http:// URL to https:// (the port stays: Flink
// serves REST SSL on its REST port); other URLs are returned as they are.
func HTTPSURL(u string) string {
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		return "https://" + rest
	}
	return u
}
