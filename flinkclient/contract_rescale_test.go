package flinkclient_test

import (
	"context"
	"errors"
	"net/http"
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

// adaptiveConfig is the Flink configuration of a session cluster whose jobs
// can be rescaled in place: the adaptive scheduler, with the waits before a
// rescale shortened so a test sees one in seconds (the keys were renamed in
// Flink 2.0).
func adaptiveConfig(version string) map[string]string {
	conf := map[string]string{
		"jobmanager.scheduler": "adaptive",
		"jobmanager.adaptive-scheduler.resource-stabilization-timeout": "1s",
	}
	if strings.HasPrefix(version, "1.") {
		conf["jobmanager.adaptive-scheduler.scaling-interval.min"] = "1s"
	} else {
		conf["jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling"] = "1s"
		conf["jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout"] = "1s"
	}
	return conf
}

// TestContractRescale runs the resource-requirements calls against real
// Flink session clusters with the adaptive scheduler (the API exists from
// 1.18; make test runs 1.20 and 2.2, make test-matrix every version): read the bounds, raise
// them, and see the job run at the new parallelism under the same id, its
// counter carried on. With FLINK_CAPTURE=1 it rewrites the
// resource_requirements* fixtures the replay test reads.
func TestContractRescale(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	versions, err := flinktb.ContractVersions(flinktb.Versions...)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) { runContractRescale(t, v) })
	}
}

func runContractRescale(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cluster := flinktb.StartSession(t, version, flinktb.WithSlots(2), flinktb.WithConfig(adaptiveConfig(version)))
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
		rec.Replace(cluster.Dir, "/flink")
		hc.Transport = rec
	}
	k := &contract{t: t, ctx: ctx, cluster: cluster, rec: rec,
		c: flinkclient.New(cluster.RESTURL, flinkclient.WithHTTPClient(hc), flinkclient.WithTimeout(30*time.Second))}
	c := k.c

	jarID, err := c.UploadJar(ctx, jar)
	k.must(err, "upload jar")
	jobID := flinkclient.NewJobID()
	_, err = c.RunJar(ctx, jarID, flinkclient.JarRunRequest{
		EntryClass: flinktb.TestJobClass, Args: []string{"--checkpoint-interval-ms", "500", "--rate", "50"}, Parallelism: 1, JobID: jobID,
	})
	k.must(err, "run jar")
	d := k.waitState(jobID, flinkclient.JobRunning, true)

	req, err := c.ResourceRequirements(ctx, jobID)
	k.must(err, "get resource requirements")
	k.save("resource_requirements")
	if len(req) != len(d.Vertices) {
		t.Fatalf("requirements name %d vertices, the job has %d: %+v", len(req), len(d.Vertices), req)
	}
	for _, v := range d.Vertices {
		if b, ok := req[v.ID]; !ok || b.UpperBound != v.Parallelism || b.LowerBound < 1 {
			t.Fatalf("vertex %s (parallelism %d): bounds %+v", v.ID, v.Parallelism, b)
		}
	}

	// A counter value from a completed checkpoint: the rescaled job must
	// continue from at least there.
	var before int64
	k.eventually("a completed checkpoint and counter progress", 2*time.Minute, func() (bool, error) {
		cps, err := c.Checkpoints(ctx, jobID)
		if err != nil || cps.LatestCompleted == nil {
			return false, err
		}
		before, err = flinktb.JobProgress(ctx, cluster.RESTURL, jobID)
		return before > 0, err
	})

	up := flinkclient.ResourceRequirements{}
	for id := range req {
		up[id] = flinkclient.Bounds{LowerBound: 1, UpperBound: 2}
	}
	k.must(c.SetResourceRequirements(ctx, jobID, up), "set resource requirements")
	k.save("resource_requirements_update")
	k.eventually("every vertex at parallelism 2", 3*time.Minute, func() (bool, error) {
		d, err = c.Job(ctx, jobID)
		if err != nil {
			return false, err
		}
		for _, v := range d.Vertices {
			if v.Parallelism != 2 {
				return false, nil
			}
		}
		return d.State == flinkclient.JobRunning && d.AllTasksRunning(), nil
	})
	got, err := c.ResourceRequirements(ctx, jobID)
	k.must(err, "read the new requirements")
	for id, b := range got {
		if b != up[id] {
			t.Errorf("vertex %s: bounds %+v after the update, want %+v", id, b, up[id])
		}
	}
	var after int64
	k.eventually("the rescaled counter to report", 2*time.Minute, func() (bool, error) {
		after, err = flinktb.JobProgress(ctx, cluster.RESTURL, jobID)
		return after > 0, err
	})
	if after < before {
		t.Errorf("counter at %d after the rescale, %d before: state was lost", after, before)
	}
	t.Logf("Flink %s: job %s rescaled 1 -> 2 in place, counter %d -> %d", version, jobID, before, after)

	// Bounds Flink refuses, and an unknown job.
	bad := flinkclient.ResourceRequirements{}
	for id := range req {
		bad[id] = flinkclient.Bounds{LowerBound: 1, UpperBound: 1 << 20}
	}
	err = c.SetResourceRequirements(ctx, jobID, bad)
	k.save("error_resource_requirements_bad")
	if !errors.Is(err, flinkclient.ErrBadRequest) {
		t.Errorf("upper bound above max parallelism: err = %v, want ErrBadRequest", err)
	}
	_, err = c.ResourceRequirements(ctx, flinkclient.NewJobID())
	k.save("error_resource_requirements_not_found")
	if !errors.Is(err, flinkclient.ErrNotFound) {
		t.Errorf("unknown job: err = %v, want ErrNotFound", err)
	}
	k.must(c.Cancel(ctx, jobID), "cancel")
	k.waitState(jobID, flinkclient.JobCanceled, false)
}
