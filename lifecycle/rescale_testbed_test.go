package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// adaptiveConf puts a cluster on the adaptive scheduler, with the waits
// before a rescale shortened so that the test measures the daemon and
// Flink's restart, not the default 30 s cooldown (Flink 2.0 renamed the
// keys; a 2.2 JobManager given the old and new names together exits).
func adaptiveConf(version string) string {
	conf := `    jobmanager.scheduler: adaptive
    jobmanager.adaptive-scheduler.resource-stabilization-timeout: 1s
`
	if strings.HasPrefix(version, "v1_") {
		return conf + `    jobmanager.adaptive-scheduler.scaling-interval.min: 1s
`
	}
	return conf + `    jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling: 1s
    jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout: 1s
`
}

// TestRescaleInPlaceTestbed pushes a parallelism change to an application
// on the adaptive scheduler with real Flink: the job keeps its id and its
// counter, runs at the new parallelism (job details), the TaskManager
// Deployment grows first; then the same change with in-place scaling off is
// a full upgrade (new job id). Both are timed for docs/benchmarks.md.
func TestRescaleInPlaceTestbed(t *testing.T) {
	onFlinkVersions(t, rescaleOnTestbed)
}

func rescaleOnTestbed(t *testing.T, image, version string) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed")
	}
	b := newBed(t)
	ctx := context.Background()
	name := "rescale-" + strings.ReplaceAll(version, "_", "")
	spec := func(extra string, parallelism int) *lifecycle.Desired {
		return b.render(b.appSpec(name, image, version, "savepoint", adaptiveConf(version)+extra, parallelism))
	}
	vertices := func(jobID string) []int {
		d, err := b.flinkOf(name).Job(ctx, jobID)
		if err != nil {
			t.Fatalf("job details of %s: %v", jobID, err)
		}
		var p []int
		for _, v := range d.Vertices {
			p = append(p, v.Parallelism)
		}
		return p
	}

	d := spec("", 1)
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
	job := r.Common().JobStatus.JobID
	b.checkpointed(name, job)
	before := b.progress(name, job, 200)
	t.Logf("deployed job %s at parallelism %v, counter %d", job, vertices(job), before)

	// Rescale in place: 1 -> 3 (two TaskManagers of two slots).
	d = spec("", 3)
	start := time.Now()
	r = b.until(lifecycle.KindDeployment, name, d, "rescale in place", 3*time.Minute, func(r *lifecycle.Record) bool {
		return stable(r) && reconciledParallelism(r) == 3
	})
	inPlace := time.Since(start)
	if got := r.Common().JobStatus.JobID; got != job {
		t.Fatalf("the rescale replaced job %s by %s", job, got)
	}
	for _, p := range vertices(job) {
		if p != 3 {
			t.Fatalf("job %s runs at %v after the rescale, want 3 everywhere", job, vertices(job))
		}
	}
	tm, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, name+"-taskmanager", metav1.GetOptions{})
	if err != nil || tm.Spec.Replicas == nil || *tm.Spec.Replicas != 2 {
		t.Fatalf("TaskManager Deployment not scaled to 2: %v %v", err, tm)
	}
	jm, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || jm.Generation != 1 {
		t.Fatalf("the JobManager Deployment changed (generation %d): %v", jm.Generation, err)
	}
	cps, err := b.flinkOf(name).Checkpoints(ctx, job)
	if err != nil || cps.Restored == nil || cps.Restored.IsSavepoint {
		t.Fatalf("the rescaled job did not restore its own checkpoint: %+v, %v", cps.Restored, err)
	}
	first := b.firstProgress(name, job)
	if first < before-30 {
		t.Fatalf("state lost: counter %d before the rescale, %d after", before, first)
	}
	b.logOverhead("rescale in place ("+version+")", name, name, "")
	t.Logf("RESCALE %s: job %s rescaled 1 -> 3 in place in %s (restored %s), counter %d -> %d", version, job, inPlace.Round(time.Millisecond), cps.Restored.ExternalPath, before, first)

	// The same kind of change with in-place scaling off: a full upgrade.
	before = b.progress(name, job, first+50)
	d = spec(`    kubernetes.operator.job.upgrade.inplace-scaling.enabled: "false"
`, 2)
	start = time.Now()
	r = b.until(lifecycle.KindDeployment, name, d, "full upgrade", 4*time.Minute, newJob(job))
	full := time.Since(start)
	job2 := r.Common().JobStatus.JobID
	b.continues(name, job2, before)
	b.logOverhead("full upgrade instead of a rescale ("+version+")", name, name, job2)
	t.Logf("RESCALE %s: parallelism 3 -> 2 by full savepoint upgrade in %s (job %s -> %s)", version, full.Round(time.Millisecond), job, job2)

	// In place again, down 2 -> 1 within the running TaskManager's slots:
	// no JVM starts, so this is the daemon plus Flink's own rescale.
	first = b.firstProgress(name, job2)
	b.checkpointed(name, job2)
	before = b.progress(name, job2, first+50)
	d = spec("", 1)
	start = time.Now()
	r = b.until(lifecycle.KindDeployment, name, d, "rescale down in place", 3*time.Minute, func(r *lifecycle.Record) bool {
		return stable(r) && reconciledParallelism(r) == 1
	})
	down := time.Since(start)
	if got := r.Common().JobStatus.JobID; got != job2 {
		t.Fatalf("the rescale down replaced job %s by %s", job2, got)
	}
	for _, p := range vertices(job2) {
		if p != 1 {
			t.Fatalf("job %s runs at %v after the rescale down, want 1 everywhere", job2, vertices(job2))
		}
	}
	if after := b.firstProgress(name, job2); after < before-30 {
		t.Fatalf("state lost: counter %d before the rescale down, %d after", before, after)
	}
	b.logOverhead("rescale down in place ("+version+")", name, name, "")
	fmt.Printf("BENCH rescale %s: in place 1 -> 3 (one more TaskManager) %s, full upgrade 3 -> 2 %s, in place 2 -> 1 (same TaskManager) %s\n",
		version, inPlace.Round(time.Millisecond), full.Round(time.Millisecond), down.Round(time.Millisecond))
}

// reconciledParallelism is job.parallelism of the last reconciled spec.
func reconciledParallelism(r *lifecycle.Record) int32 {
	var s v1beta1.FlinkDeploymentSpec
	if err := json.Unmarshal([]byte(r.Reconciliation().LastReconciledSpec), &s); err != nil || s.Job == nil {
		return 0
	}
	return s.Job.Parallelism
}
