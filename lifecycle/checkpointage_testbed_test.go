package lifecycle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// TestLastStateMaxCheckpointAgeOnTestbed (Flink 2.2; 1.20 in make matrix):
// a last-state upgrade of a running job whose newest checkpoint is older than
// kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age
// (here: the job checkpoints once an hour, so it has none, and it started
// longer ago than the limit) stops the job with a savepoint instead of
// cancelling it, and the new job restores from that savepoint: the counter
// continues. Without the key the same upgrade would have no checkpoint to
// restore from.
func TestLastStateMaxCheckpointAgeOnTestbed(t *testing.T) {
	if testing.Short() {
		t.Skip("test bed")
	}
	onFlinkVersions(t, maxCheckpointAgeOnTestbed)
}

func maxCheckpointAgeOnTestbed(t *testing.T, image, version string) {
	const name, maxAge = "aged", 10 * time.Second
	b := newBed(t)
	spec := func(parallelism int) string {
		doc := b.appSpec(name, image, version, "last-state",
			"    kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age: "+maxAge.String(), parallelism)
		out := strings.Replace(doc, `"--checkpoint-interval-ms", "1000"`, `"--checkpoint-interval-ms", "3600000"`, 1)
		if out == doc {
			t.Fatal("job args not found in the spec")
		}
		return out
	}
	r := b.until(lifecycle.KindDeployment, name, b.render(spec(1)), "first deploy to be stable", 3*time.Minute, stable)
	old := r.Common().JobStatus.JobID
	before := b.progress(name, old, warm)

	// The job must have started longer ago than the limit, else its start
	// counts as fresh state (as in the operator).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		job, err := b.flinkOf(name).Job(ctx, old)
		if err == nil && !job.StartTime.IsZero() && time.Since(job.StartTime) > maxAge+2*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not run for %s: %v", old, maxAge, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if cps, err := b.flinkOf(name).Checkpoints(ctx, old); err != nil || cps.LatestCompleted != nil {
		t.Fatalf("the job should have no completed checkpoint: %+v, %v", cps.LatestCompleted, err)
	}

	start := time.Now()
	r = b.until(lifecycle.KindDeployment, name, b.render(spec(2)), "the last-state upgrade", 4*time.Minute, newJob(old))
	t.Logf("last-state upgrade with a savepoint instead: %s", time.Since(start).Round(time.Millisecond))
	b.logOverhead("last-state upgrade, checkpoint too old ("+version+")", name, name, r.Common().JobStatus.JobID)
	si := r.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade ||
		!strings.Contains(si.LastSavepoint.Location, b.state+"/savepoints/") {
		t.Fatalf("no upgrade savepoint under %s/savepoints recorded: %+v", b.state, si)
	}
	sp := si.LastSavepoint.Location
	if got := r.Common().JobStatus.UpgradeSavepointPath; got != sp || r.Deployed == nil || r.Deployed.RestorePath != sp {
		t.Fatalf("upgradeSavepointPath %q, deployed %+v; want both at the savepoint %s", got, r.Deployed, sp)
	}
	// The savepoint was taken because of the checkpoint age, as the event
	// says, not for another reason.
	evs, err := b.rec.Kube.CoreV1().Events(b.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs.Items {
		found = found || ev.Labels[lifecycle.LabelName] == name && strings.Contains(ev.Message, "stopping with a savepoint instead")
	}
	if !found {
		t.Errorf("no event saying the checkpoint was too old; events: %d", len(evs.Items))
	}
	job := r.Common().JobStatus.JobID
	if from := b.restoredFrom(name, job); from != sp {
		t.Errorf("Flink says job %s restored from %q, want %s", job, from, sp)
	}
	after := b.continues(name, job, before)
	t.Logf("job %s -> %s via savepoint %s, counter %d -> %d", old, job, sp, before, after)
}
