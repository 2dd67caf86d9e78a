package lifecycle

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Issue 8: "Prove it with a test that runs each upgrade mode and, for every
// step k, stops the reconciler right after its k-th external call
// (Kubernetes or Flink), builds a fresh reconciler from the ConfigMap alone,
// and lets it finish: the end state is right, and no savepoint or checkpoint
// is lost or taken twice."
//
// A crash is simulated by the world's crasher: call k (a Kubernetes request
// through the fake clientset's reactor chain, or a Flink REST call) takes
// effect, and every later call of that reconciler panics, which unwinds the
// pass like a killed process: nothing it held in memory survives. A brand
// new Reconciler (new Store, new Flink clients, nothing shared but the
// simulated cluster) then reconciles until the operation is done.

// crashBefore is what the world looked like before the change was pushed.
type crashBefore struct {
	rec        *Record
	jobID      string
	savepoints int // savepoints ever taken
	started    int // jobs ever started
}

type crashCase struct {
	name string
	kind string
	res  string
	// setup brings a new world to the starting state.
	setup func(w *simWorld)
	// change is the pushed spec the run reconciles to.
	change func(w *simWorld) *Desired
	// done says when the operation is over.
	done func(b crashBefore) func(*Record) bool
	// check asserts the end state.
	check func(t *testing.T, w *simWorld, b crashBefore, r *Record)
}

