package lifecycle_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	gosync "sync"
	"testing"
	"time"

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
	// artifacts is the artifact policy of the reconciler and of the render
	// (bedArtifacts unless a test widens it).
	artifacts render.ArtifactPolicy
	// trace records the reconciler's operation log lines and the wall time
	// of every Reconcile call, for the overhead measurements.
	trace *trace
}

func newBed(t *testing.T) *bed {
	kc := kube.Shared(t)
	cs := kc.Client()
	b := &bed{t: t, ns: kc.Namespace(t), renderer: render.NewRenderer(), state: t.TempDir(), trace: &trace{}, artifacts: bedArtifacts}
	b.agent = nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	logw := io.Writer(io.Discard)
	if testing.Verbose() {
		logw = os.Stderr
	}
	log := slog.New(&traceHandler{Handler: slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}), tr: b.trace})
	// Reads of the daemon's own objects come from watches, as in the daemon.
	cache := lifecycle.NewCache(cs, log)
	cache.SetNamespaces([]string{b.ns})
	t.Cleanup(cache.Stop)
	b.rec = &lifecycle.Reconciler{
		Kube:  cs,
		Cache: cache,
		Store: &lifecycle.Store{Client: cs, Cache: cache},
		Flink: func(ns, name string) (lifecycle.Flink, error) {
			return flinkclient.New(b.agent.ProxyURL+"/"+ns+"/"+name+"-rest", flinkclient.WithTimeout(5*time.Second)), nil
		},
		Events: &lifecycle.Events{Client: cs, Log: log},
		Log:    log,
		Settings: func() lifecycle.Settings {
			return lifecycle.Settings{FastPoll: 200 * time.Millisecond, Resync: 2 * time.Second, OperationTimeout: 2 * time.Minute,
				Artifacts: b.artifacts}
		},
	}
	return b
}

// bedArtifacts is the artifact policy of the test bed: the test jars are
// local files in temporary and cache directories, so it opts in to file://
// anywhere.
var bedArtifacts = render.ArtifactPolicy{AllowedSchemes: []string{"https", "file"}, FileDirectory: "/"}

// render renders one resource file through kustomize, as the daemon would.
func (b *bed) render(file string) *lifecycle.Desired {
	b.t.Helper()
	all := b.renderAll(file)
	if len(all) != 1 {
		b.t.Fatalf("render: %d resources, want 1", len(all))
	}
	for _, d := range all {
		return d
	}
	return nil
}

// renderAll renders resource documents as one commit of one entry point
// (a session job is valid only next to its session cluster) and returns
// them by name.
func (b *bed) renderAll(docs ...string) map[string]*lifecycle.Desired {
	b.t.Helper()
	b.commit++
	res := b.renderDocs(docs...)
	if !res.OK() || len(res.Resources) != len(docs) {
		var sb strings.Builder
		_ = res.WriteText(&sb)
		b.t.Fatalf("render:\n%s", sb.String())
	}
	out := map[string]*lifecycle.Desired{}
	for _, r := range res.Resources {
		d := &lifecycle.Desired{Deployment: r.Deployment, SessionJob: r.SessionJob, Hash: r.Hash,
			Source: v1beta1.SourceRef{Commit: fmt.Sprintf("%040d", b.commit), EntryPoint: r.EntryPoint, Path: r.File}}
		if r.Deployment != nil {
			out[r.Deployment.Name] = d
		} else {
			out[r.SessionJob.Name] = d
		}
	}
	return out
}

// planOf renders documents as a commit would and returns the plan text
// (problems included) without reconciling anything.
func (b *bed) planOf(docs ...string) string {
	b.t.Helper()
	var sb strings.Builder
	_ = b.renderDocs(docs...).WriteText(&sb)
	return sb.String()
}

