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
	w.until(KindDeployment, "app", d, "upgraded", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	jm := w.deploymentObj("app")
	if len(jm.ManagedFields) == 0 || jm.ManagedFields[0].Manager != FieldManager {
		t.Fatalf("JobManager Deployment not applied by %s: %+v", FieldManager, jm.ManagedFields)
	}
}

// deployStable deploys spec as name and waits until it is stable.
func deployStable(w *simWorld, name string, spec v1beta1.FlinkDeploymentSpec) *Record {
	w.t.Helper()
	r := w.until(KindDeployment, name, w.desired(name, spec), name+" deployed", stableRunning)
	for i := 0; i < 3; i++ { // let it run and checkpoint
		w.tick()
	}
	return r
}

// settle keeps reconciling d for n passes and returns the record.
func (w *simWorld) settle(kind, name string, d *Desired, n int) *Record {
	w.t.Helper()
	for i := 0; i < n; i++ {
		w.tick()
		if _, _, died := w.pass(kind, name, d); died {
			w.t.Fatal("crashed")
		}
	}
	return w.record(kind, name)
}

// callsOf counts the Flink calls whose name starts with prefix.
func (w *simWorld) callsOf(prefix string) int {
	w.flink.mu.Lock()
	defer w.flink.mu.Unlock()
	n := 0
	for _, c := range w.flink.Calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func withConf(kv ...string) func(*v1beta1.FlinkDeploymentSpec) {
	return func(s *v1beta1.FlinkDeploymentSpec) {
		for i := 0; i+1 < len(kv); i += 2 {
			s.FlinkConfiguration[kv[i]] = kv[i+1]
		}
	}
}

func withArgs(args ...string) func(*v1beta1.FlinkDeploymentSpec) {
	return func(s *v1beta1.FlinkDeploymentSpec) { s.Job.Args = append(s.Job.Args, args...) }
}

func TestSuspendedFirstDeploy(t *testing.T) {
	w := newSimWorld(t)
	r := w.settle(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, suspend)), 3)
	if r.Operation != nil || r.Common().LifecycleState != v1beta1.LifecycleSuspended || !isSuspendedJSON(r.Reconciliation().LastReconciledSpec) {
		t.Fatalf("record %s, lastReconciledSpec %s", dumpRecord(r), r.Reconciliation().LastReconciledSpec)
	}
	if w.deploymentObj("app") != nil || len(w.flink.Started) != 0 {
		t.Fatalf("a suspended first deploy created a cluster or a job")
	}
}

// TestUpgradePaths checks each upgrade mode stops the job its own way.
func TestUpgradePaths(t *testing.T) {
	for _, c := range []struct {
		mode                  v1beta1.UpgradeMode
		stops, cancels, saves int
		restoreFromCheckpoint bool
	}{
		{v1beta1.UpgradeModeSavepoint, 1, 0, 1, false},
		{v1beta1.UpgradeModeLastState, 0, 1, 0, true},
		{v1beta1.UpgradeModeStateless, 0, 1, 0, false},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			w := newSimWorld(t)
			old := deployStable(w, "app", appSpecOf(c.mode, 2)).Common().JobStatus.JobID
			r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(c.mode, 4)), "upgraded", func(r *Record) bool {
				return stableRunning(r) && r.Common().JobStatus.JobID != old
			})
			if got := w.callsOf("StopWithSavepoint"); got != c.stops {
				t.Errorf("%d stop-with-savepoint calls, want %d", got, c.stops)
			}
			if got := w.callsOf("Cancel"); got != c.cancels {
				t.Errorf("%d cancel calls, want %d", got, c.cancels)
			}
			if got := len(w.flink.Savepoints); got != c.saves {
				t.Errorf("%d savepoints, want %d", got, c.saves)
			}
			j := w.flink.job(r.Common().JobStatus.JobID)
			switch {
			case c.saves > 0 && j.RestoredFrom != w.flink.Savepoints[0].Path:
				t.Errorf("restored from %q, want the savepoint", j.RestoredFrom)
			case c.restoreFromCheckpoint && !strings.Contains(j.RestoredFrom, "/chk-"):
				t.Errorf("restored from %q, want a checkpoint", j.RestoredFrom)
			case c.mode == v1beta1.UpgradeModeStateless && j.RestoredFrom != "":
				t.Errorf("stateless upgrade restored from %q", j.RestoredFrom)
			}
			if !w.hasEvent(ReasonSpecChanged, "spec.job.parallelism: 2 -> 4") {
				t.Errorf("no SpecChanged event naming the change: %v", w.events())
			}
		})
	}
}

