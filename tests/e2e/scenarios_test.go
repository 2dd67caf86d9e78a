package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// The scenarios of issue 10 beyond the core story. Each test function runs
// one Flink cluster (or one session cluster) through a sequence of changes,
// so the expensive part — starting JVMs — is paid once per function. They
// are not parallel: every Flink cluster costs ~2.5 GiB and a CPU.

// app is a FlinkDeployment the scenarios push, one field per knob they turn.
type app struct {
	name        string
	flink1      bool // Flink 1.20 instead of 2.2
	mode        string
	parallelism int
	state       string // "" (running) or "suspended"
	nonce       int    // savepointTriggerNonce when > 0
	session     bool   // a session cluster: no job
	slots       int    // taskmanager.numberOfTaskSlots (default 2)
	conf        map[string]string
}

func (a app) yaml() string {
	image, version := "flink:2.2", "v2_2"
	if a.flink1 {
		image, version = "flink:1.20", "v1_20"
	}
	slots := a.slots
	if slots == 0 {
		slots = 2
	}
	conf := map[string]string{
		"taskmanager.numberOfTaskSlots": strconv.Itoa(slots),
		// The counter gauge is read through REST: fetch metrics every second
		// so the first value of a new job is its first count.
		"metrics.fetcher.update-interval": "1000",
	}
	maps.Copy(conf, a.conf)
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: %s
  namespace: NAMESPACE
spec:
  image: %s
  flinkVersion: %s
  mode: standalone
  flinkConfiguration:
`, a.name, image, version)
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		fmt.Fprintf(&b, "    %s: %q\n", k, conf[k])
	}
	b.WriteString("  jobManager:\n    resource: {memory: 1024m, cpu: 0.5}\n  taskManager:\n    resource: {memory: 1280m, cpu: 0.5}\n")
	if a.session {
		return b.String()
	}
	fmt.Fprintf(&b, `  job:
    jarURI: local:///opt/flink/usrlib/testjob.jar
    entryClass: %s
    args: ["--rate", "40", "--checkpoint-interval-ms", "1000"]
    parallelism: %d
    upgradeMode: %s
`, flinktb.TestJobClass, a.parallelism, a.mode)
	if a.state != "" {
		fmt.Fprintf(&b, "    state: %s\n", a.state)
	}
	if a.nonce > 0 {
		fmt.Fprintf(&b, "    savepointTriggerNonce: %d\n", a.nonce)
	}
	return b.String()
}

// files is the app as the files of its entry point apps/<name>.
func (a app) files() map[string]string {
	return map[string]string{
		"apps/" + a.name + "/kustomization.yaml": "resources: [spec.yaml]\n",
		"apps/" + a.name + "/spec.yaml":          a.yaml(),
	}
}

// sessionJob is a FlinkSessionJob running the test job from a local jar.
func sessionJob(name, cluster, jar, mode string, parallelism int) map[string]string {
	spec := fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: %s
  namespace: NAMESPACE
spec:
  deploymentName: %s
  job:
    jarURI: file://%s
    entryClass: %s
    args: ["--rate", "40", "--checkpoint-interval-ms", "1000"]
    parallelism: %d
    upgradeMode: %s
`, name, cluster, jar, flinktb.TestJobClass, parallelism, mode)
	return map[string]string{
		"apps/" + name + "/kustomization.yaml": "resources: [spec.yaml]\n",
		"apps/" + name + "/spec.yaml":          spec,
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// logsOnFailure prints, when the test fails, the node agent's log and the
// tails of the Flink processes' logs (the daemon's is printed by newEnv).
// Registered after newEnv, it runs before the stack stops.
func (e *env) logsOnFailure() {
	e.t.Cleanup(func() {
		if !e.t.Failed() {
			return
		}
		dir := filepath.Dir(e.s.DaemonLog)
		e.t.Logf("node agent log %s:\n%s", filepath.Join(dir, "node-agent.log"), tail(filepath.Join(dir, "node-agent.log"), 40))
		e.t.Logf("Flink process logs:\n%s", nodeagent.LogTails(filepath.Join(dir, "pods"), 25))
	})
}

// restURL is the REST API of cluster through the node agent's proxy.
func (e *env) restURL(cluster string) string {
	return e.s.Agent.ProxyURL + "/" + e.ns + "/" + cluster + "-rest"
}

// firstCount waits for jobID's first counter value and returns it: a job
// restored from state starts near where the old one stopped, a job started
// empty near 1.
func (e *env) firstCount(cluster, jobID string) int64 {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := flinktb.JobProgress(ctx, e.restURL(cluster), jobID)
		cancel()
		if err == nil {
			return n
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("job %s on %s reported no count within 2m: %v", jobID, cluster, lastErr)
	return 0
}

// continues asserts that a restored job started from the old job's count.
// The state was taken after `before` was read, so the first count is at
// least before; last-state restores a checkpoint up to a second older
// (slack). A job started empty would need before/10 seconds to get there.
func (e *env) continues(what string, before, first, slack int64) {
	e.t.Helper()
	if first < before-slack {
		e.t.Fatalf("%s lost state: the counter was %d before and the new job starts at %d", what, before, first)
	}
	e.t.Logf("%s: counter %d before, new job starts at %d", what, before, first)
}

// record reads the resource's status ConfigMap (the write-ahead record).
func (e *env) record(kind, name string) *lifecycle.Record {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := (&lifecycle.Store{Client: e.s.Kube.Client()}).Get(ctx, kind, e.ns, name)
	if err != nil {
		e.t.Fatalf("read status ConfigMap of %s %s: %v", kind, name, err)
	}
	return r
}

// jobManager returns the JobManager Deployment, nil when there is none.
func (e *env) jobManager(name string) *appsv1.Deployment {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := e.s.Kube.Client().AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// flinkConfig is the Flink configuration file the cluster was given.
func (e *env) flinkConfig(name string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cm, err := e.s.Kube.Client().CoreV1().ConfigMaps(e.ns).Get(ctx, cluster.ConfigMapName(name), metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return cm.Data["config.yaml"] + cm.Data["flink-conf.yaml"]
}

// jobManagerConfig is the configuration the running JobManager reports.
func (e *env) jobManagerConfig(name string) map[string]string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.restURL(name)+"/jobmanager/config", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("JobManager config of %s: %v", name, err)
	}
	defer resp.Body.Close()
	var entries []struct{ Key, Value string }
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		e.t.Fatalf("JobManager config of %s: %v", name, err)
	}
	out := map[string]string{}
	for _, kv := range entries {
		out[kv.Key] = kv.Value
	}
	return out
}

// restoreArg is the --fromSavepoint argument of the JobManager, "" if none.
func restoreArg(d *appsv1.Deployment) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		for i, a := range c.Args {
			if a == "--fromSavepoint" && i+1 < len(c.Args) {
				return c.Args[i+1]
			}
		}
	}
	return ""
}

