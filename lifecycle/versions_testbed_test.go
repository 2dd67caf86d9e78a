package lifecycle_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// TestVersionContract runs one application cluster and one session cluster
// through the reconciler on each Flink version: in make test on the oldest
// (1.18) and the newest (2.3) the test bed runs, in make test-matrix on every
// one (FLINK_GITOPS_VERSIONS=all; see flinktb.ContractVersions). The
// application goes through deploy, savepoint upgrade, suspend, resume,
// last-state upgrade and delete; the session cluster runs a session job
// through deploy, savepoint upgrade and delete. The two clusters of a
// version run side by side (one bed each), the versions one after another.
func TestVersionContract(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	versions, err := flinktb.ContractVersions(flinktb.Version118, flinktb.Version23)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			start := time.Now()
			t.Run("application", func(t *testing.T) {
				t.Parallel()
				versionApplication(t, newBed(t), v)
			})
			t.Run("session", func(t *testing.T) {
				t.Parallel()
				versionSession(t, newBed(t), v)
			})
			t.Cleanup(func() { t.Logf("VERSION %s: contract suite took %s", v, time.Since(start).Round(time.Second)) })
		})
	}
}

// contractRate is the test job's records per second in the version
// contract suite: five times the usual, so the counter passes warm (the
// value that tells restored state from a fresh start) in seconds. Each
// later step only needs the counter to move on: a job that restored state
// starts near where the old one stopped, well above slack.
const contractRate = "200"

// versionImage is the image and flinkVersion of a test bed Flink version:
// "1.18.1" runs as flink:1.18, flinkVersion v1_18.
func versionImage(version string) (image string, fv v1beta1.FlinkVersion) {
	minor := flinktb.Minor(version)
	return "flink:" + minor, v1beta1.FlinkVersion("v" + strings.Replace(minor, ".", "_", 1))
}

// versionApplication: deploy, savepoint upgrade, suspend, resume, last-state
// upgrade and delete of one application cluster, the counter continuing
// across each stateful step.
func versionApplication(t *testing.T, b *bed, version string) {
	ctx := context.Background()
	image, fv := versionImage(version)
	name := "app-" + strings.ReplaceAll(flinktb.Minor(version), ".", "")
	spec := func(mode, jobExtra string, parallelism int) string {
		s := b.appSpec(name, image, string(fv), mode, "", parallelism)
		s = strings.Replace(s, `"--rate", "40"`, `"--rate", "`+contractRate+`"`, 1)
		return strings.Replace(s, "    upgradeMode:", jobExtra+"    upgradeMode:", 1)
	}

	d := b.render(spec("savepoint", "", 1))
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy", 3*time.Minute, stable)
	job := r.Common().JobStatus.JobID
	// The config file is the one this version reads: flink-conf.yaml for
	// 1.x (1.18 reads nothing else), config.yaml for 2.x.
	cm, err := b.rec.Kube.CoreV1().ConfigMaps(b.ns).Get(ctx, "flink-config-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.ConfigFileName(fv)
	if _, ok := cm.Data[want]; !ok || len(cm.Data) == 0 {
		t.Fatalf("config map of %s has %v, want %s", fv, keys(cm.Data), want)
	}
	if cfg, err := b.flinkOf(name).Config(ctx); err != nil || cfg.FlinkVersion != version {
		t.Fatalf("the cluster runs Flink %q (%v), want %s", cfg.FlinkVersion, err, version)
	}
	before := b.progress(name, job, warm)
	t.Logf("%s: deployed job %s, counter %d", version, job, before)

	// Savepoint upgrade: parallelism 1 -> 2, restored from the savepoint.
	d = b.render(spec("savepoint", "", 2))
	r = b.until(lifecycle.KindDeployment, name, d, "savepoint upgrade", 3*time.Minute, newJob(job))
	old, job := job, r.Common().JobStatus.JobID
	si := r.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed.RestorePath != si.LastSavepoint.Location {
		t.Fatalf("not restored from the upgrade savepoint: deployed %+v, savepoints %+v", r.Deployed, si)
	}
	if got := b.restoredFrom(name, job); got != r.Deployed.RestorePath {
		t.Errorf("Flink says job %s restored from %q, want %q", job, got, r.Deployed.RestorePath)
	}
	first := b.continues(name, job, before)
	t.Logf("%s: savepoint upgrade %s -> %s, counter %d -> %d", version, old, job, before, first)

	// Suspend: the cluster goes, the savepoint stays.
	before = b.progress(name, job, first+1)
	d = b.render(spec("savepoint", "    state: suspended\n", 2))
	r = b.until(lifecycle.KindDeployment, name, d, "suspended", 2*time.Minute, settled(v1beta1.LifecycleSuspended))
	if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("JobManager Deployment still there after suspend: %v", err)
	}
	atSuspend := r.Common().JobStatus.UpgradeSavepointPath
	if atSuspend == "" {
		t.Fatalf("suspend recorded no savepoint: %s", dump(r))
	}

	// Resume from the suspend savepoint.
	d = b.render(spec("savepoint", "", 2))
	r = b.until(lifecycle.KindDeployment, name, d, "resumed", 3*time.Minute, stable)
	if r.Deployed.RestorePath != atSuspend {
		t.Fatalf("resumed from %q, want the suspend savepoint %q", r.Deployed.RestorePath, atSuspend)
	}
	job = r.Common().JobStatus.JobID
	first = b.continues(name, job, before)
	t.Logf("%s: resumed job %s from %s, counter %d -> %d", version, job, atSuspend, before, first)

	// Last-state upgrade (no HA): cancel keeping checkpoints, restore from
	// the latest one Flink reports.
	b.checkpointed(name, job)
	before = b.progress(name, job, first+1)
	d = b.render(spec("last-state", "", 1))
	r = b.until(lifecycle.KindDeployment, name, d, "last-state upgrade", 3*time.Minute, newJob(job))
	old, job = job, r.Common().JobStatus.JobID
	restore := r.Deployed.RestorePath
	if !chkPath.MatchString(restore) || !strings.Contains(restore, old) {
		t.Fatalf("restored from %q, want a chk-N path of job %s", restore, old)
	}
	if got := b.restoredFrom(name, job); got != restore {
		t.Errorf("Flink says job %s restored from %q, want %q", job, got, restore)
	}
	first = b.continues(name, job, before)
	t.Logf("%s: last-state upgrade %s -> %s from %s, counter %d -> %d", version, old, job, restore, before, first)

	// Delete: everything goes, the record says DELETED.
	b.until(lifecycle.KindDeployment, name, nil, "deleted", 2*time.Minute, settled(v1beta1.LifecycleDeleted))
	for _, n := range []string{name, name + "-taskmanager"} {
		if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment %s still there after delete: %v", n, err)
		}
	}
	if _, err := os.Stat(strings.TrimPrefix(atSuspend, "file:")); err != nil {
		t.Errorf("the suspend savepoint is gone after delete: %v", err)
	}
}