func TestCrashAtEveryStep(t *testing.T) {
	jar := filepath.Join(t.TempDir(), "counter.jar")
	if err := os.WriteFile(jar, []byte("PK\x03\x04 not really a jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	jar2 := jarVariant(t, t.TempDir(), 2)
	upgraded := func(b crashBefore) func(*Record) bool {
		return func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != b.jobID }
	}
	suspended := func(b crashBefore) func(*Record) bool {
		return func(r *Record) bool {
			return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleSuspended
		}
	}
	deployApp := func(mode v1beta1.UpgradeMode) func(w *simWorld) {
		return func(w *simWorld) {
			w.until(KindDeployment, "app", w.desired("app", appSpecOf(mode, 2)), "deployed", stableRunning)
			for i := 0; i < 3; i++ { // let it run and checkpoint
				w.tick()
			}
		}
	}
	cases := []crashCase{
		{
			name: "savepoint upgrade", kind: KindDeployment, res: "app",
			setup:  deployApp(v1beta1.UpgradeModeSavepoint),
			change: func(w *simWorld) *Desired { return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4)) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, sp.Path, sp.Counter)
				wantJobState(t, w, b.jobID, flinkclient.JobFinished)
				wantUpgradeSavepoint(t, r, sp.Path)
				wantReconciled(t, r, appSpecOf(v1beta1.UpgradeModeSavepoint, 4))
			},
		},
		{
			name: "last-state upgrade", kind: KindDeployment, res: "app",
			setup:  deployApp(v1beta1.UpgradeModeLastState),
			change: func(w *simWorld) *Desired { return w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4)) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				old := w.flink.job(b.jobID)
				if old == nil || len(old.Checkpoints) == 0 {
					t.Fatalf("old job %s has no checkpoints", b.jobID)
				}
				last := old.Checkpoints[len(old.Checkpoints)-1]
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, last.Path, last.Counter)
				wantJobState(t, w, b.jobID, flinkclient.JobCanceled)
				if got := r.Common().JobStatus.UpgradeSavepointPath; got != last.Path {
					t.Errorf("upgradeSavepointPath %q, want the newest checkpoint %q", got, last.Path)
				}
				wantReconciled(t, r, appSpecOf(v1beta1.UpgradeModeLastState, 4))
			},
		},
		{
			name: "stateless upgrade", kind: KindDeployment, res: "app",
			setup:  deployApp(v1beta1.UpgradeModeStateless),
			change: func(w *simWorld) *Desired { return w.desired("app", appSpecOf(v1beta1.UpgradeModeStateless, 4)) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, "", 0)
				wantJobState(t, w, b.jobID, flinkclient.JobCanceled)
				wantReconciled(t, r, appSpecOf(v1beta1.UpgradeModeStateless, 4))
			},
		},
		{
			name: "suspend", kind: KindDeployment, res: "app",
			setup: deployApp(v1beta1.UpgradeModeSavepoint),
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, suspend))
			},
			done: suspended,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				if n := len(w.flink.Started) - b.started; n != 0 {
					t.Errorf("%d jobs started by a suspend", n)
				}
				wantJobState(t, w, b.jobID, flinkclient.JobFinished)
				wantUpgradeSavepoint(t, r, sp.Path)
				if w.deploymentObj("app") != nil || w.deploymentObj("app-taskmanager") != nil {
					t.Errorf("cluster Deployments still there after suspend")
				}
				if r.Deployed != nil {
					t.Errorf("suspended record still says deployed: %+v", r.Deployed)
				}
			},
		},
		{
			name: "resume", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				deployApp(v1beta1.UpgradeModeSavepoint)(w)
				w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, suspend)), "suspended",
					suspended(crashBefore{}))
			},
			change: func(w *simWorld) *Desired { return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				path := b.rec.Common().JobStatus.UpgradeSavepointPath
				sp := w.flink.fs[path]
				if sp == nil || !sp.Savepoint {
					t.Fatalf("suspend savepoint %q unknown", path)
				}
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, path, sp.Counter)
			},
		},
		{
			name: "session job savepoint upgrade", kind: KindSessionJob, res: "job",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
				})
				w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "10")), "session job", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
			},
			change: func(w *simWorld) *Desired {
				return w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeSavepoint, "20"))
			},
			done: upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, sp.Path, sp.Counter)
				wantJobState(t, w, b.jobID, flinkclient.JobFinished)
				wantUpgradeSavepoint(t, r, sp.Path)
				if jm := w.flink.jm(w.ns, "session"); jm == nil || len(jm.Jobs) != 2 {
					t.Errorf("session cluster should know the old and the new job: %+v", jm)
				}
			},
		},
		{
			// Kubernetes HA: no cancel, no savepoint; the job keeps its id
			// and the new JobManager recovers from the kept HA metadata.
			name: "last-state upgrade through HA", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 2, withKubernetesHA)), "deployed", stableRunning)
				w.writeHA(r.Common().JobStatus.JobID, 2)
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4, withKubernetesHA))
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return stableRunning(r) && r.Deployed != nil && strings.Contains(r.Deployed.Spec, `"parallelism":4`)
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				job := oneNewJob(t, w, b, r)
				if job.ID != b.jobID || r.Deployed.RestorePath != "" {
					t.Errorf("job %s (was %s) restored from %q: want the same job id, recovered from HA", job.ID, b.jobID, r.Deployed.RestorePath)
				}
				if n := w.callsOf("Cancel"); n != 0 {
					t.Errorf("%d cancels: Flink would have deleted the HA metadata", n)
				}
				cluster := w.configMap("app-cluster-config-map")
				if cluster == nil || w.configMap("app-"+b.jobID+"-config-map") == nil {
					t.Fatalf("HA ConfigMaps gone")
				}
				for k := range cluster.Data {
					if strings.HasPrefix(k, "jobGraph-") || strings.HasPrefix(k, "executionPlan-") {
						t.Errorf("job graph %s left in the cluster HA ConfigMap", k)
					}
				}
			},
		},
		{
			name: "first deploy", kind: KindDeployment, res: "app",
			setup:  func(w *simWorld) {},
			change: func(w *simWorld) *Desired { return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, "", 0)
				wantReconciled(t, r, appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
			},
		},
		{
			name: "manual savepoint", kind: KindDeployment, res: "app",
			setup: deployApp(v1beta1.UpgradeModeSavepoint),
			change: func(w *simWorld) *Desired {
				n := int64(5)
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, func(s *v1beta1.FlinkDeploymentSpec) { s.Job.SavepointTriggerNonce = &n }))
			},
			done: func(b crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return r.Operation == nil && r.LastSavepointNonce != nil && *r.LastSavepointNonce == 5
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				if n := len(w.flink.Started) - b.started; n != 0 || r.Common().JobStatus.JobID != b.jobID {
					t.Errorf("a manual savepoint restarted the job")
				}
				wantJobState(t, w, b.jobID, flinkclient.JobRunning)
				si := r.Common().JobStatus.SavepointInfo
				if si == nil || si.LastSavepoint == nil || si.LastSavepoint.Location != sp.Path || si.LastSavepoint.TriggerType != v1beta1.TriggerManual ||
					si.LastSavepoint.TriggerNonce == nil || *si.LastSavepoint.TriggerNonce != 5 || len(si.SavepointHistory) != 1 {
					t.Errorf("manual savepoint not recorded once: %+v", si)
				}
			},
		},
		{
			name: "deletion with savepoint", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keySavepointOnDeletion, "true"))), "deployed", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
			},
			change: func(w *simWorld) *Desired { return nil },
			done:   func(crashBefore) func(*Record) bool { return deleted },
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				wantJobState(t, w, b.jobID, flinkclient.JobFinished)
				if si := r.Common().JobStatus.SavepointInfo; si == nil || len(si.SavepointHistory) != 1 || si.SavepointHistory[0].Location != sp.Path {
					t.Errorf("deletion savepoint not kept once in the record: %+v", si)
				}
				if w.deploymentObj("app") != nil || w.deploymentObj("app-taskmanager") != nil {
					t.Errorf("cluster still there")
				}
			},
		},
		{
			name: "rollback", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, rollbackConf)), "deployed", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, rollbackConf, withArgs("--fail-after", "1")))
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleRolledBack && r.Common().JobStatus.State == v1beta1.JobRunning
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				started := w.flink.Started[b.started:]
				if len(started) != 2 || started[0].State != flinkclient.JobFailed || started[1].ID != r.Common().JobStatus.JobID {
					t.Fatalf("want the failing job and one rolled-back job started, got %d jobs", len(started))
				}
				wantRestored(t, started[1], sp.Path, sp.Counter)
				if r.Deployed.Spec != specJSON(appSpecOf(v1beta1.UpgradeModeSavepoint, 2, rollbackConf)) {
					t.Errorf("rolled back to another spec")
				}
			},
		},
		{
			name: "session job last-state upgrade", kind: KindSessionJob, res: "job",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
				})
				w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeLastState, "10")), "session job", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
			},
			change: func(w *simWorld) *Desired {
				return w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeLastState, "20"))
			},
			done: upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				old := w.flink.job(b.jobID)
				last := old.Checkpoints[len(old.Checkpoints)-1]
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, last.Path, last.Counter)
				wantJobState(t, w, b.jobID, flinkclient.JobCanceled)
			},
		},
		{
			// Issue 19: the jar's digest is recorded before its upload, so a
			// crash between upload and run reuses the uploaded jar, and the
			// old jar is deleted once the new job runs: one jar is left.
			name: "session job upgrade to a new jar", kind: KindSessionJob, res: "job",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
				})
				w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar, v1beta1.UpgradeModeStateless, "10")), "session job", stableRunning)
			},
			change: func(w *simWorld) *Desired {
				return w.desiredJob("job", sessionJobSpecOf("session", jar2, v1beta1.UpgradeModeStateless, "10"))
			},
			done: upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				oneNewJob(t, w, b, r)
				wantJobState(t, w, b.jobID, flinkclient.JobCanceled)
				wantJarOf(t, w, "session", r, jar2)
				d2, _ := fileSHA256(jar2)
				if n := w.callsOf("UploadJarFrom " + jarName(d2, filepath.Base(jar2))); n != 1 {
					t.Errorf("the new jar was uploaded %d times, want once", n)
				}
			},
		},
		{
			name: "session job deletion deletes its jar", kind: KindSessionJob, res: "job",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "session", w.desired("session", sessionSpecOf()), "session cluster", func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleStable
				})
				w.until(KindSessionJob, "job", w.desiredJob("job", sessionJobSpecOf("session", jar2, v1beta1.UpgradeModeStateless, "10")), "session job", stableRunning)
			},
			change: func(w *simWorld) *Desired { return nil },
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleDeleted
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				wantJobState(t, w, b.jobID, flinkclient.JobCanceled)
				if got := w.flink.jarNames(w.ns, "session"); len(got) != 0 {
					t.Errorf("jars left on the session cluster after the deletion: %v", got)
				}
			},
		},
		{
			name: "periodic savepoint", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicSavepoint, "5s"))), "deployed", stableRunning)
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(keyPeriodicSavepoint, "5s")))
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					si := r.Common().JobStatus.SavepointInfo
					return r.Operation == nil && si != nil && si.LastPeriodicSavepointTimestamp > 0
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				si := r.Common().JobStatus.SavepointInfo
				if len(si.SavepointHistory) != 1 || si.LastSavepoint.Location != sp.Path || si.LastSavepoint.TriggerType != v1beta1.TriggerPeriodic {
					t.Errorf("periodic savepoint not recorded once: %+v", si)
				}
				wantJobState(t, w, b.jobID, flinkclient.JobRunning)
			},
		},
		{
			name: "scale", kind: KindDeployment, res: "app",
			setup: deployApp(v1beta1.UpgradeModeSavepoint),
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, scaleTo(3)))
			},
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return stableRunning(r) && r.Reconciliation().LastReconciledSpec == specJSON(appSpecOf(v1beta1.UpgradeModeSavepoint, 2, scaleTo(3)))
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				if n := len(w.flink.Started) - b.started; n != 0 || r.Common().JobStatus.JobID != b.jobID {
					t.Errorf("scaling restarted the job")
				}
				if jm := w.flink.jm(w.ns, "app"); jm == nil || jm.Generation != 1 {
					t.Errorf("scaling rolled the JobManager")
				}
				if tm := w.deploymentObj("app-taskmanager"); tm == nil || *tm.Spec.Replicas != 3 {
					t.Errorf("TaskManagers not scaled")
				}
			},
		},
		{
			// Issue 18: a parallelism change on the adaptive scheduler is
			// rescaled in place; a crash at any step neither restarts the
			// job nor sends other requirements.
			name: "rescale in place", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", w.desired("app", adaptiveApp(2)), "deployed", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
			},
			change: func(w *simWorld) *Desired { return w.desired("app", adaptiveApp(4)) },
			done: func(crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					return stableRunning(r) && r.Reconciliation().LastReconciledSpec == specJSON(adaptiveApp(4))
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				if n := len(w.flink.Started) - b.started; n != 0 || r.Common().JobStatus.JobID != b.jobID {
					t.Errorf("the rescale restarted the job")
				}
				if got := vertexParallelism(w, b.jobID); len(got) != 2 || got[0] != 4 || got[1] != 4 || w.flink.job(b.jobID).Rescales != 1 {
					t.Errorf("job at %v after %d rescales, want 4 after 1", got, w.flink.job(b.jobID).Rescales)
				}
				if tm := w.deploymentObj("app-taskmanager"); tm == nil || *tm.Spec.Replicas != 2 {
					t.Errorf("TaskManagers not scaled to 2")
				}
				if r.Operation != nil {
					t.Errorf("operation left: %+v", r.Operation)
				}
			},
		},
		{
			// Issue 26: a spec the apiserver refuses is refused before
			// anything stops, and not tried again every pass.
			name: "upgrade refused by pre-flight", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				deployApp(v1beta1.UpgradeModeSavepoint)(w)
				w.kube.PrependReactor("patch", "deployments", rejectImage(rejectedImage, true))
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, withImage(rejectedImage)))
			},
			done: func(b crashBefore) func(*Record) bool {
				return func(r *Record) bool { return r.Operation == nil && r.Refused != nil }
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				noNewSavepoints(t, w, b)
				if n := len(w.flink.Started) - b.started; n != 0 {
					t.Errorf("%d jobs started by a refused upgrade", n)
				}
				wantJobState(t, w, b.jobID, flinkclient.JobRunning)
				if c := r.Common(); !strings.HasPrefix(c.Error, "upgrade refused: Deployment apps/app: ") || !strings.HasSuffix(c.Error, "; the running job is untouched") ||
					c.LifecycleState != v1beta1.LifecycleStable {
					t.Errorf("status: lifecycle %s, error %q", c.LifecycleState, c.Error)
				}
				wantReconciled(t, r, appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
			},
		},
		{
			// Issue 26: the new spec is refused only once the old cluster is
			// gone (the apiserver's answer changed after pre-flight): the last
			// stable spec runs again from the savepoint just taken.
			name: "upgrade failing after the cluster is gone", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				deployApp(v1beta1.UpgradeModeSavepoint)(w)
				w.kube.PrependReactor("patch", "deployments", rejectImage(rejectedImage, false))
			},
			change: func(w *simWorld) *Desired {
				return w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, withImage(rejectedImage)))
			},
			done: func(b crashBefore) func(*Record) bool {
				return func(r *Record) bool {
					c := r.Common()
					return r.Operation == nil && c.LifecycleState == v1beta1.LifecycleRolledBack && c.JobStatus.State == v1beta1.JobRunning
				}
			},
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				job := oneNewJob(t, w, b, r)
				wantRestored(t, job, sp.Path, sp.Counter)
				wantJobState(t, w, b.jobID, flinkclient.JobFinished)
				wantReconciled(t, r, appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
				if c := r.Common(); !strings.HasPrefix(c.Error, "upgrade failed: ") || !strings.Contains(c.Error, "redeployed from "+sp.Path) {
					t.Errorf("status error %q", c.Error)
				}
				if jm := w.deploymentObj("app"); jm == nil || jm.Spec.Template.Spec.Containers[0].Image == rejectedImage {
					t.Errorf("JobManager Deployment not the last stable one: %+v", jm)
				}
			},
		},
	}
	// A process restarts in seconds, or after minutes (a new pod
	// scheduled): long enough for Flink to forget finished operations.
	polls, outages := []int{1}, []time.Duration{0, 10 * time.Minute}
	if !testing.Short() {
		polls = []int{0, 1, 3}
	}
	for _, c := range cases {
		for _, np := range polls {
			for _, out := range outages {
				name := fmt.Sprintf("%s/down %s", c.name, out)
				if len(polls) > 1 {
					name += fmt.Sprintf(", savepoint polls %d", np)
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					crashAtEveryStep(t, c, np, out)
				})
			}
		}
	}
}

