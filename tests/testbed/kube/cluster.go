package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	serviceCIDR = "10.0.0.0/16" // room for a fleet: one ClusterIP per FlinkDeployment
	serviceIP   = "10.0.0.1"    // first address of serviceCIDR: the kubernetes Service
	// Issuer is the service-account token issuer of every test control plane.
	Issuer = "https://kubernetes.default.svc.cluster.local"
	// gcControllers are the kube-controller-manager controllers WithControllerManager runs.
	gcControllers = "garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller"
)

// Option changes how a control plane is started.
type Option func(*config)

type config struct {
	controllerManager bool
	apiserverArgs     []string
}

// WithControllerManager also runs kube-controller-manager with only the
// garbagecollector, namespace, serviceaccount and serviceaccount-token
// controllers: owner-reference cascade deletion works, deleted namespaces go
// away, and every namespace gets its "default" ServiceAccount (so the
// ServiceAccount admission plugin stays on). Without it that plugin is
// disabled, since nothing would create the "default" ServiceAccount a Pod needs.
// It adds about 0.7 s to start-up and ~80 MiB of memory.
func WithControllerManager() Option { return func(c *config) { c.controllerManager = true } }

// WithAPIServerArgs appends flags to kube-apiserver's command line (a flag
// given twice takes the later value), e.g. "--feature-gates=...".
func WithAPIServerArgs(args ...string) Option {
	return func(c *config) { c.apiserverArgs = append(c.apiserverArgs, args...) }
}

// Cluster is a running control plane. Its fields are read-only.
type Cluster struct {
	// Host is the apiserver URL, https://127.0.0.1:<port>.
	Host string
	// Kubeconfig is the path of an admin kubeconfig (context "testbed").
	Kubeconfig string
	// Dir holds the credentials, the logs (*.log) and etcd's data.
	Dir string
	// CAData is the PEM CA that signed the apiserver's serving certificate.
	CAData []byte

	admin      *rest.Config
	client     kubernetes.Interface
	procs      []*proc // in start order
	ownDir     bool    // Dir was created by NewCluster and is removed by Stop
	stopOnce   sync.Once
	controller bool
}

// NewCluster starts etcd and kube-apiserver (and kube-controller-manager with
// WithControllerManager) on free 127.0.0.1 ports and returns once /readyz is
// ok. dir receives credentials, logs and data; "" means a new temporary dir
// that Stop removes (a dir you pass stays, with its logs, minus etcd's data and
// the kubeconfig, which is written last, once everything is ready). Binaries
// are built first if missing (see Binaries). Call Stop when done.
func NewCluster(ctx context.Context, dir string, opts ...Option) (*Cluster, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	apiserverBin, etcdBin, err := Binaries(ctx)
	if err != nil {
		return nil, err
	}
	var cmBin string
	if cfg.controllerManager {
		if cmBin, err = ControllerManagerBinary(ctx); err != nil {
			return nil, err
		}
	}
	own := dir == ""
	if own {
		if dir, err = os.MkdirTemp("", "kube-testbed-"); err != nil {
			return nil, fmt.Errorf("create control plane dir: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create control plane dir: %w", err)
	}
	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), ownDir: own, controller: cfg.controllerManager}
	p, err := newPKI(dir)
	if err != nil {
		c.cleanupDir()
		return nil, err
	}
	c.CAData = p.caPEM
	for attempt := 1; ; attempt++ {
		err = c.start(ctx, p, &cfg, apiserverBin, etcdBin, cmBin)
		if err == nil {
			return c, nil
		}
		c.kill()
		if !errors.Is(err, errPortTaken) || attempt == 3 || ctx.Err() != nil {
			c.cleanupDir()
			return nil, err
		}
	}
}

