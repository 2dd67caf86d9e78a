package render

import (
	"context"
	"fmt"
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
			"namespace: ns%d\nresources: [../../base]\npatches:\n- path: patch.yaml\n", i))
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