// metric sums the daemon's samples of a Prometheus metric whose label set
// contains every given `key="value"`.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.s.MetricsAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("scrape daemon metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// statusHead is the commit the status branch points at.
func (e *env) statusHead() string {
	e.t.Helper()
	out, err := e.s.Work.Git(context.Background(), "ls-remote", "origin", "refs/heads/"+stack.StatusBranch)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Fields(out + " -")[0]
}

// waitFor polls cond until it holds or the timeout passes.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		if !e.s.DaemonRunning() {
			e.t.Fatalf("daemon exited while waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// savepointDirs lists the savepoint directories the stack's Flink clusters
// wrote.
func (e *env) savepointDirs() []string {
	e.t.Helper()
	dirs, err := filepath.Glob(filepath.Join(e.s.StateDir, "savepoints", "savepoint-*"))
	if err != nil {
		e.t.Fatal(err)
	}
	return dirs
}

// localPath turns a file:// state location into a path.
func localPath(loc string) string { return strings.TrimPrefix(loc, "file:") }

func exists(loc string) bool {
	_, err := os.Stat(localPath(loc))
	return err == nil
}

func countTrigger(rs lifecycle.ResourceStatus, trigger string) int {
	n := 0
	for _, sp := range rs.Savepoints {
		if sp.Trigger == trigger {
			n++
		}
	}
	return n
}

// TestApplicationLifecycle takes one Flink 2.2 application through the
// operations a user asks for by pushing, in sequence: a live change of the
// daemon's Flink defaults (the running job is left alone, the next deploy
// picks it up), a manual savepoint, periodic savepoints with a bounded
// history, a last-state upgrade, suspend and resume, a stateless upgrade,
// and removal with a savepoint first.
func TestApplicationLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	a := app{name: "counter", mode: "savepoint", parallelism: 1}
	e := newEnv(t, a.files(), nil)
	e.logsOnFailure()
	rs := e.wait("FlinkDeployment", a.name, "first deploy", 4*time.Minute, stableAt(""))
	job := rs.JobID

	// The daemon's Flink defaults change live: the running cluster keeps
	// its configuration (no restart, no state regress), a later deploy
	// gets the new default.
	jm := e.jobManager(a.name)
	reloads := e.metric("flink_gitops_config_reloads_total")
	cfg := e.s.Config(nil)
	flinkCfg := cfg["flink"].(map[string]any)
	flinkCfg["defaultConfiguration"].(map[string]any)["rest.flamegraph.enabled"] = "true"
	if err := e.s.WriteConfig(map[string]any{"flink": flinkCfg}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the daemon to reload its config", time.Minute, func() bool { return e.metric("flink_gitops_config_reloads_total") > reloads })
	passes := e.metric("flink_gitops_reconcile_total", `kind="FlinkDeployment"`)
	e.waitFor("three reconcile passes after the reload", time.Minute, func() bool {
		return e.metric("flink_gitops_reconcile_total", `kind="FlinkDeployment"`) >= passes+3
	})
	if now := e.jobManager(a.name); now.Generation != jm.Generation || strings.Contains(e.flinkConfig(a.name), "flamegraph") {
		t.Fatalf("a live change of flink.defaultConfiguration changed the running cluster (generation %d -> %d): a restart would lose state",
			jm.Generation, now.Generation)
	}

	// Manual savepoint: the job keeps running under the same id.
	before := e.progress(a.name, job, 100)
	a.nonce = 1
	c := e.push("counter: savepoint please", a.files())
	rs = e.wait("FlinkDeployment", a.name, "manual savepoint", 3*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LastReconciledCommit == c && countTrigger(r, "MANUAL") == 1 && r.Operation == ""
	})
	if rs.JobID != job || rs.JobState != "RUNNING" || !exists(rs.Savepoints[0].Path) {
		t.Fatalf("manual savepoint: want job %s running and the savepoint on disk, got %+v", job, rs)
	}
	e.progress(a.name, job, before+1)
	manual := rs.Savepoints[0].Path
	t.Logf("manual savepoint %s", manual)

	// Periodic savepoints, history bounded at 2: the manual savepoint is
	// pruned and its directory disposed.
	a.conf = map[string]string{
		"kubernetes.operator.periodic.savepoint.interval": "4s",
		"kubernetes.operator.savepoint.history.max.count": "2",
	}
	c = e.push("counter: periodic savepoints", a.files())
	var periodic []string
	rs = e.wait("FlinkDeployment", a.name, "two periodic savepoints", 3*time.Minute, func(r lifecycle.ResourceStatus) bool {
		if len(r.Savepoints) > 2 {
			t.Fatalf("savepoint history exceeds max.count 2: %+v", r.Savepoints)
		}
		return r.LastReconciledCommit == c && countTrigger(r, "PERIODIC") == 2
	})
	for _, sp := range rs.Savepoints {
		periodic = append(periodic, sp.Path)
	}
	if rs.JobID != job {
		t.Fatalf("periodic savepoints restarted the job: %s -> %s", job, rs.JobID)
	}
	e.waitFor("the pruned manual savepoint to be disposed", time.Minute, func() bool { return !exists(manual) })
	for _, p := range periodic {
		if !exists(p) {
			t.Fatalf("savepoint %s is in the history but not on disk", p)
		}
	}
	// Periodic savepoints off again (an operator setting: no restart), so
	// the newest state of the job is a checkpoint.
	delete(a.conf, "kubernetes.operator.periodic.savepoint.interval")
	c = e.push("counter: no periodic savepoints", a.files())
	rs = e.wait("FlinkDeployment", a.name, "periodic savepoints off", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LastReconciledCommit == c && r.Operation == ""
	})
	if rs.JobID != job {
		t.Fatalf("an operator setting restarted the job: %s -> %s", job, rs.JobID)
	}

	// Last-state upgrade: the job restores from its newest checkpoint.
	before = e.progress(a.name, job, 100)
	a.mode, a.parallelism = "last-state", 2
	c = e.push("counter: last-state upgrade to parallelism 2", a.files())
	rs = e.wait("FlinkDeployment", a.name, "last-state upgrade", 4*time.Minute, stableAt(c))
	if rs.JobID == job || !strings.Contains(rs.UpgradeSavepointPath, "/chk-") {
		t.Fatalf("last-state upgrade: want a new job restored from a checkpoint chk-N, got %+v", rs)
	}
	if got := restoreArg(e.jobManager(a.name)); got != rs.UpgradeSavepointPath {
		t.Fatalf("the JobManager restores from %q, the status branch says %q", got, rs.UpgradeSavepointPath)
	}
	if !strings.Contains(e.flinkConfig(a.name), "flamegraph") || e.jobManagerConfig(a.name)["rest.flamegraph.enabled"] != "true" {
		t.Fatal("the cluster deployed after the live config change lacks the new Flink default rest.flamegraph.enabled")
	}
	job = rs.JobID
	e.continues("last-state upgrade", before, e.firstCount(a.name, job), 15)

	// Suspend with a savepoint, then resume from it.
	before = e.progress(a.name, job, before+1)
	a.mode, a.state = "savepoint", "suspended"
	c = e.push("counter: suspend", a.files())
	rs = e.wait("FlinkDeployment", a.name, "suspended", 3*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LastReconciledCommit == c && r.LifecycleState == "SUSPENDED" && r.Operation == ""
	})
	if e.jobManager(a.name) != nil {
		t.Fatal("suspended, but the JobManager Deployment still exists")
	}
	if len(rs.Savepoints) == 0 || rs.Savepoints[0].Trigger != "UPGRADE" || rs.UpgradeSavepointPath != rs.Savepoints[0].Path {
		t.Fatalf("suspend: want the suspend savepoint as upgradeSavepointPath, got %+v", rs)
	}
	suspendSP := rs.UpgradeSavepointPath
	a.state = ""
	c = e.push("counter: resume", a.files())
	rs = e.wait("FlinkDeployment", a.name, "resumed", 4*time.Minute, stableAt(c))
	if got := restoreArg(e.jobManager(a.name)); got != suspendSP {
		t.Fatalf("resume restores from %q, want the suspend savepoint %q", got, suspendSP)
	}
	job = rs.JobID
	e.continues("resume", before, e.firstCount(a.name, job), 0)

	// Stateless upgrade: the new job starts empty.
	before = e.progress(a.name, job, 300)
	a.mode, a.parallelism = "stateless", 1
	c = e.push("counter: stateless upgrade", a.files())
	rs = e.wait("FlinkDeployment", a.name, "stateless upgrade", 4*time.Minute, stableAt(c))
	if got := restoreArg(e.jobManager(a.name)); got != "" || rs.JobID == job {
		t.Fatalf("stateless upgrade: want a new job without restore, got job %s restoring from %q", rs.JobID, got)
	}
	job = rs.JobID
	if first := e.firstCount(a.name, job); first >= before/2 {
		t.Fatalf("stateless upgrade kept state: counter %d before, new job starts at %d", before, first)
	} else {
		t.Logf("stateless upgrade: counter %d before, new job starts at %d", before, first)
	}

	// Removal with savepoint-on-deletion: the savepoint comes first, then
	// the cluster goes.
	a.conf["kubernetes.operator.job.savepoint-on-deletion"] = "true"
	c = e.push("counter: savepoint on deletion", a.files())
	rs = e.wait("FlinkDeployment", a.name, "savepoint-on-deletion reconciled", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LastReconciledCommit == c && r.Operation == ""
	})
	if rs.JobID != job {
		t.Fatalf("an operator setting restarted the job: %s -> %s", job, rs.JobID)
	}
	seen := map[string]bool{}
	for _, sp := range rs.Savepoints {
		seen[sp.Path] = true
	}
	e.push("counter: remove", map[string]string{"apps/counter/spec.yaml": "", "apps/counter/kustomization.yaml": ""})
	rs = e.wait("FlinkDeployment", a.name, "deleted", 3*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LifecycleState == "DELETED" && r.Operation == ""
	})
	if e.jobManager(a.name) != nil {
		t.Fatal("JobManager Deployment still exists after the spec left Git")
	}
	if len(rs.Savepoints) == 0 || seen[rs.Savepoints[0].Path] || !exists(rs.Savepoints[0].Path) {
		t.Fatalf("deletion: want a final savepoint on the status branch and on disk, got %+v", rs.Savepoints)
	}
	t.Logf("final savepoint %s", rs.Savepoints[0].Path)
}

