package lifecycle

import (
	"encoding/json"
	corev1 "k8s.io/api/core/v1"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func spec(t *testing.T, js string) *v1beta1.FlinkDeploymentSpec {
	t.Helper()
	var s v1beta1.FlinkDeploymentSpec
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

const baseSpec = `{
  "image": "flink:2.2", "flinkVersion": "v2_2", "mode": "standalone",
  "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2", "kubernetes.operator.periodic.savepoint.interval": "1h"},
  "jobManager": {"resource": {"memory": "1024m", "cpu": 1}},
  "taskManager": {"resource": {"memory": "1536m", "cpu": 1}, "replicas": 2,
    "podTemplate": {"spec": {"containers": [{"name": "flink-main-container", "resources": {"limits": {"memory": "2Gi"}}}]}}},
  "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": 2, "upgradeMode": "savepoint", "args": ["--a"]}
}`

func TestCompareDeployments(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(s *v1beta1.FlinkDeploymentSpec)
		want   DiffType
		paths  []string
		reactv bool
	}{
		{"equal", func(s *v1beta1.FlinkDeploymentSpec) {}, DiffIgnore, nil, false},
		{"upgrade mode", func(s *v1beta1.FlinkDeploymentSpec) { s.Job.UpgradeMode = v1beta1.UpgradeModeLastState }, DiffIgnore, []string{"spec.job.upgradeMode"}, false},
		{"operator key", func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["kubernetes.operator.periodic.savepoint.interval"] = "2h"
		}, DiffIgnore, []string{`spec.flinkConfiguration["kubernetes.operator.periodic.savepoint.interval"]`}, false},
		{"flink-gitops key", func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["flink-gitops.ha.keep-on-deletion"] = "true"
		}, DiffIgnore, []string{`spec.flinkConfiguration["flink-gitops.ha.keep-on-deletion"]`}, false},
		{"native tm replicas upgrade", func(s *v1beta1.FlinkDeploymentSpec) {
			r := int32(3)
			s.TaskManager.Replicas = &r
			s.Mode = v1beta1.ModeNative
		},
			DiffUpgrade, []string{"spec.mode", "spec.taskManager.replicas"}, false},
		{"initial savepoint", func(s *v1beta1.FlinkDeploymentSpec) { s.Job.InitialSavepointPath = "file:///sp" }, DiffIgnore, []string{"spec.job.initialSavepointPath"}, false},
		{"nonces and state are handled apart", func(s *v1beta1.FlinkDeploymentSpec) {
			n := int64(3)
			s.RestartNonce, s.Job.SavepointTriggerNonce = &n, &n
			s.Job.State = v1beta1.JobStateSuspended
		}, DiffIgnore, nil, false},
		{"tm replicas scale", func(s *v1beta1.FlinkDeploymentSpec) { r := int32(3); s.TaskManager.Replicas = &r }, DiffScale, []string{"spec.taskManager.replicas"}, false},
		{"parallelism scales", func(s *v1beta1.FlinkDeploymentSpec) { s.Job.Parallelism = 4 }, DiffScale, []string{"spec.job.parallelism"}, false},
		{"parallelism overrides scale", func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["pipeline.jobvertex-parallelism-overrides"] = "0a448493b4782967b150582570326227:4"
		}, DiffScale, []string{`spec.flinkConfiguration["pipeline.jobvertex-parallelism-overrides"]`}, false},
		{"parallelism scales when reactive", func(s *v1beta1.FlinkDeploymentSpec) {
			s.Job.Parallelism = 4
			s.FlinkConfiguration["scheduler-mode"] = "reactive"
		}, DiffUpgrade, []string{`spec.flinkConfiguration["scheduler-mode"]`, "spec.job.parallelism"}, true},
		{"image upgrades", func(s *v1beta1.FlinkDeploymentSpec) { s.Image = "flink:2.2.1" }, DiffUpgrade, []string{"spec.image"}, false},
		{"flink key upgrades", func(s *v1beta1.FlinkDeploymentSpec) { s.FlinkConfiguration["taskmanager.numberOfTaskSlots"] = "4" },
			DiffUpgrade, []string{`spec.flinkConfiguration["taskmanager.numberOfTaskSlots"]`}, false},
		{"args upgrade", func(s *v1beta1.FlinkDeploymentSpec) { s.Job.Args = append(s.Job.Args, "--b") }, DiffUpgrade, []string{"spec.job.args[1]"}, false},
		{"pod template deep field", func(s *v1beta1.FlinkDeploymentSpec) {
			s.TaskManager.PodTemplate.Spec.Containers[0].Image = "x"
		}, DiffUpgrade, []string{"spec.taskManager.podTemplate.spec.containers[0].image"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old, nw := spec(t, baseSpec), spec(t, baseSpec)
			c.edit(nw)
			d := CompareDeployments(old, nw)
			var paths []string
			for _, ch := range d.Changes {
				paths = append(paths, ch.Path)
			}
			if diff := cmp.Diff(c.paths, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if d.Type != c.want {
				t.Errorf("type %v, want %v\n%s", d.Type, c.want, d)
			}
		})
	}
}

