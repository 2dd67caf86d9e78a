package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

var restartFailedOn = withConf(keyRestartFailed, "true")

// failSwitch is a file whose existence makes the simulated test job fail
// (--fail-file) or restart by itself (--restart-file).
type failSwitch string

func newFailSwitch(t *testing.T) failSwitch { return failSwitch(filepath.Join(t.TempDir(), "fail")) }

func (f failSwitch) on(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(string(f), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f failSwitch) off(t *testing.T) {
	t.Helper()
	if err := os.Remove(string(f)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// TestRestartFailedJob: with kubernetes.operator.job.restart.failed a job
// that fails by itself is redeployed from its newest state per upgrade
// mode, counted in status and an event; without it, it stays FAILED.
func TestRestartFailedJob(t *testing.T) {
	cases := []struct {
		name  string
		mode  v1beta1.UpgradeMode
		extra []func(*v1beta1.FlinkDeploymentSpec)
		// fromCheckpoint: restored from the failed job's newest checkpoint;
		// otherwise started empty.
		fromCheckpoint bool
	}{
		{name: "last-state", mode: v1beta1.UpgradeModeLastState, fromCheckpoint: true},
		{name: "savepoint", mode: v1beta1.UpgradeModeSavepoint, fromCheckpoint: true},
		{name: "stateless", mode: v1beta1.UpgradeModeStateless},
		// Flink removes the HA metadata of a job that failed for good: the
		// restart must not wait for it, it restores the retained checkpoint.
		{name: "last-state with Kubernetes HA", mode: v1beta1.UpgradeModeLastState, extra: []func(*v1beta1.FlinkDeploymentSpec){withKubernetesHA}, fromCheckpoint: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newSimWorld(t)
			sw := newFailSwitch(t)
			spec := appSpecOf(c.mode, 2, append(c.extra, restartFailedOn, withArgs("--fail-file", string(sw)))...)
			d := w.desired("app", spec)
			old := deployStable(w, "app", spec).Common().JobStatus.JobID
			sw.on(t)
			r := w.until(KindDeployment, "app", d, "restart started", func(r *Record) bool { return r.Operation != nil })
			if op := r.Operation; op.Kind != OpRestart || op.Cause != CauseJobFailed {
				t.Fatalf("operation %s cause %q, want Restart caused by JobFailed", op.Kind, op.Cause)
			}
			sw.off(t)
			r = w.until(KindDeployment, "app", d, "restarted", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
			oldJob := w.flink.job(old)
			if oldJob.State != flinkclient.JobFailed {
				t.Fatalf("old job %s, want FAILED", oldJob.State)
			}
			job := w.flink.job(r.Common().JobStatus.JobID)
			if c.fromCheckpoint {
				last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
				wantRestored(t, job, last.Path, last.Counter)
			} else {
				wantRestored(t, job, "", 0)
			}
			if len(w.flink.Started) != 2 {
				t.Errorf("%d jobs started, want 2", len(w.flink.Started))
			}
			if len(w.flink.Savepoints) != 0 {
				t.Errorf("a savepoint was tried on a failed job")
			}
			rs := r.Restarts
			if rs == nil || rs.Count != 1 || rs.JobID != old || !strings.Contains(rs.Reason, "failed on purpose") {
				t.Fatalf("restarts in status %+v, want 1 of job %s with the failure", rs, old)
			}
			if !w.hasEvent(ReasonRestartFailedJob, "failed on purpose") {
				t.Errorf("no %s event: %v", ReasonRestartFailedJob, w.events())
			}
			st := resourceStatus(r, nil, "")
			if st.Restarts == nil || st.Restarts.Count != 1 {
				t.Errorf("status branch file has no restart count: %+v", st)
			}
			// It runs on, and is not restarted again.
			r = w.settle(KindDeployment, "app", d, 20)
			if len(w.flink.Started) != 2 || r.Restarts.Count != 1 || !stableRunning(r) {
				t.Errorf("restarted again: %d jobs, %+v", len(w.flink.Started), r.Restarts)
			}
		})
	}
}

func TestRestartFailedJobOff(t *testing.T) {
	w := newSimWorld(t)
	sw := newFailSwitch(t)
	spec := appSpecOf(v1beta1.UpgradeModeLastState, 2, withArgs("--fail-file", string(sw)))
	d := w.desired("app", spec)
	deployStable(w, "app", spec)
	sw.on(t)
	r := w.settle(KindDeployment, "app", d, 30)
	if r.Common().JobStatus.State != v1beta1.JobFailed || r.Operation != nil || len(w.flink.Started) != 1 || r.Restarts != nil {
		t.Fatalf("a failed job was touched without %s: %d jobs, %s", keyRestartFailed, len(w.flink.Started), dumpRecord(r))
	}
	if r.Common().LifecycleState != v1beta1.LifecycleFailed || !strings.Contains(r.Common().Error, "failed on purpose") {
		t.Errorf("lifecycle %s, error %q", r.Common().LifecycleState, r.Common().Error)
	}
}

// TestRestartFailedJobBackoff: a job that fails again after each restart is
// restarted with growing pauses, each time from the newest state it had —
// never from nothing.
func TestRestartFailedJobBackoff(t *testing.T) {
	w := newSimWorld(t)
	spec := appSpecOf(v1beta1.UpgradeModeLastState, 2, restartFailedOn, withArgs("--fail-after", "3"))
	d := w.desired("app", spec)
	w.until(KindDeployment, "app", d, "first deploy", func(r *Record) bool { return r.Common().JobStatus.State == v1beta1.JobRunning })
	var starts []time.Time
	seen := 0
	for i := 0; i < 400 && len(starts) < 4; i++ {
		w.tick()
		if _, _, died := w.pass(KindDeployment, "app", d); died {
			t.Fatal("crashed")
		}
		if r := w.record(KindDeployment, "app"); r.Restarts != nil && r.Restarts.Count > seen {
			seen = r.Restarts.Count
			starts = append(starts, r.Restarts.Last)
		}
	}
	if len(starts) < 4 {
		t.Fatalf("%d restarts, want 4", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		// The backoff after the i-th restart is 10 s × 2^(i-1), ±20%.
		least := time.Duration(float64(restartBackoffBase<<(i-1)) * 0.8)
		if gap := starts[i].Sub(starts[i-1]); gap < least {
			t.Errorf("restart %d came %s after the one before, want at least %s", i+1, gap, least)
		}
	}
	var prev int64
	for i, j := range w.flink.Started {
		if i > 0 && (j.RestoredFrom == "" || j.StartCounter < prev) {
			t.Fatalf("job %d started from %q at %d, below the state before (%d): state lost", i, j.RestoredFrom, j.StartCounter, prev)
		}
		prev = j.Counter
	}
}

// TestHealthCheckRestarts: a job restarting by itself more often than the
// threshold within the window is restarted by the daemon; the reason is in
// status, on the status branch and in an event.
func TestHealthCheckRestarts(t *testing.T) {
	w := newSimWorld(t)
	sw := newFailSwitch(t)
	spec := appSpecOf(v1beta1.UpgradeModeLastState, 2, withArgs("--restart-file", string(sw)),
		withConf(keyHealthCheck, "true", keyHealthRestartsThreshold, "3", keyHealthRestartsWindow, "2m"))
	d := w.desired("app", spec)
	old := deployStable(w, "app", spec).Common().JobStatus.JobID
	if r := w.settle(KindDeployment, "app", d, 10); r.Operation != nil || len(w.flink.Started) != 1 {
		t.Fatalf("a healthy job was restarted: %s", dumpRecord(r))
	}
	sw.on(t)
	r := w.until(KindDeployment, "app", d, "health restart", func(r *Record) bool { return r.Operation != nil })
	sw.off(t)
	if op := r.Operation; op.Kind != OpRestart || op.Cause != CauseUnhealthy || !strings.Contains(r.Restarts.Reason, "over the threshold of 3") {
		t.Fatalf("operation %s cause %q, reason %q: want a restart for too many restarts", op.Kind, op.Cause, r.Restarts.Reason)
	}
	if n := w.flink.job(old).Restarts; n < 4 {
		t.Errorf("restarted after %d restarts of the job, want more than the threshold 3", n)
	}
	r = w.until(KindDeployment, "app", d, "restarted", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	oldJob := w.flink.job(old)
	last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
	wantRestored(t, w.flink.job(r.Common().JobStatus.JobID), last.Path, last.Counter)
	wantJobState(t, w, old, flinkclient.JobCanceled)
	if st := resourceStatus(r, nil, ""); st.Restarts == nil || !strings.Contains(st.Restarts.Reason, "restarts within 2m0s") {
		t.Errorf("status branch file does not say why: %+v", st.Restarts)
	}
	if !w.hasEvent(ReasonRestartUnhealthyJob, "over the threshold") {
		t.Errorf("no %s event: %v", ReasonRestartUnhealthyJob, w.events())
	}
	if r = w.settle(KindDeployment, "app", d, 20); len(w.flink.Started) != 2 || r.Operation != nil {
		t.Errorf("the healthy new job was restarted again: %d jobs", len(w.flink.Started))
	}
	if h := r.Deployment.ClusterInfo[clusterHealthKey]; !strings.Contains(h, `"healthy":true`) {
		t.Errorf("clusterInfo %s of the new job: %q, want it healthy", clusterHealthKey, h)
	}
}

// TestHealthCheckCheckpointProgress: a job that completes no checkpoint
// within the progress window is restarted (stateless here: it has no state).
func TestHealthCheckCheckpointProgress(t *testing.T) {
	w := newSimWorld(t)
	spec := appSpecOf(v1beta1.UpgradeModeStateless, 2, withArgs("--no-checkpoints"),
		withConf(keyHealthCheck, "true", "execution.checkpointing.interval", "5s", "execution.checkpointing.timeout", "5s"))
	d := w.desired("app", spec)
	old := deployStable(w, "app", spec).Common().JobStatus.JobID
	r := w.until(KindDeployment, "app", d, "health restart", func(r *Record) bool { return r.Operation != nil })
	if op := r.Operation; op.Cause != CauseUnhealthy || !strings.Contains(r.Restarts.Reason, "no checkpoint completed within 10s") {
		t.Fatalf("operation cause %q, reason %q: want a restart for no checkpoint progress within 2 × 5s", op.Cause, r.Restarts.Reason)
	}
	w.until(KindDeployment, "app", d, "restarted", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
}

func TestEvaluateHealth(t *testing.T) {
	min := int64(60_000)
	cfg := healthConfig{restartsWindow: 2 * time.Minute, threshold: 3, checkpointWindow: 5 * time.Minute}
	base := &clusterHealth{TimeStamp: 0, NumRestarts: 10, NumRestartsEvaluationTimeStamp: 0, NumCompletedCheckpoints: 5,
		NumCompletedCheckpointsIncreasedTimeStamp: 0, HealthResult: healthResult{Healthy: true}}
	cases := []struct {
		name    string
		last    *clusterHealth
		obs     clusterHealth
		healthy bool
		want    string
	}{
		{"first observation", nil, clusterHealth{TimeStamp: min, NumRestarts: 99}, true, ""},
		{"restarts at the threshold", base, clusterHealth{TimeStamp: min, NumRestarts: 13, NumCompletedCheckpoints: 6}, true, ""},
		{"restarts over the threshold", base, clusterHealth{TimeStamp: min, NumRestarts: 14, NumCompletedCheckpoints: 6}, false, "4 restarts within 2m0s"},
		// 8 restarts over 4 minutes scale to 4 in the 2 minute window.
		{"scaled to the window", base, clusterHealth{TimeStamp: 4 * min, NumRestarts: 18, NumCompletedCheckpoints: 6}, false, "4 restarts"},
		{"scaled below", base, clusterHealth{TimeStamp: 4 * min, NumRestarts: 16, NumCompletedCheckpoints: 6}, true, ""},
		{"new job counts from zero", base, clusterHealth{TimeStamp: min, NumRestarts: 0, NumCompletedCheckpoints: 0}, true, ""},
		{"checkpoints stuck within the window", base, clusterHealth{TimeStamp: 4 * min, NumRestarts: 10, NumCompletedCheckpoints: 5}, true, ""},
		{"checkpoints stuck past the window", base, clusterHealth{TimeStamp: 6 * min, NumRestarts: 10, NumCompletedCheckpoints: 5}, false, "no checkpoint completed within 5m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var last *clusterHealth
			if c.last != nil {
				cp := *c.last
				last = &cp
			}
			h := evaluateHealth(cfg, last, c.obs, c.obs.TimeStamp)
			if h.HealthResult.Healthy != c.healthy || !strings.Contains(h.HealthResult.Error, c.want) {
				t.Errorf("health %+v, want healthy=%v with %q", h.HealthResult, c.healthy, c.want)
			}
			if h.TimeStamp != c.obs.TimeStamp {
				t.Errorf("timestamp %d, want %d", h.TimeStamp, c.obs.TimeStamp)
			}
		})
	}
	// Without a checkpoint window only restarts count.
	h := evaluateHealth(healthConfig{restartsWindow: time.Minute, threshold: 64}, base, clusterHealth{TimeStamp: 60 * min, NumCompletedCheckpoints: 5, NumRestarts: 10}, 60*min)
	if !h.HealthResult.Healthy {
		t.Errorf("checkpoint progress judged without a window: %+v", h.HealthResult)
	}
}

func TestHealthConfigCheckpointWindow(t *testing.T) {
	cases := []struct {
		conf []string
		want time.Duration
	}{
		{nil, 0}, // checkpointing not configured
		{[]string{"execution.checkpointing.interval", "1m"}, 20 * time.Minute},  // timeout 10m × 2
		{[]string{"execution.checkpointing.interval", "15m"}, 30 * time.Minute}, // interval × 2
		{[]string{"execution.checkpointing.interval", "1m", keyHealthCheckpointWindow, "1h"}, time.Hour},
		{[]string{"execution.checkpointing.interval", "1m", keyHealthCheckpointWindow, "1m"}, 20 * time.Minute}, // below the least
		{[]string{keyHealthCheckpointWindow, "1h"}, time.Hour},
		{[]string{"execution.checkpointing.interval", "1m", "execution.checkpointing.tolerable-failed-checkpoints", "3"}, 50 * time.Minute},
		{[]string{"execution.checkpointing.interval", "1m", keyHealthCheckpoints, "false"}, 0},
	}
	for _, c := range cases {
		p := &pass{rec: &Record{Kind: KindDeployment}}
		fc := v1beta1.FlinkConfiguration{}
		for i := 0; i+1 < len(c.conf); i += 2 {
			fc[c.conf[i]] = c.conf[i+1]
		}
		if got := p.healthConfig(fc).checkpointWindow; got != c.want {
			t.Errorf("%v: window %s, want %s", c.conf, got, c.want)
		}
	}
}

// TestRestartFailedSessionJob: restart.failed works for session jobs too
// (the operator's AbstractJobReconciler): the job is submitted again to
// its session cluster from its newest checkpoint.
func TestRestartFailedSessionJob(t *testing.T) {
	w, jar := sessionWorld(t, v1beta1.UpgradeModeLastState)
	sw := newFailSwitch(t)
	spec := sessionJobSpecOf("session", jar, v1beta1.UpgradeModeLastState, "10")
	spec.FlinkConfiguration[keyRestartFailed] = "true"
	spec.Job.Args = append(spec.Job.Args, "--fail-file", string(sw))
	d := w.desiredJob("job", spec)
	w.until(KindSessionJob, "job", d, "upgraded to the switchable job", func(r *Record) bool {
		return stableRunning(r) && len(w.flink.Started) == 2
	})
	w.settle(KindSessionJob, "job", d, 3)
	old := w.record(KindSessionJob, "job").Common().JobStatus.JobID
	sw.on(t)
	// A session job's restart can run through in one pass: wait for it
	// to be counted, and switch off before the next tick.
	w.until(KindSessionJob, "job", d, "restart started", func(r *Record) bool { return r.Restarts != nil })
	sw.off(t)
	r := w.until(KindSessionJob, "job", d, "restarted", func(r *Record) bool { return stableRunning(r) && r.Common().JobStatus.JobID != old })
	oldJob := w.flink.job(old)
	last := oldJob.Checkpoints[len(oldJob.Checkpoints)-1]
	wantRestored(t, w.flink.job(r.Common().JobStatus.JobID), last.Path, last.Counter)
	if r.Restarts == nil || r.Restarts.Count != 1 {
		t.Errorf("restarts %+v, want 1", r.Restarts)
	}
}