// TestSavepointUpgradeJobNotRunning: a savepoint upgrade of a job that is
// not running falls back to last-state when allowed, and stops with a clear
// error when not.
func TestSavepointUpgradeJobNotRunning(t *testing.T) {
	failed := func(r *Record) bool { return r.Common().JobStatus.State == v1beta1.JobFailed && r.Operation == nil }
	t.Run("fallback", func(t *testing.T) {
		w := newSimWorld(t)
		w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withArgs("--fail-after", "4"))), "job failed", failed)
		old := w.record(KindDeployment, "app").Common().JobStatus.JobID
		oldJob := w.flink.job(old)
		r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "upgraded", func(r *Record) bool {
			return stableRunning(r) && r.Common().JobStatus.JobID != old
		})
		if len(w.flink.Savepoints) != 0 || w.callsOf("StopWithSavepoint") != 0 {
			t.Errorf("a savepoint was tried on a failed job")
		}
		last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
		if j := w.flink.job(r.Common().JobStatus.JobID); j.RestoredFrom != last.Path {
			t.Errorf("fell back to %q, want the newest checkpoint %q", j.RestoredFrom, last.Path)
		}
	})
	t.Run("no fallback", func(t *testing.T) {
		w := newSimWorld(t)
		spec := func(extra ...func(*v1beta1.FlinkDeploymentSpec)) v1beta1.FlinkDeploymentSpec {
			return appSpecOf(v1beta1.UpgradeModeSavepoint, 2, append(extra, withConf(keyLastStateFallback, "false"))...)
		}
		w.until(KindDeployment, "app", w.desired("app", spec(withArgs("--fail-after", "4"))), "job failed", failed)
		started := len(w.flink.Started)
		r := w.until(KindDeployment, "app", w.desired("app", spec()), "upgrade refused", func(r *Record) bool {
			return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed && strings.Contains(r.Common().Error, keyLastStateFallback)
		})
		if !strings.Contains(r.Common().Error, "no savepoint can be taken") {
			t.Errorf("error does not say why: %q", r.Common().Error)
		}
		if len(w.flink.Started) != started {
			t.Errorf("a job was started after a refused upgrade")
		}
		if !w.hasEvent(ReasonUpgradeFailed, keyLastStateFallback) {
			t.Errorf("no UpgradeFailed event: %v", w.events())
		}
	})
}

// TestLastStateWithoutCheckpoint: a last-state upgrade with no checkpoint
// to restore from stops and says what a human must do; it never starts the
// job empty, and it does not throw away the running job's state first.
func TestLastStateWithoutCheckpoint(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeLastState, 2, withArgs("--no-checkpoints"))).Common().JobStatus.JobID
	started := len(w.flink.Started)
	r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4, withArgs("--no-checkpoints"))), "upgrade refused", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed
	})
	msg := r.Common().Error
	for _, want := range []string{"checkpoint", "upgradeMode: savepoint"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if len(w.flink.Started) != started {
		t.Fatalf("a job was started without state")
	}
	if j := w.flink.job(old); j == nil || j.State != flinkclient.JobRunning {
		t.Errorf("the running job was stopped before the upgrade found it has no checkpoint to restore: %+v", j)
	}
	// Later passes try again and still neither cancel nor start empty.
	w.settle(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4, withArgs("--no-checkpoints"))), 10)
	if j := w.flink.job(old); len(w.flink.Started) != started || j.State != flinkclient.JobRunning || w.callsOf("Cancel") != 0 {
		t.Errorf("retries touched the job: %d jobs started, job %s, %d cancels", len(w.flink.Started)-started, j.State, w.callsOf("Cancel"))
	}
	if !w.hasEvent(ReasonUpgradeFailed, "no completed, retained checkpoint") {
		t.Errorf("no UpgradeFailed event: %v", w.events())
	}
}

func TestScaleInPlace(t *testing.T) {
	w := newSimWorld(t)
	r := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	old := r.Common().JobStatus.JobID
	three := int32(3)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, func(s *v1beta1.FlinkDeploymentSpec) { s.TaskManager.Replicas = &three }))
	r = w.settle(KindDeployment, "app", d, 3)
	if tm := w.deploymentObj("app-taskmanager"); tm == nil || *tm.Spec.Replicas != 3 {
		t.Fatalf("TaskManager Deployment not scaled: %+v", tm)
	}
	if r.Common().JobStatus.JobID != old || len(w.flink.Started) != 1 || w.callsOf("StopWithSavepoint")+w.callsOf("Cancel") != 0 {
		t.Fatalf("a scale change restarted the job: job %s (was %s), %d jobs started, %d stop and %d cancel calls",
			r.Common().JobStatus.JobID, old, len(w.flink.Started), w.callsOf("StopWithSavepoint"), w.callsOf("Cancel"))
	}
	if r.Reconciliation().LastReconciledSpec != specJSON(d.Deployment.Spec) || !stableRunning(r) {
		t.Fatalf("scale not recorded: %s", dumpRecord(r))
	}
	if jm := w.flink.jm(w.ns, "app"); jm == nil || jm.Generation != 1 {
		t.Fatalf("the JobManager restarted: %+v", jm)
	}
}