var rollbackConf = withConf(keyRollbackEnabled, "true", keyReadinessTimeout, "30s")

// crashAtEveryStep runs c once without a crash to count its external calls,
// then once per call k with a crash right after call k, after which the
// world runs on for outage before a new reconciler starts.
func crashAtEveryStep(t *testing.T, c crashCase, polls int, outage time.Duration) {
	{
		{
			prepare := func() (*simWorld, crashBefore) {
				w := newSimWorld(t)
				w.flink.SavepointPolls = polls
				c.setup(w)
				w.restart() // a fresh call counter
				b := crashBefore{savepoints: len(w.flink.Savepoints), started: len(w.flink.Started)}
				if b.rec = w.record(c.kind, c.res); b.rec != nil {
					b.jobID = b.rec.Common().JobStatus.JobID
				}
				return w, b
			}
			// The reference run, without a crash, counts the calls.
			w, b := prepare()
			r := w.until(c.kind, c.res, c.change(w), "the reference run", c.done(b))
			c.check(t, w, b, r)
			calls := w.crash.calls
			if t.Failed() {
				return
			}
			w.retired = true
			t.Logf("%d external calls without a crash", len(calls))
			for k := 1; k <= len(calls); k++ {
				w, b := prepare()
				d := c.change(w)
				w.crash.at = k
				done := c.done(b)
				died := false
				for i := 0; i < maxPasses && !died; i++ {
					w.tick()
					_, _, died = w.pass(c.kind, c.res, d)
					if r := w.record(c.kind, c.res); !died && r != nil && done(r) {
						break
					}
				}
				if !died && k < len(calls) {
					t.Fatalf("the reconciler armed to crash after call %d of %d did not crash", k, len(calls))
				}
				if outage > 0 { // the cluster goes on while the daemon is down
					w.kubelet() // nothing changes Deployments meanwhile
					for i := time.Duration(0); i < outage; i += time.Second {
						w.clock.Advance(time.Second)
						w.flink.advance()
					}
				}
				w.restart()
				r := w.record(c.kind, c.res)
				if r == nil || !done(r) { // else it was done before it crashed
					r = w.until(c.kind, c.res, d, fmt.Sprintf("finishing after a crash right after call %d (%s)", k, calls[k-1]), done)
				}
				func() {
					defer func() {
						if t.Failed() {
							t.Logf("crash right after call %d of %d (%s) broke it; calls of the crashed reconciler:\n%s", k, len(calls), calls[k-1], joinCalls(calls[:k]))
						}
					}()
					c.check(t, w, b, r)
				}()
				if t.Failed() {
					return
				}
				w.retired = true
			}
		}
	}
}

