package lifecycle

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestPlanAction(t *testing.T) {
	deployedRec := func(js string) *Record {
		return &Record{Kind: KindDeployment, Deployment: &v1beta1.FlinkDeploymentStatus{
			CommonStatus:         v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable},
			ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: js}}}
	}
	want := func(edit func(s *v1beta1.FlinkDeploymentSpec)) *Desired {
		s := spec(t, baseSpec)
		edit(s)
		return &Desired{Deployment: &v1beta1.FlinkDeployment{Spec: *s}}
	}
	base := func() string { b, _ := json.Marshal(spec(t, baseSpec)); return string(b) }()
	n := int64(5)
	cases := []struct {
		name    string
		rec     *Record
		desired *Desired
		action  string
		warn    string
	}{
		{"new", nil, want(func(*v1beta1.FlinkDeploymentSpec) {}), "deploy", ""},
		{"unchanged", deployedRec(base), want(func(*v1beta1.FlinkDeploymentSpec) {}), "none", ""},
		{"parallelism", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.Parallelism = 4 }), "upgrade (savepoint)", ""},
		{"stateless with state", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.Job.Parallelism = 4
			s.Job.UpgradeMode = v1beta1.UpgradeModeStateless
			s.FlinkConfiguration["execution.checkpointing.interval"] = "10s"
		}), "upgrade (stateless)", "state is discarded"},
		{"suspend", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.State = v1beta1.JobStateSuspended }), "suspend (savepoint)", ""},
		{"savepoint nonce", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.SavepointTriggerNonce = &n }), "savepoint", ""},
		{"restart nonce", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.RestartNonce = &n }), "restart (savepoint)", ""},
		{"scale", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { r := int32(5); s.TaskManager.Replicas = &r }), "scale", ""},
		{"ignorable", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.UpgradeMode = v1beta1.UpgradeModeLastState }), "update", ""},
		{"removed", deployedRec(base), nil, "delete", "without a savepoint"},
		{"removed, savepoint on deletion", deployedRec(strings.Replace(base, `"flinkConfiguration":{`, `"flinkConfiguration":{"kubernetes.operator.job.savepoint-on-deletion":"true",`, 1)), nil, "delete (savepoint)", ""},
		{"never deployed, removed", nil, nil, "none", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := PlanAction(c.rec, c.desired)
			if a.String() != c.action {
				t.Errorf("action %q, want %q (diff %s)", a, c.action, a.Diff)
			}
			if got := strings.Join(a.Warnings, "; "); (c.warn == "") != (got == "") || !strings.Contains(got, c.warn) {
				t.Errorf("warnings %q, want one containing %q", got, c.warn)
			}
		})
	}
}
