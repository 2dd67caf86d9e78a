package lifecycle

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestSnapshotEntries(t *testing.T) {
	const t1, t2, t3 = 1765000000000, 1765000060000, 1765000120000
	up := v1beta1.Savepoint{TimeStamp: t1, Location: "file:/sp/savepoint-1", TriggerType: v1beta1.TriggerUpgrade, FormatType: v1beta1.SavepointCanonical}
	per := v1beta1.Savepoint{TimeStamp: t3, Location: "file:/sp/savepoint-3", TriggerType: v1beta1.TriggerPeriodic, FormatType: v1beta1.SavepointNative}
	cp := &v1beta1.Checkpoint{TimeStamp: t2, Location: "file:/cp/job/chk-7", TriggerType: v1beta1.TriggerManual, FormatType: v1beta1.CheckpointFull, ID: 7}
	entry := func(typ, trig string, at int64, path, format string) SnapshotEntry {
		return SnapshotEntry{Name: fmt.Sprintf("app-%s-%s-%d", strings.ToLower(typ), strings.ToLower(trig), at), Type: typ, Trigger: trig,
			State: "COMPLETED", Path: path, Time: time.UnixMilli(at).UTC().Format(time.RFC3339), FormatType: format}
	}
	cases := []struct {
		name    string
		history []v1beta1.Savepoint
		last    *v1beta1.Checkpoint
		want    []SnapshotEntry
	}{
		{"none", nil, nil, nil},
		{"savepoints newest first", []v1beta1.Savepoint{up, per}, nil, []SnapshotEntry{
			entry("SAVEPOINT", "PERIODIC", t3, per.Location, "NATIVE"), entry("SAVEPOINT", "UPGRADE", t1, up.Location, "CANONICAL")}},
		{"checkpoint in time order", []v1beta1.Savepoint{up, per}, cp, []SnapshotEntry{
			entry("SAVEPOINT", "PERIODIC", t3, per.Location, "NATIVE"), entry("CHECKPOINT", "MANUAL", t2, cp.Location, "FULL"),
			entry("SAVEPOINT", "UPGRADE", t1, up.Location, "CANONICAL")}},
		{"checkpoint without path is not listed", []v1beta1.Savepoint{up}, &v1beta1.Checkpoint{TimeStamp: t2, TriggerType: v1beta1.TriggerPeriodic},
			[]SnapshotEntry{entry("SAVEPOINT", "UPGRADE", t1, up.Location, "CANONICAL")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, snapshotEntries("app", c.history, c.last)); d != "" {
				t.Fatalf("entries (-want +got):\n%s", d)
			}
		})
	}
}

// statusOf renders r's status branch file and reads it back.
func statusOf(t *testing.T, r *Record) ResourceStatus {
	t.Helper()
	files, err := StatusFiles([]*Record{r}, nil, nil, Summary{})
	if err != nil {
		t.Fatal(err)
	}
	var rs ResourceStatus
	if err := yaml.Unmarshal(files[StatusPath(r.Kind, r.Namespace, r.Name)], &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestSnapshotListOnStatusBranch: in the simulated world, the upgrade and
// periodic savepoints a job took are listed as snapshots in its status
// branch file, bounded by savepoint.history.max.count, and not at all with
// kubernetes.operator.snapshot.resource.enabled: "false".
func TestSnapshotListOnStatusBranch(t *testing.T) {
	for _, enabled := range []string{"", "false"} {
		t.Run("enabled="+enabled, func(t *testing.T) {
			w := newSimWorld(t)
			conf := []string{keyPeriodicSavepoint, "20s", keyHistoryMaxCount, "2"}
			if enabled != "" {
				conf = append(conf, keySnapshotResources, enabled)
			}
			deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, withConf(conf...)))
			// An upgrade (parallelism 3) takes an UPGRADE savepoint.
			r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 3, withConf(conf...))), "upgraded", stableRunning)
			if rs := statusOf(t, r); enabled == "" {
				up := w.flink.Savepoints[0]
				want := []SnapshotEntry{{Name: fmt.Sprintf("app-savepoint-upgrade-%d", up.At.UnixMilli()), Type: "SAVEPOINT", Trigger: "UPGRADE",
					State: "COMPLETED", Path: up.Path, Time: up.At.UTC().Format(time.RFC3339), FormatType: "CANONICAL"}}
				if len(w.flink.Savepoints) != 1 {
					t.Fatalf("%d savepoints after the upgrade", len(w.flink.Savepoints))
				}
				if d := cmp.Diff(want, rs.Snapshots); d != "" {
					t.Errorf("snapshots after the upgrade (-want +got):\n%s", d)
				}
			}
			d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 3, withConf(conf...)))
			r = w.until(KindDeployment, "app", d, "periodic savepoints", func(r *Record) bool {
				si := r.Common().JobStatus.SavepointInfo
				return r.Operation == nil && si != nil && len(si.SavepointHistory) == 2 && si.SavepointHistory[0].TriggerType == v1beta1.TriggerPeriodic
			})
			if len(w.flink.Savepoints) < 3 {
				t.Fatalf("%d savepoints taken, want the upgrade one and two periodic ones", len(w.flink.Savepoints))
			}
			rs := statusOf(t, r)
			if enabled == "false" {
				if len(rs.Snapshots) != 0 {
					t.Fatalf("snapshots listed with %s false: %+v", keySnapshotResources, rs.Snapshots)
				}
				return
			}
			hist := r.Common().JobStatus.SavepointInfo.SavepointHistory
			if len(rs.Snapshots) != 2 {
				t.Fatalf("snapshots %+v, want the 2 savepoints the history keeps", rs.Snapshots)
			}
			for i, e := range rs.Snapshots {
				sp := hist[len(hist)-1-i]
				want := fmt.Sprintf("app-savepoint-periodic-%d", sp.TimeStamp)
				if e.Name != want || e.Path != sp.Location || e.Trigger != "PERIODIC" || e.Type != "SAVEPOINT" || e.State != "COMPLETED" {
					t.Errorf("snapshot %d: %+v, want %s at %s", i, e, want, sp.Location)
				}
			}
			// The upgrade savepoint was listed until the history pruned it.
			up := w.flink.Savepoints[0]
			for _, e := range rs.Snapshots {
				if e.Path == up.Path {
					t.Errorf("pruned upgrade savepoint %s still listed", up.Path)
				}
			}
		})
	}
}