func suspend(s *v1beta1.FlinkDeploymentSpec) { s.Job.State = v1beta1.JobStateSuspended }

func scaleTo(n int32) func(*v1beta1.FlinkDeploymentSpec) {
	return func(s *v1beta1.FlinkDeploymentSpec) { s.TaskManager.Replicas = &n }
}

// sessionSpecOf is a session cluster (no job).
func sessionSpecOf() v1beta1.FlinkDeploymentSpec {
	s := appSpecOf(v1beta1.UpgradeModeStateless, 1)
	s.Job = nil
	return s
}

// sessionJobSpecOf is a counter job for a session cluster; rate is part of
// its args, so changing it is an upgrade.
func sessionJobSpecOf(cluster, jar string, mode v1beta1.UpgradeMode, rate string) v1beta1.FlinkSessionJobSpec {
	return v1beta1.FlinkSessionJobSpec{
		DeploymentName: cluster,
		FlinkConfiguration: v1beta1.FlinkConfiguration{
			"execution.checkpointing.savepoint-dir": "file:/state/session-savepoints",
		},
		Job: &v1beta1.JobSpec{JarURI: "file://" + jar, EntryClass: "io.example.Counter", Parallelism: 1,
			UpgradeMode: mode, Args: []string{"--rate", rate}},
	}
}