func TestIgnorableChange(t *testing.T) {
	w := newSimWorld(t)
	deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 2, withConf("kubernetes.operator.savepoint.history.max.count", "3")))
	r := w.settle(KindDeployment, "app", d, 3)
	if got := r.Reconciliation().LastReconciledSpec; got != specJSON(d.Deployment.Spec) {
		t.Fatalf("lastReconciledSpec not updated:\n%s", got)
	}
	if r.Common().Source == nil || r.Common().Source.Commit != d.Source.Commit {
		t.Errorf("source not updated: %+v", r.Common().Source)
	}
	if len(w.flink.Started) != 1 || w.callsOf("StopWithSavepoint")+w.callsOf("Cancel") != 0 || !stableRunning(r) {
		t.Fatalf("an ignorable change touched the job: %s; %d jobs started, %d stop and %d cancel calls",
			dumpRecord(r), len(w.flink.Started), w.callsOf("StopWithSavepoint"), w.callsOf("Cancel"))
	}
	if jm := w.flink.jm(w.ns, "app"); jm == nil || jm.Generation != 1 {
		t.Fatalf("the JobManager restarted: %+v", jm)
	}
}

func TestRestartNonce(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)).Common().JobStatus.JobID
	one := int64(1)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, func(s *v1beta1.FlinkDeploymentSpec) { s.RestartNonce = &one }))
	r := w.until(KindDeployment, "app", d, "restarted", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	if len(w.flink.Savepoints) != 1 || w.flink.job(r.Common().JobStatus.JobID).RestoredFrom != w.flink.Savepoints[0].Path {
		t.Fatalf("restart did not go through a savepoint")
	}
	if r.LastRestartNonce == nil || *r.LastRestartNonce != 1 {
		t.Fatalf("restart nonce not recorded: %v", r.LastRestartNonce)
	}
	w.settle(KindDeployment, "app", d, 5)
	if len(w.flink.Started) != 2 {
		t.Fatalf("the same nonce restarted the job again: %d jobs", len(w.flink.Started))
	}
}

func TestManualSavepoint(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)).Common().JobStatus.JobID
	seven := int64(7)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, func(s *v1beta1.FlinkDeploymentSpec) { s.Job.SavepointTriggerNonce = &seven }))
	r := w.until(KindDeployment, "app", d, "manual savepoint", func(r *Record) bool {
		si := r.Common().JobStatus.SavepointInfo
		return r.Operation == nil && si != nil && si.LastSavepoint != nil
	})
	sp := r.Common().JobStatus.SavepointInfo.LastSavepoint
	if sp.TriggerType != v1beta1.TriggerManual || sp.TriggerNonce == nil || *sp.TriggerNonce != 7 {
		t.Fatalf("savepoint %+v, want manual with nonce 7", sp)
	}
	if len(w.flink.Savepoints) != 1 || w.flink.Savepoints[0].Path != sp.Location || w.callsOf("TriggerSavepoint") == 0 {
		t.Fatalf("savepoint not taken by TriggerSavepoint")
	}
	if r.Common().JobStatus.JobID != old || w.flink.job(old).State != flinkclient.JobRunning {
		t.Fatalf("a manual savepoint stopped the job")
	}
	if r.LastSavepointNonce == nil || *r.LastSavepointNonce != 7 {
		t.Fatalf("nonce not recorded")
	}
	w.settle(KindDeployment, "app", d, 5)
	if len(w.flink.Savepoints) != 1 {
		t.Fatalf("the same nonce took %d savepoints", len(w.flink.Savepoints))
	}
	if !w.hasEvent(ReasonSavepoint, sp.Location) {
		t.Errorf("no savepoint event: %v", w.events())
	}
}