func TestCompareEquivalentQuantities(t *testing.T) {
	old, nw := spec(t, baseSpec), spec(t, baseSpec)
	nw.TaskManager.PodTemplate.Spec.Containers[0].Resources.Limits["memory"] = old.TaskManager.PodTemplate.Spec.Containers[0].Resources.Limits["memory"]
	q := nw.TaskManager.PodTemplate.Spec.Containers[0].Resources.Limits["memory"]
	q.Set(2 << 30) // same amount, other representation
	nw.TaskManager.PodTemplate.Spec.Containers[0].Resources.Limits["memory"] = q
	if d := CompareDeployments(old, nw); !d.Empty() {
		t.Fatalf("2Gi and 2147483648 differ: %s", d)
	}
}

func TestDiffString(t *testing.T) {
	old, nw := spec(t, baseSpec), spec(t, baseSpec)
	nw.Job.Parallelism = 4
	if got, want := CompareDeployments(old, nw).String(), "spec.job.parallelism: 2 -> 4 (scale)\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

// TestDiffShowsObjectsAsJSON: a changed pod template (or any object value)
// reads as the spec is written, not as Go's struct syntax.
func TestDiffShowsObjectsAsJSON(t *testing.T) {
	old := &v1beta1.FlinkDeploymentSpec{Image: "flink:2.2"}
	tmpl := &v1beta1.PodTemplate{}
	tmpl.Labels = map[string]string{"team": "data"}
	new := &v1beta1.FlinkDeploymentSpec{Image: "flink:2.2", PodTemplate: tmpl}
	d := CompareDeployments(old, new)
	if len(d.Changes) != 1 || !strings.Contains(d.Changes[0].New, `"labels":{"team":"data"}`) || strings.Contains(d.Changes[0].New, "0001-01-01") {
		t.Errorf("diff %+v: want the pod template as compact JSON", d.Changes)
	}
}

// TestResourcesQuantitiesCompareByAmount: a spec stored with canonical
// quantities ("1536Mi") and the same spec written "1.5Gi" are no change.
func TestResourcesQuantitiesCompareByAmount(t *testing.T) {
	mk := func(mem string) *v1beta1.FlinkDeploymentSpec {
		return &v1beta1.FlinkDeploymentSpec{JobManager: &v1beta1.JobManagerSpec{Replicas: 1,
			Resources: &v1beta1.ResourceRequirements{Requests: map[corev1.ResourceName]v1beta1.Quantity{"memory": v1beta1.Quantity(mem)}}}}
	}
	if d := CompareDeployments(mk("1536Mi"), mk("1.5Gi")); !d.Empty() {
		t.Errorf("1536Mi vs 1.5Gi: %s", d)
	}
	if d := CompareDeployments(mk("2048m"), mk("2Gi")); d.Empty() {
		t.Error("2048m and 2Gi compare equal as text")
	}
	if d := CompareDeployments(mk("1g"), mk("2g")); d.Empty() {
		t.Error("1g and 2g compare equal")
	}
}