func joinCalls(calls []string) string {
	s := ""
	for i, c := range calls {
		s += fmt.Sprintf("  %3d %s\n", i+1, c)
	}
	return s
}

// oneSavepointOf asserts exactly one savepoint was taken since b, of b's job.
func oneSavepointOf(t *testing.T, w *simWorld, b crashBefore) *simSnapshot {
	t.Helper()
	sps := w.flink.Savepoints[b.savepoints:]
	if len(sps) != 1 {
		var paths []string
		for _, sp := range sps {
			paths = append(paths, sp.Path+" trigger "+sp.TriggerID)
		}
		t.Fatalf("%d savepoints taken, want exactly 1: %v", len(sps), paths)
	}
	if sps[0].JobID != b.jobID {
		t.Fatalf("savepoint of job %s, want of %s", sps[0].JobID, b.jobID)
	}
	return sps[0]
}

func noNewSavepoints(t *testing.T, w *simWorld, b crashBefore) {
	t.Helper()
	if n := len(w.flink.Savepoints) - b.savepoints; n != 0 {
		t.Errorf("%d savepoints taken, want none", n)
	}
}

// oneNewJob asserts exactly one job was started since b, and that it is
// the job of the record.
func oneNewJob(t *testing.T, w *simWorld, b crashBefore, r *Record) *simJob {
	t.Helper()
	started := w.flink.Started[b.started:]
	if len(started) != 1 {
		var ids []string
		for _, j := range started {
			ids = append(ids, j.ID+" from "+orNone(j.RestoredFrom))
		}
		t.Fatalf("%d jobs started, want exactly 1: %v", len(started), ids)
	}
	if got := r.Common().JobStatus.JobID; started[0].ID != got || r.Deployed == nil || r.Deployed.JobID != got {
		t.Fatalf("started job %s, record says job %s, deployed %+v", started[0].ID, got, r.Deployed)
	}
	if started[0].State != flinkclient.JobRunning {
		t.Fatalf("new job is %s: %s", started[0].State, started[0].Failure)
	}
	return started[0]
}

