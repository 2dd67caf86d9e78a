package e2e

// Tests of the daemon as it is installed and operated: the deploy/
// manifests, least-privilege RBAC, leader election, hot reload and metrics.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/access"
	"github.com/flink-gitops/flink-gitops/tests/manifests"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// The names deploy/base installs.
const (
	installNS   = "flink-gitops"
	installName = "flink-gitops"
)

func deployDir(sub string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", sub)
}

// applier server-side applies built objects with a dynamic client.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply applies obj (dryRun: validated and admitted by the apiserver, not
// stored).
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	opts := metav1.ApplyOptions{FieldManager: "e2e-install", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == "namespace" {
		ri = a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	if _, err := ri.Apply(ctx, obj.GetName(), obj, opts); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// TestDeployManifests builds deploy/base and deploy/overlays/namespaced
// with kustomize, checks what an operator relies on (probes, hardening,
// config as a directory mount, RBAC scoped by RoleBindings only, a valid
// daemon config) and applies every object to the apiserver.
//
// The build and the checks are pure and run under -short too; the apply
// subtest needs the test bed.
func TestDeployManifests(t *testing.T) {
	base := manifests.Build(t, deployDir("base"))
	var kinds []string
	for _, o := range base {
		kinds = append(kinds, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(kinds)
	want := []string{
		"ClusterRole /flink-gitops", "ConfigMap flink-gitops/flink-gitops-config", "Deployment flink-gitops/flink-gitops",
		"Namespace /flink-gitops", "Role flink-gitops/flink-gitops-leader-election", "RoleBinding flink-gitops/flink-gitops-leader-election",
		"RoleBinding flink/flink-gitops", "Service flink-gitops/flink-gitops", "ServiceAccount flink-gitops/flink-gitops",
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("deploy/base objects:\n got %q\nwant %q", kinds, want)
	}

	// The Deployment: probes, limits, hardening, config and secrets as files.
	d := manifests.Convert[appsv1.Deployment](t, manifests.Find(base, "Deployment", "", ""))
	ps := d.Spec.Template.Spec
	c := ps.Containers[0]
	if ps.ServiceAccountName != installName {
		t.Errorf("serviceAccountName %q", ps.ServiceAccountName)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %+v readiness %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if c.Resources.Requests.Name(r, "").IsZero() || c.Resources.Limits.Name(r, "").IsZero() {
			t.Errorf("%s request/limit missing: %+v", r, c.Resources)
		}
	}
	sc := c.SecurityContext
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("not hardened: pod %+v container %+v", ps.SecurityContext, sc)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	if m, v := mounts["config"], vols["config"]; v.ConfigMap == nil || v.ConfigMap.Name != "flink-gitops-config" || m.SubPath != "" ||
		!slices.Contains(c.Args, filepath.Join(m.MountPath, "config.yaml")) {
		t.Errorf("config must be the ConfigMap mounted as a directory (hot reload) and passed to --config: mount %+v volume %+v args %q", m, v, c.Args)
	}
	for name, secret := range map[string]string{"git-token": "flink-gitops-git", "webhook-secret": "flink-gitops-webhook"} {
		if v := vols[name]; v.Secret == nil || v.Secret.SecretName != secret || mounts[name].MountPath == "" {
			t.Errorf("volume %s: want Secret %s mounted, got %+v", name, secret, v)
		}
	}

	// The shipped config is valid as the pod loads it: the Secrets' files
	// (keys token and secret, see deploy/README.md) are where it reads them.
	cm := manifests.Convert[corev1.ConfigMap](t, manifests.Find(base, "ConfigMap", "", ""))
	root := t.TempDir() // the pod's filesystem
	for vol, key := range map[string]string{"git-token": "token", "webhook-secret": "secret"} {
		p := filepath.Join(root, mounts[vol].MountPath, key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgText := strings.ReplaceAll(cm.Data["config.yaml"], "/var/run/secrets/", root+"/var/run/secrets/")
	cfgFile := filepath.Join(root, mounts["config"].MountPath, "config.yaml")
	if err := os.MkdirAll(filepath.Dir(cfgFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	var envNS string
	for _, e := range c.Env {
		if e.Name == "FLINK_GITOPS_LEADER_ELECTION_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			envNS = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if envNS != "metadata.namespace" {
		t.Errorf("the Lease namespace should come from the downward API, got %q", envNS)
	}
	dc, err := config.Load(config.Sources{File: cfgFile, Environ: []string{"FLINK_GITOPS_LEADER_ELECTION_NAMESPACE=" + installNS}})
	if err != nil {
		t.Fatalf("deploy/base/config.yaml does not load with the Secrets mounted: %v", err)
	}
	if !dc.LeaderElection.Enabled || dc.LeaderElection.LeaseName != installName || dc.LeaderElection.Namespace != installNS || dc.Server.Listen != ":8080" {
		t.Errorf("config: leader election %+v, server %+v", dc.LeaderElection, dc.Server)
	}
	if !strings.Contains(cm.Data["config.yaml"], "tokenFile: "+mounts["git-token"].MountPath+"/token") ||
		!strings.Contains(cm.Data["config.yaml"], "githubFile: "+mounts["webhook-secret"].MountPath+"/secret") {
		t.Errorf("config.yaml does not read the Secrets where they are mounted:\n%s", cm.Data["config.yaml"])
	}
	// Every allowed namespace has its RoleBinding; nothing binds cluster-wide.
	for _, ns := range dc.Kubernetes.AllowedNamespaces {
		rb := manifests.Find(base, "RoleBinding", ns, installName)
		if rb == nil {
			t.Errorf("allowed namespace %s has no RoleBinding", ns)
		}
	}
	if manifests.Find(base, "ClusterRoleBinding", "", "") != nil {
		t.Error("deploy/base must not bind cluster-wide")
	}

	// The namespaced overlay: nothing cluster-scoped, the same rules as a Role.
	nsObjs := manifests.Build(t, deployDir("overlays/namespaced"))
	for _, o := range nsObjs {
		if o.GetNamespace() != "flink" {
			t.Errorf("namespaced overlay: %s %s is in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	role := manifests.Convert[rbacv1.Role](t, manifests.Find(nsObjs, "Role", "flink", installName))
	cr := manifests.Convert[rbacv1.ClusterRole](t, manifests.Find(base, "ClusterRole", "", installName))
	if fmt.Sprint(role.Rules) != fmt.Sprint(cr.Rules) {
		t.Errorf("namespaced Role rules differ from the ClusterRole's:\n%v\n%v", role.Rules, cr.Rules)
	}
	for _, o := range nsObjs {
		if o.GetKind() != "RoleBinding" {
			continue
		}
		rb := manifests.Convert[rbacv1.RoleBinding](t, o)
		if rb.RoleRef.Kind != "Role" || len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != "flink" {
			t.Errorf("namespaced RoleBinding %s: roleRef %+v subjects %+v", rb.Name, rb.RoleRef, rb.Subjects)
		}
	}

	// Both apply to the real apiserver: namespaces for real, the rest as a
	// server-side dry run (validated, defaulted and admitted, not stored, so
	// no node agent starts the image).
	t.Run("apply", func(t *testing.T) {
		kc := kube.Shared(t) // skips under -short
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		ap := newApplier(t, kc.RESTConfig())
		if err := ap.apply(ctx, manifests.Find(base, "Namespace", "", installNS), false); err != nil {
			t.Fatal(err)
		}
		if err := ap.apply(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flink"}}}, false); err != nil {
			t.Fatal(err)
		}
		for _, objs := range [][]*unstructured.Unstructured{base, nsObjs} {
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					continue
				}
				if err := ap.apply(ctx, o, true); err != nil {
					t.Error(err)
				}
			}
		}
	})
}

// installRBAC applies deploy/base's ServiceAccount and RBAC for real, with
// the target RoleBinding copied into each of namespaces (what a user does
// per allowed namespace), and returns a client config of the ServiceAccount.
func installRBAC(t *testing.T, kc *kube.Cluster, namespaces ...string) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ap := newApplier(t, kc.RESTConfig())
	for _, o := range manifests.Build(t, deployDir("base")) {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "Role":
			if err := ap.apply(ctx, o, false); err != nil {
				t.Fatal(err)
			}
		case "RoleBinding":
			targets := []string{o.GetNamespace()}
			if o.GetNamespace() != installNS {
				targets = namespaces
			}
			for _, ns := range targets {
				rb := o.DeepCopy()
				rb.SetNamespace(ns)
				if err := ap.apply(ctx, rb, false); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	cfg, err := kc.ServiceAccountConfig(ctx, installNS, installName)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkRBAC asserts the ServiceAccount may do what the daemon does in ns
// and its Lease, and nothing in other, its own namespace, or cluster-wide
// (the tables are shared with the Helm chart's test, deploy/helm).
func checkRBAC(t *testing.T, sa *rest.Config, ns, other string) {
	t.Helper()
	access.Check(t, sa, access.Install{Namespace: installNS, Lease: installName, Target: ns, Other: other}, "deploy/")
}

// daemonProc is a flink-gitops process the test starts beside the stack's.
type daemonProc struct {
	cmd    *exec.Cmd
	log    string
	addr   string
	exited chan struct{}
}

// startDaemon runs the binary with cfg; its log goes to dir.
func startDaemon(t *testing.T, dir, name string, cfg map[string]any) *daemonProc {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{log: filepath.Join(dir, name+".log"), addr: cfg["server"].(map[string]any)["listen"].(string), exited: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary, "run", "--config", path)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("%s log %s:\n%s", name, p.log, tail(p.log, 40))
		}
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func leaseHolder(t *testing.T, kc *kube.Cluster) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := kc.Client().CoordinationV1().Leases(installNS).Get(ctx, installName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func fileHas(path string, re *regexp.Regexp) bool {
	b, err := os.ReadFile(path)
	return err == nil && re.Match(b)
}

// metrics scrapes a daemon's /metrics into series → value; a series is
// written as Prometheus prints it: name{label="value",...}.
func metrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the series of metric name whose labels include every pair of
// labels ("k=\"v\"").
func sum(m map[string]float64, name string, labels ...string) float64 {
	var s float64
	for series, v := range m {
		n, ls, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(","+strings.TrimSuffix(ls, "}")+",", ","+l+",") {
				ok = false
			}
		}
		if ok {
			s += v
		}
	}
	return s
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// startEnv starts a stack (without its daemon) on the shared control plane
// for resources in ns; namespaces are the config's allow-list.
func startEnv(t *testing.T, kc *kube.Cluster, ns string, namespaces []string, files map[string]string) *env {
	t.Helper()
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(seed, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seed, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		seed = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{
		Dir: filepath.Join(dir, "stack"), Binary: binary, Seed: seed, Kube: kc,
		EntryPoints: []string{"apps/*"}, Namespaces: namespaces,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("daemon log %s:\n%s", s.DaemonLog, tail(s.DaemonLog, 40))
			t.Logf("node agent log: %s", filepath.Join(dir, "stack", "node-agent.log"))
		}
	})
	return &env{t: t, s: s, ns: ns}
}

// waitStatus polls the status branch until cond holds for the resource
// kind/ns/name, failing early when the acting daemon exits.
func waitStatus(e *env, alive func() bool, kind, ns, name, what string, timeout time.Duration, cond func(lifecycle.ResourceStatus) bool) lifecycle.ResourceStatus {
	e.t.Helper()
	key := kind + "/" + ns + "/" + name
	var last lifecycle.ResourceStatus
	eventually(e.t, timeout, what, func() (bool, string) {
		if !alive() {
			e.t.Fatalf("daemon exited while waiting for %s", what)
		}
		st, _, err := e.s.Status(context.Background())
		if err != nil {
			return false, err.Error()
		}
		rs, ok := st[key]
		last = rs
		return ok && cond(rs), fmt.Sprintf("%+v", last)
	})
	return last
}

// statusREADME returns the status branch's README ("" before the first write).
func statusREADME(e *env) string {
	_, files, err := e.s.Status(context.Background())
	if err != nil {
		return ""
	}
	return string(files["README.md"])
}

// TestDaemonAsServiceAccountLeaderElectionMetrics installs deploy/'s RBAC,
// proves it is least privilege, and runs two daemons as that
// ServiceAccount with leader election on one Flink application cluster:
// only the leader acts (and its metrics say what it did); a resource in a
// namespace the config allows but RBAC does not is reported as forbidden;
// after the leader is SIGKILLed the standby takes the Lease and carries out
// a savepoint upgrade.
//
// The control plane runs the OwnerReferencesPermissionEnforcement admission
// plugin (as OpenShift does), so the owner references the daemon sets
// (blockOwnerDeletion) need the deployments/finalizers rule deploy/ grants:
// without it the first apply is forbidden.
func TestDaemonAsServiceAccountLeaderElectionMetrics(t *testing.T) {
	kc := kube.Shared(t, kube.WithAPIServerArgs("--enable-admission-plugins=OwnerReferencesPermissionEnforcement"))
	ns, other := kc.Namespace(t), kc.Namespace(t)
	sa := installRBAC(t, kc, ns)
	checkRBAC(t, sa, ns, other)
	if t.Failed() {
		t.FailNow()
	}

	e := startEnv(t, kc, ns, []string{ns, other}, map[string]string{
		"apps/counter/kustomization.yaml":    kustomization,
		"apps/counter/flinkdeployment.yaml":  strings.ReplaceAll(appSpec("counter", "savepoint", 1, ""), "NAMESPACE", ns),
		"apps/intruder/kustomization.yaml":   kustomization,
		"apps/intruder/flinkdeployment.yaml": strings.ReplaceAll(appSpec("intruder", "savepoint", 1, "    state: suspended\n"), "NAMESPACE", other),
	})
	kubeconfig := filepath.Join(t.TempDir(), "flink-gitops.kubeconfig")
	if err := kube.WriteKubeconfig(kubeconfig, sa); err != nil {
		t.Fatal(err)
	}
	// The config allows `other`, RBAC does not: the assertion is on RBAC.
	extra := map[string]any{
		"kubernetes": map[string]any{"kubeconfig": kubeconfig, "allowedNamespaces": []string{ns, other}, "defaultNamespace": ns},
		"leaderElection": map[string]any{"enabled": true, "leaseName": installName, "namespace": installNS,
			"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "1s"},
	}
	if err := e.s.WriteConfig(extra); err != nil {
		t.Fatal(err)
	}
	if err := e.s.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	var holderA string
	eventually(t, 30*time.Second, "daemon A to take the Lease", func() (bool, string) {
		holderA = leaseHolder(t, kc)
		return holderA != "", "no holder"
	})
	if !fileHas(e.s.DaemonLog, regexp.MustCompile(`msg=leading identity=`+regexp.QuoteMeta(holderA))) {
		t.Fatalf("the Lease holder %q is not daemon A", holderA)
	}
	cfgB := e.s.Config(extra)
	cfgB["server"] = map[string]any{"listen": freeAddr(t)}
	b := startDaemon(t, t.TempDir(), "daemon-b", cfgB)
	holderB := fmt.Sprintf("%s-%d", must(os.Hostname()), b.cmd.Process.Pid)
	eventually(t, 30*time.Second, "daemon B to stand by", func() (bool, string) {
		return fileHas(b.log, regexp.MustCompile(`standing by.*leader=`+regexp.QuoteMeta(holderA))), tail(b.log, 3)
	})

	start := time.Now()
	aAlive := e.s.DaemonRunning
	rs := waitStatus(e, aAlive, "FlinkDeployment", ns, "counter", "first deploy by the leader", 4*time.Minute, stableAt(""))
	job1 := rs.JobID
	t.Logf("deployed by the ServiceAccount in %s (job %s)", time.Since(start).Round(time.Second), job1)
	eventually(t, 30*time.Second, "the forbidden resource reported on the status branch", func() (bool, string) {
		r := statusREADME(e)
		return strings.Contains(r, "FlinkDeployment/"+other+"/intruder: reconcile failed:") && strings.Contains(r, "forbidden"), r
	})
	if h := leaseHolder(t, kc); h != holderA {
		t.Fatalf("Lease holder changed to %q while A was alive", h)
	}
	acted := regexp.MustCompile(`msg=reconciling|msg=rendered|status branch written|reconcile failed`)
	if fileHas(b.log, acted) {
		t.Fatalf("standby daemon B acted while A led:\n%s", tail(b.log, 20))
	}
	if !fileHas(e.s.DaemonLog, regexp.MustCompile(`status branch written`)) {
		t.Fatal("leader A wrote no status")
	}

	// Metrics and health of the leader after a deploy.
	m := metrics(t, e.s.MetricsAddr)
	for _, c := range []struct {
		what string
		got  float64
		ok   bool
	}{
		{`flink_gitops_reconcile_total{kind="FlinkDeployment",outcome="ok"} > 0`, sum(m, "flink_gitops_reconcile_total", `kind="FlinkDeployment"`, `outcome="ok"`), sum(m, "flink_gitops_reconcile_total", `kind="FlinkDeployment"`, `outcome="ok"`) > 0},
		{`flink_gitops_reconcile_total{outcome="error"} > 0 (the forbidden namespace)`, sum(m, "flink_gitops_reconcile_total", `outcome="error"`), sum(m, "flink_gitops_reconcile_total", `outcome="error"`) > 0},
		{`flink_gitops_resources{lifecycle_state="STABLE"} == 1`, sum(m, "flink_gitops_resources", `lifecycle_state="STABLE"`), sum(m, "flink_gitops_resources", `lifecycle_state="STABLE"`) == 1},
		{`flink_gitops_git_polls_total{result="fetched"} >= 1`, sum(m, "flink_gitops_git_polls_total", `result="fetched"`), sum(m, "flink_gitops_git_polls_total", `result="fetched"`) >= 1},
		{`flink_gitops_flink_rest_request_duration_seconds_count > 0`, sum(m, "flink_gitops_flink_rest_request_duration_seconds_count"), sum(m, "flink_gitops_flink_rest_request_duration_seconds_count") > 0},
		{`flink_gitops_status_writes_total{result="ok"} > 0`, sum(m, "flink_gitops_status_writes_total", `result="ok"`), sum(m, "flink_gitops_status_writes_total", `result="ok"`) > 0},
		{`flink_gitops_render_duration_seconds_count > 0`, sum(m, "flink_gitops_render_duration_seconds_count"), sum(m, "flink_gitops_render_duration_seconds_count") > 0},
		{`flink_gitops_config_reloads_total == 0`, sum(m, "flink_gitops_config_reloads_total"), sum(m, "flink_gitops_config_reloads_total") == 0},
	} {
		if !c.ok {
			t.Errorf("leader metrics: want %s, got %v", c.what, c.got)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, "http://"+e.s.MetricsAddr+p); code != http.StatusOK {
			t.Errorf("leader %s: %d %s", p, code, body)
		}
		if code, body := httpGet(t, "http://"+b.addr+p); code != http.StatusOK {
			t.Errorf("standby %s: %d %s", p, code, body)
		}
	}
	if n := sum(metrics(t, b.addr), "flink_gitops_reconcile_total"); n != 0 {
		t.Errorf("standby B reconciled %v times", n)
	}
	// A live config edit is counted.
	live := map[string]any{}
	for k, v := range extra {
		live[k] = v
	}
	rc := e.s.Config(extra)["reconcile"].(map[string]any)
	rc["concurrency"] = 3
	live["reconcile"] = rc
	if err := e.s.WriteConfig(live); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "flink_gitops_config_reloads_total to count the edit", func() (bool, string) {
		n := sum(metrics(t, e.s.MetricsAddr), "flink_gitops_config_reloads_total")
		return n == 1, fmt.Sprint(n)
	})

	// Kill the leader; the standby takes over within about a lease duration.
	e.s.StopDaemon(true)
	killed := time.Now()
	eventually(t, 20*time.Second, "daemon B to take the Lease", func() (bool, string) {
		h := leaseHolder(t, kc)
		return h == holderB, h
	})
	takeover := time.Since(killed)
	t.Logf("leader SIGKILLed; standby took the Lease after %s (leaseDuration 4s)", takeover.Round(100*time.Millisecond))
	// The Lease expires 4 s after A's last renewal and B retries every 1 s
	// (jittered by up to 1.2 s); 10 s leaves room for a loaded machine.
	if takeover > 10*time.Second {
		t.Errorf("takeover took %s, want about the lease duration (4s)", takeover)
	}
	bAlive := func() bool {
		select {
		case <-b.exited:
			return false
		default:
			return true
		}
	}
	eventually(t, 20*time.Second, "daemon B to lead", func() (bool, string) {
		return fileHas(b.log, regexp.MustCompile(`msg=leading identity=`+regexp.QuoteMeta(holderB))), tail(b.log, 3)
	})

	// B loaded the status records of the bound namespace when it took the
	// lead; only the namespace RBAC does not bind failed to list.
	for _, line := range strings.Split(string(must(os.ReadFile(b.log))), "\n") {
		if strings.Contains(line, "cannot list status ConfigMaps") && (strings.Contains(line, ns) || !strings.Contains(line, other)) {
			t.Errorf("new leader could not load the records of %s: %s", ns, line)
		}
	}

	c2 := e.push("counter: parallelism 2", map[string]string{"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 2, "")})
	rs = waitStatus(e, bAlive, "FlinkDeployment", ns, "counter", "savepoint upgrade by the new leader", 4*time.Minute, stableAt(c2))
	if rs.JobID == job1 || len(rs.Savepoints) == 0 || rs.Savepoints[0].Trigger != "UPGRADE" {
		t.Fatalf("upgrade after takeover not visible on the status branch: %+v", rs)
	}
	t.Logf("new leader upgraded %s -> %s via %s", job1, rs.JobID, rs.Savepoints[0].Path)

	m = metrics(t, b.addr)
	if n := sum(m, "flink_gitops_savepoints_total", `trigger_type="UPGRADE"`); n != 1 {
		t.Errorf(`new leader: flink_gitops_savepoints_total{trigger_type="UPGRADE"} = %v, want 1`, n)
	}
	if n := sum(m, "flink_gitops_last_savepoint_timestamp_seconds", `name="counter"`); n < float64(killed.Unix()) {
		t.Errorf("new leader: flink_gitops_last_savepoint_timestamp_seconds{name=\"counter\"} = %v, want after %d", n, killed.Unix())
	}
	if n := sum(m, "flink_gitops_resources", `lifecycle_state="STABLE"`); n != 1 {
		t.Errorf(`new leader: flink_gitops_resources{lifecycle_state="STABLE"} = %v, want 1`, n)
	}
	if n := sum(m, "flink_gitops_reconcile_total", `kind="FlinkDeployment"`, `outcome="ok"`); n == 0 {
		t.Error("new leader: no successful reconcile counted")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// configVolume lays out a config file the way the kubelet does for a
// ConfigMap volume (deploy/ mounts one): config.yaml is a symlink to
// ..data/config.yaml, and an update writes a new timestamped directory and
// swaps the ..data symlink atomically.
type configVolume struct {
	dir string
	n   int
}

// path is the file the daemon is given (--config).
func (v *configVolume) path() string { return filepath.Join(v.dir, "config.yaml") }

func (v *configVolume) write(t *testing.T, cfg map[string]any) {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.n++
	old := fmt.Sprintf("..2026_11_28_00_00_%02d.%d", v.n-1, v.n-1)
	ts := fmt.Sprintf("..2026_11_28_00_00_%02d.%d", v.n, v.n)
	if err := os.MkdirAll(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, "config.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if v.n == 1 {
		if err := os.Symlink("..data/config.yaml", v.path()); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
		t.Fatal(err)
	}
}

// TestHotReloadPollIntervalAndNamespaces changes git.pollInterval and
// kubernetes.allowedNamespaces in the running daemon's config, updated the
// way the kubelet updates the ConfigMap volume deploy/ mounts. No Flink
// runs: the late resource is a suspended FlinkDeployment, which is
// reconciled (recorded) without starting a cluster.
func TestHotReloadPollIntervalAndNamespaces(t *testing.T) {
	kc := kube.Shared(t)
	ns, late := kc.Namespace(t), kc.Namespace(t)
	e := startEnv(t, kc, late, []string{ns}, nil)
	cfg := e.s.Config(nil)
	git := cfg["git"].(map[string]any)
	git["pollInterval"] = "1h"
	vol := &configVolume{dir: filepath.Join(t.TempDir(), "etc-flink-gitops")}
	vol.write(t, e.s.Config(map[string]any{"git": git}))
	e.s.ConfigPath = vol.path()
	if err := e.s.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c0, err := e.s.Work.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the first status commit", func() (bool, string) {
		r := statusREADME(e)
		return strings.Contains(r, c0[:12]), r
	})
	polls := func() float64 { return sum(metrics(t, e.s.MetricsAddr), "flink_gitops_git_polls_total") }
	if n := polls(); n != 1 {
		t.Fatalf("git polls after start with pollInterval 1h: %v, want 1", n)
	}

	c1 := e.push("late: a suspended job in a namespace not allowed yet", map[string]string{
		"apps/late/kustomization.yaml":   kustomization,
		"apps/late/flinkdeployment.yaml": appSpec("late", "savepoint", 1, "    state: suspended\n"),
	})
	// Not picked up while the interval is 1h: watch for 3 s (three polls at
	// the interval set next).
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if r := statusREADME(e); strings.Contains(r, c1[:12]) {
			t.Fatal("a push was picked up before its poll was due (pollInterval 1h)")
		}
	}
	if n := polls(); n != 1 {
		t.Fatalf("git polls with pollInterval 1h: %v, want 1", n)
	}

	git["pollInterval"] = "1s"
	vol.write(t, e.s.Config(map[string]any{"git": git}))
	eventually(t, 20*time.Second, "the push rendered after pollInterval 1s, with the namespace problem", func() (bool, string) {
		r := statusREADME(e)
		return strings.Contains(r, c1[:12]) && strings.Contains(r, fmt.Sprintf("namespace %q is not in the allow-list", late)), r
	})
	before := polls()
	eventually(t, 10*time.Second, "polls every second", func() (bool, string) {
		n := polls()
		return n >= before+3, fmt.Sprint(n)
	})
	if n := sum(metrics(t, e.s.MetricsAddr), "flink_gitops_config_reloads_total"); n != 1 {
		t.Errorf("flink_gitops_config_reloads_total = %v after one edit", n)
	}
	if _, err := kc.Client().CoreV1().ConfigMaps(late).Get(ctx, lifecycle.StatusConfigMapName("FlinkDeployment", "late"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a resource in a namespace not allowed was reconciled: %v", err)
	}

	k := cfg["kubernetes"].(map[string]any)
	k["allowedNamespaces"] = []string{ns, late}
	vol.write(t, e.s.Config(map[string]any{"git": git, "kubernetes": k}))
	rs := waitStatus(e, e.s.DaemonRunning, "FlinkDeployment", late, "late", "the late resource reconciled after allowing its namespace", time.Minute,
		func(r lifecycle.ResourceStatus) bool {
			return r.LifecycleState == "SUSPENDED" && r.LastReconciledCommit == c1 && len(r.Problems) == 0
		})
	if strings.Contains(statusREADME(e), "is not in the allow-list") {
		t.Error("the allow-list problem is still on the status branch")
	}
	if n := sum(metrics(t, e.s.MetricsAddr), "flink_gitops_config_reloads_total"); n != 2 {
		t.Errorf("flink_gitops_config_reloads_total = %v after two edits", n)
	}
	t.Logf("late resource %s after the reload", rs.LifecycleState)
}
