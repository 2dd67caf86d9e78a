package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestCheckpointAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	done := func(at time.Time) *flinkclient.Checkpoint {
		return &flinkclient.Checkpoint{Status: "COMPLETED", TriggerTime: at}
	}
	inProgress := func(at time.Time) []flinkclient.Checkpoint {
		return []flinkclient.Checkpoint{{Status: "IN_PROGRESS", TriggerTime: at}}
	}
	cases := []struct {
		name   string
		maxAge time.Duration
		start  time.Time
		cps    flinkclient.Checkpoints
		want   ageVerdict
	}{
		{"no limit", 0, ago(time.Hour), flinkclient.Checkpoints{}, ageOK},
		{"job started within the age", time.Minute, ago(30 * time.Second), flinkclient.Checkpoints{}, ageOK},
		{"recent checkpoint", time.Minute, ago(time.Hour), flinkclient.Checkpoints{LatestCompleted: done(ago(10 * time.Second))}, ageOK},
		{"old checkpoint", time.Minute, ago(time.Hour), flinkclient.Checkpoints{LatestCompleted: done(ago(2 * time.Minute))}, ageSavepoint},
		{"none at all", time.Minute, ago(time.Hour), flinkclient.Checkpoints{Disabled: true}, ageSavepoint},
		{"old one, recent one in progress", time.Minute, ago(time.Hour),
			flinkclient.Checkpoints{LatestCompleted: done(ago(2 * time.Minute)), History: inProgress(ago(5 * time.Second))}, ageWait},
		{"old one in progress", time.Minute, ago(time.Hour),
			flinkclient.Checkpoints{LatestCompleted: done(ago(2 * time.Minute)), History: inProgress(ago(90 * time.Second))}, ageSavepoint},
	}
	for _, c := range cases {
		if got, _ := checkpointAge(c.maxAge, now, c.start, c.cps); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

// TestLastStateMaxCheckpointAge: a last-state upgrade of a running job
// whose newest checkpoint is too old stops it with a savepoint and restores
// from that; without a savepoint directory it is refused and the job keeps
// running.
func TestLastStateMaxCheckpointAge(t *testing.T) {
	maxAge := withConf(keyCheckpointMaxAge, "30s")
	t.Run("savepoint instead", func(t *testing.T) {
		w := newSimWorld(t)
		spec := func(p int32) v1beta1.FlinkDeploymentSpec {
			return appSpecOf(v1beta1.UpgradeModeLastState, p, maxAge, withArgs("--no-checkpoints"))
		}
		old := deployStable(w, "app", spec(2)).Common().JobStatus.JobID
		w.settle(KindDeployment, "app", w.desired("app", spec(2)), 40)
		r := w.until(KindDeployment, "app", w.desired("app", spec(4)), "upgraded", func(r *Record) bool {
			return stableRunning(r) && r.Common().JobStatus.JobID != old
		})
		if len(w.flink.Savepoints) != 1 || w.callsOf("StopWithSavepoint") == 0 {
			t.Fatalf("%d savepoints, want the job stopped with one", len(w.flink.Savepoints))
		}
		sp := w.flink.Savepoints[0]
		wantRestored(t, w.flink.job(r.Common().JobStatus.JobID), sp.Path, sp.Counter)
		wantJobState(t, w, old, flinkclient.JobFinished)
		if !w.hasEvent(ReasonSpecChanged, "stopping with a savepoint instead") {
			t.Errorf("no event says why: %v", w.events())
		}
	})
	t.Run("recent checkpoint", func(t *testing.T) {
		w := newSimWorld(t)
		old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeLastState, 2, maxAge)).Common().JobStatus.JobID
		w.settle(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 2, maxAge)), 40)
		r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4, maxAge)), "upgraded", func(r *Record) bool {
			return stableRunning(r) && r.Common().JobStatus.JobID != old
		})
		if len(w.flink.Savepoints) != 0 {
			t.Errorf("a savepoint was taken although the checkpoint was recent")
		}
		if !strings.Contains(r.Deployed.RestorePath, "/chk-") {
			t.Errorf("restored from %q, want a checkpoint", r.Deployed.RestorePath)
		}
	})
	t.Run("refused without a savepoint directory", func(t *testing.T) {
		w := newSimWorld(t)
		spec := func(p int32) v1beta1.FlinkDeploymentSpec {
			return appSpecOf(v1beta1.UpgradeModeLastState, p, maxAge, withArgs("--no-checkpoints"), func(s *v1beta1.FlinkDeploymentSpec) {
				delete(s.FlinkConfiguration, "execution.checkpointing.savepoint-dir")
			})
		}
		old := deployStable(w, "app", spec(2)).Common().JobStatus.JobID
		w.settle(KindDeployment, "app", w.desired("app", spec(2)), 40)
		r := w.until(KindDeployment, "app", w.desired("app", spec(4)), "refused", func(r *Record) bool {
			return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed
		})
		if msg := r.Common().Error; !strings.Contains(msg, keyCheckpointMaxAge) || !strings.Contains(msg, "savepoint-dir") {
			t.Errorf("error %q does not name the key and the fix", msg)
		}
		wantJobState(t, w, old, flinkclient.JobRunning)
		if len(w.flink.Started) != 1 {
			t.Errorf("%d jobs started after a refusal", len(w.flink.Started))
		}
	})
}