// wantRestored asserts the job started from path with the counter there.
func wantRestored(t *testing.T, j *simJob, path string, counter int64) {
	t.Helper()
	if j.RestoredFrom != path || j.StartCounter != counter {
		t.Errorf("job %s restored from %q at counter %d, want %q at %d", j.ID, j.RestoredFrom, j.StartCounter, orNone(path), counter)
	}
}

func wantJobState(t *testing.T, w *simWorld, id string, want flinkclient.JobStatus) {
	t.Helper()
	if j := w.flink.job(id); j == nil || j.State != want {
		t.Errorf("old job %s: %+v, want %s", id, j, want)
	}
}

// wantUpgradeSavepoint asserts the record keeps the upgrade savepoint once.
func wantUpgradeSavepoint(t *testing.T, r *Record, path string) {
	t.Helper()
	js := r.Common().JobStatus
	if js.UpgradeSavepointPath != path {
		t.Errorf("upgradeSavepointPath %q, want %q", js.UpgradeSavepointPath, path)
	}
	si := js.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.Location != path || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade {
		t.Errorf("last savepoint %+v, want the upgrade savepoint %s", si, path)
		return
	}
	n := 0
	for _, sp := range si.SavepointHistory {
		if sp.Location == path {
			n++
		}
	}
	if n != 1 {
		t.Errorf("savepoint %s is %d times in the history", path, n)
	}
}

