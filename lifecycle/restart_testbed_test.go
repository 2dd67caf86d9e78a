package lifecycle_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// withJobArgs adds arguments to the test job of an appSpec document.
func withJobArgs(doc string, args ...string) string {
	extra := ""
	for _, a := range args {
		extra += fmt.Sprintf(", %q", a)
	}
	out := strings.Replace(doc, `"--checkpoint-interval-ms", "1000"]`, `"--checkpoint-interval-ms", "1000"`+extra+`]`, 1)
	if out == doc {
		panic("withJobArgs: job args not found in the spec")
	}
	return out
}

// startedCause is a condition: an automatic restart with this cause is in
// flight.
func startedCause(cause string) func(*lifecycle.Record) bool {
	return func(r *lifecycle.Record) bool { return r.Operation != nil && r.Operation.Cause == cause }
}

// TestRestartFailedJobOnTestbed (Flink 2.2 and 1.20): a job that fails by
// itself (the test job's --fail-file switch; restart-strategy none, so
// Flink gives up at once) is redeployed by the reconciler from its newest
// retained checkpoint, with nothing but the spec as input: the counter
// continues. It measures the time from the job's failure to the restart
// operation starting.
func TestRestartFailedJobOnTestbed(t *testing.T) {
	for _, v := range []struct{ name, image, version string }{
		{"2.2", "flink:2.2", "v2_2"},
		{"1.20", "flink:1.20", "v1_20"},
	} {
		t.Run(v.name, func(t *testing.T) {
			if v.version == "v1_20" {
				flinktb.MatrixOnly(t)
			}
			b := newBed(t)
			ctx := context.Background()
			const name = "failing"
			sw := filepath.Join(b.state, "fail-now")
			d := b.render(withJobArgs(b.appSpec(name, v.image, v.version, "last-state", `    kubernetes.operator.job.restart.failed: "true"
    restart-strategy.type: none`, 1), "--fail-file", sw))
			r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
			old := r.Common().JobStatus.JobID
			b.checkpointed(name, old)
			before := b.progress(name, old, warm)

			// Watch the old job from outside while its JobManager lives, to
			// know when Flink declared it FAILED.
			failedAt := make(chan time.Time, 1)
			watchCtx, stopWatch := context.WithTimeout(ctx, 2*time.Minute)
			defer stopWatch()
			go func() {
				for watchCtx.Err() == nil {
					if job, err := b.flinkOf(name).Job(watchCtx, old); err == nil && job.State == "FAILED" && !job.EndTime.IsZero() {
						failedAt <- job.EndTime
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			if err := os.WriteFile(sw, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			switchedOn := time.Now()
			r = b.until(lifecycle.KindDeployment, name, d, "the restart of the failed job to start", 2*time.Minute, startedCause(lifecycle.CauseJobFailed))
			if err := os.Remove(sw); err != nil {
				t.Fatal(err)
			}
			restartAt := r.Restarts.Last
			var failed time.Time
			select {
			case failed = <-failedAt:
			case <-watchCtx.Done():
				t.Fatalf("never saw job %s FAILED from outside", old)
			}
			detect := restartAt.Sub(failed)
			t.Logf("switch on -> job FAILED %s, FAILED -> restart started %s", failed.Sub(switchedOn).Round(time.Millisecond), detect.Round(time.Millisecond))
			if !strings.Contains(r.Restarts.Reason, "failed on purpose") {
				t.Errorf("restart reason %q does not carry the job's exception", r.Restarts.Reason)
			}

			r = b.until(lifecycle.KindDeployment, name, d, "the restarted job to be stable", 3*time.Minute, newJob(old))
			readyAt := time.Now()
			jobID := r.Common().JobStatus.JobID
			restore := r.Deployed.RestorePath
			if !chkPath.MatchString(restore) || !strings.Contains(restore, old) {
				t.Fatalf("restored from %q, want a chk-N path of the failed job %s", restore, old)
			}
			if got := b.restoredFrom(name, jobID); got != restore {
				t.Errorf("Flink says job %s restored from %q, want %q", jobID, got, restore)
			}
			first := b.continues(name, jobID, before)
			if r.Restarts == nil || r.Restarts.Count != 1 {
				t.Errorf("restarts in status %+v, want 1", r.Restarts)
			}
			t.Logf("BENCH restart of a failed job (%s): job failed at %s, restart started %s later (resync 2 s), job %s running again %s after the failure; restored from %s; counter %d -> %d",
				v.name, failed.Format(time.RFC3339Nano), detect.Round(time.Millisecond), jobID,
				readyAt.Sub(failed).Round(time.Millisecond), restore, before, first)
			b.logOverhead("restart of a failed job ("+v.name+")", name, name, jobID)
		})
	}
}

// TestHealthCheckRestartOnTestbed (Flink 2.2; 1.20 in make matrix): a job that keeps restarting
// within Flink (fixed-delay restart strategy, the --fail-file switch on)
// goes over kubernetes.operator.cluster.health-check.restarts.threshold;
// the reconciler restarts it from its newest checkpoint and says why.
func TestHealthCheckRestartOnTestbed(t *testing.T) {
	if testing.Short() {
		t.Skip("test bed")
	}
	onFlinkVersions(t, healthCheckOnTestbed)
}

func healthCheckOnTestbed(t *testing.T, image, version string) {
	b := newBed(t)
	const name = "flapping"
	sw := filepath.Join(b.state, "fail-now")
	d := b.render(withJobArgs(b.appSpec(name, image, version, "last-state", `    kubernetes.operator.cluster.health-check.enabled: "true"
    kubernetes.operator.cluster.health-check.restarts.threshold: "2"
    kubernetes.operator.cluster.health-check.restarts.window: 2m
    restart-strategy.type: fixed-delay
    restart-strategy.fixed-delay.attempts: "1000"
    restart-strategy.fixed-delay.delay: 1s`, 1), "--fail-file", sw))
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
	old := r.Common().JobStatus.JobID
	b.checkpointed(name, old)
	before := b.progress(name, old, warm)
	// A healthy job is left alone (and its health is being observed).
	b.holds(lifecycle.KindDeployment, name, d, "a healthy job is not restarted", 5*time.Second, func(r *lifecycle.Record) bool {
		return r.Operation == nil && r.Common().JobStatus.JobID == old
	})
	if r, _ := b.rec.Reconcile(context.Background(), lifecycle.KindDeployment, b.ns, name, d); !strings.Contains(r.Record.Deployment.ClusterInfo["ClusterHealthInfo"], `"healthy":true`) {
		t.Fatalf("no health observation in clusterInfo: %v", r.Record.Deployment.ClusterInfo)
	}

	if err := os.WriteFile(sw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r = b.until(lifecycle.KindDeployment, name, d, "the health check to restart the job", 3*time.Minute, startedCause(lifecycle.CauseUnhealthy))
	if err := os.Remove(sw); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Restarts.Reason, "over the threshold of 2") {
		t.Errorf("restart reason %q", r.Restarts.Reason)
	}
	m, err := b.flinkOf(name).JobMetrics(context.Background(), old, "numRestarts")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(m["numRestarts"]); n <= 2 {
		t.Errorf("Flink counts %d restarts of job %s, want more than the threshold 2", n, old)
	}
	r = b.until(lifecycle.KindDeployment, name, d, "the restarted job to be stable", 3*time.Minute, newJob(old))
	jobID := r.Common().JobStatus.JobID
	restore := r.Deployed.RestorePath
	if !chkPath.MatchString(restore) || !strings.Contains(restore, old) {
		t.Fatalf("restored from %q, want a chk-N path of job %s", restore, old)
	}
	first := b.continues(name, jobID, before)
	t.Logf("job %s restarted by Flink %s times; health check restarted it as %s from %s; counter %d -> %d; reason: %s",
		old, m["numRestarts"], jobID, restore, before, first, r.Restarts.Reason)
	b.logOverhead("health check restart ("+version+")", name, name, jobID)
}
