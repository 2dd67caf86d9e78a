package e2e

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

const snapshotSpec = `apiVersion: flink.apache.org/v1beta1
kind: FlinkStateSnapshot
metadata:
  name: manual-1
  namespace: NAMESPACE
spec:
  backoffLimit: 1
  jobReference:
    kind: FlinkDeployment
    name: counter
  savepoint:
    disposeOnDelete: true
`

const checkpointSnapshotSpec = `apiVersion: flink.apache.org/v1beta1
kind: FlinkStateSnapshot
metadata:
  name: checkpoint-1
  namespace: NAMESPACE
spec:
  jobReference:
    kind: FlinkDeployment
    name: counter
  checkpoint: {}
`

// TestSnapshotThroughGit: a FlinkStateSnapshot committed next to its
// application takes a savepoint on real Flink (2.2 and 1.20); its path is
// on the status branch, the files exist; removing it from Git disposes of
// them. In the same push a checkpoint FlinkStateSnapshot takes a
// checkpoint through the REST trigger, its path on the status branch.
func TestSnapshotThroughGit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	for _, flink1 := range []bool{false, true} {
		name := "flink-2.2"
		if flink1 {
			name = "flink-1.20"
		}
		t.Run(name, func(t *testing.T) { snapshotThroughGit(t, flink1) })
	}
}

func snapshotThroughGit(t *testing.T, flink1 bool) {
	a := app{name: "counter", flink1: flink1, mode: "savepoint", parallelism: 1}
	e := newEnv(t, a.files(), nil)
	rs := e.wait("FlinkDeployment", "counter", "first deploy", 4*time.Minute, stableAt(""))
	e.progress("counter", rs.JobID, 5)

	start := time.Now()
	commit := e.push("take a savepoint", map[string]string{
		"apps/counter/kustomization.yaml": "resources: [spec.yaml, snapshot.yaml]\n",
		"apps/counter/snapshot.yaml":      snapshotSpec,
	})
	st := e.wait("FlinkStateSnapshot", "manual-1", "the snapshot's savepoint", 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.Snapshot != nil && rs.Snapshot.State != v1beta1.SnapshotTriggerPending && rs.Snapshot.State != v1beta1.SnapshotInProgress
	})
	t.Logf("push to COMPLETED on the status branch: %s", time.Since(start).Round(time.Millisecond))
	sn := st.Snapshot
	if sn.State != v1beta1.SnapshotCompleted || sn.Path == "" || sn.TriggerID == "" || sn.Failures != 0 || st.LastReconciledCommit != commit {
		t.Fatalf("snapshot status %+v (commit %s, want %s)", sn, st.LastReconciledCommit, commit)
	}
	dir := strings.TrimPrefix(strings.TrimPrefix(sn.Path, "file://"), "file:")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("savepoint %s not on disk: %v", sn.Path, err)
	}
	// The job went on running: the snapshot is a plain savepoint.
	if app := e.wait("FlinkDeployment", "counter", "still running", time.Minute, stableAt("")); app.JobID != rs.JobID {
		t.Fatalf("job changed from %s to %s", rs.JobID, app.JobID)
	}

	start = time.Now()
	commit = e.push("drop the savepoint snapshot, take a checkpoint snapshot", map[string]string{
		"apps/counter/kustomization.yaml": "resources: [spec.yaml, checkpoint.yaml]\n",
		"apps/counter/snapshot.yaml":      "",
		"apps/counter/checkpoint.yaml":    checkpointSnapshotSpec,
	})
	st = e.wait("FlinkStateSnapshot", "checkpoint-1", "the snapshot's checkpoint", 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.Snapshot != nil && rs.Snapshot.State != v1beta1.SnapshotTriggerPending && rs.Snapshot.State != v1beta1.SnapshotInProgress
	})
	t.Logf("push to checkpoint COMPLETED on the status branch: %s", time.Since(start).Round(time.Millisecond))
	// Flink subsumes checkpoints, so the files may be gone by now: the
	// path is checked, not the disk.
	if cp := st.Snapshot; cp.State != v1beta1.SnapshotCompleted || !strings.Contains(cp.Path, "/checkpoints/"+rs.JobID+"/chk-") ||
		cp.TriggerID == "" || cp.Failures != 0 || st.LastReconciledCommit != commit {
		t.Fatalf("checkpoint snapshot status %+v (commit %s, want %s)", cp, st.LastReconciledCommit, commit)
	}
	if app := e.wait("FlinkDeployment", "counter", "still running", time.Minute, stableAt("")); app.JobID != rs.JobID {
		t.Fatalf("job changed from %s to %s", rs.JobID, app.JobID)
	}
	e.wait("FlinkStateSnapshot", "manual-1", "the snapshot deleted", 2*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.LifecycleState == "DELETED"
	})
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("savepoint %s still on disk a minute after its snapshot left Git (stat: %v)", dir, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
