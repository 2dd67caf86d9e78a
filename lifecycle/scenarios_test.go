package lifecycle_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	s3tb "github.com/flink-gitops/flink-gitops/tests/testbed/s3"
)

// The scenarios of issue 7 against the real test bed. Each Test* starts one
// Flink cluster and walks it through several scenarios as subtests, in
// order (each builds on the state the previous one left), so the file needs
// three cluster start-ups, not one per scenario. They run one at a time: a
// cluster takes about 2.5 GiB.

// Counter arithmetic: the test job counts --rate 40 records a second over
// 4 keys, so the counter (the highest per-key count) grows by about 10 a
// second, and a checkpoint is taken every second.
const (
	// slack is how far a restored counter may be below the last value read
	// from the old job: the restored checkpoint may be up to ~1.5 s older.
	slack = 30
	// warm is the counter the old job must reach before an upgrade, so that
	// a restored job (≥ warm-slack) and an empty one (near 0) are far apart.
	warm = 100
)

var chkPath = regexp.MustCompile(`/chk-[0-9]+/?$`)

// scenario runs one step of a shared-cluster walk as a subtest and reports
// whether it passed; the bed fails the subtest it is running in.
func (b *bed) scenario(t *testing.T, name string, f func(t *testing.T)) bool {
	parent := b.t
	return t.Run(name, func(t *testing.T) {
		b.t = t
		defer func() { b.t = parent }()
		f(t)
	})
}

// flinkOf is a REST client of the cluster through the node agent's proxy.
func (b *bed) flinkOf(clusterName string) *flinkclient.Client {
	return flinkclient.New(b.restURL(clusterName), flinkclient.WithTimeout(5*time.Second))
}

