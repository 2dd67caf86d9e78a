package lifecycle

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// DiffType is how much a spec change demands, ordered: a diff is as strong
// as its strongest change.
type DiffType int

// Diff types, as in the operator's DiffType.
const (
	// DiffIgnore changes need no action on the cluster (upgrade mode,
	// operator settings, restore options for a later deploy).
	DiffIgnore DiffType = iota
	// DiffScale changes resize the cluster or the job's parallelism; the
	// reconciler applies them in place where the cluster can take them
	// (rescale.go) and upgrades otherwise.
	DiffScale
	// DiffUpgrade changes need the job stopped and redeployed.
	DiffUpgrade
)

func (t DiffType) String() string {
	switch t {
	case DiffIgnore:
		return "ignore"
	case DiffScale:
		return "scale"
	}
	return "upgrade"
}

// Change is one differing field.
type Change struct {
	// Path in the spec's JSON names, e.g. spec.job.parallelism or
	// spec.flinkConfiguration["state.savepoints.dir"].
	Path     string
	Old, New string
	Type     DiffType
}

// Diff is the classified difference between two specs.
type Diff struct {
	Type    DiffType
	Changes []Change
}

// Empty reports whether the specs are equal.
func (d Diff) Empty() bool { return len(d.Changes) == 0 }

// String renders the diff for status and plan output, one change a line.
func (d Diff) String() string {
	var b strings.Builder
	for _, c := range d.Changes {
		fmt.Fprintf(&b, "%s: %s -> %s (%s)\n", c.Path, c.Old, c.New, c.Type)
	}
	return b.String()
}

// handledApart are fields with their own handling: nonces and the desired
// job state are compared by the reconciler itself.
var handledApart = map[string]bool{
	"spec.restartNonce":               true,
	"spec.job.state":                  true,
	"spec.job.savepointTriggerNonce":  true,
	"spec.job.checkpointTriggerNonce": true,
	"spec.job.savepointRedeployNonce": true,
	"spec.job.autoscalerResetNonce":   true,
}

// CompareDeployments classifies the change from old to new, as the
// operator's ReflectiveDiffBuilder does: upgrade mode, restore options,
// kubernetes.operator.* keys (and flink-gitops.* keys, which never reach
// Flink either) are ignored; TaskManager replicas in standalone
// mode, job.parallelism and pipeline.jobvertex-parallelism-overrides scale
// (whether that happens in place, the reconciler decides: decideRescale);
// everything else upgrades. Nonces and job.state are left to the caller.
func CompareDeployments(old, new *v1beta1.FlinkDeploymentSpec) Diff {
	standalone := new.EffectiveMode() == v1beta1.ModeStandalone
	return compare(old, new, func(path string) DiffType {
		switch {
		case path == "spec.job.upgradeMode", path == "spec.job.initialSavepointPath", path == "spec.job.allowNonRestoredState":
			return DiffIgnore
		case strings.HasPrefix(path, `spec.flinkConfiguration["kubernetes.operator.`), strings.HasPrefix(path, `spec.flinkConfiguration["flink-gitops.`):
			return DiffIgnore
		case path == "spec.taskManager.replicas" && standalone:
			return DiffScale
		case path == "spec.job.parallelism", path == `spec.flinkConfiguration["pipeline.jobvertex-parallelism-overrides"]`:
			return DiffScale
		}
		return DiffUpgrade
	})
}

// CompareSessionJobs classifies a session job change the same way.
func CompareSessionJobs(old, new *v1beta1.FlinkSessionJobSpec) Diff {
	return compare(old, new, func(path string) DiffType {
		switch {
		case path == "spec.job.upgradeMode", path == "spec.job.initialSavepointPath", path == "spec.job.allowNonRestoredState":
			return DiffIgnore
		case strings.HasPrefix(path, `spec.flinkConfiguration["kubernetes.operator.`), strings.HasPrefix(path, `spec.flinkConfiguration["flink-gitops.`):
			return DiffIgnore
		}
		return DiffUpgrade
	})
}

