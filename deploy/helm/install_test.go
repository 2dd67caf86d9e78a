package helm

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flink-gitops/flink-gitops/tests/access"
	testkube "github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

func TestMain(m *testing.M) { os.Exit(testkube.Main(m)) }

// helmConfig is an action configuration against the test bed for releases
// in namespace ns (stored as Secrets there, like the helm CLI).
func helmConfig(t *testing.T, kc *testkube.Cluster, ns string) *action.Configuration {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := testkube.WriteKubeconfig(path, kc.RESTConfig()); err != nil {
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

func install(t *testing.T, cfg *action.Configuration, name, ns string, vals map[string]any) *release.Release {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = name, ns
	// No kubelet here: wait for nothing but hooks (the chart has none).
	in.WaitStrategy, in.Timeout = kube.HookOnlyStrategy, 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rel, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		t.Fatalf("helm install %s: %v", name, err)
	}
	t.Cleanup(func() {
		u := action.NewUninstall(cfg)
		u.WaitStrategy, u.Timeout = kube.HookOnlyStrategy, time.Minute
		if _, err := u.Run(name); err != nil {
			t.Errorf("helm uninstall %s: %v", name, err)
		}
	})
	return rel.(*release.Release)
}

func upgrade(t *testing.T, cfg *action.Configuration, name, ns string, vals map[string]any) *release.Release {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = ns
	up.WaitStrategy, up.Timeout = kube.HookOnlyStrategy, 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rel, err := up.RunWithContext(ctx, name, ch, vals)
	if err != nil {
		t.Fatalf("helm upgrade %s: %v", name, err)
	}
	return rel.(*release.Release)
}

// TestInstallAndUpgrade installs the chart into the test bed's
// kube-apiserver with the Helm SDK, checks with access reviews that its
// ServiceAccount may do exactly what the daemon needs (the tables the
// kustomize install is checked against), then upgrades it to another
// namespace list and config and checks the rights moved and the config
// changed in place. A second release in namespaced mode gets the same
// checks with the daemon and Flink in one namespace.
func TestInstallAndUpgrade(t *testing.T) {
	kc := testkube.Shared(t)
	start := time.Now()
	relNS, target, target2, other := kc.Namespace(t), kc.Namespace(t), kc.Namespace(t), kc.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const name, full = "fg", "fg-flink-gitops"

	cfg := helmConfig(t, kc, relNS)
	vals := withSecrets()
	vals["rbac"] = map[string]any{"namespaces": []any{target}}
	rel := install(t, cfg, name, relNS, vals)
	if rel.Version != 1 {
		t.Errorf("release version %d", rel.Version)
	}
	sa, err := kc.ServiceAccountConfig(ctx, relNS, full)
	if err != nil {
		t.Fatal(err)
	}
	access.Check(t, sa, access.Install{Namespace: relNS, Lease: full, Target: target, Other: other}, "the chart")
	cs := kc.Client()
	if _, err := cs.PolicyV1().PodDisruptionBudgets(relNS).Get(ctx, full, metav1.GetOptions{}); err != nil {
		t.Errorf("PodDisruptionBudget: %v", err)
	}
	cm, err := cs.CoreV1().ConfigMaps(relNS).Get(ctx, full+"-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid := cm.UID

	// Upgrade: Flink moves to target2, the log level changes.
	vals["rbac"] = map[string]any{"namespaces": []any{target2}}
	vals["config"] = map[string]any{"git": map[string]any{"url": "https://git.example.com/x.git", "entryPoints": []any{"prod"}},
		"log": map[string]any{"level": "debug"}}
	rel = upgrade(t, cfg, name, relNS, vals)
	if rel.Version != 2 || rel.Info.Status != "deployed" {
		t.Errorf("after the upgrade: version %d status %s", rel.Version, rel.Info.Status)
	}
	access.Check(t, sa, access.Install{Namespace: relNS, Lease: full, Target: target2, Other: target}, "the upgraded chart")
	if _, err := cs.RbacV1().RoleBindings(target).Get(ctx, full, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the RoleBinding in the namespace dropped from rbac.namespaces: want NotFound, got %v", err)
	}
	cm, err = cs.CoreV1().ConfigMaps(relNS).Get(ctx, full+"-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The same object, updated (what the kubelet turns into a symlink swap
	// in the mounted directory, and the daemon into a reload).
	if cm.UID != uid || !strings.Contains(cm.Data["config.yaml"], "level: debug") || !strings.Contains(cm.Data["config.yaml"], "- "+target2) {
		t.Errorf("config after the upgrade (uid %s, was %s):\n%s", cm.UID, uid, cm.Data["config.yaml"])
	}

	t.Run("namespaced", func(t *testing.T) {
		ns, other := kc.Namespace(t), kc.Namespace(t)
		cfg := helmConfig(t, kc, ns)
		install(t, cfg, "flink-gitops", ns, namespacedValues())
		sa, err := kc.ServiceAccountConfig(ctx, ns, "flink-gitops")
		if err != nil {
			t.Fatal(err)
		}
		access.Check(t, sa, access.Install{Namespace: ns, Lease: "flink-gitops", Target: ns, Other: other}, "the namespaced chart")
		crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=flink-gitops"})
		if err != nil || len(crs.Items) != 0 {
			t.Errorf("namespaced mode created ClusterRoles: %v %v", crs, err)
		}
	})
	// Every credential mount and an extra volume: the apiserver accepts the
	// pod (unique volume names, each mount of a volume, modes in range).
	t.Run("files", func(t *testing.T) {
		ns := kc.Namespace(t)
		vals := filesValues()
		vals["rbac"] = map[string]any{"namespaced": true, "namespaces": []any{}}
		install(t, helmConfig(t, kc, ns), "flink-gitops", ns, vals)
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "flink-gitops", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.Spec.Template.Spec.Volumes); n != 8 {
			t.Errorf("the stored pod has %d volumes, want 8 (config, tmp, webhook, ssh, verify, flink-tls, artifacts, jars)", n)
		}
	})
	t.Logf("install, upgrade, namespaced and files installs checked in %s", time.Since(start).Round(time.Millisecond))
}