func TestPeriodicSavepoint(t *testing.T) {
	w := newSimWorld(t)
	spec := appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicSavepoint, "20s"))
	r := deployStable(w, "app", spec)
	deployedAt := r.Deployed.At
	d := w.desired("app", spec)
	r = w.until(KindDeployment, "app", d, "two periodic savepoints", func(r *Record) bool {
		si := r.Common().JobStatus.SavepointInfo
		return r.Operation == nil && si != nil && len(si.SavepointHistory) == 2
	})
	si := r.Common().JobStatus.SavepointInfo
	first, second := si.SavepointHistory[0], si.SavepointHistory[1]
	if first.TriggerType != v1beta1.TriggerPeriodic || second.TriggerType != v1beta1.TriggerPeriodic {
		t.Fatalf("history %+v, want periodic savepoints", si.SavepointHistory)
	}
	if at := time.UnixMilli(first.TimeStamp); at.Sub(deployedAt) < 20*time.Second || at.Sub(deployedAt) > 25*time.Second {
		t.Errorf("first periodic savepoint %s after deploy, want about 20s", at.Sub(deployedAt))
	}
	if gap := time.Duration(second.TimeStamp-first.TimeStamp) * time.Millisecond; gap < 20*time.Second || gap > 25*time.Second {
		t.Errorf("periodic savepoints %s apart, want about 20s", gap)
	}
	if si.LastPeriodicSavepointTimestamp != second.TimeStamp {
		t.Errorf("lastPeriodicSavepointTimestamp %d, want %d", si.LastPeriodicSavepointTimestamp, second.TimeStamp)
	}
}

func TestHistoryPruneAndDispose(t *testing.T) {
	w := newSimWorld(t)
	spec := func(nonce int64) v1beta1.FlinkDeploymentSpec {
		return appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyHistoryMaxCount, "2"), func(s *v1beta1.FlinkDeploymentSpec) {
			if nonce > 0 {
				s.Job.SavepointTriggerNonce = &nonce
			}
		})
	}
	deployStable(w, "app", spec(0))
	for n := int64(1); n <= 4; n++ {
		w.until(KindDeployment, "app", w.desired("app", spec(n)), fmt.Sprintf("savepoint %d", n), func(r *Record) bool {
			return r.Operation == nil && r.LastSavepointNonce != nil && *r.LastSavepointNonce == n
		})
	}
	r := w.settle(KindDeployment, "app", w.desired("app", spec(4)), 2)
	hist := r.Common().JobStatus.SavepointInfo.SavepointHistory
	if len(w.flink.Savepoints) != 4 || len(hist) != 2 {
		t.Fatalf("%d savepoints taken, %d in history; want 4 and 2", len(w.flink.Savepoints), len(hist))
	}
	for i, sp := range w.flink.Savepoints {
		kept := i >= 2
		if kept != !sp.Disposed {
			t.Errorf("savepoint %d %s: disposed %v", i+1, sp.Path, sp.Disposed)
		}
		if kept && hist[i-2].Location != sp.Path {
			t.Errorf("history[%d] = %s, want %s", i-2, hist[i-2].Location, sp.Path)
		}
	}
	if len(r.PendingDisposal) != 0 {
		t.Errorf("disposals still pending: %v", r.PendingDisposal)
	}
}

func deleted(r *Record) bool {
	return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleDeleted
}

// TestRollback: with rollback enabled, a spec whose job fails or never
// runs within the readiness timeout is rolled back to the last stable
// spec, restoring the state the upgrade saved; the failed spec is not
// tried again until Git changes.
func TestRollback(t *testing.T) {
	for _, c := range []struct {
		name string
		bad  func(*v1beta1.FlinkDeploymentSpec)
	}{
		{"job fails", withArgs("--fail-after", "1")},
		{"never ready", func(s *v1beta1.FlinkDeploymentSpec) { s.Image = "flink:broken" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newSimWorld(t)
			w.brokenImage = "flink:broken"
			conf := withConf(keyRollbackEnabled, "true", keyReadinessTimeout, "30s")
			good := appSpecOf(v1beta1.UpgradeModeSavepoint, 2, conf)
			old := deployStable(w, "app", good).Common().JobStatus.JobID
			d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, conf, c.bad))
			r := w.until(KindDeployment, "app", d, "rolled back", func(r *Record) bool {
				return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleRolledBack && r.Common().JobStatus.State == v1beta1.JobRunning
			})
			if len(w.flink.Savepoints) != 1 {
				t.Fatalf("%d savepoints, want the upgrade's one", len(w.flink.Savepoints))
			}
			sp := w.flink.Savepoints[0]
			j := w.flink.job(r.Common().JobStatus.JobID)
			if j.ID == old || j.RestoredFrom != sp.Path || j.StartCounter != sp.Counter {
				t.Fatalf("rolled-back job %s restored from %q at %d, want a new job from the upgrade savepoint %s at %d", j.ID, j.RestoredFrom, j.StartCounter, sp.Path, sp.Counter)
			}
			if r.Deployed == nil || r.Deployed.Spec != specJSON(good) {
				t.Fatalf("the running cluster is not the last stable spec")
			}
			if r.Common().Error == "" || !w.hasEvent(ReasonRollback, "rolling back") {
				t.Errorf("rollback not reported: error %q, events %v", r.Common().Error, w.events())
			}
			started := len(w.flink.Started)
			r = w.settle(KindDeployment, "app", d, 80)
			if n := len(w.flink.Started) - started; n != 0 || r.Common().LifecycleState != v1beta1.LifecycleRolledBack {
				t.Fatalf("after the rollback, the same failed spec was deployed again (%d more jobs started; %s)", n, dumpRecord(r))
			}
			// A new commit is tried again.
			fixed := appSpecOf(v1beta1.UpgradeModeSavepoint, 4, conf)
			r = w.until(KindDeployment, "app", w.desired("app", fixed), "fixed spec deployed", stableRunning)
			if r.Deployed.Spec != specJSON(fixed) {
				t.Fatalf("fixed spec not deployed")
			}
		})
	}
}

