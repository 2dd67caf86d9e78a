package flinkclient

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// JobStatus is a Flink job state as the REST API reports it.
type JobStatus string

// Flink's job states (org.apache.flink.api.common.JobStatus, identical in 1.20 and 2.x).
const (
	JobInitializing JobStatus = "INITIALIZING"
	JobCreated      JobStatus = "CREATED"
	JobRunning      JobStatus = "RUNNING"
	JobFailing      JobStatus = "FAILING"
	JobFailed       JobStatus = "FAILED"
	JobCancelling   JobStatus = "CANCELLING"
	JobCanceled     JobStatus = "CANCELED"
	JobFinished     JobStatus = "FINISHED"
	JobRestarting   JobStatus = "RESTARTING"
	JobSuspended    JobStatus = "SUSPENDED"
	JobReconciling  JobStatus = "RECONCILING"
)

// GloballyTerminal reports whether the job has ended for good in the cluster
// (FINISHED, CANCELED, FAILED): it will not run again under this job id.
func (s JobStatus) GloballyTerminal() bool {
	return s == JobFinished || s == JobCanceled || s == JobFailed
}

// Terminal reports whether the job is no longer executing in this
// JobManager: the globally terminal states plus SUSPENDED (the JobManager
// lost leadership or shut down; the job may resume elsewhere from HA data).
func (s JobStatus) Terminal() bool {
	return s.GloballyTerminal() || s == JobSuspended
}

// Version is a Flink version such as 1.20.3 or 2.2.0.
type Version struct {
	Major, Minor, Patch int
	// Raw is the version string as Flink reported it, e.g. "2.2-SNAPSHOT".
	Raw string
}

// ParseVersion parses "1.20.3", "2.2.0", "2.1-SNAPSHOT" and similar.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: s}
	core, _, _ := strings.Cut(strings.TrimSpace(s), "-")
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, fmt.Errorf("parse flink version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	nums := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("parse flink version %q: %q is not a number", s, p)
		}
		*nums[i] = n
	}
	return v, nil
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// String returns Raw if set, else MAJOR.MINOR.PATCH.
func (v Version) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Config is the JobManager's web configuration (GET /config); it carries the
// Flink version.
type Config struct {
	FlinkVersion    string
	FlinkRevision   string
	TimezoneName    string
	TimezoneOffset  int64
	RefreshInterval time.Duration
	// WebSubmit says whether jar upload and run are enabled
	// (web.submit.enable); the jar calls fail with 404 when it is false.
	WebSubmit bool
	WebCancel bool
}

// Overview is the cluster overview (GET /overview).
type Overview struct {
	TaskManagers       int
	SlotsTotal         int
	SlotsAvailable     int
	TaskManagerBlocked int
	JobsRunning        int
	JobsFinished       int
	JobsCancelled      int
	JobsFailed         int
	FlinkVersion       string
	FlinkCommit        string
}

// JobSummary is one entry of the job list.
type JobSummary struct {
	ID               string
	Name             string
	State            JobStatus
	StartTime        time.Time
	EndTime          time.Time // zero while the job runs
	LastModification time.Time
}

// JobDetails describes one job (GET /jobs/:jobid).
type JobDetails struct {
	ID             string
	Name           string
	State          JobStatus
	JobType        string // STREAMING or BATCH; empty if Flink does not say
	IsStoppable    bool
	StartTime      time.Time
	EndTime        time.Time // zero while the job runs
	Duration       time.Duration
	MaxParallelism int
	// Now is the JobManager's clock when it answered.
	Now time.Time
	// Timestamps holds when the job entered each state it went through.
	Timestamps map[JobStatus]time.Time
	Vertices   []Vertex
}

// Vertex is one vertex (operator chain) of a job.
type Vertex struct {
	ID             string
	Name           string
	Parallelism    int
	MaxParallelism int
	// Status is the vertex's execution state (CREATED, SCHEDULED, DEPLOYING,
	// INITIALIZING, RUNNING, FINISHED, CANCELING, CANCELED, FAILED, RECONCILING).
	Status string
	// Tasks counts the vertex's subtasks per execution state.
	Tasks     map[string]int
	StartTime time.Time
}

