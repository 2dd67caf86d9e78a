package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// switchFiles gives each simulated world its own switch file, so that a
// crash case's setup and change (called separately) name the same one.
var switchFiles gosync.Map // *simWorld -> string

func switchFileOf(w *simWorld) string {
	if p, ok := switchFiles.Load(w); ok {
		return p.(string)
	}
	p := filepath.Join(w.t.TempDir(), "switch")
	switchFiles.Store(w, p)
	return p
}

// TestCrashAtEveryStepRestart crashes the daemon after every external call
// of the automatic restarts (a failed job, an unhealthy job) and of a
// last-state upgrade that takes a savepoint because its checkpoint is too
// old; a fresh daemon finishes each from the ConfigMap alone, restoring
// exactly once from the newest state.
func TestCrashAtEveryStepRestart(t *testing.T) {
	upgraded := func(b crashBefore) func(*Record) bool {
		return func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != b.jobID }
	}
	failing := func(w *simWorld, restart bool) *Desired {
		extra := []func(*v1beta1.FlinkDeploymentSpec){withArgs("--fail-file", switchFileOf(w))}
		if restart {
			extra = append(extra, restartFailedOn)
		}
		return w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 2, extra...))
	}
	unhealthy := func(w *simWorld, check bool) *Desired {
		extra := []func(*v1beta1.FlinkDeploymentSpec){withArgs("--restart-file", switchFileOf(w))}
		if check {
			extra = append(extra, withConf(keyHealthCheck, "true", keyHealthRestartsThreshold, "3"))
		}
		return w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 2, extra...))
	}
	oldAge := func(p int32) *v1beta1.FlinkDeploymentSpec {
		s := appSpecOf(v1beta1.UpgradeModeLastState, p, withConf(keyCheckpointMaxAge, "30s"), withArgs("--no-checkpoints"))
		return &s
	}
	restoredFromNewestCheckpoint := func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
		t.Helper()
		noNewSavepoints(t, w, b)
		old := w.flink.job(b.jobID)
		last := old.Checkpoints[len(old.Checkpoints)-1]
		wantRestored(t, oneNewJob(t, w, b, r), last.Path, last.Counter)
		if r.Restarts == nil || r.Restarts.Count != 1 || r.Restarts.JobID != b.jobID {
			t.Errorf("restarts %+v, want one of job %s", r.Restarts, b.jobID)
		}
	}
	cases := []crashCase{
		{
			name: "restart of a failed job", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				d := failing(w, false)
				w.until(KindDeployment, "app", d, "deployed", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
				if err := os.WriteFile(switchFileOf(w), nil, 0o644); err != nil {
					w.t.Fatal(err)
				}
				w.until(KindDeployment, "app", d, "job failed", func(r *Record) bool { return r.Common().JobStatus.State == v1beta1.JobFailed })
				if err := os.Remove(switchFileOf(w)); err != nil {
					w.t.Fatal(err)
				}
			},
			change: func(w *simWorld) *Desired { return failing(w, true) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				restoredFromNewestCheckpoint(t, w, b, r)
				wantJobState(t, w, b.jobID, flinkclient.JobFailed)
			},
		},
		{
			name: "health check restart", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				w.until(KindDeployment, "app", unhealthy(w, false), "deployed", stableRunning)
				for i := 0; i < 3; i++ {
					w.tick()
				}
				if err := os.WriteFile(switchFileOf(w), nil, 0o644); err != nil {
					w.t.Fatal(err)
				}
			},
			change: func(w *simWorld) *Desired { return unhealthy(w, true) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				restoredFromNewestCheckpoint(t, w, b, r)
				wantJobState(t, w, b.jobID, flinkclient.JobCanceled)
			},
		},
		{
			name: "last-state upgrade with a too old checkpoint", kind: KindDeployment, res: "app",
			setup: func(w *simWorld) {
				d := w.desired("app", *oldAge(2))
				w.until(KindDeployment, "app", d, "deployed", stableRunning)
				w.settle(KindDeployment, "app", d, 40)
			},
			change: func(w *simWorld) *Desired { return w.desired("app", *oldAge(4)) },
			done:   upgraded,
			check: func(t *testing.T, w *simWorld, b crashBefore, r *Record) {
				sp := oneSavepointOf(t, w, b)
				wantRestored(t, oneNewJob(t, w, b, r), sp.Path, sp.Counter)
				wantJobState(t, w, b.jobID, flinkclient.JobFinished)
				wantUpgradeSavepoint(t, r, sp.Path)
				wantReconciled(t, r, *oldAge(4))
			},
		},
	}
	for _, c := range cases {
		if testing.Short() && c.name == "last-state upgrade with a too old checkpoint" {
			continue // about 75 s of CPU; run by make test
		}
		for _, out := range []time.Duration{0, 10 * time.Minute} {
			t.Run(fmt.Sprintf("%s/down %s", c.name, out), func(t *testing.T) {
				t.Parallel()
				crashAtEveryStep(t, c, 1, out)
			})
		}
	}
}