// versionSession: a session cluster and one session job (the test job built
// against this version): deploy, savepoint upgrade, delete of the job, then
// of the cluster.
func versionSession(t *testing.T, b *bed, version string) {
	ctx := context.Background()
	image, fv := versionImage(version)
	cl := "session-" + strings.ReplaceAll(flinktb.Minor(version), ".", "")
	jar, err := flinktb.TestJobJar(ctx, version)
	if err != nil {
		t.Fatal(err)
	}
	s := b.appSpec(cl, image, string(fv), "stateless", "", 1)
	clusterDoc := s[:strings.Index(s, "  job:\n")]
	cp, sp := "execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"
	if strings.HasPrefix(version, "1.") {
		cp, sp = "state.checkpoints.dir", "state.savepoints.dir"
	}
	jobDoc := func(rate int) string {
		return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: job
spec:
  deploymentName: %s
  flinkConfiguration:
    %s: file://%s/checkpoints
    %s: file://%s/savepoints
  job:
    jarURI: file://%s
    entryClass: %s
    args: ["--rate", "%d", "--checkpoint-interval-ms", "1000"]
    parallelism: 1
    upgradeMode: savepoint
`, cl, cp, b.state, sp, b.state, jar, flinktb.TestJobClass, rate)
	}

	specs := b.renderAll(clusterDoc, jobDoc(200))
	b.until(lifecycle.KindDeployment, cl, specs[cl], "session cluster", 3*time.Minute, func(r *lifecycle.Record) bool {
		return settled(v1beta1.LifecycleStable)(r) && r.Deployment.JobManagerDeploymentStatus == v1beta1.JMReady
	})
	r := b.until(lifecycle.KindSessionJob, "job", specs["job"], "session job running", 2*time.Minute, stable)
	job := r.Common().JobStatus.JobID
	before := b.progress(cl, job, warm)

	// Savepoint upgrade of the session job: the cluster stays, the job
	// restores from its savepoint.
	specs = b.renderAll(clusterDoc, jobDoc(240))
	r = b.until(lifecycle.KindSessionJob, "job", specs["job"], "session job upgrade", 2*time.Minute, newJob(job))
	old, job := job, r.Common().JobStatus.JobID
	si := r.Common().JobStatus.SavepointInfo
	if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed.RestorePath != si.LastSavepoint.Location {
		t.Fatalf("not restored from the upgrade savepoint: deployed %+v, savepoints %+v", r.Deployed, si)
	}
	if got := b.restoredFrom(cl, job); got != r.Deployed.RestorePath {
		t.Errorf("Flink says job %s restored from %q, want %q", job, got, r.Deployed.RestorePath)
	}
	first := b.continues(cl, job, before)
	t.Logf("%s: session job %s -> %s, counter %d -> %d", version, old, job, before, first)

	// Delete the job (the cluster stays), then the cluster.
	b.until(lifecycle.KindSessionJob, "job", nil, "session job deleted", 2*time.Minute, settled(v1beta1.LifecycleDeleted))
	// DELETED means the cancel was accepted; the job ends on Flink's time.
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		d, err := b.flinkOf(cl).Job(wait, job)
		if err == nil && d.State.GloballyTerminal() {
			break
		}
		if wait.Err() != nil {
			t.Fatalf("Flink job %s after the session job's delete: %s, %v; want it ended", job, d.State, err)
		}
		select {
		case <-wait.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	b.until(lifecycle.KindDeployment, cl, nil, "session cluster deleted", 2*time.Minute, settled(v1beta1.LifecycleDeleted))
	if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, cl, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("session JobManager Deployment still there after delete: %v", err)
	}
}