// start runs one attempt at starting the processes on fresh ports.
func (c *Cluster) start(ctx context.Context, p *pki, cfg *config, apiserverBin, etcdBin, cmBin string) error {
	c.procs = nil
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, cmPort := ports[0], ports[1], ports[2], ports[3]
	dataDir := filepath.Join(c.Dir, "etcd-data")
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("clear etcd data dir: %w", err)
	}
	// A kubeconfig in Dir means "ready": drop one left by an earlier run.
	for _, name := range []string{"kubeconfig", "controller-manager.kubeconfig", "etcd.log", "kube-apiserver.log", "kube-controller-manager.log"} {
		_ = os.Remove(filepath.Join(c.Dir, name))
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := startProc("etcd", etcdBin, []string{
		"--name=testbed",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testbed=" + peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync", // test data is thrown away; fsync only costs time
		"--log-level=warn",
	}, filepath.Join(c.Dir, "etcd.log"))
	if err != nil {
		return err
	}
	c.procs = append(c.procs, etcd)
	if err := waitFor(ctx, 30*time.Second, "etcd /health", etcd, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health")
	}); err != nil {
		return err
	}

	c.Host = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses a loopback address; nothing here
		// reaches the apiserver through the kubernetes Service anyway.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + Issuer,
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
	}
	if !cfg.controllerManager {
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	args = append(args, cfg.apiserverArgs...)
	api, err := startProc("kube-apiserver", apiserverBin, args, filepath.Join(c.Dir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	c.procs = append(c.procs, api)

	c.admin = &rest.Config{
		Host: c.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   p.caPEM,
			CertData: p.adminCertPEM,
			KeyData:  p.adminKeyPEM,
		},
		QPS:   200,
		Burst: 400,
	}
	if c.client, err = kubernetes.NewForConfig(c.admin); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if err := waitFor(ctx, 3*time.Minute, "kube-apiserver /readyz", api, func(ctx context.Context) error {
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		if portTaken(etcd.Log) || portTaken(api.Log) {
			return fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return err
	}
	if cfg.controllerManager {
		if err := c.startControllerManager(ctx, p, cmBin, cmPort); err != nil {
			return err
		}
	}
	// Written last: a kubeconfig in Dir means the control plane is ready.
	return WriteKubeconfig(c.Kubeconfig, c.admin)
}

// startControllerManager runs kube-controller-manager with its own admin
// kubeconfig and waits for its /healthz.
func (c *Cluster) startControllerManager(ctx context.Context, p *pki, cmBin string, cmPort int) error {
	kubeconfig := filepath.Join(c.Dir, "controller-manager.kubeconfig")
	if err := WriteKubeconfig(kubeconfig, c.admin); err != nil {
		return err
	}
	cm, err := startProc("kube-controller-manager", cmBin, []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cmPort),
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--controllers=" + gcControllers,
		"--leader-elect=false",
		"--service-account-private-key-file=" + p.SAKey,
		"--root-ca-file=" + p.CACert,
		"--profiling=false",
	}, filepath.Join(c.Dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	c.procs = append(c.procs, cm)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	healthz := "https://127.0.0.1:" + strconv.Itoa(cmPort) + "/healthz"
	return waitFor(ctx, 2*time.Minute, "kube-controller-manager /healthz", cm, func(ctx context.Context) error {
		return httpOK(ctx, hc, healthz)
	})
}

// waitFor polls check every 100 ms until it succeeds, p exits, ctx ends or
// timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, p *proc, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if err := p.exited(); err != nil {
			if portTaken(p.Log) {
				return fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last error: %v); log %s:\n%s", what, ctx.Err(), last, p.Log, tail(p.Log, 40))
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// RESTConfig returns a new admin (system:masters) client config.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// Client returns an admin clientset.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// HasControllerManager reports whether kube-controller-manager runs (WithControllerManager).
func (c *Cluster) HasControllerManager() bool { return c.controller }

// Processes returns the running programs of the control plane, in start order.
func (c *Cluster) Processes() []Process {
	out := make([]Process, len(c.procs))
	for i, p := range c.procs {
		out[i] = p.Process
	}
	return out
}

// ServiceAccountConfig returns a client config that authenticates as the
// ServiceAccount namespace/name with a 24-hour token from the TokenRequest
// API. The ServiceAccount is created if it does not exist; it has no
// permissions beyond the defaults until you bind a Role to it.
func (c *Cluster) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	sas := c.client.CoreV1().ServiceAccounts(namespace)
	_, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	expiry := int64(24 * 3600)
	tr, err := sas.CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request token for service account %s/%s: %w", namespace, name, err)
	}
	return &rest.Config{
		Host:            c.Host,
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		QPS:             c.admin.QPS,
		Burst:           c.admin.Burst,
	}, nil
}

// WriteKubeconfig writes cfg (certificate or bearer-token auth) as a
// kubeconfig with one context, "testbed", to path; for handing a
// ServiceAccountConfig to a process such as the daemon under test.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testbed"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["testbed"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts["testbed"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: "testbed"}
	kc.CurrentContext = "testbed"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// LogTails returns, for each process, its log path and last n lines.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- %s (pid %d), last %d lines of %s:\n%s\n", p.Name, p.PID, n, p.Log, tail(p.Log, n))
	}
	return b.String()
}

// Stop kills the processes (each process group) and removes etcd's data; a
// temporary Dir made by NewCluster is removed whole. Safe to call twice.
func (c *Cluster) Stop() error {
	var err error
	c.stopOnce.Do(func() {
		c.kill()
		err = c.cleanupDir()
	})
	return err
}

// kill stops the processes in reverse start order. No grace: the data is
// thrown away, and SIGKILL makes test cleanup fast.
func (c *Cluster) kill() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(0)
	}
}

func (c *Cluster) cleanupDir() error {
	targets := []string{filepath.Join(c.Dir, "etcd-data"), c.Kubeconfig}
	if c.ownDir {
		targets = []string{c.Dir}
	}
	for _, t := range targets {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("remove %s: %w", t, err)
		}
	}
	return nil
}
