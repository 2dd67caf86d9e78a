package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const shapes = "testdata/shapes"

// TestPlanObjectsGolden: specs in the shapes the operator's documentation
// and examples use (both resource forms, nested configuration, a session
// job with its cluster, ingress, pod templates, logging, HA in native mode,
// TLS keys, a suspended job) pass plan, and -o objects prints exactly the
// objects the daemon would apply. go test -run TestPlanObjectsGolden
// -update rewrites the golden files after a deliberate change.
func TestPlanObjectsGolden(t *testing.T) {
	entries, err := os.ReadDir(shapes)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "invalid" {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), []string{"plan", "--repo", shapes, "--entry", e.Name(), "-o", "objects"}, &out, &errOut)
			if code != exitChanges {
				t.Fatalf("exit %d, want %d (valid, everything new)\n%s%s", code, exitChanges, out.String(), errOut.String())
			}
			if strings.Contains(out.String(), "example-keystore-password") {
				t.Error("plan -o objects prints a secret value")
			}
			golden := filepath.Join("testdata", "objects", e.Name()+".golden.yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if d := cmp.Diff(string(want), out.String()); d != "" {
				t.Errorf("plan -o objects (-golden +got):\n%s", d)
			}
		})
	}
}

// TestPlanExitCodes: 0 valid and nothing to do, 1 valid with changes, 2 a
// spec is invalid, 3 plan could not run; validate 0/2/3.
func TestPlanExitCodes(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "kustomization.yaml"), []byte("resources: []\n"), 0o644)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("git: {url: 'https://h/r', entryPoints: [invalid]}\nkubernetes: {allowedNamespaces: [flink], defaultNamespace: flink}\n"), 0o644)
	cfgOK := filepath.Join(dir, "ok.yaml")
	os.WriteFile(cfgOK, []byte("git: {url: 'https://h/r', entryPoints: [resources-form, session-pair]}\nkubernetes: {allowedNamespaces: [flink], defaultNamespace: flink}\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"plan", "--repo", dir, "--entry", "empty"}, exitOK, "0 resources valid"},
		{[]string{"plan", "--repo", shapes, "--entry", "resources-form"}, exitChanges, "1 resources valid"},
		{[]string{"plan", "--repo", shapes, "--entry", "resources-form", "--entry", "invalid"}, exitInvalid, "spec.jobManager.resources.requests.memory: 512 mb is below"},
		{[]string{"plan", "--repo", shapes, "--entry", "missing"}, exitInvalid, "does not exist in the repository"},
		{[]string{"plan", "--repo", shapes, "--entry", "resources-form", "-o", "yaml"}, exitError, ""},
		{[]string{"plan", "--repo", shapes, "--bogus"}, exitError, ""},
		{[]string{"plan", "--repo", filepath.Join(dir, "nope"), "--entry", "x"}, exitError, ""},
		{[]string{"plan", "--repo", shapes, "--entry", "resources-form", "--kubeconfig", filepath.Join(dir, "nope")}, exitError, ""},
		{[]string{"validate", "--config", cfgOK, "--repo", shapes}, exitOK, "3 resources valid"},
		{[]string{"validate", "--config", cfg, "--repo", shapes}, exitInvalid, "512 mb is below"},
		{[]string{"validate", "--config", cfg, "--repo", filepath.Join(dir, "nope")}, exitError, ""},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := dispatch(context.Background(), c.args, &out, &errOut); code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", code, c.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), c.out) {
				t.Errorf("stdout lacks %q:\n%s", c.out, out.String())
			}
		})
	}
}

// TestPlanJSON: -o json carries the resources, problems and warnings with
// their file, field and fix, for tools.
func TestPlanJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"plan", "--repo", shapes, "--entry", "legacy-resource", "--entry", "invalid", "-o", "json"}, &out, &errOut)
	if code != exitInvalid {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	var got struct {
		Resources []planResource `json:"resources"`
		Invalid   []string       `json:"invalid"`
		Problems  []planProblem  `json:"problems"`
		Warnings  []planProblem  `json:"warnings"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got.Resources) != 1 || got.Resources[0].Name != "legacy" || len(got.Invalid) != 1 || len(got.Problems) != 1 {
		t.Fatalf("unexpected plan: %s", out.String())
	}
	p := got.Problems[0]
	if p.File != "invalid/deployment.yaml" || p.Field != "spec.jobManager.resources.requests.memory" || !strings.Contains(p.Fix, "577 mb") {
		t.Errorf("problem %+v: want file, field and the fix with the minimum", p)
	}
	var fields []string
	for _, w := range got.Warnings {
		fields = append(fields, w.Field)
	}
	for _, want := range []string{`spec.flinkConfiguration["kubernetes.operator.job.upgrade.ignore-pending-savepoint"]`} {
		if !strings.Contains(strings.Join(fields, "\n"), want) {
			t.Errorf("warnings %v lack %s", fields, want)
		}
	}
	// The legacy resource runs v1_19, which the test bed runs: no warning.
	if strings.Contains(strings.Join(fields, "\n"), "spec.flinkVersion") {
		t.Errorf("warnings %v have spec.flinkVersion; v1_19 is tested", fields)
	}
}
