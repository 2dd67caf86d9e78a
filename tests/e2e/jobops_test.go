package e2e

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// chkPath matches a retained checkpoint's directory (…/chk-N).
var chkPath = regexp.MustCompile(`/chk-[0-9]+/?$`)

// TestJobOperationsThroughGit (Flink 2.2, one cluster, sequential pushes)
// shows the job operations of issue 18 the way a user meets them: through
// pushes, the status branch and the cluster's real Flink REST API.
//
//  1. A push that changes only job.parallelism, on the adaptive scheduler,
//     is rescaled in place: same job id, the new parallelism in Flink's job
//     details, the JobManager Deployment untouched, the counter continues.
//  2. The job then fails by itself (the test job's --fail-file switch,
//     restart-strategy none) while kubernetes.operator.job.restart.failed is
//     off: it stays FAILED and the status branch carries Flink's exception.
//  3. A push of restart.failed: "true" (an operator key: no redeploy of its
//     own) makes the daemon restart the failed job from its newest retained
//     checkpoint: a new job id, the restart counted with its reason on the
//     status branch, the counter continues.
//  4. A push of the cluster health check (threshold 2 restarts in 2m) with
//     Flink's fixed-delay restart strategy is a last-state upgrade; once
//     the job keeps failing and Flink keeps restarting it, the daemon
//     restarts it from its newest checkpoint and says why.
//
// This order is the one the code supports: a kubernetes.operator.* change is
// recorded as reconciled without touching the cluster, and the automatic
// restart is decided on the newly reconciled configuration in the same pass.
func TestJobOperationsThroughGit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	start := time.Now()
	ctx := context.Background()
	failFile := filepath.Join(t.TempDir(), "fail-now")
	a := app{name: "jobops", mode: "last-state", parallelism: 1, conf: map[string]string{
		// In-place rescaling needs the adaptive scheduler; its waits are
		// shortened so the test measures the daemon and Flink's restart of
		// the tasks, not the default cooldowns (Flink 2.x key names).
		"jobmanager.scheduler": "adaptive",
		"jobmanager.adaptive-scheduler.resource-stabilization-timeout":           "1s",
		"jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling":       "1s",
		"jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout": "1s",
		// A failure is final within Flink, so the job goes FAILED at once.
		"restart-strategy.type": "none",
	}}
	files := func(a app) map[string]string {
		f := a.files()
		p := "apps/" + a.name + "/spec.yaml"
		f[p] = withFailFile(t, f[p], failFile)
		return f
	}
	e := newEnv(t, files(a), nil)
	e.logsOnFailure()
	fl := flinkclient.New(e.restURL(a.name))

	rs := e.wait("FlinkDeployment", a.name, "first deploy", 4*time.Minute, stableAt(""))
	job := rs.JobID
	jm := e.jobManager(a.name)
	if jm == nil {
		t.Fatal("no JobManager Deployment after the first deploy")
	}
	e.checkpointedAfter(fl, job, time.Time{})
	before := e.progress(a.name, job, 100)
	t.Logf("deployed job %s at parallelism %v, counter %d (%s)", job, e.parallelism(fl, job), before, time.Since(start).Round(time.Second))

	// 1. In-place rescale 1 -> 2 (one TaskManager has two slots).
	a.parallelism = 2
	step := time.Now()
	c := e.push("jobops: parallelism 2", files(a))
	var ops []string
	rs = e.wait("FlinkDeployment", a.name, "the rescale", 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		if rs.Operation != "" && !slices.Contains(ops, rs.Operation) {
			ops = append(ops, rs.Operation)
		}
		return stableAt(c)(rs) && allAt(e.parallelism(fl, job), 2)
	})
	t.Logf("push to rescaled in place on the status branch: %s (operations seen there: %q)", time.Since(step).Round(time.Millisecond), ops)
	for _, op := range ops {
		if !strings.HasPrefix(op, string(lifecycle.OpRescale)) {
			t.Errorf("the status branch showed %q during a parallelism-only change, want only the in-place rescale", op)
		}
	}
	if rs.JobID != job || rs.Restarts != nil {
		t.Fatalf("status branch after the rescale: job %s, restarts %+v; want job %s kept and no restart", rs.JobID, rs.Restarts, job)
	}
	if p := e.parallelism(fl, job); !allAt(p, 2) {
		t.Fatalf("Flink runs job %s at %v, want 2 everywhere", job, p)
	}
	jm2 := e.jobManager(a.name)
	if jm2 == nil || jm2.UID != jm.UID || jm2.Generation != jm.Generation {
		t.Fatalf("the JobManager Deployment was replaced or changed by the rescale (uid %s gen %d before)", jm.UID, jm.Generation)
	}
	if !e.eventSays("Scaling", "rescaled in place") {
		t.Errorf("no Scaling event saying the job was rescaled in place")
	}
	cps, err := fl.Checkpoints(ctx, job)
	if err != nil || cps.Restored == nil || cps.Restored.IsSavepoint {
		t.Fatalf("the rescaled job did not restart its tasks from its own checkpoint: %+v, %v", cps.Restored, err)
	}
	e.continues("the rescale", before, e.firstCount(a.name, job), 30)

	// 2. The job fails by itself; restart.failed is off.
	before = e.progress(a.name, job, before+40)
	e.checkpointedAfter(fl, job, time.Now())
	if err := os.WriteFile(failFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	step = time.Now()
	rs = e.wait("FlinkDeployment", a.name, "the failed job's exception", 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.JobState == "FAILED" && rs.Error != ""
	})
	t.Logf("switch on to FAILED with its exception on the status branch: %s", time.Since(step).Round(time.Millisecond))
	if err := os.Remove(failFile); err != nil {
		t.Fatal(err)
	}
	if rs.JobID != job || !strings.Contains(rs.Error, "failed on purpose") || rs.Restarts != nil || rs.Operation != "" {
		t.Fatalf("status branch of the failed job: job %s, error %q, restarts %+v, operation %q; want job %s, the test job's exception, nothing started",
			rs.JobID, rs.Error, rs.Restarts, rs.Operation, job)
	}

	// 3. restart.failed on: the daemon restarts the failed job.
	a.conf["kubernetes.operator.job.restart.failed"] = "true"
	step = time.Now()
	c = e.push("jobops: restart failed jobs", files(a))
	rs = e.wait("FlinkDeployment", a.name, "the restarted job", 4*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return stableAt(c)(rs) && rs.JobID != job
	})
	t.Logf("push to restarted job running on the status branch: %s", time.Since(step).Round(time.Millisecond))
	r := rs.Restarts
	if r == nil || r.Count != 1 || r.JobID != job || !strings.Contains(r.Reason, "failed on purpose") {
		t.Errorf("restarts on the status branch %+v, want 1 restart of job %s with the test job's exception as reason", r, job)
	}
	if rs.Error != "" {
		t.Errorf("the restarted job still shows the old error %q", rs.Error)
	}
	if !e.eventSays(lifecycle.ReasonRestartFailedJob, job) {
		t.Errorf("no %s event naming job %s", lifecycle.ReasonRestartFailedJob, job)
	}
	restored := e.restoredFrom(fl, rs.JobID)
	if !chkPath.MatchString(restored) || !strings.Contains(restored, job) {
		t.Fatalf("Flink says job %s restored from %q, want a chk-N checkpoint of the failed job %s", rs.JobID, restored, job)
	}
	if p := e.parallelism(fl, rs.JobID); !allAt(p, 2) {
		t.Errorf("the restarted job runs at %v, want the reconciled parallelism 2", p)
	}
	e.continues("the restart of the failed job", before, e.firstCount(a.name, rs.JobID), 30)

	// 4. The health check: Flink restarts the job itself (fixed-delay), the
	// daemon counts the restarts and restarts the job once they pass the
	// threshold. The restart strategy is Flink configuration, so this push
	// is a last-state upgrade first.
	job = rs.JobID
	e.checkpointedAfter(fl, job, time.Time{})
	before = e.progress(a.name, job, before+20)
	maps.Copy(a.conf, map[string]string{
		"kubernetes.operator.cluster.health-check.enabled":            "true",
		"kubernetes.operator.cluster.health-check.restarts.threshold": "2",
		"kubernetes.operator.cluster.health-check.restarts.window":    "2m",
		"restart-strategy.type":                                       "fixed-delay",
		"restart-strategy.fixed-delay.attempts":                       "1000",
		"restart-strategy.fixed-delay.delay":                          "1s",
	})
	step = time.Now()
	c = e.push("jobops: health check, Flink restarts the job itself", files(a))
	rs = e.wait("FlinkDeployment", a.name, "the upgrade and a healthy observation", 4*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return stableAt(c)(rs) && rs.JobID != job && strings.Contains(rs.ClusterInfo["ClusterHealthInfo"], `"healthy":true`)
	})
	t.Logf("push to upgraded (last-state) and observed healthy on the status branch: %s", time.Since(step).Round(time.Millisecond))
	if rs.Restarts == nil || rs.Restarts.Count != 1 {
		t.Errorf("an upgrade counted as an automatic restart: %+v", rs.Restarts)
	}
	e.continues("the last-state upgrade", before, e.firstCount(a.name, rs.JobID), 30)
	job = rs.JobID
	before = e.progress(a.name, job, before+20)
	e.checkpointedAfter(fl, job, time.Now())
	if err := os.WriteFile(failFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	step = time.Now()
	rs = e.wait("FlinkDeployment", a.name, "the health check's restart", 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.Restarts != nil && rs.Restarts.Count == 2
	})
	if err := os.Remove(failFile); err != nil {
		t.Fatal(err)
	}
	t.Logf("switch on to the health check's restart on the status branch: %s", time.Since(step).Round(time.Millisecond))
	if r := rs.Restarts; r.JobID != job || !strings.Contains(r.Reason, "over the threshold of 2") {
		t.Errorf("restart on the status branch %+v, want job %s restarted for its restarts over the threshold of 2", r, job)
	}
	rs = e.wait("FlinkDeployment", a.name, "the job restarted by the health check", 4*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return stableAt(c)(rs) && rs.JobID != job
	})
	if !e.eventSays(lifecycle.ReasonRestartUnhealthyJob, job) {
		t.Errorf("no %s event naming job %s", lifecycle.ReasonRestartUnhealthyJob, job)
	}
	restored = e.restoredFrom(fl, rs.JobID)
	if !chkPath.MatchString(restored) || !strings.Contains(restored, job) {
		t.Fatalf("Flink says job %s restored from %q, want a chk-N checkpoint of the unhealthy job %s", rs.JobID, restored, job)
	}
	e.continues("the health check's restart", before, e.firstCount(a.name, rs.JobID), 30)
	t.Logf("TestJobOperationsThroughGit wall time %s", time.Since(start).Round(time.Second))
}

