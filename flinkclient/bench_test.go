package flinkclient_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// BenchmarkFlinkREST measures the calls the reconciler makes while it
// observes a job, and a savepoint's round trip, against a real session
// cluster of each Flink version running the test job (results in
// docs/benchmarks.md).
func BenchmarkFlinkREST(b *testing.B) {
	if testing.Short() {
		b.Skip("integration benchmark: needs the test bed")
	}
	for _, version := range flinktb.Versions {
		b.Run(majorMinor(version), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			cluster := flinktb.StartSession(b, version)
			c := flinkclient.New(cluster.RESTURL, flinkclient.WithTimeout(30*time.Second))
			jobID := startCounterJob(ctx, b, c, version)
			trigger := flinkclient.NewTriggerID()
			if _, err := c.TriggerSavepoint(ctx, jobID, flinkclient.SavepointOptions{TriggerID: trigger}); err != nil {
				b.Fatal(err)
			}
			if _, err := c.AwaitSavepoint(ctx, jobID, trigger, 50*time.Millisecond); err != nil {
				b.Fatal(err)
			}

			calls := []struct {
				name string
				call func() error
			}{
				{"Job", func() error { _, err := c.Job(ctx, jobID); return err }},
				{"Checkpoints", func() error { _, err := c.Checkpoints(ctx, jobID); return err }},
				{"SavepointStatus", func() error { _, err := c.SavepointStatus(ctx, jobID, trigger); return err }},
				{"Overview", func() error { _, err := c.Overview(ctx); return err }},
			}
			for _, bc := range calls {
				b.Run(bc.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := bc.call(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("SavepointRoundTrip", func(b *testing.B) {
				dir := filepath.Join(cluster.SavepointDir, "bench")
				i := 0
				for b.Loop() {
					i++
					id := flinkclient.NewTriggerID()
					opts := flinkclient.SavepointOptions{TargetDir: filepath.Join(dir, strconv.Itoa(i)), TriggerID: id}
					if _, err := c.TriggerSavepoint(ctx, jobID, opts); err != nil {
						b.Fatal(err)
					}
					if _, err := c.AwaitSavepoint(ctx, jobID, id, 20*time.Millisecond); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// startCounterJob uploads and runs the test job and waits until all its
// tasks run.
func startCounterJob(ctx context.Context, b *testing.B, c *flinkclient.Client, version string) string {
	b.Helper()
	jar, err := flinktb.TestJobJar(ctx, version)
	if err != nil {
		b.Fatal(err)
	}
	jarID, err := c.UploadJar(ctx, jar)
	if err != nil {
		b.Fatal(err)
	}
	jobID, err := c.RunJar(ctx, jarID, flinkclient.JarRunRequest{
		EntryClass: flinktb.TestJobClass, Parallelism: 1, JobID: flinkclient.NewJobID(),
		Args: []string{"--checkpoint-interval-ms", "1000"},
	})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := c.Job(ctx, jobID)
		if err == nil && d.State == flinkclient.JobRunning && d.AllTasksRunning() {
			return jobID
		}
		if time.Now().After(deadline) {
			b.Fatalf("job %s not running after 3 minutes: %+v, %v", jobID, d, err)
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
