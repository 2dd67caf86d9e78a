// Package manifests reads install manifests in tests: a kustomization built
// as `kubectl apply -k` builds it, or a rendered multi-document YAML, into
// objects to look up and convert. tests/e2e (the kustomize base) and
// deploy/helm (the chart) share it.
package manifests

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Build builds the kustomization in dir from disk.
func Build(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

// Split splits a rendered multi-document manifest into objects.
func Split(t testing.TB, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(manifest, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out
}

// Find returns the first object of kind (and namespace and name, where not
// empty), or nil.
func Find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (namespace == "" || o.GetNamespace() == namespace) && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

// Convert converts o to its typed form; a nil o fails the test.
func Convert[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	if o == nil {
		t.Fatalf("missing object of type %T", *new(T))
	}
	var v T
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}
