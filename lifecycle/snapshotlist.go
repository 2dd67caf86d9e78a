package lifecycle

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// With kubernetes.operator.snapshot.resource.enabled (true by default) the
// operator creates a FlinkStateSnapshot resource for every savepoint and
// checkpoint it takes of a job by itself: upgrade, periodic and nonce
// (manual). flink-gitops keeps that state in the job's own record, so the
// status branch lists them in the job's file under `snapshots`, named as
// the operator names them. The list is the savepoint history, which the
// history limits (kubernetes.operator.savepoint.history.max.count and
// .max.age) prune, plus the last checkpoint taken on request: it cannot
// grow without bound, and a savepoint pruned from the history leaves the
// list as the operator deletes its snapshot resource.

// keySnapshotResources turns the list off, as it turns the operator's
// snapshot resources off.
const keySnapshotResources = "kubernetes.operator.snapshot.resource.enabled"

// SnapshotEntry is a snapshot the daemon took of a job by itself, as the
// operator's FlinkStateSnapshot resource would show it.
type SnapshotEntry struct {
	// Name is the operator's name for it:
	// <resource>-<savepoint|checkpoint>-<trigger type>-<epoch millis>.
	Name string `json:"name"`
	// Type is SAVEPOINT or CHECKPOINT.
	Type string `json:"type"`
	// Trigger is UPGRADE, PERIODIC or MANUAL.
	Trigger string `json:"trigger"`
	// State is COMPLETED: only completed snapshots are listed.
	State string `json:"state"`
	Path  string `json:"path"`
	// Time is when it completed (RFC 3339).
	Time string `json:"time"`
	// FormatType is the savepoint format (CANONICAL or NATIVE) or the
	// checkpoint type (FULL, INCREMENTAL).
	FormatType string `json:"formatType,omitempty"`
}

// snapshotEntries lists the savepoints of history (oldest first) and the
// last checkpoint taken on request of resource name as snapshot entries,
// newest first.
func snapshotEntries(name string, history []v1beta1.Savepoint, last *v1beta1.Checkpoint) []SnapshotEntry {
	var out []SnapshotEntry
	add := func(typ string, trigger v1beta1.SnapshotTriggerType, at int64, path, format string) {
		if path == "" || trigger == "" {
			return
		}
		out = append(out, SnapshotEntry{
			Name: fmt.Sprintf("%s-%s-%s-%d", name, strings.ToLower(typ), strings.ToLower(string(trigger)), at),
			Type: typ, Trigger: string(trigger), State: string(v1beta1.SnapshotCompleted), Path: path,
			Time: time.UnixMilli(at).UTC().Format(time.RFC3339), FormatType: format,
		})
	}
	for i := len(history) - 1; i >= 0; i-- {
		sp := history[i]
		add("SAVEPOINT", sp.TriggerType, sp.TimeStamp, sp.Location, string(sp.FormatType))
	}
	if last != nil {
		add("CHECKPOINT", last.TriggerType, last.TimeStamp, last.Location, string(last.FormatType))
		// Keep newest first: the checkpoint may be newer than savepoints.
		for i := len(out) - 1; i > 0 && out[i].Time > out[i-1].Time; i-- {
			out[i], out[i-1] = out[i-1], out[i]
		}
	}
	return out
}

// snapshotResourcesEnabled reads kubernetes.operator.snapshot.resource.enabled
// from the record's last reconciled spec (true when unset).
func snapshotResourcesEnabled(r *Record) bool {
	var fc v1beta1.FlinkConfiguration
	switch {
	case r.Deployment != nil:
		if s, _ := deploymentSpec(r.Deployment.ReconciliationStatus.LastReconciledSpec); s != nil {
			fc = s.FlinkConfiguration
		}
	case r.SessionJob != nil:
		if s, _ := sessionJobSpec(r.SessionJob.ReconciliationStatus.LastReconciledSpec); s != nil {
			fc = s.FlinkConfiguration
		}
	default:
		return false
	}
	v, ok := fc[keySnapshotResources]
	if !ok {
		return true
	}
	on, err := strconv.ParseBool(strings.TrimSpace(v))
	return err != nil || on // render refuses a value that is not a boolean
}
