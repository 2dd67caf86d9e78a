package flinksim

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
)

const jobA = "0123456789abcdef0123456789abcdef"

// TestRouting drives the simulator with the daemon's own REST client: every
// call the reconciler makes decodes, clusters are kept apart by their path
// prefix, and the counters count.
func TestRouting(t *testing.T) {
	t.Parallel()
	sim := New()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	ctx := context.Background()
	a := flinkclient.New(srv.URL + "/ns-a/app")
	b := flinkclient.New(srv.URL + "/ns-b/app") // same name, other namespace

	if _, err := a.Overview(ctx); !errors.Is(err, flinkclient.ErrNotReachable) {
		t.Fatalf("overview of a cluster not started: want not reachable (503), got %v", err)
	}
	sim.Start("ns-a", "app", jobA)
	sim.Start("ns-b", "app", "")
	if sim.Running() != 2 {
		t.Fatalf("Running() = %d, want 2", sim.Running())
	}

	ov, err := a.Overview(ctx)
	if err != nil || ov.JobsRunning != 1 || ov.FlinkVersion != Version {
		t.Fatalf("overview: %+v, %v", ov, err)
	}
	if ov, err := b.Overview(ctx); err != nil || ov.JobsRunning != 0 {
		t.Fatalf("overview of the other cluster: %+v, %v", ov, err)
	}
	if _, err := a.Config(ctx); err != nil {
		t.Fatalf("config: %v", err)
	}
	if _, err := a.JobManagerConfig(ctx); err != nil {
		t.Fatalf("jobmanager config: %v", err)
	}
	if tms, err := a.TaskManagers(ctx); err != nil || len(tms) != 1 {
		t.Fatalf("taskmanagers: %+v, %v", tms, err)
	}
	jobs, err := a.Jobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].ID != jobA || jobs[0].State != flinkclient.JobRunning {
		t.Fatalf("jobs: %+v, %v", jobs, err)
	}
	j, err := a.Job(ctx, jobA)
	if err != nil || j.State != flinkclient.JobRunning || j.StartTime.IsZero() {
		t.Fatalf("job: %+v, %v", j, err)
	}
	if _, err := b.Job(ctx, jobA); !errors.Is(err, flinkclient.ErrNotFound) {
		t.Fatalf("job on the other cluster: want not found, got %v", err)
	}
	if cps, err := a.Checkpoints(ctx, jobA); err != nil || cps.LatestCompleted != nil {
		t.Fatalf("checkpoints: %+v, %v", cps, err)
	}
	if _, err := a.Exceptions(ctx, jobA, 4); err != nil {
		t.Fatalf("exceptions: %v", err)
	}
	if _, err := a.ResourceRequirements(ctx, jobA); err != nil {
		t.Fatalf("resource requirements: %v", err)
	}

	trig := flinkclient.NewTriggerID()
	if id, err := a.TriggerSavepoint(ctx, jobA, flinkclient.SavepointOptions{TriggerID: trig}); err != nil || id != trig {
		t.Fatalf("trigger savepoint: %q, %v", id, err)
	}
	op, err := a.SavepointStatus(ctx, jobA, trig)
	if err != nil || op.Status != flinkclient.Completed || !strings.HasPrefix(op.Location, "file:/simulated/") {
		t.Fatalf("savepoint status: %+v, %v", op, err)
	}
	if _, err := a.SavepointStatus(ctx, jobA, flinkclient.NewTriggerID()); !errors.Is(err, flinkclient.ErrNotFound) {
		t.Fatalf("unknown trigger: want not found, got %v", err)
	}
	if _, err := a.DisposeSavepoint(ctx, op.Location); err != nil {
		t.Fatalf("dispose: %v", err)
	}

	// Jars: upload, run a job with a chosen id, list, delete.
	jar, err := a.UploadJarFrom(ctx, "job.jar", strings.NewReader("PK"))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	jobB := flinkclient.NewJobID()
	if id, err := a.RunJar(ctx, jar, flinkclient.JarRunRequest{JobID: jobB}); err != nil || id != jobB {
		t.Fatalf("run jar: %q, %v", id, err)
	}
	if jars, err := a.ListJars(ctx); err != nil || len(jars) != 1 {
		t.Fatalf("list jars: %+v, %v", jars, err)
	}
	if err := a.DeleteJar(ctx, jar); err != nil {
		t.Fatalf("delete jar: %v", err)
	}

	// Stop-with-savepoint finishes the job; cancel cancels it; a second
	// cancel conflicts, as in Flink.
	if _, err := a.StopWithSavepoint(ctx, jobA, flinkclient.StopOptions{TriggerID: flinkclient.NewTriggerID()}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s := sim.JobState("ns-a", "app", jobA); s != "FINISHED" {
		t.Fatalf("after stop: job %s, want FINISHED", s)
	}
	if err := a.Cancel(ctx, jobB); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if s := sim.JobState("ns-a", "app", jobB); s != "CANCELED" {
		t.Fatalf("after cancel: job %s, want CANCELED", s)
	}
	if err := a.Cancel(ctx, jobB); err == nil {
		t.Fatal("cancel of a cancelled job: want an error")
	}

	// A stopped JobManager forgets; a restart starts the new job only.
	sim.Stop("ns-a", "app")
	if _, err := a.Job(ctx, jobA); !errors.Is(err, flinkclient.ErrNotReachable) {
		t.Fatalf("job of a stopped cluster: want not reachable (503), got %v", err)
	}
	sim.Start("ns-a", "app", jobB)
	if _, err := a.Job(ctx, jobA); !errors.Is(err, flinkclient.ErrNotFound) {
		t.Fatalf("old job after restart: want not found, got %v", err)
	}

	routes := sim.Routes()
	var sum int64
	for _, n := range routes {
		sum += n
	}
	if sum != sim.Calls() || routes["GET /jobs/:id"] != 4 || routes["GET /overview"] != 3 || routes["POST /jobs/:id/savepoints"] != 1 {
		t.Fatalf("calls %d, routes %v", sim.Calls(), routes)
	}
}

func TestPattern(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"overview":                       "/overview",
		"jobs/overview":                  "/jobs/overview",
		"jobs/abc":                       "/jobs/:id",
		"jobs/abc/savepoints/def":        "/jobs/:id/savepoints/:trigger",
		"jars/upload":                    "/jars/upload",
		"jars/x.jar/run":                 "/jars/:id/run",
		"savepoint-disposal/abc":         "/savepoint-disposal/:trigger",
		"jobs/abc/resource-requirements": "/jobs/:id/resource-requirements",
		"jobmanager/config":              "/jobmanager/config",
	} {
		if got := pattern(strings.Split(in, "/")); got != want {
			t.Errorf("pattern(%q) = %q, want %q", in, got, want)
		}
	}
}
