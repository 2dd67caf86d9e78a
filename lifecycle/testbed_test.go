package lifecycle_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// TestApplicationLifecycle drives one application cluster through deploy,
// savepoint upgrade (state continues), manual savepoint, suspend, resume
// (state continues), last-state and stateless upgrades, and deletion.
func TestApplicationLifecycle(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	const name = "counter"

	d := b.render(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 1))
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
	job1 := r.Common().JobStatus.JobID
	before := b.progress(name, job1, 30)
	t.Logf("deployed job %s, counter %d", job1, before)

	// Savepoint upgrade: parallelism 1 → 2. The counter continues.
	d = b.render(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 2))
	r = b.until(lifecycle.KindDeployment, name, d, "savepoint upgrade", 3*time.Minute, func(r *lifecycle.Record) bool {
		return stable(r) && r.Common().JobStatus.JobID != job1
	})
	job2 := r.Common().JobStatus.JobID
	b.logOverhead("savepoint upgrade (2.2)", name, name, job2)
	si := r.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Common().JobStatus.UpgradeSavepointPath != si.LastSavepoint.Location {
		t.Fatalf("upgrade savepoint not recorded: %+v", si)
	}
	if r.Deployed == nil || r.Deployed.RestorePath != si.LastSavepoint.Location {
		t.Fatalf("new job not restored from the upgrade savepoint: deployed %+v", r.Deployed)
	}
	after := b.progress(name, job2, before+1)
	if after <= before {
		t.Fatalf("state lost across the savepoint upgrade: %d then %d", before, after)
	}
	t.Logf("upgraded to job %s from %s, counter %d -> %d", job2, si.LastSavepoint.Location, before, after)

	// Manual savepoint through the nonce.
	d = b.render(strings.Replace(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 2), "    upgradeMode:", "    savepointTriggerNonce: 7\n    upgradeMode:", 1))
	r = b.until(lifecycle.KindDeployment, name, d, "manual savepoint", 2*time.Minute, func(r *lifecycle.Record) bool {
		si := r.Common().JobStatus.SavepointInfo
		return r.Operation == nil && si != nil && si.LastSavepoint != nil && si.LastSavepoint.TriggerType == v1beta1.TriggerManual
	})
	if got := r.Common().JobStatus.JobID; got != job2 {
		t.Fatalf("a manual savepoint restarted the job: %s -> %s", job2, got)
	}
	manual := r.Common().JobStatus.SavepointInfo.LastSavepoint.Location
	if _, err := os.Stat(strings.TrimPrefix(manual, "file:")); err != nil {
		t.Fatalf("manual savepoint %s not on disk: %v", manual, err)
	}

	// Suspend: the cluster goes, the savepoint stays.
	suspended := strings.Replace(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 2), "    upgradeMode:", "    savepointTriggerNonce: 7\n    state: suspended\n    upgradeMode:", 1)
	d = b.render(suspended)
	r = b.until(lifecycle.KindDeployment, name, d, "suspended", 2*time.Minute, func(r *lifecycle.Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleSuspended
	})
	if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("JobManager Deployment still there after suspend: %v", err)
	}
	atSuspend := r.Common().JobStatus.UpgradeSavepointPath

	// Resume: restored from the suspend savepoint, counter continues.
	d = b.render(strings.Replace(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 2), "    upgradeMode:", "    savepointTriggerNonce: 7\n    upgradeMode:", 1))
	r = b.until(lifecycle.KindDeployment, name, d, "resumed", 3*time.Minute, stable)
	if r.Deployed.RestorePath != atSuspend {
		t.Fatalf("resumed from %q, want the suspend savepoint %q", r.Deployed.RestorePath, atSuspend)
	}
	job3 := r.Common().JobStatus.JobID
	resumed := b.progress(name, job3, after+1)
	t.Logf("resumed job %s from %s, counter %d", job3, atSuspend, resumed)

	// Deletion: everything goes, the record says DELETED.
	b.until(lifecycle.KindDeployment, name, nil, "deleted", 2*time.Minute, func(r *lifecycle.Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleDeleted
	})
	for _, n := range []string{name, name + "-taskmanager"} {
		if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment %s still there after delete: %v", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.state, "savepoints")); err != nil {
		t.Errorf("savepoint directory gone: %v", err)
	}
}
