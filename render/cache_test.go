package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func overlayRepo(t testing.TB, n int) MapSource {
	src := MapSource{Files: map[string][]byte{
		"base/kustomization.yaml": []byte("resources: [deployment.yaml]\n"),
		"base/deployment.yaml":    yamlDocs(t, validDeployment("orders")),
		"README.md":               []byte("docs\n"),
	}}
	for i := 0; i < n; i++ {
		src.Files[fmt.Sprintf("overlays/o%d/kustomization.yaml", i)] = []byte(fmt.Sprintf(
			"namespace: ns%d\nresources: [../../base]\npatches:\n- path: patch.yaml\ncommonLabels: {overlay: o%d}\n", i, i))
		src.Files[fmt.Sprintf("overlays/o%d/patch.yaml", i)] = []byte(fmt.Sprintf(
			"apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: orders}\nspec:\n  job: {parallelism: %d}\n", i+1))
	}
	return src
}

func clone(src MapSource) MapSource {
	out := MapSource{Files: map[string][]byte{}, Links: src.Links}
	for k, v := range src.Files {
		out.Files[k] = v
	}
	return out
}

func hashes(res *Result) map[Key]string {
	out := map[Key]string{}
	for _, r := range res.Resources {
		out[r.Key()] = r.Hash
	}
	return out
}