func TestSwitchApplicationSessionRejected(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)).Common().JobStatus.JobID
	r := w.until(KindDeployment, "app", w.desired("app", sessionSpecOf()), "switch rejected", func(r *Record) bool {
		return r.Common().LifecycleState == v1beta1.LifecycleFailed
	})
	if !strings.Contains(r.Common().Error, "switching between an application and a session cluster is not supported") {
		t.Fatalf("error %q", r.Common().Error)
	}
	if j := w.flink.job(old); j.State != flinkclient.JobRunning || w.callsOf("StopWithSavepoint")+w.callsOf("Cancel") != 0 || len(w.flink.Started) != 1 {
		t.Fatalf("the rejected switch touched the job")
	}
	if r := w.settle(KindDeployment, "app", w.desired("app", sessionSpecOf()), 5); r.Common().LifecycleState != v1beta1.LifecycleFailed || r.Common().Error == "" {
		t.Fatalf("the rejection did not stay in the status: %s", dumpRecord(r))
	}
	if !w.hasEvent(ReasonValidationError, "switching") {
		t.Errorf("no ValidationError event: %v", w.events())
	}
}

func TestDeletion(t *testing.T) {
	for _, save := range []bool{false, true} {
		t.Run(fmt.Sprint("savepoint-on-deletion=", save), func(t *testing.T) {
			w := newSimWorld(t)
			old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keySavepointOnDeletion, fmt.Sprint(save)))).Common().JobStatus.JobID
			r := w.until(KindDeployment, "app", nil, "deleted", deleted)
			w.tick()
			for _, n := range []string{"app", "app-taskmanager"} {
				if w.deploymentObj(n) != nil {
					t.Errorf("Deployment %s still there", n)
				}
			}
			if w.flink.jm(w.ns, "app") != nil {
				t.Errorf("JobManager still running")
			}
			if r.Reconciliation().LastReconciledSpec != "" || r.Deployed != nil {
				t.Errorf("deleted record still has a spec or a deployment")
			}
			if !save {
				if len(w.flink.Savepoints) != 0 {
					t.Fatalf("savepoint taken on deletion without %s", keySavepointOnDeletion)
				}
				return
			}
			sps := w.flink.savepointsOf(old)
			if len(sps) != 1 {
				t.Fatalf("%d savepoints on deletion, want 1", len(sps))
			}
			if si := r.Common().JobStatus.SavepointInfo; si == nil || si.LastSavepoint == nil || si.LastSavepoint.Location != sps[0].Path {
				t.Fatalf("deletion savepoint not in the kept record: %+v", si)
			}
			if j := w.flink.job(old); j.State != flinkclient.JobFinished {
				t.Errorf("job %s, want FINISHED by stop-with-savepoint", j.State)
			}
		})
	}
}

// sessionWorld deploys a session cluster and a session job on it.
func sessionWorld(t *testing.T, mode v1beta1.UpgradeMode) (*simWorld, string) {
	t.Helper()
	jar := filepath.Join(t.TempDir(), "counter.jar")
	if err := os.WriteFile(jar, []byte("PK\x03\x04 not really a jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newSimWorld(t)
	w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
	})
	w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, mode, "10")), "session job", stableRunning)
	for i := 0; i < 3; i++ {
		w.tick()
	}
	return w, jar
}

func TestSessionClusterDeletionWaitsForJobs(t *testing.T) {
	w, jar := sessionWorld(t, v1beta1.UpgradeModeStateless)
	jobDesired := w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeStateless, "10"))
	job := w.record(KindSessionJob, "job").Common().JobStatus.JobID
	for i := 0; i < 5; i++ {
		w.tick()
		w.pass(KindDeployment, "session", nil)
		w.pass(KindSessionJob, "job", jobDesired)
	}
	r := w.record(KindDeployment, "session")
	if r.Operation == nil || r.Operation.Kind != OpDelete || !strings.Contains(r.Operation.Message, "waiting for session jobs to be deleted first: job") {
		t.Fatalf("session cluster deletion not waiting for its job: %s", dumpRecord(r))
	}
	if w.deploymentObj("session") == nil || w.flink.job(job).State != flinkclient.JobRunning {
		t.Fatalf("session cluster deleted under a running session job")
	}
	w.until(KindSessionJob, "job", nil, "session job deleted", deleted)
	if j := w.flink.job(job); j.State != flinkclient.JobCanceled {
		t.Fatalf("deleted session job is %s, want CANCELED", j.State)
	}
	w.until(KindDeployment, "session", nil, "session cluster deleted", deleted)
	if w.deploymentObj("session") != nil {
		t.Fatalf("session cluster still there")
	}
}

