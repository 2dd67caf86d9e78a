package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// TestCheckpointNonceThroughGit: a push that changes
// spec.job.checkpointTriggerNonce makes the daemon trigger a checkpoint of
// the running job through Flink's REST API; its path, type and nonce show
// on the status branch, with the cluster's Flink version and the Running
// condition, and the job keeps running under its id.
func TestCheckpointNonceThroughGit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	dir := t.TempDir()
	a := app{name: "ckpt", mode: "savepoint", parallelism: 1, conf: map[string]string{
		"execution.checkpointing.dir":           "file://" + dir + "/checkpoints",
		"execution.checkpointing.savepoint-dir": "file://" + dir + "/savepoints",
	}}
	e := newEnv(t, a.files(), nil)
	e.logsOnFailure()
	rs := e.wait("FlinkDeployment", a.name, "first deploy", 4*time.Minute, stableAt(""))
	job := rs.JobID
	if rs.LastCheckpoint != nil {
		t.Fatalf("a checkpoint before any request: %+v", rs.LastCheckpoint)
	}

	files := a.files()
	p := "apps/" + a.name + "/spec.yaml"
	files[p] = strings.Replace(files[p], "    upgradeMode: savepoint\n", "    upgradeMode: savepoint\n    checkpointTriggerNonce: 1\n", 1)
	commit := e.push("request a checkpoint", files)
	rs = e.wait("FlinkDeployment", a.name, "the manual checkpoint", 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.Operation == "" && rs.LastCheckpoint != nil && rs.LastCheckpoint.Trigger == "MANUAL"
	})
	cp := rs.LastCheckpoint
	if !strings.HasPrefix(cp.Path, "file:"+dir+"/checkpoints/") && !strings.HasPrefix(cp.Path, "file://"+dir+"/checkpoints/") || cp.ID == 0 ||
		cp.Nonce == nil || *cp.Nonce != 1 || cp.Type != "FULL" {
		t.Errorf("status branch checkpoint %+v, want a FULL checkpoint under %s/checkpoints with nonce 1", cp, dir)
	}
	if rs.JobID != job || rs.JobState != "RUNNING" || rs.LastReconciledCommit != commit {
		t.Errorf("after the checkpoint: job %s %s at %s, want %s RUNNING at %s", rs.JobID, rs.JobState, rs.LastReconciledCommit, job, commit)
	}
	if !strings.HasPrefix(rs.ClusterInfo["flink-version"], "2.2.") || rs.ClusterInfo["flink-revision"] == "" {
		t.Errorf("clusterInfo %v, want Flink 2.2.x and its revision", rs.ClusterInfo)
	}
	if len(rs.Conditions) != 1 || rs.Conditions[0].Type != "Running" || rs.Conditions[0].Status != "True" {
		t.Errorf("conditions %+v, want Running=True", rs.Conditions)
	}
	t.Logf("checkpoint %d at %s on the status branch", cp.ID, cp.Path)
}