// RunningTasks returns how many subtasks of the vertex are RUNNING.
func (v Vertex) RunningTasks() int { return v.Tasks["RUNNING"] }

// AllTasksRunning reports whether the job has vertices and every subtask of
// every vertex is RUNNING (or FINISHED, for bounded sources that ended).
func (d JobDetails) AllTasksRunning() bool {
	if len(d.Vertices) == 0 {
		return false
	}
	for _, v := range d.Vertices {
		if v.Tasks["RUNNING"]+v.Tasks["FINISHED"] != v.Parallelism {
			return false
		}
	}
	return true
}

// Exception is one failure in a job's exception history, newest first.
type Exception struct {
	// Name is the Java exception class, e.g. java.lang.RuntimeException.
	Name string
	// Message is the root cause in readable form (from the stack trace).
	Message string
	// Stacktrace is the full Java stack trace, for logs.
	Stacktrace    string
	Time          time.Time
	TaskName      string
	Endpoint      string // host:port of the TaskManager, if the failure was in a task
	TaskManagerID string
	FailureLabels map[string]string
	// Concurrent lists failures that happened together with this root one.
	Concurrent []Exception
}

// Exceptions is a job's exception history (GET /jobs/:jobid/exceptions).
type Exceptions struct {
	Entries   []Exception
	Truncated bool
}

// Checkpoint summarises one checkpoint or savepoint.
type Checkpoint struct {
	ID          int64
	Status      string // COMPLETED, IN_PROGRESS, FAILED
	IsSavepoint bool
	// ExternalPath is where the checkpoint lives, e.g. file:/ckpt/<job>/chk-7;
	// empty for checkpoints that are not externalised.
	ExternalPath     string
	TriggerTime      time.Time
	LatestAckTime    time.Time
	Type             string // CHECKPOINT, SAVEPOINT, SYNC_SAVEPOINT, UNALIGNED_CHECKPOINT …
	Discarded        bool
	FailureTime      time.Time
	FailureMessage   string
	StateSize        int64
	CheckpointedSize int64
}

// Restored describes the checkpoint or savepoint the job was restored from.
type Restored struct {
	ID           int64
	IsSavepoint  bool
	ExternalPath string
	RestoreTime  time.Time
}

// CheckpointCounts counts a job's checkpoints since the JobManager started.
type CheckpointCounts struct {
	Restored, Total, InProgress, Completed, Failed int64
}

// Checkpoints is a job's checkpointing statistics (GET /jobs/:jobid/checkpoints).
type Checkpoints struct {
	// Disabled is set, and everything else empty, when the job runs without
	// checkpointing (Flink answers 404 "Checkpointing has not been enabled.").
	Disabled        bool
	Counts          CheckpointCounts
	LatestCompleted *Checkpoint // nil if none yet
	LatestSavepoint *Checkpoint // nil if none yet
	LatestFailed    *Checkpoint // nil if none
	Restored        *Restored   // nil if the job started empty
	// History holds the most recent checkpoints, newest first, including
	// those still in progress.
	History []Checkpoint
}

// InProgress reports whether a checkpoint or savepoint is currently running.
func (c Checkpoints) InProgress() bool { return c.Counts.InProgress > 0 }

// TaskManager describes one registered TaskManager.
type TaskManager struct {
	ID            string
	Path          string // RPC address
	DataPort      int
	SlotsNumber   int
	FreeSlots     int
	LastHeartbeat time.Time
	Blocked       bool
}

// OperationStatus is the state of an asynchronous operation.
type OperationStatus string

// Asynchronous operation states.
const (
	InProgress OperationStatus = "IN_PROGRESS"
	Completed  OperationStatus = "COMPLETED"
)

// Operation is the state of an asynchronous operation: a savepoint,
// stop-with-savepoint, checkpoint or savepoint disposal.
type Operation struct {
	Status OperationStatus
	// Location is the savepoint path, for a completed savepoint.
	Location string
	// CheckpointID is the checkpoint's id, for a completed checkpoint.
	CheckpointID int64
	// FailureCause is set when the operation completed with a failure; it is
	// an *Error of KindOperationFailed whose Message is Flink's root cause.
	FailureCause error
}