func TestSessionJobSuspendResumeDelete(t *testing.T) {
	w, jar := sessionWorld(t, v1beta1.UpgradeModeSavepoint)
	old := w.record(KindSessionJob, "job").Common().JobStatus.JobID
	spec := sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")
	spec.Job.State = v1beta1.JobStateSuspended
	r := w.until(KindSessionJob, "job", w.desiredJob("job", spec), "session job suspended", func(r *Record) bool {
		return r.Operation == nil && r.Deployed == nil
	})
	sps := w.flink.savepointsOf(old)
	if len(sps) != 1 || r.Common().JobStatus.UpgradeSavepointPath != sps[0].Path || w.flink.job(old).State != flinkclient.JobFinished {
		t.Fatalf("suspend did not stop with one savepoint: %d savepoints, record %s", len(sps), dumpRecord(r))
	}
	if got := r.Common().LifecycleState; got != v1beta1.LifecycleSuspended {
		t.Errorf("suspended session job is %s, want SUSPENDED", got)
	}
	spec.Job.State = v1beta1.JobStateRunning
	r = w.until(KindSessionJob, "job", w.desiredJob("job", spec), "session job resumed", func(r *Record) bool {
		return stableRunning(r) && r.Common().JobStatus.JobID != old
	})
	j := w.flink.job(r.Common().JobStatus.JobID)
	if j.RestoredFrom != sps[0].Path || j.StartCounter != sps[0].Counter {
		t.Fatalf("resumed from %q at %d, want %s at %d", j.RestoredFrom, j.StartCounter, sps[0].Path, sps[0].Counter)
	}
	w.until(KindSessionJob, "job", nil, "session job deleted", deleted)
	if w.flink.job(j.ID).State != flinkclient.JobCanceled {
		t.Fatalf("deleted job is %s", w.flink.job(j.ID).State)
	}
	if w.deploymentObj("session") == nil {
		t.Fatalf("deleting a session job deleted its cluster")
	}
}

// TestJobManagerDeletedByHand: a JobManager Deployment deleted behind the
// daemon's back is redeployed from the newest state of the running job, and
// never from state of a job an upgrade replaced without restoring it.
func TestJobManagerDeletedByHand(t *testing.T) {
	deleteJM := func(w *simWorld) {
		if err := w.tracker.Delete(deploymentsGVR, w.ns, "app"); err != nil {
			w.t.Fatal(err)
		}
	}
	t.Run("newest checkpoint", func(t *testing.T) {
		w := newSimWorld(t)
		d := w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 2))
		old := deployStable(w, "app", d.Deployment.Spec).Common().JobStatus.JobID
		w.pass(KindDeployment, "app", d) // observe the newest checkpoint
		oldJob := w.flink.job(old)
		deleteJM(w)
		w.tick() // the JobManager goes
		last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
		r := w.until(KindDeployment, "app", d, "redeployed", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
		j := w.flink.job(r.Common().JobStatus.JobID)
		if j.RestoredFrom != last.Path || j.StartCounter != last.Counter {
			t.Fatalf("redeployed from %q at %d, want the newest checkpoint %s at %d", j.RestoredFrom, j.StartCounter, last.Path, last.Counter)
		}
	})
	t.Run("after a stateless upgrade", func(t *testing.T) {
		w := newSimWorld(t)
		old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeStateless, 2)).Common().JobStatus.JobID
		d := w.desired("app", appSpecOf(v1beta1.UpgradeModeStateless, 2, withArgs("--no-checkpoints")))
		r := w.until(KindDeployment, "app", d, "upgraded", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
		fresh := r.Common().JobStatus.JobID
		deleteJM(w)
		w.tick()
		r = w.until(KindDeployment, "app", d, "redeployed", func(r *Record) bool {
			return r.Operation == nil && r.Common().JobStatus.JobID != fresh && r.Deployed != nil
		})
		if j := w.flink.job(r.Common().JobStatus.JobID); j != nil && j.RestoredFrom != "" {
			t.Fatalf("the redeployed job was restored from %s, state of the job the stateless upgrade replaced (counter %d)", j.RestoredFrom, j.StartCounter)
		}
	})
}