// TestSessionJobsSurviveGitOutage runs a session cluster with two session
// jobs submitted from a local jar, takes the git server down (the daemon
// keeps running, the jobs keep running, nothing is deleted), brings it back,
// and upgrades one job with a savepoint while the other is left untouched.
func TestSessionJobsSurviveGitOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	ctx := context.Background()
	jar, err := flinktb.TestJobJar(ctx, flinktb.Version2)
	if err != nil {
		t.Fatal(err)
	}
	session := app{name: "session", session: true, slots: 4}
	e := newEnv(t, session.files(), nil)
	e.logsOnFailure()
	e.wait("FlinkDeployment", "session", "session cluster", 4*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.Operation == "" && r.LifecycleState == "STABLE" && r.JobManager == "READY"
	})
	e.push("two session jobs", merge(sessionJob("job-a", "session", jar, "savepoint", 1), sessionJob("job-b", "session", jar, "savepoint", 1)))
	a := e.wait("FlinkSessionJob", "job-a", "job-a running", 3*time.Minute, stableAt(""))
	b := e.wait("FlinkSessionJob", "job-b", "job-b running", 3*time.Minute, stableAt(""))
	countB := e.progress("session", b.JobID, 1)

	// At rest the status branch is not rewritten: passes that change
	// nothing a person reads make no commits.
	head := e.statusHead()
	passes := e.metric("flink_gitops_reconcile_total", `kind="FlinkSessionJob"`)
	e.waitFor("two passes over each session job", time.Minute, func() bool {
		return e.metric("flink_gitops_reconcile_total", `kind="FlinkSessionJob"`) >= passes+4
	})
	if now := e.statusHead(); now != head {
		_, _ = e.s.Work.Git(ctx, "fetch", "origin", stack.StatusBranch)
		out, _ := e.s.Work.Git(ctx, "log", "--format=%s", head+".."+now)
		t.Fatalf("the status branch moved while nothing changed:\n%s", out)
	}

	// Git goes away for a while.
	errs := e.metric("flink_gitops_git_polls_total", `result="error"`)
	passes = e.metric("flink_gitops_reconcile_total", `kind="FlinkSessionJob"`)
	if err := e.s.Git.Stop(); err != nil {
		t.Fatal(err)
	}
	e.waitFor("five failed git polls and two passes over each session job", 2*time.Minute, func() bool {
		return e.metric("flink_gitops_git_polls_total", `result="error"`) >= errs+5 &&
			e.metric("flink_gitops_reconcile_total", `kind="FlinkSessionJob"`) >= passes+4
	})
	for _, r := range []struct{ kind, name, job string }{{"FlinkDeployment", "session", ""}, {"FlinkSessionJob", "job-a", a.JobID}, {"FlinkSessionJob", "job-b", b.JobID}} {
		rec := e.record(r.kind, r.name)
		if rec == nil || rec.Operation != nil || rec.Common().LifecycleState != "STABLE" {
			t.Fatalf("git outage changed %s %s: %+v", r.kind, r.name, rec)
		}
		if r.job != "" && rec.Common().JobStatus.JobID != r.job {
			t.Fatalf("git outage restarted %s: %s -> %s", r.name, r.job, rec.Common().JobStatus.JobID)
		}
	}
	if e.jobManager("session") == nil {
		t.Fatal("git outage deleted the session cluster")
	}
	countA := e.progress("session", a.JobID, 100)
	countB = e.progress("session", b.JobID, countB+1)
	if err := e.s.Git.Restart(); err != nil {
		t.Fatal(err)
	}

	// Back online: a push upgrades job-a from a savepoint; job-b runs on.
	c := e.push("job-a: parallelism 2", sessionJob("job-a", "session", jar, "savepoint", 2))
	up := e.wait("FlinkSessionJob", "job-a", "job-a upgraded", 3*time.Minute, stableAt(c))
	if up.JobID == a.JobID || len(up.Savepoints) == 0 || up.Savepoints[0].Trigger != "UPGRADE" {
		t.Fatalf("session job upgrade not visible on the status branch: %+v", up)
	}
	e.continues("session job savepoint upgrade", countA, e.firstCount("session", up.JobID), 0)
	st, _, err := e.s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nb := st["FlinkSessionJob/"+e.ns+"/job-b"]
	if nb.JobID != b.JobID || nb.LastReconciledCommit != b.LastReconciledCommit || len(nb.Savepoints) != 0 {
		t.Fatalf("job-b was touched by job-a's upgrade: before %+v, after %+v", b, nb)
	}
	e.progress("session", b.JobID, countB+1)
}

