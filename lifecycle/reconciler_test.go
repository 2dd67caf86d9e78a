package lifecycle

import (
	"testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// appSpecOf is an application cluster running a counter job.
func appSpecOf(mode v1beta1.UpgradeMode, parallelism int32, edits ...func(*v1beta1.FlinkDeploymentSpec)) v1beta1.FlinkDeploymentSpec {
	cpu := 0.5
	tms := int32(1)
	s := v1beta1.FlinkDeploymentSpec{
		Image: "flink:2.2", FlinkVersion: "v2_2", Mode: v1beta1.ModeStandalone,
		FlinkConfiguration: v1beta1.FlinkConfiguration{
			"taskmanager.numberOfTaskSlots":         "2",
			"execution.checkpointing.dir":           "file:/state/checkpoints",
			"execution.checkpointing.savepoint-dir": "file:/state/savepoints",
		},
		JobManager:  &v1beta1.JobManagerSpec{Replicas: 1, Resource: &v1beta1.Resource{Memory: "1024m", CPU: &cpu}},
		TaskManager: &v1beta1.TaskManagerSpec{Replicas: &tms, Resource: &v1beta1.Resource{Memory: "1280m", CPU: &cpu}},
		Job: &v1beta1.JobSpec{JarURI: "local:///opt/flink/usrlib/job.jar", EntryClass: "io.example.Counter",
			Parallelism: parallelism, UpgradeMode: mode, Args: []string{"--rate", "10"}},
	}
	for _, e := range edits {
		e(&s)
	}
	return s
}

// stableRunning: no operation, STABLE, job RUNNING.
func stableRunning(r *Record) bool {
	c := r.Common()
	return r.Operation == nil && c.LifecycleState == v1beta1.LifecycleStable && c.JobStatus.State == v1beta1.JobRunning
}

func TestFirstDeploy(t *testing.T) {
	w := newSimWorld(t)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	r := w.until(KindDeployment, "app", d, "first deploy stable", stableRunning)
	id := r.Common().JobStatus.JobID
	j := w.flink.job(id)
	if j == nil || j.State != flinkclient.JobRunning || j.RestoredFrom != "" || j.StartCounter != 0 {
		t.Fatalf("job %s: %+v", id, j)
	}
	if got := w.flink.startedJobIDs(); len(got) != 1 || got[0] != id {
		t.Fatalf("jobs started: %v, want just %s", got, id)
	}
	t.Logf("events: %v", w.events())
}

// TestServerSideApplyFake runs a deploy and a savepoint upgrade over the
// fake clientset's real server-side apply (field-managed tracker), to show
// the reconciler's apply bodies are valid apply configurations.
func TestServerSideApplyFake(t *testing.T) {
	w := newSimWorldWith(t, true)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	r := w.until(KindDeployment, "app", d, "first deploy stable", stableRunning)
	old := r.Common().JobStatus.JobID
	d = w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4))
	r = w.until(KindDeployment, "app", d, "upgraded", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	jm := w.deploymentObj("app")
	if len(jm.ManagedFields) == 0 || jm.ManagedFields[0].Manager != FieldManager {
		t.Fatalf("JobManager Deployment not applied by %s: %+v", FieldManager, jm.ManagedFields)
	}
}