// TestIncrementalRender checks that only entry points whose input files
// changed are rebuilt, and that reused builds give the same result as a
// fresh render.
func TestIncrementalRender(t *testing.T) {
	ctx := context.Background()
	opts := Options{EntryPoints: []string{"overlays/*"}, DefaultNamespace: "flink"}
	r := NewRenderer()
	src := overlayRepo(t, 3)
	steps := []struct {
		name          string
		change        func(s MapSource)
		built, reused int
	}{
		{"first render builds everything", func(MapSource) {}, 3, 0},
		{"same snapshot reuses everything", func(MapSource) {}, 0, 3},
		{"unrelated file changed", func(s MapSource) { s.Files["README.md"] = []byte("more docs\n") }, 0, 3},
		{"unreferenced file added to an overlay", func(s MapSource) { s.Files["overlays/o1/notes.txt"] = []byte("x") }, 0, 3},
		{"one overlay's patch changed", func(s MapSource) {
			s.Files["overlays/o1/patch.yaml"] = []byte("apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: orders}\nspec:\n  job: {parallelism: 7}\n")
		}, 1, 2},
		{"shared base changed", func(s MapSource) {
			d := validDeployment("orders")
			set(d, "spec/image", "flink:2.1")
			s.Files["base/deployment.yaml"] = yamlDocs(t, d)
		}, 3, 0},
		{"alternative kustomization file name appears", func(s MapSource) { s.Files["overlays/o2/kustomization.yml"] = []byte("resources: []\n") }, 1, 2},
		{"entry point removed", func(s MapSource) {
			delete(s.Files, "overlays/o0/kustomization.yaml")
			delete(s.Files, "overlays/o0/patch.yaml")
		}, 0, 2},
	}
	for _, st := range steps {
		next := clone(src)
		st.change(next)
		src = next
		res, err := r.Render(ctx, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Built != st.built || res.Reused != st.reused {
			t.Fatalf("%s: built %d reused %d, want %d and %d", st.name, res.Built, res.Reused, st.built, st.reused)
		}
		fresh, err := NewRenderer().Render(ctx, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(hashes(fresh), hashes(res)); diff != "" {
			t.Fatalf("%s: cached render differs from a fresh one (-fresh +cached):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(problemLines(fresh.Problems), problemLines(res.Problems)); diff != "" {
			t.Fatalf("%s: problems differ (-fresh +cached):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(problemLines(fresh.Warnings), problemLines(res.Warnings)); diff != "" {
			t.Fatalf("%s: warnings differ (-fresh +cached):\n%s", st.name, diff)
		}
	}
}

func TestSpecHashStable(t *testing.T) {
	flat := validDeployment("orders")
	nested := validDeployment("orders")
	set(nested, "spec/flinkConfiguration", map[string]any{"state": map[string]any{"checkpoints.dir": "file:///cp", "savepoints": map[string]any{"dir": "file:///sp"}}})
	changed := validDeployment("orders")
	set(changed, "spec/job/parallelism", 3)
	h := func(obj map[string]any) string {
		res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources: [r.yaml]\n", "app/r.yaml": string(yamlDocs(t, obj))}, Options{DefaultNamespace: "flink"})
		if len(res.Resources) != 1 {
			t.Fatalf("problems: %v", problemLines(res.Problems))
		}
		return res.Resources[0].Hash
	}
	a, b, c := h(flat), h(nested), h(changed)
	if a != b {
		t.Errorf("flat and nested flinkConfiguration hash differently: %s vs %s", a, b)
	}
	if a == c {
		t.Errorf("a parallelism change kept the hash %s", a)
	}
	if len(a) != 16 {
		t.Errorf("hash %q is not 16 hex characters", a)
	}
}

func TestDirSourceAndPlanDir(t *testing.T) {
	dir := t.TempDir()
	src := overlayRepo(t, 2)
	for p, b := range src.Files {
		writeFile(t, dir, p, b)
	}
	ds, err := NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.BlobHash("base/deployment.yaml")
	if got, ok := ds.BlobHash("base/deployment.yaml"); !ok || got != want {
		t.Fatalf("blob hash %s, want %s", got, want)
	}
	// Git's hash of "hello\n" (git hash-object).
	if GitBlobHash([]byte("hello\n")) != "ce013625030ba8dba906f756967f9e9ca394464a" {
		t.Fatal("GitBlobHash does not match git hash-object")
	}
	res, err := PlanDir(context.Background(), dir, Options{EntryPoints: []string{"overlays/*"}, DefaultNamespace: "flink"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resources) != 2 || !res.OK() {
		t.Fatalf("resources %d problems %v", len(res.Resources), problemLines(res.Problems))
	}
}

// TestDirSourceSymlinks uses real symlinks: one inside the repository is
// followed, ones leaving it are refused with the link named.
func TestDirSourceSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, outside, "secret.yaml", yamlDocs(t, validDeployment("stolen")))
	writeFile(t, dir, "shared/orders.yaml", yamlDocs(t, validDeployment("orders")))
	writeFile(t, dir, "in/kustomization.yaml", []byte("resources: [orders.yaml]\n"))
	writeFile(t, dir, "out/kustomization.yaml", []byte("resources: [secret.yaml]\n"))
	writeFile(t, dir, "abs/kustomization.yaml", []byte("resources: [secret.yaml]\n"))
	for link, target := range map[string]string{
		"in/orders.yaml":  "../shared/orders.yaml",
		"out/secret.yaml": filepath.Join("..", "..", filepath.Base(outside), "secret.yaml"),
		"abs/secret.yaml": filepath.Join(outside, "secret.yaml"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := PlanDir(context.Background(), dir, Options{EntryPoints: []string{"in", "out", "abs"}, DefaultNamespace: "flink"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resources) != 1 || res.Resources[0].Key().Name != "orders" {
		t.Fatalf("want only orders, got %+v", res.Resources)
	}
	want := []string{
		"abs: abs/kustomization.yaml: resources[0]: symlink abs/secret.yaml points to the absolute path " + filepath.Join(outside, "secret.yaml") + ", outside the repository (fix: " + badFix + ")",
		"out: out/kustomization.yaml: resources[0]: symlink out/secret.yaml points to ../../" + filepath.Base(outside) + "/secret.yaml, outside the repository (fix: " + badFix + ")",
	}
	if diff := cmp.Diff(want, problemLines(res.Problems)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// TestCustomOpenAPISchemaDoesNotLeak: an entry point with its own OpenAPI
// schema is built between two that use the default one; all three render
// as they do alone.
func TestCustomOpenAPISchemaDoesNotLeak(t *testing.T) {
	schema := `{"definitions": {"v1beta1.FlinkDeployment": {"properties": {"spec": {"properties": {"podTemplate": {"properties": {"spec": {"properties": {"containers": {"items": {"type": "object"}, "type": "array", "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}}, "type": "object"}}, "type": "object"}}, "type": "object"}}, "type": "object", "x-kubernetes-group-version-kind": [{"group": "flink.apache.org", "kind": "FlinkDeployment", "version": "v1beta1"}]}}}`
	base := validDeployment("orders")
	set(base, "spec/podTemplate", map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "flink-main-container", "env": []any{map[string]any{"name": "A", "value": "1"}}}}}})
	patch := `apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: orders}
spec:
  podTemplate:
    spec:
      containers:
      - name: sidecar
        image: busybox
`
	files := map[string]string{
		"base/kustomization.yaml": "resources: [d.yaml]\n",
		"base/d.yaml":             string(yamlDocs(t, base)),
	}
	for _, e := range []string{"a", "b", "c"} {
		k := "namespace: " + e + "\nresources: [../base]\npatches:\n- path: p.yaml\n"
		if e == "b" {
			k += "openapi:\n  path: schema.json\n"
			files["b/schema.json"] = schema
		}
		files[e+"/kustomization.yaml"] = k
		files[e+"/p.yaml"] = patch
	}
	containers := func(res *Result, ns string) int {
		r, ok := res.Lookup(Key{"FlinkDeployment", ns, "orders"})
		if !ok {
			t.Fatalf("%s/orders missing; problems %v", ns, problemLines(res.Problems))
		}
		return len(r.Deployment.Spec.PodTemplate.Spec.Containers)
	}
	together := renderFiles(t, files, Options{EntryPoints: []string{"a", "b", "c"}})
	for _, e := range []string{"a", "b", "c"} {
		alone := renderFiles(t, files, Options{EntryPoints: []string{e}})
		if got, want := containers(together, e), containers(alone, e); got != want {
			t.Errorf("entry point %s: %d containers rendered together, %d alone", e, got, want)
		}
	}
	// With the merge key, b merges the sidecar into the list; without a
	// schema for the kind, a and c replace the list.
	if containers(together, "b") != 2 || containers(together, "a") != 1 {
		t.Errorf("containers: a=%d b=%d", containers(together, "a"), containers(together, "b"))
	}
}

// TestConcurrentRenders runs renders from several goroutines (run with
// -race): builds are serialised inside, results stay correct.
func TestConcurrentRenders(t *testing.T) {
	src := overlayRepo(t, 4)
	opts := Options{EntryPoints: []string{"overlays/*"}, DefaultNamespace: "flink"}
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			res, err := NewRenderer().Render(context.Background(), src, opts)
			if err == nil && len(res.Resources) != 4 {
				err = fmt.Errorf("got %d resources, problems %v", len(res.Resources), problemLines(res.Problems))
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRenderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewRenderer().Render(ctx, overlayRepo(t, 2), Options{EntryPoints: []string{"overlays/*"}})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

func TestDeprecatedKustomizationFieldsAreWarnings(t *testing.T) {
	res := renderFiles(t, map[string]string{
		"app/kustomization.yaml":  "bases: [../base]\n",
		"base/kustomization.yaml": "resources: [d.yaml]\n",
		"base/d.yaml":             string(yamlDocs(t, validDeployment("orders"))),
	}, Options{DefaultNamespace: "flink"})
	want := []string{"app: app/kustomization.yaml: 'bases' is deprecated. Please use 'resources' instead. Run 'kustomize edit fix' to update your Kustomization automatically. (fix: run `kustomize edit fix` in app/)"}
	if diff := cmp.Diff(want, problemLines(res.Warnings)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if len(res.Resources) != 1 {
		t.Fatalf("problems %v", problemLines(res.Problems))
	}
}