// TestSlowUpgradeSavepoint: a stop-with-savepoint that takes longer than
// the daemon's operation timeout is waited for, not triggered again: a
// second trigger would take a second savepoint or, once the first one
// stopped the job, fail and leave the first savepoint unrecorded.
func TestSlowUpgradeSavepoint(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)).Common().JobStatus.JobID
	w.flink.SavepointPolls, w.flink.SavepointTicks = 1000, 150 // 2.5 minutes; the operation timeout is 2
	r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4)), "upgraded", func(r *Record) bool {
		return r.Operation == nil && r.Common().JobStatus.JobID != old
	})
	if n := w.callsOf("StopWithSavepoint"); n != 1 || len(w.flink.Savepoints) != 1 {
		t.Fatalf("%d stop-with-savepoint calls and %d savepoints, want 1 and 1", n, len(w.flink.Savepoints))
	}
	sp := w.flink.Savepoints[0]
	if j := w.flink.job(r.Common().JobStatus.JobID); j.RestoredFrom != sp.Path {
		t.Fatalf("restored from %q, want the slow savepoint %s", j.RestoredFrom, sp.Path)
	}
}

// TestSuspendResume suspends and resumes in each upgrade mode: the job
// resumes from the suspend savepoint, from the newest checkpoint, or empty.
func TestSuspendResume(t *testing.T) {
	for _, mode := range []v1beta1.UpgradeMode{v1beta1.UpgradeModeSavepoint, v1beta1.UpgradeModeLastState, v1beta1.UpgradeModeStateless} {
		t.Run(string(mode), func(t *testing.T) {
			w := newSimWorld(t)
			old := deployStable(w, "app", appSpecOf(mode, 2)).Common().JobStatus.JobID
			r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(mode, 2, suspend)), "suspended", func(r *Record) bool {
				return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleSuspended
			})
			oldJob := w.flink.job(old)
			var want string
			var counter int64
			switch mode {
			case v1beta1.UpgradeModeSavepoint:
				sp := w.flink.savepointsOf(old)
				if len(sp) != 1 {
					t.Fatalf("%d savepoints on suspend", len(sp))
				}
				want, counter = sp[0].Path, sp[0].Counter
			case v1beta1.UpgradeModeLastState:
				last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
				want, counter = last.Path, last.Counter
			}
			if got := r.Common().JobStatus.UpgradeSavepointPath; mode != v1beta1.UpgradeModeStateless && got != want {
				t.Fatalf("upgradeSavepointPath %q, want %q", got, want)
			}
			if !w.hasEvent(ReasonSuspended, "job suspended") {
				t.Errorf("no Suspended event: %v", w.events())
			}
			w.settle(KindDeployment, "app", w.desired("app", appSpecOf(mode, 2, suspend)), 3)
			if len(w.flink.Started) != 1 || w.deploymentObj("app") != nil {
				t.Fatalf("a suspended job came back")
			}
			r = w.until(KindDeployment, "app", w.desired("app", appSpecOf(mode, 2)), "resumed", stableRunning)
			j := w.flink.job(r.Common().JobStatus.JobID)
			if j.RestoredFrom != want || j.StartCounter != counter {
				t.Fatalf("resumed from %q at %d, want %q at %d", j.RestoredFrom, j.StartCounter, want, counter)
			}
			if len(w.flink.Started) != 2 {
				t.Fatalf("%d jobs started, want 2", len(w.flink.Started))
			}
		})
	}
}

// TestRestartNonceWithSpecChange: a restartNonce pushed together with an
// upgrade restarts the job once, with the upgrade.
func TestRestartNonceWithSpecChange(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)).Common().JobStatus.JobID
	one := int64(1)
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, func(s *v1beta1.FlinkDeploymentSpec) { s.RestartNonce = &one }))
	w.until(KindDeployment, "app", d, "upgraded", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	w.settle(KindDeployment, "app", d, 10)
	if n := len(w.flink.Started); n != 2 || len(w.flink.Savepoints) != 1 {
		t.Fatalf("%d jobs and %d savepoints, want 2 and 1: the nonce restarted the job again after the upgrade", n, len(w.flink.Savepoints))
	}
}

// TestSessionClusterUpgradeKeepsJobs: upgrading a session cluster takes its
// JobManager and with it the session jobs; each session job comes back,
// restored from its newest state.
func TestSessionClusterUpgradeKeepsJobs(t *testing.T) {
	w, jar := sessionWorld(t, v1beta1.UpgradeModeLastState)
	jobD := w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeLastState, "10"))
	old := w.record(KindSessionJob, "job").Common().JobStatus.JobID
	w.pass(KindSessionJob, "job", jobD) // observe the newest checkpoint
	oldJob := w.flink.job(old)
	last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
	upgraded := sessionSpecOf()
	upgraded.FlinkConfiguration["taskmanager.numberOfTaskSlots"] = "4"
	clusterD := w.desired("session", upgraded)
	w.until(KindDeployment, "session", clusterD, "session cluster upgraded", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable && r.Deployed != nil && r.Deployed.Spec == specJSON(upgraded)
	})
	r := w.until(KindSessionJob, "job", jobD, "session job back", func(r *Record) bool {
		return stableRunning(r) && r.Common().JobStatus.JobID != old
	})
	j := w.flink.job(r.Common().JobStatus.JobID)
	if j.RestoredFrom == "" || j.StartCounter < last.Counter {
		t.Fatalf("session job came back from %q at %d, want its newest state (%s at %d or later)", j.RestoredFrom, j.StartCounter, last.Path, last.Counter)
	}
}

