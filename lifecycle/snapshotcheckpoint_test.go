package lifecycle

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func checkpointOf(kind, name string) v1beta1.FlinkStateSnapshotSpec {
	return v1beta1.FlinkStateSnapshotSpec{JobReference: &v1beta1.JobReference{Kind: kind, Name: name}, Checkpoint: &v1beta1.CheckpointSpec{}}
}

// TestSnapshotCheckpoint: a committed checkpoint FlinkStateSnapshot takes
// one checkpoint of the referenced job through the REST trigger, records
// its path, takes no other on later passes, and is not disposed of when it
// leaves Git.
func TestSnapshotCheckpoint(t *testing.T) {
	w := newSimWorld(t)
	app := deployedApp(w)
	jobID := app.Common().JobStatus.JobID
	savepoints := len(w.flink.Savepoints)
	d := w.desiredSnapshot("cp1", checkpointOf(KindDeployment, "app"))
	if a := PlanAction(nil, d); a.Kind != ActionCheckpoint {
		t.Fatalf("plan %+v, want %s", a, ActionCheckpoint)
	}
	r := w.until(KindSnapshot, "cp1", d, "snapshot completed", snapState(v1beta1.SnapshotCompleted))
	cps := w.flink.triggeredCheckpoints(jobID)
	if len(cps) != 1 {
		t.Fatalf("%d checkpoints triggered, want 1", len(cps))
	}
	st := r.Snapshot.Status
	if st.Path != cps[0].Path || st.TriggerID != cps[0].TriggerID || st.TriggerTimestamp == "" || st.ResultTimestamp == "" || st.Failures != 0 || st.Error != "" {
		t.Fatalf("status %+v, checkpoint %+v", st, cps[0])
	}
	if len(w.flink.Savepoints) != savepoints {
		t.Fatalf("a checkpoint snapshot took %d savepoints", len(w.flink.Savepoints)-savepoints)
	}
	if !w.hasEvent(ReasonCheckpoint, cps[0].Path) {
		t.Errorf("no checkpoint event: %v", w.events())
	}
	for i := 0; i < 5; i++ { // later passes take nothing
		w.tick()
		w.pass(KindSnapshot, "cp1", d)
	}
	if n := len(w.flink.triggeredCheckpoints(jobID)); n != 1 {
		t.Fatalf("%d checkpoints after more passes, want 1", n)
	}
	files, err := StatusFiles([]*Record{w.record(KindSnapshot, "cp1")}, nil, nil, Summary{})
	if err != nil {
		t.Fatal(err)
	}
	f := string(files[StatusPath(KindSnapshot, w.ns, "cp1")])
	for _, want := range []string{"lifecycleState: COMPLETED", "path: " + cps[0].Path, "state: COMPLETED"} {
		if !strings.Contains(f, want) {
			t.Errorf("status file lacks %q:\n%s", want, f)
		}
	}
	// Out of Git: kept, and the plan says so.
	if a := PlanAction(w.record(KindSnapshot, "cp1"), nil); a.Kind != ActionDelete || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "keeps checkpoint "+cps[0].Path) {
		t.Fatalf("plan of the removal: %+v", a)
	}
	w.until(KindSnapshot, "cp1", nil, "removed", snapDeleted)
	if len(w.flink.Disposals) != 0 {
		t.Fatalf("disposed of %v", w.flink.Disposals)
	}
}

