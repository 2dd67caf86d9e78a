package helm

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/strvals"
	corev1 "k8s.io/api/core/v1"

	"github.com/flink-gitops/flink-gitops/tests/manifests"
)

// setFlag matches one `--set KEY=VALUE` of a shell command line, the value
// single-quoted or bare.
var setFlag = regexp.MustCompile(`--set\s+('([^']*)'|(\S+))`)

// TestREADMEQuickstart keeps the README's "Quickstart: a real cluster"
// true: the `helm install` it shows passes the chart's schema, renders, and
// its config loads with the namespace and entry points the quickstart's
// repository uses.
func TestREADMEQuickstart(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Quickstart: a real cluster")
	if start < 0 {
		t.Fatal(`README has no "## Quickstart: a real cluster"`)
	}
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	cmd := section[strings.Index(section, "helm install "):]
	var lines []string
	for _, l := range strings.Split(cmd, "\n") {
		lines = append(lines, l)
		if !strings.HasSuffix(strings.TrimSpace(l), `\`) {
			break
		}
	}
	vals := map[string]any{}
	for _, m := range setFlag.FindAllStringSubmatch(strings.Join(lines, "\n"), -1) {
		if err := strvals.ParseInto(m[2]+m[3], vals); err != nil {
			t.Fatalf("--set %s: %v", m[1], err)
		}
	}
	if len(vals) == 0 {
		t.Fatalf("no --set in the quickstart's helm install:\n%s", strings.Join(lines, "\n"))
	}
	manifest, err := render(t, "flink-gitops", "flink-gitops", vals)
	if err != nil {
		t.Fatalf("the quickstart's helm install fails: %v", err)
	}
	objs := manifests.Split(t, manifest)
	cm := manifests.Convert[corev1.ConfigMap](t, manifests.Find(objs, "ConfigMap", "flink-gitops", ""))
	cfg := loadConfig(t, cm, "flink-gitops", "git/token")
	if !slices.Equal(cfg.Kubernetes.AllowedNamespaces, []string{"flink"}) || !slices.Equal(cfg.Git.EntryPoints, []string{"apps/*"}) ||
		cfg.Git.Auth.TokenFile == "" || cfg.Webhook.Listen != "" {
		t.Errorf("quickstart config: namespaces %q, entry points %q, token file %q, webhook %q; want [flink], [apps/*], a token file, no webhook",
			cfg.Kubernetes.AllowedNamespaces, cfg.Git.EntryPoints, cfg.Git.Auth.TokenFile, cfg.Webhook.Listen)
	}
	if manifests.Find(objs, "RoleBinding", "flink", "") == nil {
		t.Error("no RoleBinding in namespace flink")
	}
}
