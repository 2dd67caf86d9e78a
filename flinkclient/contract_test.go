package flinkclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/tests/capture"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// majorMinor turns "1.20.5" into "1.20", the name of the fixture directory.
func majorMinor(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

// TestContract runs every client call against real Flink session clusters:
// in make test on 1.18 (the oldest the test bed runs), 1.20, 2.2 and 2.3 (the
// newest); in make test-matrix on every version (flinktb.ContractVersions).
// With FLINK_CAPTURE=1 it also rewrites the fixtures under testdata/<version>/
// that the unit tests replay.
func TestContract(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	versions, err := flinktb.ContractVersions(flinktb.Version118, flinktb.Version1, flinktb.Version2, flinktb.Version23)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) { runContract(t, v) })
	}
}

// contract bundles what the steps of one version's run share.
type contract struct {
	t       *testing.T
	ctx     context.Context
	cluster *flinktb.Cluster
	c       *flinkclient.Client
	rec     *capture.Recorder
}

// save names the last exchange as a fixture when capturing.
func (k *contract) save(name string) {
	k.t.Helper()
	if k.rec == nil {
		return
	}
	if err := k.rec.Save(name); err != nil {
		k.t.Fatal(err)
	}
}

// eventually polls cond every 200ms until it returns true or the deadline passes.
func (k *contract) eventually(what string, timeout time.Duration, cond func() (bool, error)) {
	k.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) || k.ctx.Err() != nil {
			k.fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		select {
		case <-k.ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fatalf fails the test and points at the cluster's logs.
func (k *contract) fatalf(format string, args ...any) {
	k.t.Helper()
	k.t.Fatalf(format+"\n(flink logs in %s)", append(args, k.cluster.LogDir)...)
}

func (k *contract) must(err error, what string) {
	k.t.Helper()
	if err != nil {
		k.fatalf("%s: %v", what, err)
	}
}

func (k *contract) waitState(jobID string, want flinkclient.JobStatus, allTasksRunning bool) flinkclient.JobDetails {
	k.t.Helper()
	var d flinkclient.JobDetails
	k.eventually(fmt.Sprintf("job %s to be %s", jobID, want), 3*time.Minute, func() (bool, error) {
		var err error
		d, err = k.c.Job(k.ctx, jobID)
		if err != nil {
			return false, err
		}
		if d.State.GloballyTerminal() && d.State != want {
			k.fatalf("job %s ended %s while waiting for %s", jobID, d.State, want)
		}
		return d.State == want && (!allTasksRunning || d.AllTasksRunning()), nil
	})
	return d
}

// savepointDirs lists the savepoint directories Flink wrote under dir.
func savepointDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "savepoint-") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// localPath turns a file: URI Flink reports into a local path.
func localPath(t *testing.T, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "file" && u.Scheme != "") {
		t.Fatalf("savepoint location %q is not a local file URI", loc)
	}
	return filepath.Clean(u.Path)
}

