package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	helmkube "helm.sh/helm/v4/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// daemonImageRef is what the in-cluster test registers the daemon's image
// as, and installs the chart with.
const daemonImageRef = "flink-gitops:e2e"

// TestInClusterHelm installs flink-gitops with the Helm chart into the test
// bed, the daemon running from its own image (deploy/image) in the node
// agent's image runtime: two replicas with in-cluster credentials (the
// chart's ServiceAccount token and RBAC only, no kubeconfig), config from
// the chart's ConfigMap. One replica takes the Lease; it reconciles a
// FlinkDeployment from Git onto real Flink 2.2; a helm upgrade that adds an
// entry point reaches the running daemon through the kubelet-style "..data"
// swap (no pod restart, no rollout) and the new entry point's resource is
// reconciled; a SIGKILL of the leader's process hands the Lease to another
// identity, which reconciles the next push.
func TestInClusterHelm(t *testing.T) {
	kc := kube.Shared(t)
	start := time.Now()
	ns, relNS := kc.Namespace(t), kc.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	layoutDir, err := nodeagent.DaemonImage(ctx, root, filepath.Join(cache, "flink-gitops", "images"))
	if err != nil {
		t.Fatal(err)
	}
	compressed, uncompressed, err := nodeagent.ImageSize(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon image ready after %s: %.1f MiB compressed, %.1f MiB uncompressed", time.Since(start).Round(time.Millisecond),
		float64(compressed)/(1<<20), float64(uncompressed)/(1<<20))
	host, err := url.Parse(kc.Host)
	if err != nil {
		t.Fatal(err)
	}
	apiPort, _ := strconv.Atoi(host.Port())
	rt := &nodeagent.ImageRuntime{Client: kc.Client(), APIHost: host.Hostname(), APIPort: apiPort, CAData: kc.CAData, Dir: t.TempDir()}
	rt.Register(daemonImageRef, layoutDir)

	dir := t.TempDir()
	seed := filepath.Join(dir, "seed", "apps", "a")
	must(0, os.MkdirAll(seed, 0o755))
	must(0, os.WriteFile(filepath.Join(seed, "kustomization.yaml"), []byte(kustomization), 0o644))
	must(0, os.WriteFile(filepath.Join(seed, "flinkdeployment.yaml"), []byte(strings.ReplaceAll(appSpec("a", "savepoint", 1, ""), "NAMESPACE", ns)), 0o644))
	s, err := stack.Start(ctx, stack.Options{
		Dir: filepath.Join(dir, "stack"), Seed: filepath.Join(dir, "seed"), Kube: kc,
		EntryPoints: []string{"apps/*"}, Namespaces: []string{ns},
		Runtime: nodeagent.ByImage{Images: rt, Default: nodeagent.FlinkRuntime{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s, ns: ns}
	agentDir := filepath.Join(dir, "stack", "pods")
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("node agent and pod logs:\n%s", nodeagent.LogTails(agentDir, 40))
		}
	})

	// The chart's values: the stack's repository, Flink and timings; the
	// git token as a chart-made Secret; each replica binds its own pod IP
	// (the test bed has one network namespace for every pod).
	cfg := s.Config(nil)
	creds := s.Credentials()
	config := map[string]any{
		"git": map[string]any{"url": s.RepoURL, "branch": "main", "entryPoints": []any{"apps/*"}, "pollInterval": "1s", "timeout": "20s",
			"auth": map[string]any{"username": creds.User}},
		"status":         map[string]any{"branch": stack.StatusBranch},
		"flink":          cfg["flink"],
		"reconcile":      cfg["reconcile"],
		"leaderElection": map[string]any{"leaseDuration": "8s", "renewDeadline": "5s", "retryPeriod": "1s"},
		"log":            map[string]any{"level": "info", "format": "text"},
	}
	vals := map[string]any{
		"image":        map[string]any{"repository": "flink-gitops", "tag": "e2e", "pullPolicy": "Never"},
		"replicaCount": 2,
		"rbac":         map[string]any{"namespaces": []any{ns}},
		"secrets":      map[string]any{"git": map[string]any{"token": creds.Password}},
		"webhook":      map[string]any{"enabled": false},
		"extraEnv": []any{
			map[string]any{"name": "POD_IP", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "status.podIP"}}},
			map[string]any{"name": "FLINK_GITOPS_SERVER_LISTEN", "value": "$(POD_IP):8080"},
		},
		"config": config,
	}
	const release, full = "fg", "fg-flink-gitops"
	hcfg := helmConfig(t, kc, relNS)
	helmRun(t, hcfg, relNS, release, vals, false)

	cs := kc.Client()
	eventually(t, 3*time.Minute, "both daemon replicas ready", func() (bool, string) {
		d, err := cs.AppsV1().Deployments(relNS).Get(ctx, full, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.ReadyReplicas == 2, fmt.Sprintf("%+v", d.Status)
	})
	procs := daemonProcs(t, agentDir)
	if len(procs) != 2 {
		t.Fatalf("daemon processes from the image: %v, want 2", procs)
	}
	for pod, pid := range procs {
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(environ), "KUBECONFIG=") {
			t.Errorf("pod %s has a KUBECONFIG: it must use in-cluster credentials", pod)
		}
	}
	holder := func() string {
		l, err := cs.CoordinationV1().Leases(relNS).Get(ctx, full, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	var leader string
	eventually(t, time.Minute, "one replica holding the Lease", func() (bool, string) {
		leader = holder()
		for pod, pid := range procs {
			if leader == fmt.Sprintf("%s-%d", pod, pid) {
				return true, leader
			}
		}
		return false, leader
	})
	alive := func() bool { return len(daemonProcs(t, agentDir)) > 0 }

	// The resource from Git runs on real Flink.
	waitStatus(e, alive, "FlinkDeployment", ns, "a", "the FlinkDeployment RUNNING", 5*time.Minute, stableAt(""))
	t.Logf("leader %s reconciled a onto Flink %s after the start", leader, time.Since(start).Round(time.Millisecond))

	// A config change through helm: a second entry point, live.
	c1 := e.push("b: a suspended job under a second entry point", map[string]string{
		"more/b/kustomization.yaml":   kustomization,
		"more/b/flinkdeployment.yaml": appSpec("b", "savepoint", 1, "    state: suspended\n"),
	})
	config["git"].(map[string]any)["entryPoints"] = []any{"apps/*", "more/*"}
	d0, err := cs.AppsV1().Deployments(relNS).Get(ctx, full, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	helmRun(t, hcfg, relNS, release, vals, true)
	waitStatus(e, alive, "FlinkDeployment", ns, "b", "b reconciled after the entry point was added by a ConfigMap edit", 2*time.Minute,
		func(r lifecycle.ResourceStatus) bool {
			return r.LifecycleState == "SUSPENDED" && r.LastReconciledCommit == c1
		})
	if now := daemonProcs(t, agentDir); !sameProcs(now, procs) {
		t.Errorf("daemon processes changed on a config edit: %v → %v (want a live reload, no restart)", procs, now)
	}
	d1, err := cs.AppsV1().Deployments(relNS).Get(ctx, full, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d1.Generation != d0.Generation {
		t.Errorf("the upgrade rolled the daemon's Deployment (generation %d → %d)", d0.Generation, d1.Generation)
	}

	// SIGKILL of the leader's process: another identity takes the Lease and
	// reconciles the next push.
	leaderPID := 0
	for pod, pid := range procs {
		if leader == fmt.Sprintf("%s-%d", pod, pid) {
			leaderPID = pid
		}
	}
	rss := vmRSS(leaderPID)
	if err := syscall.Kill(leaderPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var next string
	eventually(t, 2*time.Minute, "another identity holding the Lease", func() (bool, string) {
		next = holder()
		return next != "" && next != leader, next
	})
	t.Logf("Lease moved from %s to %s %s after the SIGKILL", leader, next, time.Since(killed).Round(time.Millisecond))
	c2 := e.push("c: a push after the handover", map[string]string{
		"more/c/kustomization.yaml":   kustomization,
		"more/c/flinkdeployment.yaml": appSpec("c", "savepoint", 1, "    state: suspended\n"),
	})
	waitStatus(e, alive, "FlinkDeployment", ns, "c", "c reconciled by the new leader", 2*time.Minute,
		func(r lifecycle.ResourceStatus) bool {
			return r.LifecycleState == "SUSPENDED" && r.LastReconciledCommit == c2
		})
	t.Logf("leader RSS at rest %s; whole test %s", rss, time.Since(start).Round(time.Millisecond))
}

// helmConfig is a Helm action configuration against the test bed for
// releases in ns.
func helmConfig(t *testing.T, kc *kube.Cluster, ns string) *action.Configuration {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kube.WriteKubeconfig(path, kc.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &path, &ns
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// helmRun installs (or, with upgrade, upgrades) the chart in deploy/helm;
// an install is uninstalled in t.Cleanup.
func helmRun(t *testing.T, cfg *action.Configuration, ns, name string, vals map[string]any, upgrade bool) {
	t.Helper()
	ch, err := loader.Load(deployDir("helm/flink-gitops"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if upgrade {
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		up.WaitStrategy, up.Timeout = helmkube.HookOnlyStrategy, 2*time.Minute
		if _, err := up.RunWithContext(ctx, name, ch, vals); err != nil {
			t.Fatalf("helm upgrade %s: %v", name, err)
		}
		return
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = name, ns
	in.WaitStrategy, in.Timeout = helmkube.HookOnlyStrategy, 2*time.Minute
	if _, err := in.RunWithContext(ctx, ch, vals); err != nil {
		t.Fatalf("helm install %s: %v", name, err)
	}
	t.Cleanup(func() {
		u := action.NewUninstall(cfg)
		u.WaitStrategy, u.Timeout = helmkube.HookOnlyStrategy, time.Minute
		if _, err := u.Run(name); err != nil {
			t.Errorf("helm uninstall %s: %v", name, err)
		}
	})
}

// daemonProcs finds the running daemon processes of the image runtime's
// pods under agentDir: pod name → pid (a process whose root is the pod's
// root file system and whose program is /flink-gitops).
func daemonProcs(t *testing.T, agentDir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(agentDir)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		rootLink, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		if err != nil || !strings.HasPrefix(rootLink, abs+"/") || filepath.Base(rootLink) != "rootfs" {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.HasPrefix(string(cmdline), "/flink-gitops\x00") {
			continue
		}
		out[filepath.Base(filepath.Dir(rootLink))] = pid
	}
	return out
}

func sameProcs(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// vmRSS is the VmRSS line of /proc/<pid>/status.
func vmRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