// TestFlink120UpgradesSurviveDaemonKill runs the core on Flink 1.20: deploy,
// a savepoint upgrade during which the daemon is killed (SIGKILL) and
// started again — the upgrade completes with exactly one savepoint and the
// state continues — and a last-state upgrade.
func TestFlink120UpgradesSurviveDaemonKill(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	a := app{name: "counter", flink1: true, mode: "savepoint", parallelism: 1}
	e := newEnv(t, a.files(), nil)
	e.logsOnFailure()
	rs := e.wait("FlinkDeployment", a.name, "first deploy", 4*time.Minute, stableAt(""))
	job := rs.JobID
	before := e.progress(a.name, job, 100)
	dirs := len(e.savepointDirs())

	a.parallelism = 2
	c := e.push("counter: parallelism 2", a.files())
	// Kill as soon as the status ConfigMap shows the upgrade past its first
	// phase, ideally with the savepoint in flight (polled tightly: the
	// savepoint phases last well under a second).
	var phase lifecycle.Phase
	for deadline := time.Now().Add(2 * time.Minute); phase == ""; time.Sleep(20 * time.Millisecond) {
		if op := e.record(lifecycle.KindDeployment, a.name).Operation; op != nil && op.Kind == lifecycle.OpUpgrade && op.Phase != lifecycle.PhaseStopJob {
			phase = op.Phase
		} else if time.Now().After(deadline) || !e.s.DaemonRunning() {
			t.Fatal("the upgrade did not start within 2m")
		}
	}
	e.s.StopDaemon(true)
	t.Logf("daemon killed during the upgrade, phase %s", phase)
	if err := e.s.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	rs = e.wait("FlinkDeployment", a.name, "upgrade completed after the restart", 4*time.Minute, stableAt(c))
	if rs.JobID == job || countTrigger(rs, "UPGRADE") != 1 || len(e.savepointDirs()) != dirs+1 {
		t.Fatalf("want exactly one upgrade savepoint (status %+v, %d savepoint directories, %d before)", rs.Savepoints, len(e.savepointDirs()), dirs)
	}
	job = rs.JobID
	e.continues("savepoint upgrade across a daemon kill", before, e.firstCount(a.name, job), 0)

	before = e.progress(a.name, job, before+1)
	// A last-state upgrade restores the newest state: the restored job's
	// own checkpoint once it has one, else the savepoint it started from.
	// This scenario wants the checkpoint, so wait for one first (on a fast
	// machine the push can otherwise beat the first checkpoint).
	e.completedCheckpoint(a.name, job)
	a.mode, a.parallelism = "last-state", 1
	c = e.push("counter: last-state upgrade", a.files())
	rs = e.wait("FlinkDeployment", a.name, "last-state upgrade", 4*time.Minute, stableAt(c))
	if rs.JobID == job || !strings.Contains(rs.UpgradeSavepointPath, "/chk-") || restoreArg(e.jobManager(a.name)) != rs.UpgradeSavepointPath {
		t.Fatalf("last-state upgrade: want a new job restored from a checkpoint chk-N, got %+v", rs)
	}
	e.continues("last-state upgrade on Flink 1.20", before, e.firstCount(a.name, rs.JobID), 15)
}

// completedCheckpoint waits until the job has a completed, externalised
// checkpoint of its own (Flink's REST API), within a deadline.
func (e *env) completedCheckpoint(name, jobID string) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var cps struct {
			Latest struct {
				Completed *struct {
					ExternalPath string `json:"external_path"`
				} `json:"completed"`
			} `json:"latest"`
		}
		getJSON(e.t, e.restURL(name)+"/jobs/"+jobID+"/checkpoints", &cps)
		if c := cps.Latest.Completed; c != nil && strings.Contains(c.ExternalPath, "/chk-") {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s: no completed checkpoint within 2 min", jobID)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
