package render

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRender feeds arbitrary kustomization and resource files through
// render + validate. It must never panic, every problem must be one line,
// and a key is never both valid and invalid.
func FuzzRender(f *testing.F) {
	f.Add([]byte("resources: [r.yaml]\n"), string(yamlDocs(f, validDeployment("orders"))))
	f.Add([]byte("resources: [r.yaml]\n"), string(yamlDocs(f, validSessionCluster("s"), validSessionJob("j", "s"))))
	f.Add([]byte("namespace: x\nresources: [r.yaml, ../b]\npatches:\n- path: p.yaml\n"), "kind: FlinkDeployment\nmetadata: {name: a}\nspec: {flinkConfiguration: {a: {b: [1, 2]}}}\n")
	f.Add([]byte("resources: [https://example.com/x]\n"), "")
	if files, err := filepath.Glob("testdata/corpus/*.txt"); err == nil {
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err == nil {
				k, r := corpusSeed(string(data))
				f.Add([]byte(k), r)
			}
		}
	}
	f.Fuzz(func(t *testing.T, kustomization []byte, resource string) {
		src := MapSource{Files: map[string][]byte{
			"app/kustomization.yaml": kustomization,
			"app/r.yaml":             []byte(resource),
			"app/p.yaml":             []byte(resource),
			"b/kustomization.yaml":   []byte("resources: [../app/r.yaml]\n"),
		}}
		res, err := NewRenderer().Render(context.Background(), src, Options{EntryPoints: []string{"app"}, DefaultNamespace: "flink"})
		if err != nil {
			t.Fatal(err)
		}
		invalid := map[Key]bool{}
		for _, k := range res.Invalid {
			invalid[k] = true
		}
		for _, r := range res.Resources {
			if invalid[r.Key()] {
				t.Fatalf("%s is both valid and invalid", r.Key())
			}
			if len(r.Hash) != 16 {
				t.Fatalf("%s has hash %q", r.Key(), r.Hash)
			}
		}
		for _, p := range append(res.Problems, res.Warnings...) {
			if s := p.String(); strings.Contains(s, "\n") || p.Message == "" {
				t.Fatalf("malformed problem %q", s)
			}
		}
	})
}

// corpusSeed extracts the kustomization and r.yaml bodies of a corpus case.
func corpusSeed(data string) (string, string) {
	section := func(name string) string {
		_, rest, ok := strings.Cut(data, "-- "+name+" --\n")
		if !ok {
			return ""
		}
		body, _, _ := strings.Cut(rest, "\n-- ")
		return body
	}
	return section("app/kustomization.yaml"), section("app/r.yaml")
}
