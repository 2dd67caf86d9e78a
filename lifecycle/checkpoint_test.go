package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func withCheckpointNonce(n int64) func(*v1beta1.FlinkDeploymentSpec) {
	return func(s *v1beta1.FlinkDeploymentSpec) { s.Job.CheckpointTriggerNonce = &n }
}

// lastCheckpoint returns the record's checkpointInfo.lastCheckpoint, nil if none.
func lastCheckpoint(r *Record) *v1beta1.Checkpoint {
	if ci := r.Common().JobStatus.CheckpointInfo; ci != nil {
		return ci.LastCheckpoint
	}
	return nil
}

func TestCheckpointNonce(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	// The nonce of the first deploy is not a request.
	r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withCheckpointNonce(1))), "deployed", stableRunning)
	jobID := r.Common().JobStatus.JobID
	if n := len(w.flink.triggeredCheckpoints(jobID)); n != 0 || lastCheckpoint(r) != nil {
		t.Fatalf("the first deploy's nonce triggered %d checkpoints", n)
	}
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withCheckpointNonce(2)))
	r = w.until(KindDeployment, "app", d, "manual checkpoint", func(r *Record) bool {
		return r.Operation == nil && r.LastCheckpointNonce != nil && *r.LastCheckpointNonce == 2
	})
	cps := w.flink.triggeredCheckpoints(jobID)
	if len(cps) != 1 {
		t.Fatalf("%d checkpoints triggered, want 1", len(cps))
	}
	cp := lastCheckpoint(r)
	if cp == nil || cp.Location != cps[0].Path || cp.TriggerType != v1beta1.TriggerManual || cp.FormatType != v1beta1.CheckpointFull ||
		cp.TriggerNonce == nil || *cp.TriggerNonce != 2 || cp.ID == 0 {
		t.Fatalf("checkpointInfo.lastCheckpoint %+v, want the manual FULL checkpoint %s", cp, cps[0].Path)
	}
	if ci := r.Common().JobStatus.CheckpointInfo; ci.TriggerID != "" || ci.TriggerTimestamp != nil {
		t.Errorf("trigger not cleared: %+v", ci)
	}
	// The same nonce again is no request; the status branch shows the path.
	for i := 0; i < 5; i++ {
		w.tick()
		w.pass(KindDeployment, "app", d)
	}
	if r := w.record(KindDeployment, "app"); r.Common().LifecycleState != v1beta1.LifecycleStable || r.Common().JobStatus.JobID != jobID {
		t.Errorf("a checkpoint changed the job: %s %s", r.Common().LifecycleState, r.Common().JobStatus.JobID)
	}
	if n := len(w.flink.triggeredCheckpoints(jobID)); n != 1 {
		t.Errorf("%d checkpoints after passes with the same nonce, want 1", n)
	}
	rs := resourceStatus(w.record(KindDeployment, "app"), nil, "")
	if rs.ClusterInfo["flink-version"] != "2.2.1" || rs.ClusterInfo["flink-revision"] == "" || rs.ClusterInfo["total-cpu"] != "1" ||
		rs.TaskManager == nil || rs.TaskManager.Replicas != 1 || len(rs.Conditions) != 1 || rs.Conditions[0].Status != "True" {
		t.Errorf("status branch cluster info %v, taskManager %+v, conditions %+v", rs.ClusterInfo, rs.TaskManager, rs.Conditions)
	}
	if rs.LastCheckpoint == nil || rs.LastCheckpoint.Path != cps[0].Path || rs.LastCheckpoint.Trigger != "MANUAL" {
		t.Errorf("status branch checkpoint %+v, want %s", rs.LastCheckpoint, cps[0].Path)
	}
}

func TestPeriodicCheckpoint(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicCheckpoint, "10s", keyCheckpointType, "full")))
	r := w.until(KindDeployment, "app", d, "deployed", stableRunning)
	jobID := r.Common().JobStatus.JobID
	if n := len(w.flink.triggeredCheckpoints(jobID)); n != 0 {
		t.Fatalf("%d checkpoints right after deploy", n)
	}
	for want := 1; want <= 2; want++ {
		w.clock.Advance(11 * time.Second)
		r = w.until(KindDeployment, "app", d, fmt.Sprintf("periodic checkpoint %d", want), func(r *Record) bool {
			return r.Operation == nil && len(w.flink.triggeredCheckpoints(jobID)) == want
		})
		cp := lastCheckpoint(r)
		if cp == nil || cp.TriggerType != v1beta1.TriggerPeriodic || cp.Location == "" || cp.TriggerNonce != nil {
			t.Fatalf("periodic checkpoint %d recorded as %+v", want, cp)
		}
		if ci := r.Common().JobStatus.CheckpointInfo; ci.LastPeriodicCheckpointTimestamp != cp.TimeStamp {
			t.Errorf("lastPeriodicCheckpointTimestamp %d, want %d", ci.LastPeriodicCheckpointTimestamp, cp.TimeStamp)
		}
	}
	if n := len(w.flink.savepointsOf(jobID)); n != 0 {
		t.Errorf("periodic checkpoints took %d savepoints", n)
	}
}

