package lifecycle_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

func init() {
	waitsOn[lifecycle.PhaseTriggerCheckpoint] = "daemon"
	waitsOn[lifecycle.PhaseAwaitCheckpoint] = "flink"
}

// TestCheckpointsOnRequest runs periodic and manual checkpoints against
// real Flink 1.20 and 2.2: each is triggered through the REST API,
// recorded in checkpointInfo with its type, and its path is one Flink
// reports for that checkpoint id; the job keeps running under its id.
func TestCheckpointsOnRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("test bed")
	}
	for _, v := range []struct{ image, version string }{{"flink:1.20", "v1_20"}, {"flink:2.2", "v2_2"}} {
		t.Run(v.version, func(t *testing.T) {
			if v.version == "v1_20" {
				flinktb.MatrixOnly(t)
			}
			b := newBed(t)
			name := "ckpt-" + strings.ReplaceAll(v.version, "_", "")
			periodic := "    kubernetes.operator.periodic.checkpoint.interval: 6s"
			spec := b.appSpec(name, v.image, v.version, "savepoint", periodic, 1)
			d := b.render(spec)
			r := b.until(lifecycle.KindDeployment, name, d, "deployed", 3*time.Minute, stable)
			jobID := r.Common().JobStatus.JobID
			// clusterInfo from the real /config: the version the bed runs.
			want := strings.TrimPrefix(v.image, "flink:") + "."
			if ci := r.Deployment.ClusterInfo; !strings.HasPrefix(ci["flink-version"], want) || ci["flink-revision"] == "" || ci["total-memory"] == "" {
				t.Errorf("clusterInfo %v, want flink-version %sx and a revision", ci, want)
			}
			if c := r.Deployment.Conditions; len(c) != 1 || c[0].Type != "Running" || c[0].Status != "True" {
				t.Errorf("conditions %+v, want Running=True", c)
			}

			// Periodic: recorded as PERIODIC, twice, at the interval.
			var first int64
			r = b.until(lifecycle.KindDeployment, name, d, "two periodic checkpoints", 2*time.Minute, func(r *lifecycle.Record) bool {
				cp := lastCP(r)
				if cp == nil || cp.TriggerType != v1beta1.TriggerPeriodic {
					return false
				}
				if first == 0 {
					first = cp.ID
				}
				return cp.ID != first && r.Operation == nil
			})
			wantFlinkCheckpoint(t, b, name, jobID, lastCP(r))
			b.logOverhead("periodic checkpoint ("+v.version+")", name, name, "")

			// Manual: the nonce triggers one, recorded with its nonce.
			d = b.render(strings.Replace(spec, "    upgradeMode:", "    checkpointTriggerNonce: 3\n    upgradeMode:", 1))
			r = b.until(lifecycle.KindDeployment, name, d, "manual checkpoint", 2*time.Minute, func(r *lifecycle.Record) bool {
				cp := lastCP(r)
				return r.Operation == nil && cp != nil && cp.TriggerType == v1beta1.TriggerManual
			})
			cp := lastCP(r)
			if cp.TriggerNonce == nil || *cp.TriggerNonce != 3 || cp.FormatType != v1beta1.CheckpointFull {
				t.Errorf("manual checkpoint recorded as %+v", cp)
			}
			wantFlinkCheckpoint(t, b, name, jobID, cp)
			b.logOverhead("manual checkpoint ("+v.version+")", name, name, "")
			if got := r.Common().JobStatus.JobID; got != jobID || r.Common().JobStatus.State != v1beta1.JobRunning {
				t.Errorf("job %s %s after the checkpoints, want %s RUNNING", got, r.Common().JobStatus.State, jobID)
			}
			t.Logf("manual checkpoint %d at %s", cp.ID, cp.Location)
		})
	}
}

func lastCP(r *lifecycle.Record) *v1beta1.Checkpoint {
	if ci := r.Common().JobStatus.CheckpointInfo; ci != nil {
		return ci.LastCheckpoint
	}
	return nil
}

// wantFlinkCheckpoint checks cp against what Flink reports: a completed
// checkpoint of that id with that external path, under the test's
// checkpoint directory.
func wantFlinkCheckpoint(t *testing.T, b *bed, cluster, jobID string, cp *v1beta1.Checkpoint) {
	t.Helper()
	if cp == nil || cp.ID == 0 || cp.Location == "" {
		t.Fatalf("checkpoint recorded as %+v, want an id and a path", cp)
	}
	if !strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(cp.Location, "file:"), "//"), b.state+"/checkpoints/") ||
		!strings.HasSuffix(cp.Location, "/chk-"+strconv.FormatInt(cp.ID, 10)) {
		t.Errorf("checkpoint path %s is not chk-%d under %s/checkpoints", cp.Location, cp.ID, b.state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cps, err := flinkclient.New(b.restURL(cluster), flinkclient.WithTimeout(5*time.Second)).Checkpoints(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range append(cps.History, derefCP(cps.LatestCompleted)...) {
		if h.ID == cp.ID {
			if h.Status != "COMPLETED" || h.ExternalPath != cp.Location {
				t.Errorf("Flink reports checkpoint %d as %s at %s; recorded %s", h.ID, h.Status, h.ExternalPath, cp.Location)
			}
			return
		}
	}
	t.Logf("checkpoint %d already out of Flink's history (latest %+v)", cp.ID, cps.LatestCompleted)
}

func derefCP(c *flinkclient.Checkpoint) []flinkclient.Checkpoint {
	if c == nil {
		return nil
	}
	return []flinkclient.Checkpoint{*c}
}
