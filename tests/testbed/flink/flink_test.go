package flinktb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jobArgs run the test job with two keys (so both keys' counts stay within a
// few of each other) and frequent checkpoints.
var jobArgs = []string{"--keys", "2", "--checkpoint-interval-ms", "1000"}

// minBeforeSavepoint is how far the counter must be before the job is stopped
// with a savepoint, so that a restored job (continuing from there) and a fresh
// one (starting near 0) are easy to tell apart.
const minBeforeSavepoint = 100

func TestFlink(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			t.Run("session", func(t *testing.T) { testSession(t, v) })
			t.Run("application", func(t *testing.T) { testApplication(t, v) })
		})
	}
}

func testSession(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := StartSession(t, version)
	logStartup(t, c)

	jar, err := TestJobJar(ctx, version)
	if err != nil {
		t.Fatal(err)
	}
	jarID := uploadJar(ctx, t, c.RESTURL, jar)
	req := runRequest{EntryClass: TestJobClass, Parallelism: 2, ProgramArgsList: jobArgs}

	// The counter grows.
	job1 := runJar(ctx, t, c.RESTURL, jarID, req)
	early := progress(ctx, t, c, job1, 5)
	logRSS(t, c)

	// A savepoint without cancelling and without a target directory lands in
	// the configured savepoint directory, and the job keeps running.
	trig := triggerSavepoint(ctx, t, c.RESTURL, job1, "", false)
	sp1 := waitSavepoint(ctx, t, c.RESTURL, job1, trig)
	assertDir(t, sp1)
	if !strings.HasPrefix(strings.TrimPrefix(sp1, "file:"), c.SavepointDir) {
		t.Fatalf("savepoint %s is not under the configured dir %s", sp1, c.SavepointDir)
	}
	if st := jobState(ctx, t, c.RESTURL, job1); st != "RUNNING" {
		t.Fatalf("job after savepoint: state %s, want RUNNING", st)
	}

	// Stop with a savepoint once the counter is well above where a fresh job starts.
	before := progress(ctx, t, c, job1, max(minBeforeSavepoint, early+20))
	sp2 := waitSavepoint(ctx, t, c.RESTURL, job1, stopWithSavepoint(ctx, t, c.RESTURL, job1, "file://"+c.SavepointDir))
	assertDir(t, sp2)
	waitJobState(ctx, t, c.RESTURL, job1, "FINISHED")
	t.Logf("stopped job %s at counter >= %d with savepoint %s", job1, before, sp2)

	// Resubmitted from that savepoint, the counter continues.
	restored := req
	restored.SavepointPath = sp2
	job2 := runJar(ctx, t, c.RESTURL, jarID, restored)
	first := progress(ctx, t, c, job2, 1)
	if first < before-5 {
		t.Fatalf("restored job %s: first counter reading %d, want about %d or more (state lost?)", job2, first, before)
	}
	progress(ctx, t, c, job2, before+10)
	t.Logf("restored job %s: counter %d right after restore (savepoint at >= %d)", job2, first, before)
	cancelJob(ctx, t, c.RESTURL, job2)

	// Resubmitted without a savepoint, it starts again from about 0.
	job3 := runJar(ctx, t, c.RESTURL, jarID, req)
	fresh := progress(ctx, t, c, job3, 1)
	if fresh >= before/2 {
		t.Fatalf("fresh job %s: first counter reading %d, want well below %d", job3, fresh, before)
	}
	t.Logf("fresh job %s: counter %d right after start", job3, fresh)

	// Cancelled, its last checkpoint is retained, and a job restored from it
	// (as a last-state upgrade without HA does) continues from there.
	lastBefore, _ := waitCompletedCheckpoint(ctx, t, c.RESTURL, job3, 0)
	atLeast := progress(ctx, t, c, job3, minBeforeSavepoint)
	waitCompletedCheckpoint(ctx, t, c.RESTURL, job3, lastBefore+1) // one began after the reading
	cancelJob(ctx, t, c.RESTURL, job3)
	// The retained checkpoint is the newest at cancellation; one read before
	// may since have been subsumed (and deleted), and Flink's statistics lag
	// by up to 3 s: read the newest again until its directory is there.
	chk := retainedCheckpoint(ctx, t, c.RESTURL, job3, lastBefore)
	assertDir(t, chk)
	if !strings.HasPrefix(strings.TrimPrefix(chk, "file:"), c.CheckpointDir) {
		t.Fatalf("checkpoint %s is not under the configured dir %s", chk, c.CheckpointDir)
	}
	fromChk := req
	fromChk.SavepointPath = chk
	job4 := runJar(ctx, t, c.RESTURL, jarID, fromChk)
	if first := progress(ctx, t, c, job4, 1); first < atLeast-5 {
		t.Fatalf("job %s restored from checkpoint %s: first counter reading %d, want about %d or more", job4, chk, first, atLeast)
	} else {
		t.Logf("job %s restored from retained checkpoint %s: counter %d (checkpoint at >= %d)", job4, chk, first, atLeast)
	}
	cancelJob(ctx, t, c.RESTURL, job4)
}