// renderDocs renders documents as one entry point, as the daemon would.
func (b *bed) renderDocs(docs ...string) *render.Result {
	b.t.Helper()
	src := render.MapSource{Files: map[string][]byte{
		"app/kustomization.yaml": []byte("resources: [resource.yaml]\n"),
		"app/resource.yaml":      []byte(strings.Join(docs, "\n---\n")),
	}}
	res, err := b.renderer.Render(context.Background(), src, render.Options{
		EntryPoints: []string{"app"}, DefaultNamespace: b.ns, AllowedNamespaces: []string{b.ns}, Artifacts: b.artifacts,
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// until reconciles until cond holds for the record.
func (b *bed) until(kind, name string, d *lifecycle.Desired, what string, timeout time.Duration, cond func(*lifecycle.Record) bool) *lifecycle.Record {
	b.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last *lifecycle.Record
	var lastErr error
	for time.Now().Before(deadline) {
		start := time.Now()
		res, err := b.rec.Reconcile(ctx, kind, b.ns, name, d)
		b.trace.pass(start, time.Since(start))
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

// firstProgress returns the first counter value a freshly started job
// reports: near 0 when it started empty, about where the old job stopped
// when it restored state.
func (b *bed) firstProgress(cluster, jobID string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		// Errors are expected while the job starts (no vertex metrics yet).
		n, err := flinktb.JobProgress(ctx, b.restURL(cluster), jobID)
		if err == nil {
			return n
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("job %s: no counter value: %v", jobID, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
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
    metrics.fetcher.update-interval: "1000"
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

// trace collects what the overhead measurement needs: the operation log
// lines (with their times) and the wall time of each Reconcile call.
type trace struct {
	mu     gosync.Mutex
	events []traceEvent
	passes []passTime
}

// traceEvent is one "operation started", "step" or "operation finished"
// log line.
type traceEvent struct {
	At       time.Time
	Msg      string
	Name     string
	Op       string
	From, To string
}

type passTime struct {
	Start time.Time
	Took  time.Duration
}

func (tr *trace) pass(start time.Time, took time.Duration) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.passes = append(tr.passes, passTime{start, took})
}

func (tr *trace) snapshot() ([]traceEvent, []passTime) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]traceEvent(nil), tr.events...), append([]passTime(nil), tr.passes...)
}

// traceHandler passes records on and keeps the operation ones.
type traceHandler struct {
	slog.Handler
	tr    *trace
	attrs []slog.Attr
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "operation started", "step", "operation finished":
		ev := traceEvent{At: r.Time, Msg: r.Message}
		set := func(a slog.Attr) bool {
			switch a.Key {
			case "name":
				ev.Name = a.Value.String()
			case "op":
				ev.Op = a.Value.String()
			case "from":
				ev.From = a.Value.String()
			case "to":
				ev.To = a.Value.String()
			case "phase":
				ev.To = a.Value.String()
			}
			return true
		}
		for _, a := range h.attrs {
			set(a)
		}
		r.Attrs(set)
		h.tr.mu.Lock()
		h.tr.events = append(h.tr.events, ev)
		h.tr.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithAttrs(as), tr: h.tr, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithGroup(name), tr: h.tr, attrs: h.attrs}
}

// waitsOn says what each phase's time is spent on: the daemon's own work,
// Flink (savepoint, job stop, JVM start and scheduling), or Kubernetes (the
// node agent removing a Deployment's processes).
var waitsOn = map[lifecycle.Phase]string{
	lifecycle.PhasePreflight: "daemon", lifecycle.PhaseStopJob: "daemon", lifecycle.PhaseTriggerSavepoint: "daemon", lifecycle.PhaseCancelJob: "daemon",
	lifecycle.PhaseDeleteCluster: "daemon", lifecycle.PhaseApply: "daemon",
	lifecycle.PhaseAwaitSavepoint: "flink", lifecycle.PhaseAwaitStopped: "flink", lifecycle.PhaseAwaitRunning: "flink",
	lifecycle.PhaseAwaitDeleted: "kube",
	lifecycle.PhaseRescale:      "daemon", lifecycle.PhaseAwaitRescaled: "flink",
}

// logOverhead breaks the last finished operation of resource name down
// into its phases (from the "step" log lines) and logs where the time went:
// phases that wait on Flink or Kubernetes, phases that are the daemon's own
// work, and how late the daemon noticed that the new job (newJobID, on
// clusterName) was running. Lines start with OVERHEAD
// so they can be collected from a -v run.
func (b *bed) logOverhead(label, name, clusterName, newJobID string) {
	b.t.Helper()
	events, passes := b.trace.snapshot()
	end := -1
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Name == name && events[i].Msg == "operation finished" {
			end = i
			break
		}
	}
	start := -1
	for i := end - 1; i >= 0; i-- {
		if events[i].Name == name && events[i].Msg == "operation started" {
			start = i
			break
		}
	}
	if start < 0 || end < 0 {
		b.t.Logf("OVERHEAD %s: no operation found in the log", label)
		return
	}
	var steps []traceEvent
	for _, e := range events[start : end+1] {
		if e.Name == name {
			steps = append(steps, e)
		}
	}
	total := steps[len(steps)-1].At.Sub(steps[0].At)
	by := map[string]time.Duration{}
	var sb strings.Builder
	for i := 0; i < len(steps)-1; i++ {
		ph := lifecycle.Phase(steps[i].To)
		dur := steps[i+1].At.Sub(steps[i].At)
		by[waitsOn[ph]] += dur
		fmt.Fprintf(&sb, " %s=%s(%s)", ph, dur.Round(time.Millisecond), waitsOn[ph])
	}
	// How late the daemon saw the job RUNNING, and how long the JobManager
	// took to start and submit the job.
	var detect, jvm, sched time.Duration
	if newJobID != "" {
		// GET /jobs/:id is cached for web.refresh-interval (3 s): it may
		// not show RUNNING yet when the daemon (reading the overview) did.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var job flinkclient.JobDetails
		var err error
		var running time.Time
		ok := false
		for ctx.Err() == nil {
			job, err = flinkclient.New(b.restURL(clusterName), flinkclient.WithTimeout(5*time.Second)).Job(ctx, newJobID)
			if running, ok = job.Timestamps[flinkclient.JobRunning]; err == nil && ok {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		cancel()
		if err != nil || !ok {
			b.t.Logf("OVERHEAD %s: no RUNNING time of job %s (%v)", label, newJobID, err)
		}
		if err == nil && ok {
			detect = steps[len(steps)-1].At.Sub(running)
			sched = running.Sub(job.StartTime)
			for i := len(steps) - 1; i >= 0; i-- {
				if lifecycle.Phase(steps[i].To) == lifecycle.PhaseAwaitRunning {
					jvm = job.StartTime.Sub(steps[i].At)
					break
				}
			}
		}
	}
	var busy, longest time.Duration
	n := 0
	for _, p := range passes {
		if p.Start.Add(p.Took).After(steps[0].At) && !p.Start.After(steps[len(steps)-1].At) {
			busy += p.Took
			longest = max(longest, p.Took)
			n++
		}
	}
	own := by["daemon"] + detect
	nsteps := len(steps) - 1
	b.t.Logf("OVERHEAD %s: total %s; phases%s", label, total.Round(time.Millisecond), sb.String())
	b.t.Logf("OVERHEAD %s: flink %s (of which JobManager start+submit %s, scheduling %s), kube %s; daemon: own phases %s + noticing RUNNING %s = %s over %d steps (%s/step); Reconcile wall time %s in %d passes (longest %s)",
		label, by["flink"].Round(time.Millisecond), jvm.Round(time.Millisecond), sched.Round(time.Millisecond), by["kube"].Round(time.Millisecond),
		by["daemon"].Round(time.Millisecond), detect.Round(time.Millisecond), own.Round(time.Millisecond), nsteps,
		(own / time.Duration(max(nsteps, 1))).Round(time.Millisecond), busy.Round(time.Millisecond), n, longest.Round(time.Millisecond))
}

// onFlinkVersions runs fn as a subtest on Flink 2.2 (make test) and 1.20
// (make matrix only: flinktb.MatrixOnly).
func onFlinkVersions(t *testing.T, fn func(t *testing.T, image, version string)) {
	for _, v := range []struct{ image, version string }{{"flink:2.2", "v2_2"}, {"flink:1.20", "v1_20"}} {
		t.Run(v.version, func(t *testing.T) {
			if v.version == "v1_20" {
				flinktb.MatrixOnly(t)
			}
			fn(t, v.image, v.version)
		})
	}
}
