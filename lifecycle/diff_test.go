package lifecycle

import (
	"encoding/json"
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
		{"parallelism upgrades", func(s *v1beta1.FlinkDeploymentSpec) { s.Job.Parallelism = 4 }, DiffUpgrade, []string{"spec.job.parallelism"}, false},
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
	if got, want := CompareDeployments(old, nw).String(), "spec.job.parallelism: 2 -> 4 (upgrade)\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}
