package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// MergePodTemplates merges over into base the way the operator merges
// spec.podTemplate with spec.jobManager/taskManager.podTemplate
// (FlinkUtils.mergePodTemplates): objects merge key by key, a value in over
// replaces the base's, and lists merge element by element — by position, or,
// with byName (kubernetes.operator.pod-template.merge-arrays-by-name), by the
// elements' "name" when every element has one. Like the operator, a position
// present in both lists keeps the base's value unless both are objects, so
// over cannot replace a scalar list item (e.g. one of a container's args).
// Either template may be nil; the result is a new value.
func MergePodTemplates(base, over *corev1.PodTemplateSpec, byName bool) (*corev1.PodTemplateSpec, error) {
	switch {
	case base == nil && over == nil:
		return &corev1.PodTemplateSpec{}, nil
	case over == nil:
		return base.DeepCopy(), nil
	case base == nil:
		return over.DeepCopy(), nil
	}
	to, err := toTree(base)
	if err != nil {
		return nil, err
	}
	from, err := toTree(over)
	if err != nil {
		return nil, err
	}
	mergeInto(to, from, byName)
	b, err := json.Marshal(to)
	if err != nil {
		return nil, fmt.Errorf("merge pod templates: %w", err)
	}
	out := &corev1.PodTemplateSpec{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("merge pod templates: %w", err)
	}
	return out, nil
}

func toTree(t *corev1.PodTemplateSpec) (map[string]any, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("merge pod templates: %w", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("merge pod templates: %w", err)
	}
	dropNulls(m)
	return m, nil
}

func dropNulls(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range v {
			dropNulls(e)
		}
	}
}

func mergeInto(to, from map[string]any, byName bool) {
	for k, fv := range from {
		tv, exists := to[k]
		if !exists {
			to[k] = fv
			continue
		}
		tArr, tIsArr := tv.([]any)
		fArr, fIsArr := fv.([]any)
		if tIsArr && fIsArr {
			to[k] = mergeArray(tArr, fArr, byName)
			continue
		}
		if tMap, ok := tv.(map[string]any); ok {
			if fMap, ok := fv.(map[string]any); ok {
				mergeInto(tMap, fMap, byName)
			}
			continue
		}
		to[k] = fv
	}
}

func mergeArray(to, from []any, byName bool) []any {
	if byName && namesDefined(to) && namesDefined(from) {
		var order []string
		byKey := map[string]any{}
		for _, e := range to {
			n := nameOf(e)
			if _, seen := byKey[n]; !seen {
				order = append(order, n)
			}
			byKey[n] = e
		}
		for _, e := range from {
			n := nameOf(e)
			cur, seen := byKey[n]
			if !seen {
				order = append(order, n)
				byKey[n] = e
				continue
			}
			mergeInto(cur.(map[string]any), e.(map[string]any), byName)
		}
		out := make([]any, 0, len(order))
		for _, n := range order {
			out = append(out, byKey[n])
		}
		return out
	}
	for i, e := range from {
		if i >= len(to) {
			to = append(to, e)
			continue
		}
		tm, ok1 := to[i].(map[string]any)
		fm, ok2 := e.(map[string]any)
		if ok1 && ok2 {
			mergeInto(tm, fm, byName)
		}
	}
	return to
}

func namesDefined(a []any) bool {
	for _, e := range a {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := m["name"]; !ok {
			return false
		}
	}
	return true
}

func nameOf(e any) string {
	s, _ := e.(map[string]any)["name"].(string)
	return s
}

// podTemplate returns the PodTemplateSpec of an optional spec template.
func podTemplate(t *v1beta1.PodTemplate) *corev1.PodTemplateSpec {
	if t == nil {
		return nil
	}
	return &t.PodTemplateSpec
}

// mainContainer returns the index of flink-main-container in the template,
// appending an empty one when there is none.
func mainContainer(spec *corev1.PodSpec) int {
	for i := range spec.Containers {
		if spec.Containers[i].Name == v1beta1.MainContainerName {
			return i
		}
	}
	spec.Containers = append(spec.Containers, corev1.Container{Name: v1beta1.MainContainerName})
	return len(spec.Containers) - 1
}

// applyTemplateResources puts the resources that do not go through Flink's
// configuration onto the main container, as the operator does before Flink
// sees the template: with spec resources, every request and limit except cpu
// and memory; with the deprecated resource block, its ephemeralStorage as
// request and limit.
func applyTemplateResources(t *corev1.PodTemplateSpec, field string, res *v1beta1.Resource, reqs *v1beta1.ResourceRequirements) error {
	set := func(dst *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		if *dst == nil {
			*dst = corev1.ResourceList{}
		}
		(*dst)[name] = q
	}
	if reqs.IsSet() {
		for _, list := range []struct {
			src  map[corev1.ResourceName]v1beta1.Quantity
			name string
			dst  func(*corev1.Container) *corev1.ResourceList
		}{
			{reqs.Requests, "requests", func(c *corev1.Container) *corev1.ResourceList { return &c.Resources.Requests }},
			{reqs.Limits, "limits", func(c *corev1.Container) *corev1.ResourceList { return &c.Resources.Limits }},
		} {
			for _, name := range slices.Sorted(maps.Keys(list.src)) {
				if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
					continue
				}
				q, err := resource.ParseQuantity(string(list.src[name]))
				if err != nil {
					return fmt.Errorf("%s.resources.%s[%s]: %q is not a Kubernetes quantity; write e.g. 2Gi or 1", field, list.name, name, list.src[name])
				}
				c := &t.Spec.Containers[mainContainer(&t.Spec)]
				set(list.dst(c), name, q)
			}
		}
		return nil
	}
	if res == nil || res.EphemeralStorage == "" {
		return nil
	}
	q, err := resource.ParseQuantity(res.EphemeralStorage)
	if err != nil {
		return fmt.Errorf("%s.resource.ephemeralStorage: %q is not a Kubernetes quantity; write e.g. 2Gi", field, res.EphemeralStorage)
	}
	c := &t.Spec.Containers[mainContainer(&t.Spec)]
	set(&c.Resources.Requests, corev1.ResourceEphemeralStorage, q)
	set(&c.Resources.Limits, corev1.ResourceEphemeralStorage, q)
	return nil
}