func testApplication(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// As the operator does, keep the JobManager up after the job finishes so
	// the savepoint status can be read.
	keep := WithConfig(map[string]string{"execution.shutdown-on-application-finish": "false"})
	c := StartApplication(t, version, TestJobClass, jobArgs, keep)
	logStartup(t, c)
	before := progress(ctx, t, c, c.JobID, 30)
	logRSS(t, c)
	sp := waitSavepoint(ctx, t, c.RESTURL, c.JobID, stopWithSavepoint(ctx, t, c.RESTURL, c.JobID, "file://"+c.SavepointDir))
	assertDir(t, sp)
	c.Stop()

	// A new application cluster started --fromSavepoint continues the count,
	// under the job id it was given.
	const fixedID = "0123456789abcdef0123456789abcdef"
	c2 := StartApplication(t, version, TestJobClass, jobArgs, keep, WithSavepoint(sp), WithJobID(fixedID))
	if c2.JobID != fixedID {
		t.Fatalf("job id %s, want %s", c2.JobID, fixedID)
	}
	first := progress(ctx, t, c2, c2.JobID, 1)
	if first < before-5 {
		t.Fatalf("application restored from %s: first counter reading %d, want about %d or more", sp, first, before)
	}
	t.Logf("application restored from %s: counter %d (savepoint at >= %d)", sp, first, before)
}

func logStartup(t *testing.T, c *Cluster) {
	t.Logf("BENCH flink=%s commands=%s jm_rest_ready=%s tm_registered=%s",
		c.Version, c.Startup.Commands.Round(10*time.Millisecond),
		c.Startup.JobManagerREST.Round(10*time.Millisecond), c.Startup.TaskManagersRegistered.Round(10*time.Millisecond))
}

func logRSS(t *testing.T, c *Cluster) {
	rss, err := c.RSS()
	if err != nil {
		t.Logf("rss: %v", err)
		return
	}
	var parts []string
	for _, p := range c.Processes() {
		parts = append(parts, fmt.Sprintf("%s=%dMiB", p.Name, rss[p.Name]>>20))
	}
	t.Logf("BENCH flink=%s rss %s", c.Version, strings.Join(parts, " "))
}

// retainedCheckpoint returns the newest completed checkpoint of a cancelled
// job (after id after) once its directory exists, waiting out Flink's
// checkpoint-statistics cache.
func retainedCheckpoint(ctx context.Context, t *testing.T, restURL, jobID string, after int64) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, chk := waitCompletedCheckpoint(ctx, t, restURL, jobID, after)
		p := "/" + strings.TrimLeft(strings.TrimPrefix(chk, "file:"), "/")
		if _, err := os.Stat(filepath.Join(p, "_metadata")); err == nil || time.Now().After(deadline) {
			return chk
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func assertDir(t *testing.T, location string) {
	t.Helper()
	p := strings.TrimPrefix(location, "file:")
	p = "/" + strings.TrimLeft(p, "/")
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("state location %s: not a directory (%v)", location, err)
	}
	if _, err := os.Stat(filepath.Join(p, "_metadata")); err != nil {
		t.Fatalf("state location %s: no _metadata: %v", location, err)
	}
}

// progress waits up to two minutes for the job's counter to reach atLeast.
func progress(ctx context.Context, t *testing.T, c *Cluster, jobID string, atLeast int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := WaitProgress(ctx, c.RESTURL, jobID, atLeast)
	if err != nil {
		t.Fatalf("%v (job state %s)", err, jobState(context.Background(), t, c.RESTURL, jobID))
	}
	return v
}

// TestTwoClusters starts two session clusters at once (one with two
// TaskManagers): every port is either chosen free or left to the OS, so they
// must not clash, and each TaskManager must register with its own JobManager.
func TestTwoClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var a, b *Cluster
	done := make(chan struct{})
	go func() {
		defer close(done)
		a = StartSession(t, Version2, WithSlots(1))
	}()
	b = StartSession(t, Version2, WithSlots(3), WithTaskManagers(2))
	<-done
	if a == nil {
		t.FailNow() // StartSession already reported why
	}
	if a.RESTURL == b.RESTURL {
		t.Fatalf("both clusters on %s", a.RESTURL)
	}
	for _, want := range []struct {
		c          *Cluster
		tms, slots int
	}{{a, 1, 1}, {b, 2, 6}} {
		var o struct {
			TaskManagers int `json:"taskmanagers"`
			Slots        int `json:"slots-total"`
		}
		if _, err := getJSON(ctx, want.c.RESTURL+"/overview", &o); err != nil {
			t.Fatal(err)
		}
		if o.TaskManagers != want.tms || o.Slots != want.slots {
			t.Errorf("%s: %d TaskManagers with %d slots, want %d with %d", want.c.RESTURL, o.TaskManagers, o.Slots, want.tms, want.slots)
		}
	}
}