// TestSnapshotCheckpointKinds: the other paths of a checkpoint snapshot.
func TestSnapshotCheckpointKinds(t *testing.T) {
	t.Run("session job", func(t *testing.T) {
		w := newSimWorld(t)
		job := runningSessionJob(t, w)
		r := w.until(KindSnapshot, "sj", w.desiredSnapshot("sj", checkpointOf(KindSessionJob, "job")), "completed", snapState(v1beta1.SnapshotCompleted))
		cps := w.flink.triggeredCheckpoints(job.Common().JobStatus.JobID)
		if len(cps) != 1 || r.Snapshot.Status.Path != cps[0].Path || r.Snapshot.Cluster != "session" {
			t.Fatalf("checkpoints %+v, record %s", cps, dumpRecord(r))
		}
	})
	t.Run("waits for the job to run", func(t *testing.T) {
		w := newSimWorld(t)
		d := w.desiredSnapshot("early", checkpointOf(KindDeployment, "app"))
		for i := 0; i < 5; i++ {
			w.tick()
			w.pass(KindSnapshot, "early", d)
		}
		r := w.record(KindSnapshot, "early")
		if r.Snapshot.Status.State != v1beta1.SnapshotTriggerPending || r.Snapshot.Status.Failures != 0 || !strings.Contains(r.Operation.Message, "not deployed yet") {
			t.Fatalf("before the app: %s", dumpRecord(r))
		}
		app := deployedApp(w)
		r = w.until(KindSnapshot, "early", d, "completed", snapState(v1beta1.SnapshotCompleted))
		if cps := w.flink.triggeredCheckpoints(app.Common().JobStatus.JobID); len(cps) != 1 || r.Snapshot.Status.Path != cps[0].Path {
			t.Fatalf("checkpoints %+v, status %+v", cps, r.Snapshot.Status)
		}
	})
	t.Run("abandoned when the job is suspended", func(t *testing.T) {
		w := newSimWorld(t)
		deployedApp(w)
		w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, suspend)), "suspended",
			func(r *Record) bool {
				return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleSuspended
			})
		r := w.until(KindSnapshot, "late", w.desiredSnapshot("late", checkpointOf(KindDeployment, "app")), "abandoned", snapState(v1beta1.SnapshotAbandoned))
		if !strings.Contains(r.Snapshot.Status.Error, "not running") {
			t.Fatalf("status %+v", r.Snapshot.Status)
		}
	})
	// Flink refuses a checkpoint while the job's tasks start: retried under
	// new trigger ids without counting a failure, up to checkpointRetries;
	// beyond, it is a failure counted against backoffLimit.
	for _, c := range []struct {
		refusals int
		want     v1beta1.SnapshotState
	}{{2, v1beta1.SnapshotCompleted}, {checkpointRetries + 1, v1beta1.SnapshotFailed}} {
		t.Run(fmt.Sprintf("%d refusals", c.refusals), func(t *testing.T) {
			w := newSimWorld(t)
			deployedApp(w)
			simCheckpointOps.Lock()
			simCheckpointOps.refuse[w.flink] = c.refusals
			simCheckpointOps.Unlock()
			t.Cleanup(func() {
				simCheckpointOps.Lock()
				delete(simCheckpointOps.refuse, w.flink)
				simCheckpointOps.Unlock()
			})
			spec := checkpointOf(KindDeployment, "app")
			spec.BackoffLimit = int32p(0)
			r := w.until(KindSnapshot, "cp", w.desiredSnapshot("cp", spec), "done", func(r *Record) bool {
				return r.Snapshot != nil && r.Operation == nil && (r.Snapshot.Status.State == v1beta1.SnapshotCompleted || r.Snapshot.Status.State == v1beta1.SnapshotFailed)
			})
			st := r.Snapshot.Status
			if st.State != c.want {
				t.Fatalf("state %s, want %s: %+v", st.State, c.want, st)
			}
			if c.want == v1beta1.SnapshotCompleted && (st.Failures != 0 || st.Path == "") {
				t.Fatalf("status %+v", st)
			}
			if c.want == v1beta1.SnapshotFailed && (st.Failures != 1 || !strings.Contains(st.Error, "Not all required tasks")) {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestSnapshotCheckpointCrashAtEveryStep: a daemon killed right after any
// external call of a checkpoint snapshot resumes from the ConfigMap alone:
// the checkpoint is taken (a second one only when Flink forgot the first
// trigger while the daemon was down) and the one recorded is one taken.
func TestSnapshotCheckpointCrashAtEveryStep(t *testing.T) {
	c := crashCase{
		name: "snapshot checkpoint", kind: KindSnapshot, res: "cp",
		setup:  func(w *simWorld) { deployedApp(w) },
		change: func(w *simWorld) *Desired { return w.desiredSnapshot("cp", checkpointOf(KindDeployment, "app")) },
		done:   func(crashBefore) func(*Record) bool { return snapState(v1beta1.SnapshotCompleted) },
		check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
			app := w.record(KindDeployment, "app")
			jobID := app.Common().JobStatus.JobID
			noNewSavepoints(t, w, b)
			wantJobState(t, w, jobID, flinkclient.JobRunning)
			cps := w.flink.triggeredCheckpoints(jobID)
			if len(cps) < 1 || len(cps) > 2 {
				t.Fatalf("%d checkpoints triggered, want 1 (2 after a forgotten trigger)", len(cps))
			}
			st := r.Snapshot.Status
			found := false
			for _, c := range cps {
				found = found || c.Path == st.Path && c.TriggerID == st.TriggerID
			}
			if !found || st.Failures != 0 || st.Error != "" {
				t.Errorf("status %+v is not one of the checkpoints triggered %+v", st, cps)
			}
		},
	}
	for _, out := range []time.Duration{0, 10 * time.Minute} {
		t.Run(fmt.Sprintf("down %s", out), func(t *testing.T) {
			t.Parallel()
			crashAtEveryStep(t, c, 1, out)
		})
	}
}
