package lifecycle_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

// bed is a real apiserver, a node agent running Flink JVMs, and a
// reconciler pointed at them, in a namespace of its own.
type bed struct {
	t        *testing.T
	ns       string
	agent    *nodeagent.Handle
	rec      *lifecycle.Reconciler
	renderer *render.Renderer
	state    string // checkpoint and savepoint root
	commit   int
}

func newBed(t *testing.T) *bed {
	kc := kube.Shared(t)
	cs := kc.Client()
	b := &bed{t: t, ns: kc.Namespace(t), renderer: render.NewRenderer(), state: t.TempDir()}
	b.agent = nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	logw := io.Writer(io.Discard)
	if testing.Verbose() {
		logw = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.rec = &lifecycle.Reconciler{
		Kube:  cs,
		Store: &lifecycle.Store{Client: cs},
		Flink: func(ns, name string) (lifecycle.Flink, error) {
			return flinkclient.New(b.agent.ProxyURL+"/"+ns+"/"+name+"-rest", flinkclient.WithTimeout(5*time.Second)), nil
		},
		Events: &lifecycle.Events{Client: cs, Log: log},
		Log:    log,
		Settings: func() lifecycle.Settings {
			return lifecycle.Settings{FastPoll: 200 * time.Millisecond, Resync: 2 * time.Second, OperationTimeout: 2 * time.Minute}
		},
	}
	return b
}

// render renders one resource file through kustomize, as the daemon would.
func (b *bed) render(file string) *lifecycle.Desired {
	b.t.Helper()
	b.commit++
	src := render.MapSource{Files: map[string][]byte{
		"app/kustomization.yaml": []byte("resources: [resource.yaml]\n"),
		"app/resource.yaml":      []byte(file),
	}}
	res, err := b.renderer.Render(context.Background(), src, render.Options{
		EntryPoints: []string{"app"}, DefaultNamespace: b.ns, AllowedNamespaces: []string{b.ns},
	})
	if err != nil {
		b.t.Fatal(err)
	}
	if !res.OK() || len(res.Resources) != 1 {
		var sb strings.Builder
		_ = res.WriteText(&sb)
		b.t.Fatalf("render:\n%s", sb.String())
	}
	r := res.Resources[0]
	return &lifecycle.Desired{Deployment: r.Deployment, SessionJob: r.SessionJob, Hash: r.Hash,
		Source: v1beta1.SourceRef{Commit: fmt.Sprintf("%040d", b.commit), EntryPoint: r.EntryPoint, Path: r.File}}
}

// until reconciles until cond holds for the record.
func (b *bed) until(kind, name string, d *lifecycle.Desired, what string, timeout time.Duration, cond func(*lifecycle.Record) bool) *lifecycle.Record {
	b.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last *lifecycle.Record
	var lastErr error
	for time.Now().Before(deadline) {
		res, err := b.rec.Reconcile(ctx, kind, b.ns, name, d)
		lastErr = err
		if err == nil {
			last = res.Record
			if last != nil && cond(last) {
				return last
			}
		}
		wait := res.RequeueAfter
		if wait <= 0 || wait > 500*time.Millisecond {
			wait = 500 * time.Millisecond
		}
		time.Sleep(wait)
	}
	b.t.Fatalf("timed out after %s waiting for %s; last error %v; record:\n%s", timeout, what, lastErr, dump(last))
	return nil
}

func dump(r *lifecycle.Record) string {
	if r == nil {
		return "<nil>"
	}
	c := r.Common()
	s := fmt.Sprintf("lifecycle=%s job=%s/%s error=%q", c.LifecycleState, c.JobStatus.JobID, c.JobStatus.State, c.Error)
	if r.Deployment != nil {
		s += fmt.Sprintf(" jm=%s", r.Deployment.JobManagerDeploymentStatus)
	}
	if op := r.Operation; op != nil {
		s += fmt.Sprintf(" op=%s/%s attempts=%d msg=%q", op.Kind, op.Phase, op.Attempts, op.Message)
	}
	return s
}

func (b *bed) restURL(name string) string {
	return b.agent.ProxyURL + "/" + b.ns + "/" + name + "-rest"
}

// progress waits until the job's counter reaches atLeast and returns it.
func (b *bed) progress(name, jobID string, atLeast int64) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := flinktb.WaitProgress(ctx, b.restURL(name), jobID, atLeast)
	if err != nil {
		b.t.Fatalf("job %s: counter did not reach %d: %v", jobID, atLeast, err)
	}
	return n
}

func stable(r *lifecycle.Record) bool {
	c := r.Common()
	return r.Operation == nil && c.LifecycleState == v1beta1.LifecycleStable && c.JobStatus.State == v1beta1.JobRunning
}

// appSpec is an application cluster running the test job.
func (b *bed) appSpec(name, image, version, mode, extra string, parallelism int) string {
	cp, sp := "execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"
	if strings.HasPrefix(image, "flink:1.") {
		cp, sp = "state.checkpoints.dir", "state.savepoints.dir"
	}
	return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: %s
spec:
  image: %s
  flinkVersion: %s
  mode: standalone
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    %s: file://%s/checkpoints
    %s: file://%s/savepoints
%s
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
`, name, image, version, cp, b.state, sp, b.state, extra, flinktb.TestJobClass, parallelism, mode)
}

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
