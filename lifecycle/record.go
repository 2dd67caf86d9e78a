package lifecycle

import (
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Kinds of managed resources.
const (
	KindDeployment = "FlinkDeployment"
	KindSessionJob = "FlinkSessionJob"
	KindSnapshot   = "FlinkStateSnapshot"
)

// Record is everything the daemon knows about one managed resource. It is
// persisted in the resource's status ConfigMap before every external step,
// so a daemon started from the ConfigMap alone carries on where the last one
// stopped.
type Record struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`

	// Deployment is the status of a FlinkDeployment, SessionJob of a
	// FlinkSessionJob: the operator's status schema plus the source block.
	Deployment *v1beta1.FlinkDeploymentStatus `json:"deployment,omitempty"`
	SessionJob *v1beta1.FlinkSessionJobStatus `json:"sessionJob,omitempty"`
	// Snapshot is the state of a FlinkStateSnapshot (snapshot.go).
	Snapshot *SnapshotRecord `json:"snapshot,omitempty"`

	// Operation is the step in flight, nil at rest. It is the write-ahead
	// intent: ids are chosen and written here before they are used.
	Operation *Operation `json:"operation,omitempty"`

	// LastSavepointNonce and LastRestartNonce are the nonces already acted on.
	LastSavepointNonce *int64 `json:"lastSavepointNonce,omitempty"`
	LastRestartNonce   *int64 `json:"lastRestartNonce,omitempty"`
	// LastCheckpointNonce is the checkpointTriggerNonce already acted on.
	LastCheckpointNonce *int64 `json:"lastCheckpointNonce,omitempty"`

	// Deployed records the inputs the running cluster was built with, so a
	// resync re-applies exactly the same objects (correcting drift without
	// restarting anything).
	Deployed *Deployed `json:"deployed,omitempty"`

	// LatestCheckpoint is the newest completed, externalised checkpoint seen
	// while observing: what last-state restores from when the job can no
	// longer be asked.
	LatestCheckpoint *v1beta1.Savepoint `json:"latestCheckpoint,omitempty"`

	// PendingDisposal are savepoints pruned from the history whose files
	// could not be disposed yet (no JobManager to ask).
	PendingDisposal []string `json:"pendingDisposal,omitempty"`

	// Restarts counts the restarts the daemon started by itself (a failed
	// job, the health check); see restart.go.
	Restarts *Restarts `json:"restarts,omitempty"`

	// Refused is the latest spec the daemon refused to start (pre-flight
	// failed, or it failed to apply for good): it is not tried again until
	// it changes or NextAttempt has passed.
	Refused *Refusal `json:"refused,omitempty"`

	// Waiting says why an operation the spec asks for has not started yet
	// (the Gate: too many upgrades in flight); empty once it starts.
	Waiting string `json:"waiting,omitempty"`

	// resourceVersion of the ConfigMap the record was read from (optimistic
	// concurrency); not persisted.
	resourceVersion string
}

// Common returns the status part shared by both kinds.
func (r *Record) Common() *v1beta1.CommonStatus {
	if r.Deployment != nil {
		return &r.Deployment.CommonStatus
	}
	if r.Snapshot != nil {
		return &r.Snapshot.Common
	}
	if r.SessionJob == nil {
		r.SessionJob = &v1beta1.FlinkSessionJobStatus{}
	}
	return &r.SessionJob.CommonStatus
}

// Reconciliation returns the reconciliation status of either kind.
func (r *Record) Reconciliation() *v1beta1.ReconciliationStatus {
	if r.Deployment != nil {
		return &r.Deployment.ReconciliationStatus
	}
	if r.Snapshot != nil {
		return &v1beta1.ReconciliationStatus{} // a snapshot has no spec reconciliation
	}
	if r.SessionJob == nil {
		r.SessionJob = &v1beta1.FlinkSessionJobStatus{}
	}
	return &r.SessionJob.ReconciliationStatus
}

// Deployed is what the running cluster or job was deployed with.
type Deployed struct {
	JobID       string    `json:"jobId,omitempty"`
	RestorePath string    `json:"restorePath,omitempty"`
	SpecHash    string    `json:"specHash,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	At          time.Time `json:"at"`
	// FlinkDefaults are the daemon's Flink defaults the cluster was built
	// with: re-applying the cluster (drift correction, scaling) uses them,
	// so a live change of the daemon's defaults reaches a cluster at its
	// next deploy instead of rolling its JobManager (which would restart
	// the job from its original restore path). Never omitted, so {} (none)
	// differs from a record written before the field existed (null).
	FlinkDefaults map[string]string `json:"flinkDefaults"`
	// Spec is the JSON of the spec the cluster objects were built from;
	// re-applying them (drift correction, scaling) starts from it, so a
	// change that needs no redeploy does not roll the JobManager.
	Spec string `json:"spec,omitempty"`
	// JarDigest is the SHA-256 (hex) of a session job's jar: the jar on
	// the session cluster this job needs (jars.go).
	JarDigest string `json:"jarDigest,omitempty"`
}