func runContract(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	cluster := flinktb.StartSession(t, version)
	jar, err := flinktb.TestJobJar(ctx, version)
	if err != nil {
		t.Fatalf("build test job jar: %v", err)
	}

	hc := &http.Client{}
	var rec *capture.Recorder
	if os.Getenv("FLINK_CAPTURE") != "" {
		rec = capture.New(filepath.Join("testdata", majorMinor(version)), version)
		if u, err := url.Parse(cluster.RESTURL); err == nil {
			rec.PathPrefix = u.Path
		}
		rec.Replace(cluster.CheckpointDir, "/flink/checkpoints")
		rec.Replace(cluster.SavepointDir, "/flink/savepoints")
		rec.Replace(cluster.LogDir, "/flink/log")
		rec.Replace(cluster.Dir, "/flink")
		rec.Replace(filepath.Dir(tmp), "/tmp/test")
		if home, err := os.UserHomeDir(); err == nil && home != "/" {
			rec.Replace(home, "/home/flink")
		}
		hc.Transport = rec
	}
	k := &contract{t: t, ctx: ctx, cluster: cluster, rec: rec,
		c: flinkclient.New(cluster.RESTURL, flinkclient.WithHTTPClient(hc), flinkclient.WithTimeout(30*time.Second))}
	c := k.c

	// Cluster: config, version, overview, jobmanager config, taskmanagers.
	cfg, err := c.Config(ctx)
	k.must(err, "config")
	k.save("config")
	if cfg.FlinkVersion != version {
		t.Fatalf("flink-version %q, want %s", cfg.FlinkVersion, version)
	}
	v, err := c.Version(ctx)
	k.must(err, "version")
	if fmt.Sprintf("%d.%d", v.Major, v.Minor) != majorMinor(version) {
		t.Errorf("Version() = %+v, want %s", v, version)
	}
	ov, err := c.Overview(ctx)
	k.must(err, "overview")
	k.save("overview")
	if ov.FlinkVersion != cfg.FlinkVersion {
		t.Errorf("overview flink-version %q != config %q", ov.FlinkVersion, cfg.FlinkVersion)
	}
	jmc, err := c.JobManagerConfig(ctx)
	k.must(err, "jobmanager config")
	k.save("jobmanager_config")
	if jmc["rest.port"] == "" && jmc["rest.bind-port"] == "" && jmc["jobmanager.rpc.address"] == "" {
		t.Errorf("jobmanager config lacks rest/rpc keys: %v", jmc)
	}
	var tms []flinkclient.TaskManager
	// A TaskManager shows up before its first slot report; wait for the slots.
	k.eventually("a TaskManager with slots", 2*time.Minute, func() (bool, error) {
		tms, err = c.TaskManagers(ctx)
		return len(tms) > 0 && tms[0].SlotsNumber > 0, err
	})
	k.save("taskmanagers")
	// LastHeartbeat stays zero until the first heartbeat (every 10s by default).
	if tms[0].ID == "" || tms[0].SlotsNumber < 1 || !strings.Contains(tms[0].Path, "127.0.0.1") {
		t.Errorf("taskmanager incomplete: %+v", tms[0])
	}

	// Jar upload and run with a caller-chosen job id.
	jarID, err := c.UploadJar(ctx, jar)
	k.must(err, "upload jar")
	k.save("jar_upload")
	jars, err := c.ListJars(ctx)
	k.must(err, "list jars")
	k.save("jars_list")
	if !containsJar(jars, jarID, filepath.Base(jar)) {
		t.Errorf("ListJars = %+v, want %s named %s", jars, jarID, filepath.Base(jar))
	}
	jobArgs := []string{"--checkpoint-interval-ms", "1000", "--rate", "50"}
	jobID := flinkclient.NewJobID()
	got, err := c.RunJar(ctx, jarID, flinkclient.JarRunRequest{
		EntryClass: flinktb.TestJobClass, Args: jobArgs, Parallelism: 1, JobID: jobID,
	})
	k.must(err, "run jar")
	k.save("jar_run")
	if got != jobID {
		t.Fatalf("RunJar returned job %s, want the chosen %s", got, jobID)
	}
	// A retried submission with the same job id must not start a second job.
	_, err = c.RunJar(ctx, jarID, flinkclient.JarRunRequest{
		EntryClass: flinktb.TestJobClass, Args: jobArgs, Parallelism: 1, JobID: jobID,
	})
	k.save("error_duplicate_job")
	if !errors.Is(err, flinkclient.ErrConflict) {
		t.Errorf("second RunJar with job id %s: err = %v, want ErrConflict", jobID, err)
	}

	d := k.waitState(jobID, flinkclient.JobRunning, true)
	k.save("job_running")
	if d.ID != jobID || d.Name == "" || len(d.Vertices) == 0 || d.Timestamps[flinkclient.JobRunning].IsZero() {
		t.Errorf("job details incomplete: %+v", d)
	}
	jobs, err := c.Jobs(ctx)
	k.must(err, "list jobs")
	k.save("jobs_overview")
	if !containsJob(jobs, jobID, flinkclient.JobRunning) {
		t.Errorf("job list %+v lacks running %s", jobs, jobID)
	}
	_, err = c.Job(ctx, flinkclient.NewJobID())
	k.save("error_job_not_found")
	if !errors.Is(err, flinkclient.ErrNotFound) {
		t.Errorf("unknown job: err = %v, want ErrNotFound", err)
	}
	ex, err := c.Exceptions(ctx, jobID, 5)
	k.must(err, "exceptions of a healthy job")
	k.save("exceptions_empty")
	if len(ex.Entries) != 0 {
		t.Errorf("healthy job has exceptions: %+v", ex)
	}

	// Checkpoints: periodic, then one triggered with a chosen trigger id.
	var cps flinkclient.Checkpoints
	k.eventually("a completed checkpoint", 2*time.Minute, func() (bool, error) {
		cps, err = c.Checkpoints(ctx, jobID)
		return err == nil && cps.LatestCompleted != nil, err
	})
	k.save("checkpoints")
	if cps.LatestCompleted.ExternalPath == "" || cps.LatestCompleted.ID <= 0 || cps.Counts.Completed < 1 || cps.Restored != nil {
		t.Errorf("checkpoint statistics incomplete: %+v latest %+v", cps, cps.LatestCompleted)
	}
	cpTrigger := flinkclient.NewTriggerID()
	id, err := c.TriggerCheckpoint(ctx, jobID, cpTrigger, flinkclient.CheckpointFull)
	k.must(err, "trigger checkpoint")
	k.save("checkpoint_trigger")
	if id != cpTrigger {
		t.Errorf("TriggerCheckpoint returned %s, want %s", id, cpTrigger)
	}
	op, err := flinkclient.Await(ctx, 100*time.Millisecond, func(ctx context.Context) (flinkclient.Operation, error) {
		return c.CheckpointStatus(ctx, jobID, cpTrigger)
	})
	k.must(err, "await checkpoint")
	k.save("checkpoint_status_completed")
	if op.CheckpointID <= cps.LatestCompleted.ID {
		t.Errorf("triggered checkpoint id %d not after %d", op.CheckpointID, cps.LatestCompleted.ID)
	}

	// Savepoint retried with the same trigger id: exactly one savepoint.
	spDir := filepath.Join(cluster.SavepointDir, "retry-"+version)
	spTrigger := flinkclient.NewTriggerID()
	spOpts := flinkclient.SavepointOptions{TargetDir: spDir, TriggerID: spTrigger}
	id, err = c.TriggerSavepoint(ctx, jobID, spOpts)
	k.must(err, "trigger savepoint")
	k.save("savepoint_trigger")
	if id != spTrigger {
		t.Errorf("TriggerSavepoint returned %s, want %s", id, spTrigger)
	}
	if op, err := c.SavepointStatus(ctx, jobID, spTrigger); err == nil && op.Status == flinkclient.InProgress {
		k.save("savepoint_status_in_progress")
	}
	id, err = c.TriggerSavepoint(ctx, jobID, spOpts)
	k.must(err, "retry savepoint trigger")
	k.save("savepoint_trigger_retry")
	if id != spTrigger {
		t.Errorf("retried TriggerSavepoint returned %s, want %s", id, spTrigger)
	}
	loc, err := c.AwaitSavepoint(ctx, jobID, spTrigger, 100*time.Millisecond)
	k.must(err, "await savepoint")
	k.save("savepoint_status_completed")
	id, err = c.TriggerSavepoint(ctx, jobID, spOpts)
	k.must(err, "retry savepoint trigger after completion")
	if id != spTrigger {
		t.Errorf("TriggerSavepoint after completion returned %s, want %s", id, spTrigger)
	}
	loc2, err := c.AwaitSavepoint(ctx, jobID, spTrigger, 100*time.Millisecond)
	k.must(err, "await retried savepoint")
	if loc2 != loc {
		t.Errorf("retried trigger reports location %s, first %s", loc2, loc)
	}
	if dirs := savepointDirs(t, spDir); len(dirs) != 1 || dirs[0] != localPath(t, loc) {
		t.Errorf("savepoints on disk after three triggers with one id: %v, want exactly [%s]", dirs, loc)
	}
	k.eventually("the savepoint in the checkpoint statistics", time.Minute, func() (bool, error) {
		cps, err = c.Checkpoints(ctx, jobID)
		return err == nil && cps.LatestSavepoint != nil && cps.LatestSavepoint.ExternalPath == loc, err
	})
	k.save("checkpoints_with_savepoint")

	// The same calls through a proxy that serves the JobManager under a path
	// prefix, as the test bed's per-deployment proxy does.
	pc := flinkclient.New(prefixProxy(t, cluster.RESTURL, "/ns/app")+"/ns/app/", flinkclient.WithTimeout(30*time.Second))
	if cfg, err := pc.Config(ctx); err != nil || cfg.FlinkVersion != version {
		t.Errorf("config through proxy: %+v, %v", cfg, err)
	}
	if d, err := pc.Job(ctx, jobID); err != nil || d.ID != jobID {
		t.Errorf("job through proxy: %+v, %v", d, err)
	}
	if op, err := pc.SavepointStatus(ctx, jobID, spTrigger); err != nil || op.Location != loc {
		t.Errorf("savepoint status through proxy: %+v, %v", op, err)
	}
	if pjar, err := pc.UploadJar(ctx, jar); err != nil {
		t.Errorf("upload through proxy: %v", err)
	} else if err := pc.DeleteJar(ctx, pjar); err != nil {
		t.Errorf("delete jar through proxy: %v", err)
	}

	// A trigger id is one operation's key whatever the operation: a stop that
	// reuses the savepoint's id is acknowledged and does nothing.
	id, err = c.StopWithSavepoint(ctx, jobID, flinkclient.StopOptions{TargetDir: spDir, TriggerID: spTrigger})
	if err != nil || id != spTrigger {
		t.Errorf("stop with a used trigger id: %s, %v; want the id acknowledged", id, err)
	}
	if d, err := c.Job(ctx, jobID); err != nil || d.State != flinkclient.JobRunning {
		t.Errorf("job after a stop with a used trigger id: %s, %v; want still RUNNING", d.State, err)
	}

	// Operation errors: unknown trigger, a failing savepoint, a bad request.
	_, err = c.SavepointStatus(ctx, jobID, flinkclient.NewTriggerID())
	k.save("error_unknown_trigger")
	if !errors.Is(err, flinkclient.ErrNotFound) {
		t.Errorf("unknown trigger: err = %v, want ErrNotFound", err)
	}
	notADir := filepath.Join(tmp, "file")
	k.must(os.WriteFile(notADir, nil, 0o644), "create file")
	failTrigger := flinkclient.NewTriggerID()
	_, err = c.TriggerSavepoint(ctx, jobID, flinkclient.SavepointOptions{TargetDir: filepath.Join(notADir, "sp"), TriggerID: failTrigger})
	k.must(err, "trigger savepoint into a file")
	op, err = flinkclient.Await(ctx, 100*time.Millisecond, func(ctx context.Context) (flinkclient.Operation, error) {
		return c.SavepointStatus(ctx, jobID, failTrigger)
	})
	k.save("savepoint_status_failed")
	var fe *flinkclient.Error
	if !errors.Is(err, flinkclient.ErrOperationFailed) || !errors.As(err, &fe) || fe.Message == "" ||
		strings.Contains(fe.Message, "\tat ") || strings.Count(fe.Message, "\n") > 2 {
		t.Errorf("savepoint into a file: err = %v, want ErrOperationFailed with a readable message", err)
	} else {
		t.Logf("failed savepoint reads: %v", err)
	}
	_, err = c.TriggerSavepoint(ctx, jobID, flinkclient.SavepointOptions{FormatType: "BOGUS"})
	k.save("error_bad_request")
	if !errors.Is(err, flinkclient.ErrBadRequest) {
		t.Errorf("bogus format type: err = %v, want ErrBadRequest", err)
	}
	k.waitState(jobID, flinkclient.JobRunning, true)

	// Stop with savepoint (retried), then restore from it.
	var before int64
	k.eventually("the counter to make progress", 2*time.Minute, func() (bool, error) {
		before, err = flinktb.JobProgress(ctx, cluster.RESTURL, jobID)
		return before >= 50, err
	})
	stopTrigger := flinkclient.NewTriggerID()
	stopStart := time.Now()
	stopOpts := flinkclient.StopOptions{TargetDir: cluster.SavepointDir, TriggerID: stopTrigger, Drain: false}
	id, err = c.StopWithSavepoint(ctx, jobID, stopOpts)
	k.must(err, "stop with savepoint")
	k.save("stop_trigger")
	if id != stopTrigger {
		t.Errorf("StopWithSavepoint returned %s, want %s", id, stopTrigger)
	}
	id, err = c.StopWithSavepoint(ctx, jobID, stopOpts)
	k.save("stop_trigger_retry")
	if err != nil || id != stopTrigger {
		t.Errorf("retried StopWithSavepoint: %s, %v; want %s", id, err, stopTrigger)
	}
	stopLoc, err := c.AwaitSavepoint(ctx, jobID, stopTrigger, 100*time.Millisecond)
	k.must(err, "await stop-with-savepoint")
	k.save("stop_status_completed")
	d = k.waitState(jobID, flinkclient.JobFinished, false)
	t.Logf("timing: stop-with-savepoint to FINISHED took %s", time.Since(stopStart).Round(time.Millisecond))
	k.save("job_finished")
	// Stop of a job that is no longer running: accepted, then failed with
	// "job not found" (what lifecycle's fallback to last-state keys on).
	goneTrigger := flinkclient.NewTriggerID()
	_, err = c.StopWithSavepoint(ctx, jobID, flinkclient.StopOptions{TargetDir: cluster.SavepointDir, TriggerID: goneTrigger})
	k.must(err, "stop a finished job")
	op, err = flinkclient.Await(ctx, 100*time.Millisecond, func(ctx context.Context) (flinkclient.Operation, error) {
		return c.SavepointStatus(ctx, jobID, goneTrigger)
	})
	k.save("stop_status_job_not_running")
	if !errors.Is(err, flinkclient.ErrNotFound) || op.Location != "" {
		t.Errorf("stop of a finished job: %+v, %v; want a failure matching ErrNotFound", op, err)
	}
	if d.EndTime.IsZero() {
		t.Errorf("finished job has no end time: %+v", d)
	}
	err = c.Cancel(ctx, jobID)
	k.save("error_cancel_terminal")
	if !errors.Is(err, flinkclient.ErrConflict) {
		t.Errorf("cancel of a finished job: err = %v, want ErrConflict", err)
	}

	restored := flinkclient.NewJobID()
	restoreStart := time.Now()
	_, err = c.RunJar(ctx, jarID, flinkclient.JarRunRequest{
		EntryClass: flinktb.TestJobClass, Args: jobArgs, Parallelism: 1, JobID: restored,
		SavepointPath: stopLoc, ClaimMode: flinkclient.ClaimNoClaim,
	})
	k.must(err, "run jar from savepoint")
	k.save("jar_run_restore")
	k.waitState(restored, flinkclient.JobRunning, true)
	t.Logf("timing: jar run from the savepoint to all tasks RUNNING took %s", time.Since(restoreStart).Round(time.Millisecond))
	cps, err = c.Checkpoints(ctx, restored)
	k.must(err, "checkpoints of restored job")
	k.save("checkpoints_restored")
	if cps.Restored == nil || cps.Restored.ExternalPath != stopLoc || !cps.Restored.IsSavepoint {
		t.Errorf("restored = %+v, want savepoint %s", cps.Restored, stopLoc)
	}
	var after int64
	k.eventually("the restored counter to report", 2*time.Minute, func() (bool, error) {
		after, err = flinktb.JobProgress(ctx, cluster.RESTURL, restored)
		return after > 0, err
	})
	if after < before {
		t.Errorf("restored counter at %d, below %d before the stop: state was not restored", after, before)
	}

	// Cancel.
	k.must(c.Cancel(ctx, restored), "cancel")
	k.save("cancel")
	k.waitState(restored, flinkclient.JobCanceled, false)
	k.save("job_canceled")

	// Disposal of the retried savepoint, then of a path that does not exist.
	dTrigger, err := c.DisposeSavepoint(ctx, loc)
	k.must(err, "dispose savepoint")
	k.save("disposal_trigger")
	_, err = flinkclient.Await(ctx, 100*time.Millisecond, func(ctx context.Context) (flinkclient.Operation, error) {
		return c.DisposalStatus(ctx, dTrigger)
	})
	k.must(err, "await disposal")
	k.save("disposal_status_completed")
	if _, err := os.Stat(localPath(t, loc)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disposed savepoint %s still exists: %v", loc, err)
	}
	dTrigger, err = c.DisposeSavepoint(ctx, loc)
	k.must(err, "dispose missing savepoint")
	_, err = flinkclient.Await(ctx, 100*time.Millisecond, func(ctx context.Context) (flinkclient.Operation, error) {
		return c.DisposalStatus(ctx, dTrigger)
	})
	k.save("disposal_status_missing")
	t.Logf("disposing a missing savepoint: %v", err)
	if !errors.Is(err, flinkclient.ErrNotFound) {
		t.Errorf("disposing a missing savepoint: err = %v, want ErrNotFound", err)
	}

	// Exception history of a job whose counter fails on every record batch:
	// its progress file lives under a regular file, so writing it fails.
	failing := flinkclient.NewJobID()
	_, err = c.RunJar(ctx, jarID, flinkclient.JarRunRequest{
		EntryClass: flinktb.TestJobClass, Parallelism: 1, JobID: failing,
		Args: []string{"--checkpoint-interval-ms", "1000", "--progress-file", filepath.Join(notADir, "progress")},
	})
	k.must(err, "run failing job")
	k.eventually("an exception in the history", 2*time.Minute, func() (bool, error) {
		ex, err = c.Exceptions(ctx, failing, 5)
		return err == nil && len(ex.Entries) > 0, err
	})
	k.save("exceptions")
	e0 := ex.Entries[0]
	if e0.Name == "" || e0.Message == "" || strings.Contains(e0.Message, "\tat ") || e0.Time.IsZero() || e0.Stacktrace == "" {
		t.Errorf("exception entry incomplete: %+v", e0)
	} else {
		t.Logf("exception reads: %s", e0.Message)
	}
	k.must(c.Cancel(ctx, failing), "cancel failing job")
	k.waitState(failing, flinkclient.JobCanceled, false)

	k.must(c.DeleteJar(ctx, jarID), "delete jar")
	k.save("jar_delete")
}

func containsJar(jars []flinkclient.JarFile, id, name string) bool {
	for _, j := range jars {
		if j.ID == id && j.Name == name && !j.Uploaded.IsZero() {
			return true
		}
	}
	return false
}

func containsJob(jobs []flinkclient.JobSummary, id string, state flinkclient.JobStatus) bool {
	for _, j := range jobs {
		if j.ID == id && j.State == state {
			return true
		}
	}
	return false
}

// prefixProxy serves target under prefix on a loopback port and returns the
// proxy's base URL (without the prefix). Requests outside prefix get 404.
func prefixProxy(t *testing.T, target, prefix string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.StripPrefix(prefix, rp))
	t.Cleanup(srv.Close)
	return srv.URL
}