// restoredFrom asks Flink what the job restored from ("" when it started
// empty).
func (b *bed) restoredFrom(clusterName, jobID string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		cps, err := b.flinkOf(clusterName).Checkpoints(ctx, jobID)
		if err == nil {
			if cps.Restored == nil {
				return ""
			}
			return cps.Restored.ExternalPath
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("checkpoint statistics of job %s: %v", jobID, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkpointed waits until the job has completed a checkpoint of its own,
// so that a last-state upgrade has one to restore from (without, it
// restores from where the job itself started).
func (b *bed) checkpointed(clusterName, jobID string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		cps, err := b.flinkOf(clusterName).Checkpoints(ctx, jobID)
		if err == nil && cps.LatestCompleted != nil && strings.Contains(cps.LatestCompleted.ExternalPath, jobID) {
			return
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("job %s completed no checkpoint: %v", jobID, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// continues checks that a job restored from state: its first counter value
// is about where the old one was.
func (b *bed) continues(clusterName, jobID string, before int64) int64 {
	b.t.Helper()
	first := b.firstProgress(clusterName, jobID)
	if first < before-slack {
		b.t.Fatalf("state lost: the old job's counter was %d, the new job %s starts at %d", before, jobID, first)
	}
	return first
}

// newJob is a condition: stable, and running another job than old.
func newJob(old string) func(*lifecycle.Record) bool {
	return func(r *lifecycle.Record) bool { return stable(r) && r.Common().JobStatus.JobID != old }
}

// settled is a condition: no operation in flight and the lifecycle state is s.
func settled(s v1beta1.LifecycleState) func(*lifecycle.Record) bool {
	return func(r *lifecycle.Record) bool { return r.Operation == nil && r.Common().LifecycleState == s }
}

// holds reconciles for d and checks cond after every pass: the state must
// not move on by itself.
func (b *bed) holds(kind, name string, d *lifecycle.Desired, what string, d2 time.Duration, cond func(*lifecycle.Record) bool) {
	b.t.Helper()
	ctx := context.Background()
	end := time.Now().Add(d2)
	for time.Now().Before(end) {
		res, err := b.rec.Reconcile(ctx, kind, b.ns, name, d)
		if err != nil {
			b.t.Fatalf("%s: %v", what, err)
		}
		if !cond(res.Record) {
			b.t.Fatalf("%s no longer holds: %s", what, dump(res.Record))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startZooKeeper runs a single ZooKeeper server on loopback from the
// ZooKeeper that Flink ships shaded, for specs that need high availability
// (rollback does, as in the operator). It returns the quorum address; the
// process group is killed in t.Cleanup.
func startZooKeeper(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lib, err := flinktb.Classpath(ctx, flinktb.Version2)
	if err != nil {
		t.Fatal(err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n", filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "zookeeper.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(java, "-Xmx96m", "-cp", filepath.Join(lib, "*"),
		"org.apache.flink.shaded.zookeeper3.org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("ZooKeeper log %s, last lines:\n%s", logPath, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("ZooKeeper did not listen on %s within a minute (log %s)", addr, logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestUpgradeScenarios (Flink 2.2) walks one application cluster through
// drift correction, last-state and stateless upgrades, rollback after a
// broken image (and a failed upgrade without rollback, then recovery), and
// periodic savepoints with history pruning.
func TestUpgradeScenarios(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	top := t
	const name = "scen"
	// High availability from the start: rollback needs it, and changing it
	// later would be an upgrade of its own.
	ha := fmt.Sprintf(`    high-availability.type: zookeeper
    high-availability.zookeeper.quorum: %s
    high-availability.storageDir: file://%s/ha
`, startZooKeeper(t), b.state)
	spec := func(image, mode, extra string, parallelism int) *lifecycle.Desired {
		return b.render(b.appSpec(name, image, "v2_2", mode, ha+extra, parallelism))
	}
	deps := b.rec.Kube.AppsV1().Deployments(b.ns)

	d := spec("flink:2.2", "savepoint", "", 1)
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
	jobID := r.Common().JobStatus.JobID
	b.progress(name, jobID, 1)

	ok := b.scenario(top, "drift", func(t *testing.T) {
		before := b.progress(name, jobID, 1)
		startTime := r.Common().JobStatus.StartTime
		scale := []byte(`{"spec":{"replicas":2}}`)
		if _, err := deps.Patch(ctx, cluster.TaskManagerName(name), types.MergePatchType, scale, metav1.PatchOptions{FieldManager: "kubectl-scale"}); err != nil {
			t.Fatal(err)
		}
		edit := []byte(`{"metadata":{"annotations":{"` + cluster.AnnotationSpecHash + `":"edited-by-hand"}}}`)
		if _, err := deps.Patch(ctx, cluster.JobManagerName(name), types.MergePatchType, edit, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		var hash string
		r = b.until(lifecycle.KindDeployment, name, d, "drift to be taken back", time.Minute, func(r *lifecycle.Record) bool {
			tm, err1 := deps.Get(ctx, cluster.TaskManagerName(name), metav1.GetOptions{})
			jm, err2 := deps.Get(ctx, cluster.JobManagerName(name), metav1.GetOptions{})
			if err1 != nil || err2 != nil {
				return false
			}
			hash = jm.Annotations[cluster.AnnotationSpecHash]
			return *tm.Spec.Replicas == 1 && tm.Status.Replicas == 1 && hash != "edited-by-hand" && stable(r)
		})
		if hash != r.Deployed.SpecHash {
			t.Errorf("JobManager spec-hash annotation %q, want %q", hash, r.Deployed.SpecHash)
		}
		if got := r.Common().JobStatus.JobID; got != jobID {
			t.Fatalf("drift correction replaced the job: %s -> %s", jobID, got)
		}
		job, err := b.flinkOf(name).Job(ctx, jobID)
		if err != nil {
			t.Fatal(err)
		}
		if st := fmt.Sprint(job.StartTime.UnixMilli()); st != startTime || job.State != flinkclient.JobRunning {
			t.Fatalf("drift correction restarted the job: start time %s -> %s, state %s", startTime, st, job.State)
		}
		if _, restarted := job.Timestamps[flinkclient.JobRestarting]; restarted {
			t.Errorf("the job went through RESTARTING during drift correction")
		}
		after := b.progress(name, jobID, before+1)
		t.Logf("TaskManager replicas 2 -> 1 and annotation taken back; job %s kept running, counter %d -> %d", jobID, before, after)
	})
	if !ok {
		return
	}

	ok = b.scenario(top, "last-state upgrade", func(t *testing.T) {
		b.checkpointed(name, jobID)
		before := b.progress(name, jobID, warm)
		d = spec("flink:2.2", "last-state", "", 2)
		r = b.until(lifecycle.KindDeployment, name, d, "last-state upgrade", 3*time.Minute, newJob(jobID))
		old := jobID
		jobID = r.Common().JobStatus.JobID
		b.logOverhead("last-state upgrade (2.2)", name, name, jobID)
		restore := r.Deployed.RestorePath
		if !chkPath.MatchString(restore) || !strings.Contains(restore, old) {
			t.Fatalf("restored from %q, want a chk-N path of job %s", restore, old)
		}
		if got := r.Common().JobStatus.UpgradeSavepointPath; got != restore {
			t.Errorf("upgradeSavepointPath %q, want %q", got, restore)
		}
		if got := b.restoredFrom(name, jobID); got != restore {
			t.Errorf("Flink says job %s restored from %q, want %q", jobID, got, restore)
		}
		if _, err := os.Stat(strings.TrimPrefix(restore, "file:")); err != nil {
			t.Errorf("retained checkpoint not on disk: %v", err)
		}
		first := b.continues(name, jobID, before)
		t.Logf("job %s -> %s restored from %s; counter %d -> %d", old, jobID, restore, before, first)
	})
	if !ok {
		return
	}

	ok = b.scenario(top, "stateless upgrade", func(t *testing.T) {
		before := b.progress(name, jobID, warm)
		d = spec("flink:2.2", "stateless", "", 1)
		r = b.until(lifecycle.KindDeployment, name, d, "stateless upgrade", 3*time.Minute, newJob(jobID))
		old := jobID
		jobID = r.Common().JobStatus.JobID
		b.logOverhead("stateless upgrade (2.2)", name, name, jobID)
		if r.Deployed.RestorePath != "" {
			t.Fatalf("a stateless upgrade restored from %q", r.Deployed.RestorePath)
		}
		if got := b.restoredFrom(name, jobID); got != "" {
			t.Fatalf("Flink says the stateless job restored from %q", got)
		}
		first := b.firstProgress(name, jobID)
		if first >= before/2 {
			t.Fatalf("the counter did not start again: %d before, %d after", before, first)
		}
		t.Logf("job %s -> %s started empty; counter %d -> %d", old, jobID, before, first)
	})
	if !ok {
		return
	}

	const rollbackOn = `    kubernetes.operator.deployment.rollback.enabled: "true"
    kubernetes.operator.deployment.readiness.timeout: 90s`
	// The readiness timeout leaves room for a slow JobManager start on a
	// loaded machine (the rollback's own deploy must finish within it); the
	// broken image is noticed at once from the Deployment's ReplicaFailure
	// condition, not by waiting out the timeout.
	ok = b.scenario(top, "rollback after a broken image", func(t *testing.T) {
		// Operator settings are not an upgrade: applied without a restart.
		d = spec("flink:2.2", "savepoint", rollbackOn, 1)
		r = b.until(lifecycle.KindDeployment, name, d, "rollback settings to be stable", time.Minute, func(r *lifecycle.Record) bool {
			return stable(r) && strings.Contains(r.Deployment.ReconciliationStatus.LastStableSpec, "rollback.enabled")
		})
		if got := r.Common().JobStatus.JobID; got != jobID {
			t.Fatalf("changing kubernetes.operator.* settings restarted the job: %s -> %s", jobID, got)
		}
		before := b.progress(name, jobID, warm)
		broken := spec("flink:0.0-broken", "savepoint", rollbackOn, 1)
		r = b.until(lifecycle.KindDeployment, name, broken, "rollback", 3*time.Minute, func(r *lifecycle.Record) bool {
			if r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed {
				t.Fatalf("upgrade failed instead of rolling back: %s", dump(r))
			}
			return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleRolledBack && r.Common().JobStatus.State == v1beta1.JobRunning
		})
		old := jobID
		jobID = r.Common().JobStatus.JobID
		b.logOverhead("savepoint upgrade to a broken image + rollback (2.2)", name, name, jobID)
		c := r.Common()
		if !strings.Contains(c.Error, "0.0-broken") {
			t.Errorf("error %q does not name the broken image", c.Error)
		}
		if st := r.Deployment.ReconciliationStatus.State; st != v1beta1.ReconciliationRolledBack {
			t.Errorf("reconciliation state %s, want ROLLED_BACK", st)
		}
		si := c.JobStatus.SavepointInfo
		if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed.RestorePath != si.LastSavepoint.Location {
			t.Fatalf("rollback did not restore from the upgrade savepoint: deployed %+v, savepoints %+v", r.Deployed, si)
		}
		jm, err := deps.Get(ctx, cluster.JobManagerName(name), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := jm.Spec.Template.Spec.Containers[0].Image; img != "flink:2.2" {
			t.Errorf("JobManager runs %s after the rollback, want flink:2.2", img)
		}
		first := b.continues(name, jobID, before)
		t.Logf("rolled back: job %s -> %s from %s, counter %d -> %d, error %q", old, jobID, r.Deployed.RestorePath, before, first, c.Error)

		// The broken spec is still in Git: it must not be tried again and
		// again, and the rolled-back job keeps running.
		b.holds(lifecycle.KindDeployment, name, broken, "ROLLED_BACK at rest", 4*time.Second, func(r *lifecycle.Record) bool {
			return settled(v1beta1.LifecycleRolledBack)(r) && r.Common().JobStatus.JobID == jobID
		})
	})
	if !ok {
		return
	}

	ok = b.scenario(top, "broken image without rollback", func(t *testing.T) {
		before := b.progress(name, jobID, warm)
		broken := spec("flink:0.0-broken", "savepoint", "", 1)
		r = b.until(lifecycle.KindDeployment, name, broken, "the upgrade to fail", 2*time.Minute, settled(v1beta1.LifecycleFailed))
		msg := r.Common().Error
		if !strings.Contains(msg, "0.0-broken") || !strings.Contains(msg, "fix the spec") {
			t.Errorf("error %q does not say what is wrong and what to do", msg)
		}
		b.holds(lifecycle.KindDeployment, name, broken, "FAILED at rest", 3*time.Second, settled(v1beta1.LifecycleFailed))
		upgradeSP := r.Common().JobStatus.SavepointInfo.LastSavepoint.Location

		// A fixed spec recovers, from the savepoint the failed upgrade took.
		d = spec("flink:2.2", "savepoint", "", 1)
		r = b.until(lifecycle.KindDeployment, name, d, "recovery", 3*time.Minute, newJob(jobID))
		old := jobID
		jobID = r.Common().JobStatus.JobID
		b.logOverhead("recovery from a failed upgrade (2.2)", name, name, jobID)
		if r.Deployed.RestorePath != upgradeSP || r.Common().Error != "" {
			t.Fatalf("recovered from %q (error %q), want the upgrade savepoint %s", r.Deployed.RestorePath, r.Common().Error, upgradeSP)
		}
		first := b.continues(name, jobID, before)
		t.Logf("failed with %q; recovered job %s -> %s from %s, counter %d -> %d", msg, old, jobID, upgradeSP, before, first)
	})
	if !ok {
		return
	}

	b.scenario(top, "periodic savepoints with history", func(t *testing.T) {
		const periodic = `    kubernetes.operator.periodic.savepoint.interval: 5s
    kubernetes.operator.savepoint.history.max.count: "2"`
		d = spec("flink:2.2", "savepoint", periodic, 1)
		restore := r.Deployed.RestorePath // the upgrade savepoint the cluster started from
		seen := map[string]bool{}
		// Pruned savepoints are queued for disposal; only the one the
		// running cluster restores from (if its JobManager restarts) waits.
		waitsForDisposal := func(r *lifecycle.Record) bool {
			for _, p := range r.PendingDisposal {
				if p != r.Deployed.RestorePath {
					return true
				}
			}
			return false
		}
		r = b.until(lifecycle.KindDeployment, name, d, "four periodic savepoints", 2*time.Minute, func(r *lifecycle.Record) bool {
			si := r.Common().JobStatus.SavepointInfo
			if si == nil {
				return false
			}
			for _, sp := range si.SavepointHistory {
				if sp.TriggerType == v1beta1.TriggerPeriodic {
					seen[sp.Location] = true
				}
			}
			return len(seen) >= 4 && r.Operation == nil && !waitsForDisposal(r)
		})
		if got := r.Common().JobStatus.JobID; got != jobID {
			t.Fatalf("periodic savepoints restarted the job: %s -> %s", jobID, got)
		}
		hist := r.Common().JobStatus.SavepointInfo.SavepointHistory
		kept := map[string]bool{}
		for _, sp := range hist {
			kept[sp.Location] = true
			if sp.TriggerType != v1beta1.TriggerPeriodic {
				t.Errorf("history entry %s is %s, want PERIODIC", sp.Location, sp.TriggerType)
			}
			if _, err := os.Stat(strings.TrimPrefix(sp.Location, "file:")); err != nil {
				t.Errorf("kept savepoint not on disk: %v", err)
			}
		}
		if len(hist) != 2 {
			t.Errorf("history holds %d entries, want 2: %+v", len(hist), hist)
		}
		var pruned []string
		for loc := range seen {
			if !kept[loc] {
				pruned = append(pruned, loc)
			}
		}
		if len(pruned) < 2 {
			t.Errorf("only %d savepoints pruned", len(pruned))
		}
		// Disposal runs in the JobManager after the REST call returns.
		deadline := time.Now().Add(30 * time.Second)
		for _, loc := range pruned {
			for {
				_, err := os.Stat(strings.TrimPrefix(loc, "file:"))
				if os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("pruned savepoint %s still on disk 30 s after its disposal (stat: %v)", loc, err)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		if _, err := os.Stat(strings.TrimPrefix(restore, "file:")); restore != "" && err != nil {
			t.Errorf("the savepoint the running cluster restores from was disposed: %v", err)
		}
		t.Logf("%d periodic savepoints, %d pruned and gone from disk, history %d, still held for the running cluster: %v", len(seen), len(pruned), len(hist), r.PendingDisposal)
	})
}

// sessionClusterSpec is a session cluster (no job) for the session jobs.
func (b *bed) sessionClusterSpec(name string) string {
	spec := b.appSpec(name, "flink:2.2", "v2_2", "stateless", "", 1)
	return spec[:strings.Index(spec, "  job:\n")]
}

// sessionJobSpec is a session job running the test job jar on clusterName.
// It names its state directories itself: validation looks at one resource
// at a time and does not see the session cluster's configuration.
func (b *bed) sessionJobSpec(name, clusterName, jar string, rate int) string {
	return b.sessionJobSpecFrom(name, clusterName, "file://"+jar, rate, "")
}

// sessionJobSpecFrom is sessionJobSpec with any jarURI and extra
// flinkConfiguration lines (indented by four spaces).
func (b *bed) sessionJobSpecFrom(name, clusterName, jarURI string, rate int, conf string) string {
	return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: %s
spec:
  deploymentName: %s
  flinkConfiguration:
    execution.checkpointing.dir: file://%s/checkpoints
    execution.checkpointing.savepoint-dir: file://%s/savepoints
%s  job:
    jarURI: %s
    entryClass: %s
    args: ["--rate", "%d", "--checkpoint-interval-ms", "1000"]
    parallelism: 1
    upgradeMode: savepoint
`, name, clusterName, b.state, b.state, conf, jarURI, flinktb.TestJobClass, rate)
}

// TestSessionJobs (Flink 2.2): a session cluster with two session jobs,
// a savepoint upgrade of one, and deletion in the right order. The jars
// come from where users keep them: job-a from an https server with a
// self-signed CA that requires the spec's header
// (kubernetes.operator.user.artifacts.http.header), then (its upgrade)
// from an S3-compatible store (versitygw) under the bucket allow-list;
// job-b by Maven coordinates from a repository on that server that
// requires the daemon's header (artifacts.headers, a value file), checked
// against its .sha1.
func TestSessionJobs(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	top := t
	const cl = "session"
	jar, err := flinktb.TestJobJar(ctx, flinktb.Version2)
	if err != nil {
		t.Fatal(err)
	}
	art := serveJars(t, jar)
	b.artifacts.AllowedSchemes = []string{"https", "file", "maven"}
	b.artifacts.AllowedHosts = []string{"127.0.0.1"}
	b.artifacts.CAFile = art.caFile
	b.artifacts.MavenRepositories = []string{art.url + "/maven"}
	b.artifacts.Headers = []render.HostHeader{{Hosts: []string{"127.0.0.1"}, Name: "X-Repo-Token", ValueFile: art.tokenFile}}
	cache, err := artifact.NewCache(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The upgrade of job-a moves its jar to an S3-compatible store (a real
	// versitygw): only the bucket prefix the daemon config allows is read.
	store := s3tb.Start(t)
	store.PutFile(t, "jars", "flink/counter.jar", jar)
	keys := t.TempDir()
	os.WriteFile(filepath.Join(keys, "id"), []byte(store.AccessKey), 0o600)
	os.WriteFile(filepath.Join(keys, "secret"), []byte(store.SecretKey), 0o600)
	objects := artifact.S3Config{S3: config.ObjectStore{Endpoint: store.Endpoint, Region: store.Region, PathStyle: true,
		AccessKeyIDFile: filepath.Join(keys, "id"), SecretAccessKeyFile: filepath.Join(keys, "secret"), AllowedBuckets: []string{"jars/flink/"}}}
	b.artifacts.AllowedSchemes = append(b.artifacts.AllowedSchemes, "s3")
	b.artifacts.CheckObject = objects.CheckURI
	src, err := artifact.NewS3(ctx, objects)
	if err != nil {
		t.Fatal(err)
	}
	b.rec.Jars = &artifact.Fetcher{Cache: cache, Sources: func(render.ArtifactPolicy, string) (artifact.Source, error) { return src, nil }}
	jobA := func(rate int) string {
		if rate != 40 {
			return b.sessionJobSpecFrom("job-a", cl, "s3://jars/flink/counter.jar", rate, "")
		}
		return b.sessionJobSpecFrom("job-a", cl, art.url+"/jobs/counter.jar", rate,
			"    kubernetes.operator.user.artifacts.http.header: \"X-Api-Key:"+art.apiKey+"\"\n")
	}
	if res := b.planOf(b.sessionClusterSpec(cl), b.sessionJobSpecFrom("job-x", cl, "s3://jars/other/counter.jar", 1, "")); !strings.Contains(res, "not in artifacts.s3.allowedBuckets") {
		t.Errorf("a jar outside the allowed prefix was not refused at plan: %s", res)
	}
	// The repository holds the session cluster and both session jobs.
	clusterDoc := b.sessionClusterSpec(cl)
	docs := map[string]string{"job-a": jobA(40), "job-b": b.sessionJobSpecFrom("job-b", cl, "maven:io.example:counter-job:1.0.0", 40, "")}
	commit := func() map[string]*lifecycle.Desired { return b.renderAll(clusterDoc, docs["job-a"], docs["job-b"]) }
	specs := commit()
	b.until(lifecycle.KindDeployment, cl, specs[cl], "session cluster", 3*time.Minute, func(r *lifecycle.Record) bool {
		return settled(v1beta1.LifecycleStable)(r) && r.Deployment.JobManagerDeploymentStatus == v1beta1.JMReady
	})
	jobs := map[string]string{} // session job -> Flink job id
	for _, n := range []string{"job-a", "job-b"} {
		r := b.until(lifecycle.KindSessionJob, n, specs[n], n+" running", 2*time.Minute, stable)
		jobs[n] = r.Common().JobStatus.JobID
	}
	for n, id := range jobs {
		b.progress(cl, id, 1)
		t.Logf("%s runs as job %s", n, id)
	}

	ok := b.scenario(top, "session job savepoint upgrade", func(t *testing.T) {
		before := b.progress(cl, jobs["job-a"], warm)
		docs["job-a"] = jobA(60)
		specs = commit()
		r := b.until(lifecycle.KindSessionJob, "job-a", specs["job-a"], "job-a upgrade", 2*time.Minute, newJob(jobs["job-a"]))
		old := jobs["job-a"]
		jobs["job-a"] = r.Common().JobStatus.JobID
		b.logOverhead("session job savepoint upgrade (2.2)", "job-a", cl, jobs["job-a"])
		si := r.Common().JobStatus.SavepointInfo
		if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed.RestorePath != si.LastSavepoint.Location {
			t.Fatalf("not restored from the upgrade savepoint: deployed %+v, savepoints %+v", r.Deployed, si)
		}
		if got := b.restoredFrom(cl, jobs["job-a"]); got != r.Deployed.RestorePath {
			t.Errorf("Flink says job-a restored from %q, want %q", got, r.Deployed.RestorePath)
		}
		first := b.continues(cl, jobs["job-a"], before)
		job, err := b.flinkOf(cl).Job(ctx, jobs["job-b"])
		if err != nil || job.State != flinkclient.JobRunning {
			t.Fatalf("job-b disturbed by job-a's upgrade: %v %v", job.State, err)
		}
		t.Logf("job-a %s -> %s from %s, counter %d -> %d; job-b kept running", old, jobs["job-a"], r.Deployed.RestorePath, before, first)
		if n := art.served.Load(); n < 2 {
			t.Errorf("the artifact server served %d jars, want job-a's and job-b's", n)
		}
	})
	if !ok {
		return
	}
	var userJar string // issue 19: one jar per digest, deleted when no job needs it
	ok = b.scenario(top, "jars over 10 upgrades", func(t *testing.T) {
		userJar, jobs["job-b"] = b.jarUpgrades(t, cl, "job-b", jobs["job-b"], jar, []string{jar}, func(j string) *lifecycle.Desired {
			docs["job-b"] = strings.Replace(b.sessionJobSpec("job-b", cl, j, 40), "upgradeMode: savepoint", "upgradeMode: stateless", 1)
			return commit()["job-b"]
		})
	})
	if !ok {
		return
	}

	b.scenario(top, "delete session cluster with jobs", func(t *testing.T) {
		r := b.until(lifecycle.KindDeployment, cl, nil, "deletion to be blocked", time.Minute, func(r *lifecycle.Record) bool {
			return r.Operation != nil && strings.Contains(r.Operation.Message, "waiting for session jobs")
		})
		msg := r.Operation.Message
		if !strings.Contains(msg, "job-a") || !strings.Contains(msg, "job-b") {
			t.Errorf("blocked deletion message %q does not name both jobs", msg)
		}
		b.holds(lifecycle.KindDeployment, cl, nil, "blocked deletion", 2*time.Second, func(r *lifecycle.Record) bool {
			return r.Operation != nil && r.Operation.Phase == lifecycle.PhaseDeleteCluster
		})
		if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, cluster.JobManagerName(cl), metav1.GetOptions{}); err != nil {
			t.Fatalf("session cluster deleted while jobs exist: %v", err)
		}
		for _, n := range []string{"job-a", "job-b"} {
			b.until(lifecycle.KindSessionJob, n, nil, n+" deleted", time.Minute, settled(v1beta1.LifecycleDeleted))
			// Flink caches GET /jobs/:id for a few seconds (the reconciler
			// reads the uncached overview), so allow the cache to catch up.
			var job flinkclient.JobDetails
			var err error
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
				if job, err = b.flinkOf(cl).Job(ctx, jobs[n]); err == nil && job.State == flinkclient.JobCanceled {
					break
				}
			}
			if err != nil || job.State != flinkclient.JobCanceled {
				t.Errorf("%s: Flink job %s is %s (%v), want CANCELED", n, jobs[n], job.State, err)
			}
		}
		b.wantJars(t, cl, userJar) // none of ours left; the user's untouched
		b.until(lifecycle.KindDeployment, cl, nil, "session cluster deleted", time.Minute, settled(v1beta1.LifecycleDeleted))
		for _, n := range []string{cluster.JobManagerName(cl), cluster.TaskManagerName(cl)} {
			if _, err := b.rec.Kube.AppsV1().Deployments(b.ns).Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Deployment %s still there: %v", n, err)
			}
		}
		t.Logf("deletion waited for %q, then went", msg)
	})
}

// TestFlink120 runs the core upgrades on Flink 1.20, which names its state
// directories state.checkpoints.dir and state.savepoints.dir.
func TestFlink120(t *testing.T) {
	b := newBed(t)
	top := t
	const name = "legacy"
	spec := func(mode string, parallelism int) *lifecycle.Desired {
		return b.render(b.appSpec(name, "flink:1.20", "v1_20", mode, "", parallelism))
	}
	d := spec("savepoint", 1)
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
	jobID := r.Common().JobStatus.JobID
	b.progress(name, jobID, 1)

	ok := b.scenario(top, "savepoint upgrade", func(t *testing.T) {
		before := b.progress(name, jobID, warm)
		d = spec("savepoint", 2)
		r = b.until(lifecycle.KindDeployment, name, d, "savepoint upgrade", 3*time.Minute, newJob(jobID))
		old := jobID
		jobID = r.Common().JobStatus.JobID
		b.logOverhead("savepoint upgrade (1.20)", name, name, jobID)
		si := r.Common().JobStatus.SavepointInfo
		if si == nil || si.LastSavepoint == nil || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade || r.Deployed.RestorePath != si.LastSavepoint.Location {
			t.Fatalf("not restored from the upgrade savepoint: deployed %+v, savepoints %+v", r.Deployed, si)
		}
		if !strings.HasPrefix(strings.TrimPrefix(si.LastSavepoint.Location, "file:"), b.state+"/savepoints/") {
			t.Errorf("savepoint %s not under state.savepoints.dir", si.LastSavepoint.Location)
		}
		if got := b.restoredFrom(name, jobID); got != r.Deployed.RestorePath {
			t.Errorf("Flink says job %s restored from %q, want %q", jobID, got, r.Deployed.RestorePath)
		}
		first := b.continues(name, jobID, before)
		t.Logf("job %s -> %s from %s, counter %d -> %d", old, jobID, r.Deployed.RestorePath, before, first)
	})
	if !ok {
		return
	}

	b.scenario(top, "last-state upgrade", func(t *testing.T) {
		b.checkpointed(name, jobID)
		before := b.progress(name, jobID, warm)
		d = spec("last-state", 1)
		r = b.until(lifecycle.KindDeployment, name, d, "last-state upgrade", 3*time.Minute, newJob(jobID))
		old := jobID
		jobID = r.Common().JobStatus.JobID
		b.logOverhead("last-state upgrade (1.20)", name, name, jobID)
		restore := r.Deployed.RestorePath
		if !chkPath.MatchString(restore) || !strings.Contains(restore, old) || !strings.HasPrefix(strings.TrimPrefix(restore, "file:"), b.state+"/checkpoints/") {
			t.Fatalf("restored from %q, want a chk-N path of job %s under state.checkpoints.dir", restore, old)
		}
		if got := b.restoredFrom(name, jobID); got != restore {
			t.Errorf("Flink says job %s restored from %q, want %q", jobID, got, restore)
		}
		first := b.continues(name, jobID, before)
		t.Logf("job %s -> %s from %s, counter %d -> %d", old, jobID, restore, before, first)
	})
}