func wantReconciled(t *testing.T, r *Record, spec v1beta1.FlinkDeploymentSpec) {
	t.Helper()
	if got, want := r.Reconciliation().LastReconciledSpec, specJSON(spec); got != want {
		t.Errorf("lastReconciledSpec\n got %s\nwant %s", got, want)
	}
	if r.Reconciliation().LastStableSpec != r.Reconciliation().LastReconciledSpec {
		t.Errorf("lastStableSpec is not the new spec")
	}
}

// rejectedImage is the image of a spec the simulated apiserver refuses.
const rejectedImage = "flink:rejected"

func withImage(img string) func(*v1beta1.FlinkDeploymentSpec) {
	return func(s *v1beta1.FlinkDeploymentSpec) { s.Image = img }
}

// rejectImage plays an admission policy refusing Deployments with image
// img, as the apiserver answers (403). dryRun too says whether it already
// answers the pre-flight's dry-run; else only real applies are refused
// (the policy appeared between pre-flight and apply).
func rejectImage(img string, dryRun bool) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa, ok := a.(k8stesting.PatchActionImpl)
		if !ok || !bytes.Contains(pa.GetPatch(), []byte(`"image":"`+img+`"`)) || (len(pa.PatchOptions.DryRun) > 0 && !dryRun) {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(deploymentsGVR.GroupResource(), pa.GetName(),
			fmt.Errorf("ValidatingAdmissionPolicy 'no-rejected-images' with binding 'no-rejected-images' denied request: image %s is not allowed", img))
	}
}