// TestSavepointRedeployNonce: a new savepointRedeployNonce redeploys the
// job from initialSavepointPath, whatever it runs now.
func TestSavepointRedeployNonce(t *testing.T) {
	w := newSimWorld(t)
	one := int64(1)
	spec := func(edits ...func(*v1beta1.FlinkDeploymentSpec)) v1beta1.FlinkDeploymentSpec {
		return appSpecOf(v1beta1.UpgradeModeSavepoint, 2, edits...)
	}
	deployStable(w, "app", spec())
	r := w.until(KindDeployment, "app", w.desired("app", spec(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.SavepointTriggerNonce = &one })), "manual savepoint",
		func(r *Record) bool { return r.Operation == nil && r.LastSavepointNonce != nil })
	sp := w.flink.Savepoints[0]
	for i := 0; i < 5; i++ {
		w.tick() // the job moves on past the savepoint
	}
	old := r.Common().JobStatus.JobID
	d := w.desired("app", spec(func(s *v1beta1.FlinkDeploymentSpec) {
		s.Job.SavepointTriggerNonce, s.Job.SavepointRedeployNonce, s.Job.InitialSavepointPath = &one, &one, sp.Path
	}))
	r = w.until(KindDeployment, "app", d, "redeployed", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	j := w.flink.job(r.Common().JobStatus.JobID)
	if j.RestoredFrom != sp.Path || j.StartCounter != sp.Counter {
		t.Fatalf("redeployed from %q at %d, want %s at %d", j.RestoredFrom, j.StartCounter, sp.Path, sp.Counter)
	}
	if len(w.flink.Savepoints) != 1 || w.callsOf("Cancel") != 1 {
		t.Fatalf("redeploy should cancel the job without a savepoint: %d savepoints, %d cancels", len(w.flink.Savepoints), w.callsOf("Cancel"))
	}
	w.settle(KindDeployment, "app", d, 5)
	if len(w.flink.Started) != 2 {
		t.Fatalf("the same redeploy nonce redeployed again")
	}
}

// TestHistoryMaxAge prunes savepoints older than the configured age and
// disposes of them.
func TestHistoryMaxAge(t *testing.T) {
	w := newSimWorld(t)
	spec := appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicSavepoint, "20s", keyHistoryMaxAge, "50s"))
	deployStable(w, "app", spec)
	r := w.until(KindDeployment, "app", w.desired("app", spec), "six periodic savepoints", func(r *Record) bool {
		return r.Operation == nil && len(w.flink.Savepoints) == 6
	})
	now := w.clock.Now()
	for _, sp := range r.Common().JobStatus.SavepointInfo.SavepointHistory {
		if age := now.Sub(time.UnixMilli(sp.TimeStamp)); age > 50*time.Second+20*time.Second {
			t.Errorf("savepoint %s is %s old, kept past max.age", sp.Location, age)
		}
	}
	w.settle(KindDeployment, "app", w.desired("app", spec), 1)
	disposed := 0
	for _, sp := range w.flink.Savepoints {
		if sp.Disposed {
			disposed++
		}
	}
	if disposed < 3 {
		t.Fatalf("%d of 6 savepoints disposed, want the old ones", disposed)
	}
}

func TestSessionJobRestartNonce(t *testing.T) {
	w, jar := sessionWorld(t, v1beta1.UpgradeModeSavepoint)
	old := w.record(KindSessionJob, "job").Common().JobStatus.JobID
	spec := sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")
	one := int64(1)
	spec.RestartNonce = &one
	d := w.desiredJob("job", spec)
	r := w.until(KindSessionJob, "job", d, "restarted", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	sps := w.flink.savepointsOf(old)
	if len(sps) != 1 || w.flink.job(r.Common().JobStatus.JobID).RestoredFrom != sps[0].Path {
		t.Fatalf("restart did not go through one savepoint: %d", len(sps))
	}
	started := len(w.flink.Started)
	w.settle(KindSessionJob, "job", d, 5)
	if len(w.flink.Started) != started {
		t.Fatalf("the same nonce restarted the session job again")
	}
}