func compare(old, new any, classify func(path string) DiffType) Diff {
	var r reporter
	cmp.Equal(old, new,
		cmp.Reporter(&r),
		cmpopts.EquateEmpty(),
		cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 }),
		cmp.Comparer(sameQuantity),
	)
	var d Diff
	for _, c := range r.changes {
		if handledApart[c.Path] {
			continue
		}
		c.Type = classify(c.Path)
		if c.Type > d.Type {
			d.Type = c.Type
		}
		d.Changes = append(d.Changes, c)
	}
	sort.Slice(d.Changes, func(i, j int) bool { return d.Changes[i].Path < d.Changes[j].Path })
	return d
}

// sameQuantity reports whether two resources-form quantities are the same
// text or the same Kubernetes quantity ("1.5Gi" and "1536Mi"; a spec stored
// before quantities were kept verbatim holds the canonical form). Text that
// only Flink's syntax reads ("2048m" of memory) compares as text.
func sameQuantity(a, b v1beta1.Quantity) bool {
	if a == b {
		return true
	}
	qa, errA := resource.ParseQuantity(strings.TrimSpace(string(a)))
	qb, errB := resource.ParseQuantity(strings.TrimSpace(string(b)))
	return errA == nil && errB == nil && qa.Cmp(qb) == 0
}

// reporter collects the JSON paths of differing leaves.
type reporter struct {
	path    cmp.Path
	changes []Change
}

func (r *reporter) PushStep(ps cmp.PathStep) { r.path = append(r.path, ps) }
func (r *reporter) PopStep()                 { r.path = r.path[:len(r.path)-1] }

func (r *reporter) Report(rs cmp.Result) {
	if rs.Equal() {
		return
	}
	vx, vy := r.path.Last().Values()
	r.changes = append(r.changes, redactChange(Change{Path: jsonPath(r.path), Old: show(vx), New: show(vy)}))
}

// redactChange hides the values of a change under a key Flink treats as
// sensitive (v1beta1.IsSensitiveKey): the diff, and so the plan, the
// pull-request comment and events, say only that it changed.
func redactChange(c Change) Change {
	if !v1beta1.IsSensitiveKey(c.Path) {
		return c
	}
	if c.Old != "<none>" {
		c.Old = "(redacted)"
	}
	switch {
	case c.New == "<none>":
	case c.Old == "<none>":
		c.New = "(redacted)"
	default:
		c.New = "changed (redacted)"
	}
	return c
}

// jsonPath renders a cmp path with the JSON names of struct fields, skipping
// pointer indirections and inlined (embedded) structs.
func jsonPath(p cmp.Path) string {
	var b strings.Builder
	b.WriteString("spec")
	for i, step := range p {
		switch s := step.(type) {
		case cmp.StructField:
			parent := p[i-1].Type()
			for parent.Kind() == reflect.Pointer {
				parent = parent.Elem()
			}
			f, ok := parent.FieldByName(s.Name())
			name := s.Name()
			if ok {
				tag := strings.Split(f.Tag.Get("json"), ",")[0]
				if tag == "" && f.Anonymous {
					continue // inlined
				}
				if tag != "" && tag != "-" {
					name = tag
				}
			}
			b.WriteString(".")
			b.WriteString(name)
		case cmp.MapIndex:
			fmt.Fprintf(&b, "[%q]", fmt.Sprint(s.Key().Interface()))
		case cmp.SliceIndex:
			k, n := s.SplitKeys() // -1 on the side that has no element
			if k < 0 {
				k = n
			}
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

// show renders a value for a diff line, briefly.
func show(v reflect.Value) string {
	if !v.IsValid() {
		return "<none>"
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "<none>"
		}
		v = v.Elem()
	}
	if v.CanInterface() {
		if q, ok := v.Interface().(resource.Quantity); ok {
			return q.String()
		}
	}
	s := fmt.Sprintf("%v", v)
	switch v.Kind() {
	case reflect.String:
		s = fmt.Sprintf("%q", v.String())
	case reflect.Struct, reflect.Map, reflect.Slice:
		// Compact JSON, as the spec is written, not Go's struct syntax.
		if v.CanInterface() {
			if b, err := json.Marshal(v.Interface()); err == nil {
				s = string(b)
			}
		}
	}
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
