package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindFlinkStateSnapshot is the operator's snapshot resource: one savepoint
// or checkpoint of a FlinkDeployment's or FlinkSessionJob's job.
const KindFlinkStateSnapshot = "FlinkStateSnapshot"

// FlinkStateSnapshot is the operator's FlinkStateSnapshot: a request for
// one savepoint or checkpoint of a job, or the record of a savepoint that
// already exists.
type FlinkStateSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FlinkStateSnapshotSpec    `json:"spec"`
	Status *FlinkStateSnapshotStatus `json:"status,omitempty"`
}

// FlinkStateSnapshotSpec is the operator's FlinkStateSnapshotSpec.
type FlinkStateSnapshotSpec struct {
	// JobReference is the job to take the snapshot of (not needed for a
	// savepoint that already exists).
	JobReference *JobReference `json:"jobReference,omitempty"`
	// Savepoint is set for a savepoint, Checkpoint for a checkpoint.
	Savepoint  *SavepointSpec  `json:"savepoint,omitempty"`
	Checkpoint *CheckpointSpec `json:"checkpoint,omitempty"`
	// BackoffLimit is how many failed tries are retried (-1, the default:
	// without limit; 0: none).
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
}

// Backoff returns BackoffLimit with the operator's default (-1).
func (s *FlinkStateSnapshotSpec) Backoff() int32 {
	if s.BackoffLimit == nil {
		return -1
	}
	return *s.BackoffLimit
}

// JobReference is the operator's JobReference.
type JobReference struct {
	// Kind is FlinkDeployment or FlinkSessionJob.
	Kind string `json:"kind,omitempty"`
	// Name of the resource, in the snapshot's namespace.
	Name string `json:"name,omitempty"`
}

// SavepointSpec is the operator's SavepointSpec.
type SavepointSpec struct {
	// Path is the directory to write the savepoint to, or, with
	// AlreadyExists, the savepoint itself.
	Path string `json:"path,omitempty"`
	// FormatType of the savepoint (default CANONICAL).
	FormatType SavepointFormatType `json:"formatType,omitempty"`
	// DisposeOnDelete disposes of the savepoint when the resource is
	// deleted (default true).
	DisposeOnDelete *bool `json:"disposeOnDelete,omitempty"`
	// AlreadyExists records Path as a completed savepoint without
	// triggering one (default false).
	AlreadyExists *bool `json:"alreadyExists,omitempty"`
}

// Dispose returns DisposeOnDelete with the operator's default (true).
func (s *SavepointSpec) Dispose() bool { return s.DisposeOnDelete == nil || *s.DisposeOnDelete }

// Exists returns AlreadyExists with the operator's default (false).
func (s *SavepointSpec) Exists() bool { return s.AlreadyExists != nil && *s.AlreadyExists }

// Format returns FormatType with the operator's default (CANONICAL).
func (s *SavepointSpec) Format() SavepointFormatType {
	if s.FormatType == "" {
		return SavepointCanonical
	}
	return s.FormatType
}

// CheckpointSpec is the operator's (empty) CheckpointSpec.
type CheckpointSpec struct{}

// SnapshotState is the operator's FlinkStateSnapshotStatus.State.
type SnapshotState string

// SnapshotState values.
const (
	SnapshotCompleted      SnapshotState = "COMPLETED"
	SnapshotFailed         SnapshotState = "FAILED"
	SnapshotInProgress     SnapshotState = "IN_PROGRESS"
	SnapshotTriggerPending SnapshotState = "TRIGGER_PENDING"
	SnapshotAbandoned      SnapshotState = "ABANDONED"
)

// FlinkStateSnapshotStatus is the operator's FlinkStateSnapshotStatus.
type FlinkStateSnapshotStatus struct {
	// State of the snapshot (default TRIGGER_PENDING).
	State SnapshotState `json:"state,omitempty"`
	// TriggerID of the snapshot operation.
	TriggerID string `json:"triggerId,omitempty"`
	// TriggerTimestamp of a pending snapshot (RFC 3339).
	TriggerTimestamp string `json:"triggerTimestamp,omitempty"`
	// ResultTimestamp is when the snapshot completed or failed (RFC 3339).
	ResultTimestamp string `json:"resultTimestamp,omitempty"`
	// Path of the completed snapshot.
	Path string `json:"path,omitempty"`
	// Error of the latest try.
	Error string `json:"error,omitempty"`
	// Failures counts failed tries (against the backoff limit).
	Failures int32 `json:"failures"`
}