// defaults returns the Flink defaults to rebuild the deployed cluster
// with: those it was built with, or current for an older record.
func (d *Deployed) defaults(current map[string]string) map[string]string {
	if d.FlinkDefaults == nil {
		return current
	}
	return d.FlinkDefaults
}

// Refusal is a spec that was refused, and when it is checked again.
type Refusal struct {
	// TargetHash is the render hash of the refused spec; Commit its commit.
	TargetHash string `json:"targetHash"`
	Commit     string `json:"commit,omitempty"`
	// Reason is the message shown in status.error.
	Reason string `json:"reason"`
	// Attempts counts the refusals of this spec; NextAttempt is when it is
	// checked again (capped, jittered exponential backoff).
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"nextAttempt"`
}

// OpKind is what an operation does.
type OpKind string

// Operation kinds.
const (
	OpDeploy    OpKind = "Deploy"    // first deploy, or resume from suspended
	OpUpgrade   OpKind = "Upgrade"   // suspend with the upgrade mode, then deploy the new spec
	OpSuspend   OpKind = "Suspend"   // suspend with the upgrade mode and stay suspended
	OpSavepoint OpKind = "Savepoint" // a manual or periodic savepoint
	OpRestart   OpKind = "Restart"   // restartNonce: upgrade to the same spec
	OpRollback  OpKind = "Rollback"  // upgrade back to lastStableSpec
	OpDelete    OpKind = "Delete"    // the spec left Git
	OpRescale   OpKind = "Rescale"   // parallelism change applied in place (rescale.go)
	OpSnapshot  OpKind = "Snapshot"  // a FlinkStateSnapshot's savepoint
)

// Phase is a step of an operation. Each phase's work is idempotent.
type Phase string

// Phases, in the order an upgrade passes them.
const (
	// PhasePreflight builds the target's objects and checks them against
	// the apiserver (server-side dry-run, Pod Security, ResourceQuota)
	// before anything is stopped; it changes nothing.
	PhasePreflight Phase = "Preflight"
	// PhaseStopJob stops the running job the way the upgrade mode says
	// (stop-with-savepoint, cancel, or nothing) and records where its state is.
	PhaseStopJob Phase = "StopJob"
	// PhaseTriggerSavepoint triggers a savepoint (or stop-with-savepoint)
	// with the persisted TriggerID.
	PhaseTriggerSavepoint Phase = "TriggerSavepoint"
	// PhaseAwaitSavepoint waits for the triggered savepoint (TriggerID).
	PhaseAwaitSavepoint Phase = "AwaitSavepoint"
	// PhaseCancelJob cancels the job (stateless and last-state upgrades).
	PhaseCancelJob Phase = "CancelJob"
	// PhaseAwaitStopped waits for the job to reach a terminal state.
	PhaseAwaitStopped Phase = "AwaitStopped"
	// PhaseDeleteCluster removes the cluster's Kubernetes objects.
	PhaseDeleteCluster Phase = "DeleteCluster"
	// PhaseAwaitDeleted waits until the JobManager is gone.
	PhaseAwaitDeleted Phase = "AwaitDeleted"
	// PhaseApply applies the target's cluster objects (or submits a session job).
	PhaseApply Phase = "Apply"
	// PhaseAwaitRunning waits for the JobManager and the job to run.
	PhaseAwaitRunning Phase = "AwaitRunning"
	// PhaseRescale persists the job's new resource requirements, then
	// sends them (rescale.go).
	PhaseRescale Phase = "Rescale"
	// PhaseAwaitRescaled waits for the job to run at its new parallelism.
	PhaseAwaitRescaled Phase = "AwaitRescaled"
)

// Operation is an operation in flight, persisted before each step.
type Operation struct {
	Kind  OpKind `json:"kind"`
	Phase Phase  `json:"phase"`
	// TargetSpec is the JSON of the spec being moved to (empty for savepoints
	// and deletion); TargetHash its render hash; Source where it came from.
	TargetSpec string             `json:"targetSpec,omitempty"`
	TargetHash string             `json:"targetHash,omitempty"`
	Source     *v1beta1.SourceRef `json:"source,omitempty"`
	// UpgradeMode is the mode in effect for stopping the current job.
	UpgradeMode v1beta1.UpgradeMode `json:"upgradeMode,omitempty"`
	// TriggerID is chosen by us and persisted before the savepoint is
	// triggered, so a retry reuses it and Flink takes one savepoint.
	TriggerID   string                      `json:"triggerId,omitempty"`
	TriggerType v1beta1.SnapshotTriggerType `json:"triggerType,omitempty"`
	// TriggerNonce is the savepointTriggerNonce a manual savepoint answers.
	TriggerNonce *int64 `json:"triggerNonce,omitempty"`
	// SavepointBefore is the job's latest savepoint before TriggerID was
	// first sent, persisted before that (nil: not yet known). Flink forgets
	// finished operations (rest.async.store-duration, 5 minutes), so after
	// a longer outage a newer savepoint of the job is how we know ours
	// happened.
	SavepointBefore *string `json:"savepointBefore,omitempty"`
	// RestorePath is the savepoint or checkpoint the next deploy restores
	// from, once known ("" means start empty, which only stateless allows).
	RestorePath string `json:"restorePath,omitempty"`
	// RestoreFromHA means the next deploy restores through Flink's
	// Kubernetes HA metadata (a last-state upgrade of a cluster with
	// Kubernetes HA): the HA ConfigMaps are kept when the cluster is
	// deleted, their job graphs are removed, and the new job keeps the
	// running job's id (JobID), so the new JobManager recovers its newest
	// checkpoint. RestorePath stays empty.
	RestoreFromHA bool `json:"restoreFromHA,omitempty"`
	// HACleared is when the cluster's HA metadata was last found and
	// deleted after the cluster was gone; the operation moves on once a
	// later look, haSettle after it, finds none (a JobManager that is still
	// shutting down may write its leader ConfigMap again).
	HACleared time.Time `json:"haCleared,omitzero"`
	// StoppedJobID is the job being stopped.
	StoppedJobID string `json:"stoppedJobId,omitempty"`
	// JobID is chosen by us and persisted before the job is submitted.
	JobID string `json:"jobId,omitempty"`
	// JarDigest is the SHA-256 (hex) of the session job's jar, persisted
	// before the jar is uploaded, so a jar cleanup never deletes a jar an
	// operation in flight is about to run (jars.go).
	JarDigest string `json:"jarDigest,omitempty"`
	// Started and PhaseStarted time the operation and its current phase.
	Started      time.Time `json:"started"`
	PhaseStarted time.Time `json:"phaseStarted"`
	// Attempts counts failed tries of the current phase; NextAttempt is
	// when the phase is tried again after a failure (zero: at once).
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// SavepointFailures counts the savepoints of this operation Flink
	// failed; unlike Attempts it survives phase changes, so a savepoint
	// that keeps failing is given up on.
	SavepointFailures int `json:"savepointFailures,omitempty"`
	// Requirements are the resource requirements a rescale sends,
	// persisted before they are sent.
	Requirements flinkclient.ResourceRequirements `json:"requirements,omitempty"`
	// AfterPreflight is the phase the operation goes on with once
	// PhasePreflight has passed.
	AfterPreflight Phase `json:"afterPreflight,omitempty"`
	// Message is the latest progress or error note.
	Message string `json:"message,omitempty"`
	// Cause is why the daemon restarts the job by itself (CauseJobFailed,
	// CauseUnhealthy); empty for a restart that was pushed.
	Cause string `json:"cause,omitempty"`
}
