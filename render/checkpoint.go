package render

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Operator keys that trigger checkpoints through Flink's REST API.
const (
	keyPeriodicCheckpoint = "kubernetes.operator.periodic.checkpoint.interval"
	keyCheckpointType     = "kubernetes.operator.checkpoint.type"
)

// minCheckpointTrigger is the first Flink version whose REST API triggers
// checkpoints (POST /jobs/:jobid/checkpoints, FLINK-27101), as the operator
// checks (SnapshotUtils.isSnapshotTriggeringSupported).
const minCheckpointTrigger = v1beta1.FlinkV1_17

// checkpointTriggers refuses checkpoint requests a FlinkDeployment's Flink
// version cannot take, and a checkpoint type Flink's REST API refuses to
// trigger, up front instead of failing at the first trigger.
func checkpointTriggers(fv v1beta1.FlinkVersion, j *v1beta1.JobSpec, conf v1beta1.FlinkConfiguration) []fieldError {
	var errs []fieldError
	old := fv.Known() && slices.Index(v1beta1.FlinkVersions, fv) < slices.Index(v1beta1.FlinkVersions, minCheckpointTrigger)
	if old && j.CheckpointTriggerNonce != nil {
		errs = append(errs, fieldError{Field: "spec.job.checkpointTriggerNonce",
			Message: fmt.Sprintf("Flink %s cannot trigger checkpoints through its REST API (Flink 1.17 and newer can)", fv),
			Fix:     "remove checkpointTriggerNonce, or upgrade to Flink 1.17 or newer (set spec.flinkVersion and the image)"})
	}
	if old && strings.TrimSpace(conf[keyPeriodicCheckpoint]) != "" {
		errs = append(errs, fieldError{Field: mapKey("spec.flinkConfiguration", keyPeriodicCheckpoint),
			Message: fmt.Sprintf("Flink %s cannot trigger checkpoints through its REST API (Flink 1.17 and newer can)", fv),
			Fix:     "remove the key (Flink's own execution.checkpointing.interval still checkpoints), or upgrade to Flink 1.17 or newer"})
	}
	return errs
}
