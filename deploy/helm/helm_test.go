// Package helm tests the chart in flink-gitops/ with the Helm Go SDK: lint,
// golden templates, schema and template refusals, the RBAC rules against
// deploy/base, the rendered config against the daemon's loader, and an
// install and upgrade into the test bed's kube-apiserver with the granted
// access checked by access reviews.
package helm

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/tests/manifests"
)

var update = flag.Bool("update", false, "rewrite the golden templates in testdata/ and the config part of values.schema.json")

const chartDir = "flink-gitops"

// testKubeVersion is the test bed's Kubernetes version, which templates
// render for (Helm's default, 1.20, is older than the chart allows).
var testKubeVersion = must(common.ParseKubeVersion("v1.37.2"))

// render renders the chart as `helm template NAME -n NS` does, with vals
// over values.yaml, and returns its objects.
func render(t *testing.T, name, ns string, vals map[string]any) (string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	cfg.Releases = storage.Init(driver.NewMemory())
	in := action.NewInstall(cfg)
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName, in.Namespace, in.Replace = name, ns, true
	in.KubeVersion = testKubeVersion
	rel, err := in.Run(ch, vals)
	if err != nil {
		return "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("release of type %T", rel)
	}
	return r.Manifest, nil
}

// withSecrets are values that create the git and webhook Secrets.
func withSecrets() map[string]any {
	return map[string]any{"secrets": map[string]any{"git": map[string]any{"token": "t0ken"}, "webhook": map[string]any{"secret": "s3cret"}}}
}

func TestLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{"default": withSecrets(), "namespaced": namespacedValues(), "files": filesValues()} {
		t.Run(name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = "flink-gitops"
			l.KubeVersion = testKubeVersion
			res := l.Run([]string{chartDir}, vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
				t.Errorf("helm lint --strict: %d charts linted, errors %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

func namespacedValues() map[string]any {
	v := withSecrets()
	v["rbac"] = map[string]any{"namespaced": true, "namespaces": []any{}}
	return v
}

// TestTemplateGolden renders the chart like `helm template` and compares it
// with testdata/*.yaml; -update rewrites them.
func TestTemplateGolden(t *testing.T) {
	all := withSecrets()
	all["image"] = map[string]any{"repository": "registry.example.com/flink-gitops", "digest": "sha256:" + strings.Repeat("ab", 32)}
	all["ingress"] = map[string]any{"enabled": true, "className": "nginx", "host": "hooks.example.com"}
	all["serviceMonitor"] = map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}}
	all["rbac"] = map[string]any{"namespaces": []any{"flink", "flink-batch"}}
	all["config"] = map[string]any{"git": map[string]any{"url": "https://git.example.com/flink.git", "entryPoints": []any{"prod"}},
		"pullRequests": map[string]any{"enabled": true, "provider": "github", "owner": "platform", "repository": "flink"}}
	all["secrets"].(map[string]any)["forge"] = map[string]any{"existingSecret": "forge-token"}
	cases := []struct {
		name string
		vals map[string]any
	}{
		{"default", withSecrets()},
		{"namespaced", namespacedValues()},
		{"everything", all},
		{"files", filesValues()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := render(t, "flink-gitops", "flink-gitops", c.vals)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./deploy/helm -run TestTemplateGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("rendered chart differs from %s (after an intended change: go test ./deploy/helm -run TestTemplateGolden -update):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", i+1, a, b)
		}
	}
	return ""
}

// TestRefusals: wrong values fail the install with a message that says
// what to fix, from the schema or from the templates.
func TestRefusals(t *testing.T) {
	with := func(mod func(v map[string]any)) map[string]any {
		v := withSecrets()
		mod(v)
		return v
	}
	cases := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown top-level key", with(func(v map[string]any) { v["replicas"] = 3 }), "replicas"},
		{"replicaCount a string", with(func(v map[string]any) { v["replicaCount"] = "2" }), "replicaCount"},
		{"unknown image key", with(func(v map[string]any) { v["image"] = map[string]any{"name": "x"} }), "name"},
		{"digest not a digest", with(func(v map[string]any) { v["image"] = map[string]any{"digest": "latest"} }), "digest"},
		{"namespaces not a list", with(func(v map[string]any) { v["rbac"] = map[string]any{"namespaces": "flink"} }), "namespaces"},
		{"namespace not a name", with(func(v map[string]any) { v["rbac"] = map[string]any{"namespaces": []any{"Flink_Prod"}} }), "namespaces"},
		{"unknown config section", with(func(v map[string]any) { v["config"] = map[string]any{"gti": map[string]any{}} }), "gti"},
		{"unknown config key", with(func(v map[string]any) {
			v["config"] = map[string]any{"git": map[string]any{"url": "https://x", "pollIntervall": "1m"}}
		}), "pollIntervall"},
		{"duration as a number", with(func(v map[string]any) {
			v["config"] = map[string]any{"git": map[string]any{"url": "https://x", "pollInterval": 60}}
		}), "pollInterval"},
		{"chart-owned config key", with(func(v map[string]any) {
			v["config"] = map[string]any{"kubernetes": map[string]any{"allowedNamespaces": []any{"x"}}}
		}), "allowedNamespaces"},
		{"webhook provider", with(func(v map[string]any) {
			v["secrets"].(map[string]any)["webhook"] = map[string]any{"secret": "x", "provider": "bitbucket"}
		}), "provider"},
		{"webhook without secret", map[string]any{}, "webhook.enabled needs secrets.webhook"},
		{"unused webhook secret", with(func(v map[string]any) { v["webhook"] = map[string]any{"enabled": false} }), "webhook.enabled is false"},
		{"existing and value", with(func(v map[string]any) {
			v["secrets"].(map[string]any)["git"] = map[string]any{"token": "x", "existingSecret": "y"}
		}), "not both"},
		{"pull requests without token", with(func(v map[string]any) {
			v["config"] = map[string]any{"pullRequests": map[string]any{"enabled": true}}
		}), "needs secrets.forge"},
		{"no namespaces", with(func(v map[string]any) { v["rbac"] = map[string]any{"namespaces": []any{}} }), "rbac.namespaces is empty"},
		{"namespaced with another namespace", with(func(v map[string]any) { v["rbac"] = map[string]any{"namespaced": true} }), "release namespace"},
		{"default namespace not bound", with(func(v map[string]any) {
			v["config"] = map[string]any{"kubernetes": map[string]any{"defaultNamespace": "prod"}}
		}), "defaultNamespace"},
		{"PDB blocks drains", with(func(v map[string]any) { v["replicaCount"] = 1 }), "minAvailable"},
		{"ingress without webhook", with(func(v map[string]any) {
			v["webhook"] = map[string]any{"enabled": false}
			v["secrets"].(map[string]any)["webhook"] = map[string]any{}
			v["ingress"] = map[string]any{"enabled": true}
		}), "ingress.enabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, "flink-gitops", "flink-gitops", c.vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want an error naming %q, got %v", c.want, err)
			}
		})
	}
}

