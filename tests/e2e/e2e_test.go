// Package e2e drives the real flink-gitops binary the way a user does: it
// pushes specs to a git server and reads the status branch, while the
// daemon deploys real Flink clusters through a real kube-apiserver.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "flink-gitops-e2e-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "flink-gitops")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/flink-gitops")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build flink-gitops:", err)
			os.Exit(2)
		}
	}
	os.Exit(kube.Main(m))
}

// env is one test's stack: shared control plane, own namespace, own git
// server, node agent and daemon.
type env struct {
	t  *testing.T
	s  *stack.Stack
	ns string
}

func newEnv(t *testing.T, files map[string]string, extra map[string]any) *env {
	kc := kube.Shared(t)
	ns := kc.Namespace(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(seed, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seed, p), []byte(strings.ReplaceAll(c, "NAMESPACE", ns)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{
		Dir: filepath.Join(dir, "stack"), Binary: binary, Seed: seed, Kube: kc,
		EntryPoints: []string{"apps/*"}, Namespaces: []string{ns}, ExtraConfig: extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s, ns: ns}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("daemon log %s:\n%s", s.DaemonLog, tail(s.DaemonLog, 60))
		}
	})
	if err := s.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	return e
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// push commits files (content "" removes the path) and returns the commit.
func (e *env) push(msg string, files map[string]string) string {
	e.t.Helper()
	ctx := context.Background()
	for p, c := range files {
		if c == "" {
			if err := e.s.Work.Remove(p); err != nil {
				e.t.Fatal(err)
			}
			continue
		}
		if err := e.s.Work.WriteFile(p, strings.ReplaceAll(c, "NAMESPACE", e.ns)); err != nil {
			e.t.Fatal(err)
		}
	}
	commit, err := e.s.Work.Commit(ctx, msg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.Work.Push(ctx); err != nil {
		e.t.Fatal(err)
	}
	return commit
}

// wait polls the status branch until cond holds for the resource.
func (e *env) wait(kind, name, what string, timeout time.Duration, cond func(lifecycle.ResourceStatus) bool) lifecycle.ResourceStatus {
	e.t.Helper()
	key := kind + "/" + e.ns + "/" + name
	deadline := time.Now().Add(timeout)
	var last lifecycle.ResourceStatus
	var lastErr error
	for time.Now().Before(deadline) {
		st, _, err := e.s.Status(context.Background())
		lastErr = err
		if err == nil {
			if rs, ok := st[key]; ok {
				last = rs
				if cond(rs) {
					return rs
				}
			}
		}
		if !e.s.DaemonRunning() {
			e.t.Fatalf("daemon exited while waiting for %s", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting for %s on the status branch; last error %v; last status %+v", timeout, what, lastErr, last)
	return last
}

func stableAt(commit string) func(lifecycle.ResourceStatus) bool {
	return func(rs lifecycle.ResourceStatus) bool {
		return rs.Operation == "" && rs.LifecycleState == "STABLE" && rs.JobState == "RUNNING" && (commit == "" || rs.LastReconciledCommit == commit)
	}
}

func (e *env) progress(name, jobID string, atLeast int64) int64 {
	e.t.Helper()
	// Generous: on a loaded machine (the suite runs two packages of Flink
	// JVMs side by side on two cores) a job can take minutes to count on.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := flinktb.WaitProgress(ctx, e.s.Agent.ProxyURL+"/"+e.ns+"/"+name+"-rest", jobID, atLeast)
	if err != nil {
		e.t.Fatalf("job %s counter did not reach %d: %v", jobID, atLeast, err)
	}
	return n
}

const kustomization = "resources: [flinkdeployment.yaml]\n"

func appSpec(name, mode string, parallelism int, extraJob string) string {
	return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: %s
  namespace: NAMESPACE
spec:
  image: flink:2.2
  flinkVersion: v2_2
  mode: standalone
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
  jobManager:
    resource: {memory: 1024m, cpu: 0.5}
  taskManager:
    resource: {memory: 1280m, cpu: 0.5}
  job:
    jarURI: local:///opt/flink/usrlib/testjob.jar
    entryClass: %s
    args: ["--rate", "40", "--checkpoint-interval-ms", "1000"]
    parallelism: %d
    upgradeMode: %s
%s`, name, flinktb.TestJobClass, parallelism, mode, extraJob)
}

// TestDeployUpgradeBadSpecFixDelete is the core user story: push a spec,
// change it (savepoint upgrade, state continues), push a broken spec (clear
// error, nothing applied), fix it, and remove it from Git.
func TestDeployUpgradeBadSpecFixDelete(t *testing.T) {
	e := newEnv(t, map[string]string{
		"apps/counter/kustomization.yaml":   kustomization,
		"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 1, ""),
	}, nil)
	rs := e.wait("FlinkDeployment", "counter", "first deploy", 4*time.Minute, stableAt(""))
	job1 := rs.JobID
	before := e.progress("counter", job1, 30)

	c2 := e.push("counter: parallelism 2", map[string]string{"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 2, "")})
	rs = e.wait("FlinkDeployment", "counter", "savepoint upgrade", 4*time.Minute, stableAt(c2))
	if rs.JobID == job1 || len(rs.Savepoints) == 0 || rs.Savepoints[0].Trigger != "UPGRADE" || rs.UpgradeSavepointPath != rs.Savepoints[0].Path {
		t.Fatalf("upgrade not visible on the status branch: %+v", rs)
	}
	// Listed as the operator lists the snapshot resource it creates for an
	// upgrade savepoint (kubernetes.operator.snapshot.resource.enabled).
	if len(rs.Snapshots) == 0 || rs.Snapshots[0].Trigger != "UPGRADE" || rs.Snapshots[0].Path != rs.Savepoints[0].Path ||
		!strings.HasPrefix(rs.Snapshots[0].Name, "counter-savepoint-upgrade-") {
		t.Fatalf("upgrade savepoint not listed as a snapshot: %+v", rs.Snapshots)
	}
	after := e.progress("counter", rs.JobID, before+1)
	t.Logf("upgraded %s -> %s via %s; counter %d -> %d", job1, rs.JobID, rs.Savepoints[0].Path, before, after)

	bad := e.push("counter: broken", map[string]string{"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", -1, "")})
	broken := e.wait("FlinkDeployment", "counter", "validation problem on the status branch", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return len(r.Problems) > 0
	})
	_ = bad
	if !strings.Contains(strings.Join(broken.Problems, "\n"), "parallelism") || broken.JobID != rs.JobID || broken.LastReconciledCommit != c2 {
		t.Fatalf("bad spec: want a parallelism problem and the old job untouched, got %+v", broken)
	}

	fixed := e.push("counter: fixed", map[string]string{"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 2, "    allowNonRestoredState: true\n")})
	rs = e.wait("FlinkDeployment", "counter", "fixed spec reconciled", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return len(r.Problems) == 0 && r.LastReconciledCommit == fixed && r.Operation == "" && r.LifecycleState == "STABLE"
	})
	if rs.JobID != broken.JobID {
		t.Fatalf("an ignorable change (allowNonRestoredState) restarted the job: %s -> %s", broken.JobID, rs.JobID)
	}

	e.push("counter: remove", map[string]string{"apps/counter/flinkdeployment.yaml": "", "apps/counter/kustomization.yaml": ""})
	e.wait("FlinkDeployment", "counter", "deleted", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LifecycleState == "DELETED" && r.Operation == ""
	})
	if _, err := e.s.Kube.Client().AppsV1().Deployments(e.ns).Get(context.Background(), "counter", metav1.GetOptions{}); err == nil {
		t.Fatal("JobManager Deployment still exists after the spec left Git")
	}
}