// withFailFile adds the test job's --fail-file switch to a spec's args.
func withFailFile(t *testing.T, spec, path string) string {
	t.Helper()
	const args = `"--checkpoint-interval-ms", "1000"]`
	out := strings.Replace(spec, args, `"--checkpoint-interval-ms", "1000", "--fail-file", "`+path+`"]`, 1)
	if out == spec {
		t.Fatal("withFailFile: the job args are not in the spec")
	}
	return out
}

// parallelism is the parallelism of each vertex of the job as Flink reports
// it (nil when the job details cannot be read).
func (e *env) parallelism(fl *flinkclient.Client, jobID string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := fl.Job(ctx, jobID)
	if err != nil {
		return nil
	}
	var p []int
	for _, v := range d.Vertices {
		p = append(p, v.Parallelism)
	}
	return p
}

// allAt reports whether there are vertices and all run at parallelism n.
func allAt(p []int, n int) bool {
	for _, v := range p {
		if v != n {
			return false
		}
	}
	return len(p) > 0
}

// checkpointedAfter waits until the job completed a checkpoint triggered
// after t, so that a restart from the newest checkpoint has the state the
// test read just before.
func (e *env) checkpointedAfter(fl *flinkclient.Client, jobID string, t time.Time) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cps, err := fl.Checkpoints(ctx, jobID)
		cancel()
		if err == nil && cps.LatestCompleted != nil && !cps.LatestCompleted.TriggerTime.Before(t) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("job %s completed no checkpoint after %s within 2m", jobID, t.Format(time.RFC3339Nano))
}

// restoredFrom is the external path of the checkpoint or savepoint Flink
// says the job restored from ("" when it started empty).
func (e *env) restoredFrom(fl *flinkclient.Client, jobID string) string {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cps, err := fl.Checkpoints(ctx, jobID)
		cancel()
		if err == nil {
			if cps.Restored == nil {
				return ""
			}
			return cps.Restored.ExternalPath
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("checkpoint statistics of job %s: %v", jobID, lastErr)
	return ""
}

// eventSays reports whether an event in the test's namespace has the
// reason and a message containing text.
func (e *env) eventSays(reason, text string) bool {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := e.s.Kube.Client().CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs.Items {
		if ev.Reason == reason && strings.Contains(ev.Message, text) {
			return true
		}
	}
	return false
}