// Err returns nil for a successful completed operation, FailureCause for a
// failed one, and an error matching ErrInProgress while it runs.
func (o Operation) Err() error {
	switch {
	case o.Status != Completed:
		return &Error{Kind: KindInProgress, Message: "operation still in progress"}
	case o.FailureCause != nil:
		return o.FailureCause
	}
	return nil
}

// SavepointFormat is the savepoint format type.
type SavepointFormat string

// Savepoint formats. The empty value lets Flink choose (CANONICAL).
const (
	FormatCanonical SavepointFormat = "CANONICAL"
	FormatNative    SavepointFormat = "NATIVE"
)

// SavepointOptions configures TriggerSavepoint.
type SavepointOptions struct {
	// TargetDir is where the savepoint is written; empty uses the cluster's
	// execution.checkpointing.savepoint-dir (state.savepoints.dir in 1.x).
	TargetDir string
	// TriggerID is a caller-chosen 32-hex-digit id (see NewTriggerID). Choose
	// and persist it before calling, so that a retry after a crash asks for
	// the same savepoint instead of taking another one. Empty lets Flink choose.
	// Use a fresh id per operation: Flink keys savepoints and stops by (job,
	// trigger id) alone, so a stop that reuses a savepoint's id is
	// acknowledged and silently does nothing.
	TriggerID string
	// FormatType is CANONICAL (default) or NATIVE.
	FormatType SavepointFormat
	// Cancel cancels the job once the savepoint completes (deprecated in
	// Flink in favour of StopWithSavepoint).
	Cancel bool
}

// StopOptions configures StopWithSavepoint.
type StopOptions struct {
	// TargetDir, TriggerID and FormatType are as in SavepointOptions.
	TargetDir  string
	TriggerID  string
	FormatType SavepointFormat
	// Drain emits MAX_WATERMARK before stopping, flushing event-time timers
	// and windows; use it when the job is not meant to resume.
	Drain bool
}

// CheckpointType is the type of a manually triggered checkpoint.
type CheckpointType string

// Checkpoint types for TriggerCheckpoint. The empty value lets Flink use the
// job's configured type.
const (
	CheckpointConfigured  CheckpointType = "CONFIGURED"
	CheckpointFull        CheckpointType = "FULL"
	CheckpointIncremental CheckpointType = "INCREMENTAL"
)

// ClaimMode says how a restored job treats the snapshot it starts from.
type ClaimMode string

// Claim modes (Flink's RecoveryClaimMode; RestoreMode in 1.x).
const (
	// ClaimNoClaim: Flink does not take ownership; the first checkpoint is full.
	ClaimNoClaim ClaimMode = "NO_CLAIM"
	// ClaimClaim: Flink owns the snapshot and may delete it.
	ClaimClaim ClaimMode = "CLAIM"
	// ClaimLegacy: the pre-1.15 behaviour; deprecated.
	ClaimLegacy ClaimMode = "LEGACY"
)

// JarRunRequest configures RunJar.
type JarRunRequest struct {
	// EntryClass overrides the jar manifest's main class.
	EntryClass string
	// Args are the program arguments, one per element.
	Args []string
	// Parallelism is the default parallelism; 0 keeps the cluster default.
	Parallelism int
	// JobID is a caller-chosen 32-hex-digit job id (see NewJobID), so that a
	// retried submission is recognised as a duplicate instead of starting a
	// second job.
	JobID string
	// SavepointPath restores the job from this savepoint or checkpoint.
	SavepointPath string
	// AllowNonRestoredState lets the restore skip state no operator claims.
	AllowNonRestoredState bool
	// ClaimMode is sent as claimMode to Flink 1.20 and later and as
	// restoreMode to older versions; empty keeps Flink's default (NO_CLAIM).
	ClaimMode ClaimMode
	// FlinkConfiguration is job configuration passed with the submission.
	FlinkConfiguration map[string]string
}