func TestCheckpointFailureIsReported(t *testing.T) {
	t.Parallel()
	w := newSimWorld(t)
	w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
	// INCREMENTAL is refused by Flink's REST API (FLINK-33723): reported,
	// the nonce answered, the job untouched.
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withCheckpointNonce(3), withConf(keyCheckpointType, "INCREMENTAL")))
	r := w.until(KindDeployment, "app", d, "checkpoint refused", func(r *Record) bool {
		return r.Operation == nil && r.LastCheckpointNonce != nil && *r.LastCheckpointNonce == 3
	})
	if c := r.Common(); c.Error == "" || c.JobStatus.State != v1beta1.JobRunning {
		t.Errorf("status: error %q, job %s", c.Error, c.JobStatus.State)
	}
	if lastCheckpoint(r) != nil {
		t.Errorf("a failed checkpoint was recorded: %+v", lastCheckpoint(r))
	}
}

// TestCheckpointWhileTasksStart: Flink refuses a checkpoint while the
// job's tasks are still deployed; it is asked again under a new trigger id
// a few times before the refusal is reported.
func TestCheckpointWhileTasksStart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		refusals int
		ok       bool
	}{{2, true}, {checkpointRetries + 1, false}} {
		w := newSimWorld(t)
		w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
		simCheckpointOps.Lock()
		simCheckpointOps.refuse[w.flink] = c.refusals
		simCheckpointOps.Unlock()
		d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withCheckpointNonce(2)))
		r := w.until(KindDeployment, "app", d, "manual checkpoint", func(r *Record) bool {
			if r.Operation == nil && r.LastCheckpointNonce != nil && *r.LastCheckpointNonce == 2 {
				return true
			}
			w.clock.Advance(time.Second) // the retry waits 2 s
			return false
		})
		got := len(w.flink.triggeredCheckpoints(r.Common().JobStatus.JobID))
		if c.ok && (got != 1 || lastCheckpoint(r) == nil || r.Common().Error != "") {
			t.Errorf("%d refusals: %d checkpoints, last %+v, error %q", c.refusals, got, lastCheckpoint(r), r.Common().Error)
		}
		if !c.ok && (got != 0 || !strings.Contains(r.Common().Error, "Not all required tasks")) {
			t.Errorf("%d refusals: %d checkpoints, error %q", c.refusals, got, r.Common().Error)
		}
		simCheckpointOps.Lock()
		delete(simCheckpointOps.refuse, w.flink)
		simCheckpointOps.Unlock()
	}
}

// TestCrashCheckpointSteps crashes a manual and a periodic checkpoint
// after every external call, as TestCrashAtEveryStep does for the other
// operations: the checkpoint is recorded once, the job keeps running.
func TestCrashCheckpointSteps(t *testing.T) {
	jar := filepath.Join(t.TempDir(), "counter.jar")
	if err := os.WriteFile(jar, []byte("PK\x03\x04 not really a jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(typ v1beta1.SnapshotTriggerType) func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
		return func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
			noNewSavepoints(t, w, b)
			if n := len(w.flink.Started) - b.started; n != 0 || r.Common().JobStatus.JobID != b.jobID {
				t.Errorf("a checkpoint restarted the job")
			}
			wantJobState(t, w, b.jobID, flinkclient.JobRunning)
			cps := w.flink.triggeredCheckpoints(b.jobID)
			// A trigger Flink forgot (the daemon was down longer than
			// rest.async.store-duration) is sent again: at most one more.
			if len(cps) < 1 || len(cps) > 2 {
				t.Fatalf("%d checkpoints triggered, want 1 (2 after a forgotten trigger)", len(cps))
			}
			cp := lastCheckpoint(r)
			if cp == nil || cp.TriggerType != typ || cp.Location == "" {
				t.Fatalf("lastCheckpoint %+v", cp)
			}
			found := false
			for _, c := range cps {
				found = found || c.Path == cp.Location
			}
			if !found {
				t.Errorf("recorded checkpoint %s is not one that was triggered", cp.Location)
			}
			if c := r.Common(); c.LifecycleState == v1beta1.LifecycleFailed || c.Error != "" {
				t.Errorf("lifecycle %s, error %q", c.LifecycleState, c.Error)
			}
		}
	}
	cases := []crashCase{
		{
			name: "manual checkpoint", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
				w.tick()
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withCheckpointNonce(9)))
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return r.Operation == nil && r.LastCheckpointNonce != nil && *r.LastCheckpointNonce == 9
				}
			},
			check: check(v1beta1.TriggerManual),
		},
		{
			name: "periodic checkpoint", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicCheckpoint, "5s"))), "deployed", stableRunning)
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicCheckpoint, "5s")))
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					ci := r.Common().JobStatus.CheckpointInfo
					return r.Operation == nil && ci != nil && ci.LastPeriodicCheckpointTimestamp > 0
				}
			},
			check: check(v1beta1.TriggerPeriodic),
		},
		{
			name: "session job manual checkpoint", kind: KindSessionJob, res: "job",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
				})
				w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")), "session job", stableRunning)
			},
			change: func(w *simWorld) *Desired {
				s := sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")
				n := int64(4)
				s.Job.CheckpointTriggerNonce = &n
				return w.desiredJob("job", s)
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return r.Operation == nil && r.LastCheckpointNonce != nil && *r.LastCheckpointNonce == 4
				}
			},
			check: check(v1beta1.TriggerManual),
		},
	}
	polls, outages := []int{1}, []time.Duration{0, 10 * time.Minute}
	if !testing.Short() {
		polls = []int{0, 1, 3}
	}
	for _, c := range cases {
		for _, np := range polls {
			for _, out := range outages {
				t.Run(fmt.Sprintf("%s/down %s, polls %d", c.name, out, np), func(t *testing.T) {
					t.Parallel()
					crashAtEveryStep(t, c, np, out)
				})
			}
		}
	}
}