// TestRBACMatchesKustomize: the chart grants exactly the rules of
// deploy/base (ClusterRole and leader-election Role) and of the namespaced
// overlay, so the two installs cannot drift apart.
func TestRBACMatchesKustomize(t *testing.T) {
	base := manifests.Build(t, filepath.Join("..", "base"))
	overlay := manifests.Build(t, filepath.Join("..", "overlays/namespaced"))
	cluster := manifests.Split(t, must(render(t, "flink-gitops", "flink-gitops", withSecrets())))
	namespaced := manifests.Split(t, must(render(t, "flink-gitops", "flink", namespacedValues())))

	rules := func(o *unstructured.Unstructured) string {
		if o == nil {
			t.Fatal("missing role")
		}
		r, _, _ := unstructured.NestedSlice(o.Object, "rules")
		b, _ := json.Marshal(r)
		return string(b)
	}
	pairs := []struct{ what, chart, kustomize string }{
		{"ClusterRole", rules(manifests.Find(cluster, "ClusterRole", "", "flink-gitops")), rules(manifests.Find(base, "ClusterRole", "", "flink-gitops"))},
		{"leader-election Role", rules(manifests.Find(cluster, "Role", "flink-gitops", "flink-gitops-leader-election")), rules(manifests.Find(base, "Role", "flink-gitops", "flink-gitops-leader-election"))},
		{"namespaced Role", rules(manifests.Find(namespaced, "Role", "flink", "flink-gitops")), rules(manifests.Find(overlay, "Role", "flink", "flink-gitops"))},
	}
	for _, p := range pairs {
		if p.chart != p.kustomize {
			t.Errorf("%s: the chart's rules differ from deploy/'s:\nchart     %s\nkustomize %s", p.what, p.chart, p.kustomize)
		}
	}
	// Which objects bind what, where: the same shape as the kustomize installs.
	for _, c := range []struct {
		name string
		objs []*unstructured.Unstructured
		want []string
	}{
		{"cluster", cluster, []string{"ClusterRole /flink-gitops",
			"RoleBinding flink-gitops/flink-gitops-leader-election Role/flink-gitops-leader-election",
			"RoleBinding flink/flink-gitops ClusterRole/flink-gitops",
			"Role flink-gitops/flink-gitops-leader-election"}},
		{"namespaced", namespaced, []string{"Role flink/flink-gitops", "Role flink/flink-gitops-leader-election",
			"RoleBinding flink/flink-gitops Role/flink-gitops",
			"RoleBinding flink/flink-gitops-leader-election Role/flink-gitops-leader-election"}},
	} {
		var got []string
		for _, o := range c.objs {
			switch o.GetKind() {
			case "ClusterRoleBinding":
				t.Errorf("%s: the chart binds cluster-wide: %s", c.name, o.GetName())
			case "ClusterRole", "Role":
				got = append(got, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
			case "RoleBinding":
				rb := manifests.Convert[rbacv1.RoleBinding](t, o)
				got = append(got, fmt.Sprintf("RoleBinding %s/%s %s/%s", rb.Namespace, rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name))
				if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "flink-gitops" || rb.Subjects[0].Namespace != manifests.Find(c.objs, "Deployment", "", "").GetNamespace() {
					t.Errorf("%s: RoleBinding %s/%s subjects %+v", c.name, rb.Namespace, rb.Name, rb.Subjects)
				}
			}
			if c.name == "namespaced" && o.GetNamespace() != "flink" {
				t.Errorf("namespaced: %s %s is cluster-scoped or elsewhere (%q)", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s RBAC objects:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestDeploymentMatchesKustomize: the pod the chart runs is deploy/base's
// (hardening, probes, args, config as a directory mount, Secrets as files),
// apart from the replica count and the names the release chooses.
func TestDeploymentMatchesKustomize(t *testing.T) {
	base := manifests.Build(t, filepath.Join("..", "base"))
	chart := manifests.Split(t, must(render(t, "flink-gitops", "flink-gitops", withSecrets())))
	pod := func(o *unstructured.Unstructured) map[string]any {
		v, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "template", "spec")
		spec := v.(map[string]any)
		c := spec["containers"].([]any)[0].(map[string]any)
		c["image"], c["imagePullPolicy"] = "", ""
		return spec
	}
	b, c := pod(manifests.Find(base, "Deployment", "", "flink-gitops")), pod(manifests.Find(chart, "Deployment", "", "flink-gitops"))
	bj, _ := json.MarshalIndent(b, "", " ")
	cj, _ := json.MarshalIndent(c, "", " ")
	if string(bj) != string(cj) {
		t.Errorf("the chart's pod differs from deploy/base's:\n%s", diffLines(string(bj), string(cj)))
	}
	d := manifests.Find(chart, "Deployment", "", "")
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
		t.Errorf("replicas %v, want 2 (a warm standby)", n)
	}
	if manifests.Find(chart, "PodDisruptionBudget", "flink-gitops", "flink-gitops") == nil {
		t.Error("no PodDisruptionBudget")
	}
	if manifests.Find(chart, "ServiceMonitor", "", "") != nil || manifests.Find(chart, "Ingress", "", "") != nil {
		t.Error("ServiceMonitor and Ingress are rendered only when enabled")
	}
}

// loadConfig loads the config in the chart's ConfigMap cm with the daemon's
// loader, as a pod of namespace ns would: the secret files (paths under
// /var/run/secrets/flink-gitops) exist, moved under a temporary root.
func loadConfig(t *testing.T, cm *corev1.ConfigMap, ns string, secrets ...string) *config.Config {
	t.Helper()
	root := t.TempDir()
	text := strings.ReplaceAll(cm.Data["config.yaml"], "/var/run/secrets/", root+"/var/run/secrets/")
	for _, f := range secrets {
		p := filepath.Join(root, "var/run/secrets/flink-gitops", f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(root, "config.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{File: file, Environ: []string{"FLINK_GITOPS_LEADER_ELECTION_NAMESPACE=" + ns}})
	if err != nil {
		t.Fatalf("the chart's config does not load:\n%s\n%v", cm.Data["config.yaml"], err)
	}
	return cfg
}

// TestConfigLoads: the config the chart renders loads in the daemon with
// the Secrets mounted where the pod has them, and says what the objects
// say (namespaces bound, the Lease the Role grants, the ports).
func TestConfigLoads(t *testing.T) {
	for name, c := range map[string]struct {
		ns     string
		vals   map[string]any
		target []string
	}{
		"default":    {"flink-gitops", withSecrets(), []string{"flink"}},
		"namespaced": {"flink", namespacedValues(), []string{"flink"}},
		"two namespaces": {"ops", func() map[string]any {
			v := withSecrets()
			v["rbac"] = map[string]any{"namespaces": []any{"a", "b"}}
			v["fullnameOverride"] = "gitops"
			v["config"] = map[string]any{"git": map[string]any{"url": "https://git.example.com/x.git"},
				"leaderElection": map[string]any{"leaseDuration": "20s"}, "kubernetes": map[string]any{"defaultNamespace": "b"}}
			return v
		}(), []string{"a", "b"}},
	} {
		t.Run(name, func(t *testing.T) {
			objs := manifests.Split(t, must(render(t, "rel", c.ns, c.vals)))
			cm := manifests.Convert[corev1.ConfigMap](t, manifests.Find(objs, "ConfigMap", c.ns, ""))
			cfg := loadConfig(t, cm, c.ns, "git/token", "webhook/secret")
			role := manifests.Find(objs, "Role", c.ns, "")
			for _, o := range objs {
				if o.GetKind() == "Role" && strings.HasSuffix(o.GetName(), "-leader-election") {
					role = o
				}
			}
			lease := fmt.Sprint(manifests.Convert[rbacv1.Role](t, role).Rules[1].ResourceNames)
			if !cfg.LeaderElection.Enabled || "["+cfg.LeaderElection.LeaseName+"]" != lease || cfg.LeaderElection.Namespace != c.ns {
				t.Errorf("leader election %+v, the Role grants the Lease %s", cfg.LeaderElection, lease)
			}
			if !slices.Equal(cfg.Kubernetes.AllowedNamespaces, c.target) {
				t.Errorf("allowedNamespaces %q, want %q", cfg.Kubernetes.AllowedNamespaces, c.target)
			}
			for _, ns := range c.target {
				if manifests.Find(objs, "RoleBinding", ns, "") == nil {
					t.Errorf("allowed namespace %s has no RoleBinding", ns)
				}
			}
			if cfg.Server.Listen != ":8080" || cfg.Webhook.Listen != ":9292" || cfg.Git.Auth.TokenFile == "" || cfg.Webhook.Secrets.GitHubFile == "" {
				t.Errorf("server %+v webhook %+v git auth %+v", cfg.Server, cfg.Webhook, cfg.Git.Auth)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// chartOwned are the config keys the chart sets from other values; the
// schema refuses them under config.
var chartOwned = map[string]bool{
	"kubernetes.allowedNamespaces": true, "kubernetes.kubeconfig": true, "kubernetes.context": true,
	"leaderElection.enabled": true, "leaderElection.leaseName": true, "leaderElection.namespace": true,
	"server.listen": true, "webhook.listen": true, "webhook.secrets": true,
	"git.auth.tokenFile": true, "pullRequests.tokenFile": true,
	"git.auth.sshKeyFile": true, "git.auth.sshKeyPassphraseFile": true, "git.auth.knownHostsFile": true,
	"git.verify": true, "flink.tls": true,
}

// configSchema is the JSON schema of the daemon's config types minus the
// chart-owned keys: every key known, each of its type.
func configSchema(t reflect.Type, path string) map[string]any {
	if t == reflect.TypeFor[time.Duration]() {
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": configSchema(t.Elem(), path+"[]")}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": configSchema(t.Elem(), path+".*")}
	case reflect.Struct:
		props := map[string]any{}
		for f := range t.Fields() {
			key := f.Tag.Get("koanf")
			if key == "" || key == "-" {
				continue
			}
			p := strings.TrimPrefix(path+"."+key, ".")
			if chartOwned[p] {
				continue
			}
			props[key] = configSchema(f.Type, p)
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	}
	panic(fmt.Sprintf("config key %s: no JSON schema for %s", path, t))
}

// TestSchemaConfig: values.schema.json's config part is the daemon's config
// types (so a key the daemon gains or loses cannot be forgotten); -update
// regenerates it.
func TestSchemaConfig(t *testing.T) {
	file := filepath.Join(chartDir, "values.schema.json")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	want := configSchema(reflect.TypeFor[config.Config](), "")
	want["description"] = "The daemon's config (README, Configuration) without the keys the chart sets; generated by go test ./deploy/helm -run TestSchemaConfig -update."
	props := schema["properties"].(map[string]any)
	if *update {
		props["config"] = want
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(schema); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, _ := json.Marshal(props["config"])
	w, _ := json.Marshal(want)
	if string(got) != string(w) {
		t.Errorf("%s: the config schema is not the daemon's config types; run go test ./deploy/helm -run TestSchemaConfig -update", file)
	}
	for k := range chartOwned {
		if !keyExists(reflect.TypeFor[config.Config](), k) {
			t.Errorf("chartOwned lists %s, which the daemon's config does not have", k)
		}
	}
}

func keyExists(t reflect.Type, path string) bool {
	first, rest, _ := strings.Cut(path, ".")
	for f := range t.Fields() {
		if f.Tag.Get("koanf") == first {
			return rest == "" || keyExists(f.Type, rest)
		}
	}
	return false
}
