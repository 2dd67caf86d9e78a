// Package v1beta1 holds Go types for the Flink Kubernetes Operator's
// flink.apache.org/v1beta1 resources, FlinkDeployment and FlinkSessionJob,
// with the operator's JSON names, enums and defaults (spec and status).
//
// Defaults the operator applies while deserialising (job.state=running,
// job.upgradeMode=stateless, job.args=[], jobManager.replicas=1) are applied
// by the UnmarshalJSON methods here, so a field that is absent decodes like
// it does in the operator, and a field set explicitly (even to zero) keeps
// its value for validation.
package v1beta1

import (
	"encoding/json"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group, Version and kinds of the resources.
const (
	Group                 = "flink.apache.org"
	Version               = "v1beta1"
	APIVersion            = Group + "/" + Version
	KindFlinkDeployment   = "FlinkDeployment"
	KindFlinkSessionJob   = "FlinkSessionJob"
	MainContainerName     = "flink-main-container"
	DefaultJobManagerReps = 1
)

// FlinkVersion is the operator's FlinkVersion enum (major_minor).
type FlinkVersion string

// Every value of the operator's FlinkVersion enum.
const (
	FlinkV1_13 FlinkVersion = "v1_13"
	FlinkV1_14 FlinkVersion = "v1_14"
	FlinkV1_15 FlinkVersion = "v1_15"
	FlinkV1_16 FlinkVersion = "v1_16"
	FlinkV1_17 FlinkVersion = "v1_17"
	FlinkV1_18 FlinkVersion = "v1_18"
	FlinkV1_19 FlinkVersion = "v1_19"
	FlinkV1_20 FlinkVersion = "v1_20"
	FlinkV2_0  FlinkVersion = "v2_0"
	FlinkV2_1  FlinkVersion = "v2_1"
	FlinkV2_2  FlinkVersion = "v2_2"
	FlinkV2_3  FlinkVersion = "v2_3"
	FlinkV2_4  FlinkVersion = "v2_4"
)

// FlinkVersions lists the operator's FlinkVersion enum in order.
var FlinkVersions = []FlinkVersion{
	FlinkV1_13, FlinkV1_14, FlinkV1_15, FlinkV1_16, FlinkV1_17, FlinkV1_18, FlinkV1_19,
	FlinkV1_20, FlinkV2_0, FlinkV2_1, FlinkV2_2, FlinkV2_3, FlinkV2_4,
}

// Major returns the major Flink version (1 or 2), or 0 for an unknown value.
func (v FlinkVersion) Major() int {
	if len(v) >= 2 && v[0] == 'v' {
		return int(v[1] - '0')
	}
	return 0
}

// Supported reports whether the operator still supports v (1.15 and newer,
// the operator's FlinkVersion.isSupported).
func (v FlinkVersion) Supported() bool {
	i := slices.Index(FlinkVersions, v)
	return i >= 0 && i >= slices.Index(FlinkVersions, FlinkV1_15)
}

// Known reports whether v is a value of the operator's enum.
func (v FlinkVersion) Known() bool {
	for _, k := range FlinkVersions {
		if k == v {
			return true
		}
	}
	return false
}

// JobState is the desired state of a job.
type JobState string

// JobState values.
const (
	JobStateRunning   JobState = "running"
	JobStateSuspended JobState = "suspended"
)

// UpgradeMode says how a job is upgraded.
type UpgradeMode string

// UpgradeMode values.
const (
	UpgradeModeSavepoint UpgradeMode = "savepoint"
	UpgradeModeLastState UpgradeMode = "last-state"
	UpgradeModeStateless UpgradeMode = "stateless"
)

// DeploymentMode is the Kubernetes deployment mode of the Flink cluster.
// An empty mode means native, as in the operator.
type DeploymentMode string

// DeploymentMode values.
const (
	ModeNative     DeploymentMode = "native"
	ModeStandalone DeploymentMode = "standalone"
)

// FlinkDeployment is a Flink cluster: an application cluster when spec.job
// is set, a session cluster otherwise.
type FlinkDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FlinkDeploymentSpec    `json:"spec"`
	Status *FlinkDeploymentStatus `json:"status,omitempty"`
}

// FlinkSessionJob is a job submitted to a session cluster.
type FlinkSessionJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FlinkSessionJobSpec    `json:"spec"`
	Status *FlinkSessionJobStatus `json:"status,omitempty"`
}

// FlinkDeploymentSpec is the operator's FlinkDeploymentSpec (with the fields
// of AbstractFlinkSpec).
type FlinkDeploymentSpec struct {
	// Job is the application job; nil for a session cluster.
	Job *JobSpec `json:"job,omitempty"`
	// RestartNonce: changing it restarts the cluster/job.
	RestartNonce *int64 `json:"restartNonce,omitempty"`
	// FlinkConfiguration is the Flink configuration, flat keys.
	FlinkConfiguration FlinkConfiguration `json:"flinkConfiguration,omitempty"`
	// Image is the Flink image of the JobManager and TaskManager pods.
	Image string `json:"image,omitempty"`
	// ImagePullPolicy of the Flink image.
	ImagePullPolicy string `json:"imagePullPolicy,omitempty"`
	// ServiceAccount used by the Flink pods.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// FlinkVersion of the image.
	FlinkVersion FlinkVersion `json:"flinkVersion,omitempty"`
	// Ingress for the JobManager REST endpoint.
	Ingress *IngressSpec `json:"ingress,omitempty"`
	// PodTemplate is the base template of all Flink pods.
	PodTemplate *PodTemplate `json:"podTemplate,omitempty"`
	// JobManager spec.
	JobManager *JobManagerSpec `json:"jobManager,omitempty"`
	// TaskManager spec.
	TaskManager *TaskManagerSpec `json:"taskManager,omitempty"`
	// LogConfiguration maps log config file names (log4j-console.properties,
	// logback-console.xml) to their contents.
	LogConfiguration map[string]string `json:"logConfiguration,omitempty"`
	// Mode is native (default) or standalone.
	Mode DeploymentMode `json:"mode,omitempty"`
}

// IsSession reports whether the deployment is a session cluster (no job).
func (s *FlinkDeploymentSpec) IsSession() bool { return s.Job == nil }

// EffectiveMode returns the mode, native when unset (as the operator does).
func (s *FlinkDeploymentSpec) EffectiveMode() DeploymentMode {
	if s.Mode == "" {
		return ModeNative
	}
	return s.Mode
}

// FlinkSessionJobSpec is the operator's FlinkSessionJobSpec.
type FlinkSessionJobSpec struct {
	// Job to submit.
	Job *JobSpec `json:"job,omitempty"`
	// RestartNonce: changing it restarts the job.
	RestartNonce *int64 `json:"restartNonce,omitempty"`
	// FlinkConfiguration overrides for the job, flat keys.
	FlinkConfiguration FlinkConfiguration `json:"flinkConfiguration,omitempty"`
	// DeploymentName is the name of the target session cluster.
	DeploymentName string `json:"deploymentName,omitempty"`
}

// JobSpec is the operator's JobSpec.
type JobSpec struct {
	// JarURI of the job jar (local:// for a jar in the image).
	JarURI string `json:"jarURI,omitempty"`
	// Parallelism of the job (a Java int: always present, 0 when unset).
	Parallelism int32 `json:"parallelism"`
	// EntryClass is the main class.
	EntryClass string `json:"entryClass,omitempty"`
	// Args for the main class (default empty list).
	Args []string `json:"args"`
	// State is the desired job state (default running).
	State JobState `json:"state,omitempty"`
	// SavepointTriggerNonce: a change triggers a manual savepoint (deprecated in the operator).
	SavepointTriggerNonce *int64 `json:"savepointTriggerNonce,omitempty"`
	// InitialSavepointPath to start the job from on first deployment.
	InitialSavepointPath string `json:"initialSavepointPath,omitempty"`
	// CheckpointTriggerNonce: a change triggers a manual checkpoint (deprecated in the operator).
	CheckpointTriggerNonce *int64 `json:"checkpointTriggerNonce,omitempty"`
	// UpgradeMode of the job (default stateless).
	UpgradeMode UpgradeMode `json:"upgradeMode,omitempty"`
	// AllowNonRestoredState when restoring.
	AllowNonRestoredState *bool `json:"allowNonRestoredState,omitempty"`
	// SavepointRedeployNonce: a change redeploys from initialSavepointPath.
	SavepointRedeployNonce *int64 `json:"savepointRedeployNonce,omitempty"`
	// AutoscalerResetNonce: a change resets the autoscaler.
	AutoscalerResetNonce *int64 `json:"autoscalerResetNonce,omitempty"`
}

// UnmarshalJSON decodes a JobSpec with the operator's defaults for absent fields.
func (j *JobSpec) UnmarshalJSON(b []byte) error {
	type plain JobSpec
	p := plain{Args: []string{}, State: JobStateRunning, UpgradeMode: UpgradeModeStateless}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Args == nil {
		p.Args = []string{}
	}
	*j = JobSpec(p)
	return nil
}

// Resource is the operator's (deprecated) Resource: cpu, memory, ephemeral storage.
type Resource struct {
	// CPU cores.
	CPU *float64 `json:"cpu,omitempty"`
	// Memory, e.g. 1024m, 2g.
	Memory string `json:"memory,omitempty"`
	// EphemeralStorage, e.g. 2G.
	EphemeralStorage string `json:"ephemeralStorage,omitempty"`
}

// JobManagerSpec is the operator's JobManagerSpec.
type JobManagerSpec struct {
	// Resource is the deprecated resource block.
	Resource *Resource `json:"resource,omitempty"`
	// Resources are Kubernetes resource requirements (the newer form); when
	// set they win over Resource.
	Resources *ResourceRequirements `json:"resources,omitempty"`
	// Replicas of the JobManager (default 1; more than 1 needs HA).
	Replicas int32 `json:"replicas"`
	// PodTemplate merged over spec.podTemplate for JobManager pods.
	PodTemplate *PodTemplate `json:"podTemplate,omitempty"`
}

// UnmarshalJSON decodes a JobManagerSpec with replicas defaulting to 1.
func (j *JobManagerSpec) UnmarshalJSON(b []byte) error {
	type plain JobManagerSpec
	p := plain{Replicas: DefaultJobManagerReps}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*j = JobManagerSpec(p)
	return nil
}

// TaskManagerSpec is the operator's TaskManagerSpec.
type TaskManagerSpec struct {
	// Resource is the deprecated resource block.
	Resource *Resource `json:"resource,omitempty"`
	// Resources are Kubernetes resource requirements (the newer form); when
	// set they win over Resource.
	Resources *ResourceRequirements `json:"resources,omitempty"`
	// Replicas of TaskManagers; takes precedence over parallelism when set.
	Replicas *int32 `json:"replicas,omitempty"`
	// PodTemplate merged over spec.podTemplate for TaskManager pods.
	PodTemplate *PodTemplate `json:"podTemplate,omitempty"`
}

// IngressSpec is the operator's IngressSpec.
type IngressSpec struct {
	// Template of the ingress host/path, with {{name}} and {{namespace}}.
	Template string `json:"template,omitempty"`
	// ClassName of the ingress.
	ClassName string `json:"className,omitempty"`
	// Annotations of the ingress.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels of the ingress.
	Labels map[string]string `json:"labels,omitempty"`
	// TLS of the ingress.
	TLS []networkingv1.IngressTLS `json:"tls,omitempty"`
}

// PodTemplate is a pod template as the operator accepts it: a
// PodTemplateSpec that may also carry apiVersion/kind (its schema is Pod's).
type PodTemplate struct {
	metav1.TypeMeta        `json:",inline"`
	corev1.PodTemplateSpec `json:",inline"`
}

// CommonStatus is the part of the status shared by both kinds.
type CommonStatus struct {
	// JobStatus is the observed job status.
	JobStatus JobStatus `json:"jobStatus"`
	// Error of the last reconciliation.
	Error string `json:"error,omitempty"`
	// ObservedGeneration of the last reconciled spec.
	ObservedGeneration *int64 `json:"observedGeneration,omitempty"`
	// LifecycleState is a summary of the resource's state.
	LifecycleState LifecycleState `json:"lifecycleState,omitempty"`
	// Source says where the last reconciled spec came from (flink-gitops extension).
	Source *SourceRef `json:"source,omitempty"`
}

// SourceRef locates a spec in Git: flink-gitops's addition to the status.
type SourceRef struct {
	// Commit is the Git commit the spec was rendered from.
	Commit string `json:"commit,omitempty"`
	// EntryPoint is the Kustomize entry point (repo-relative directory).
	EntryPoint string `json:"entryPoint,omitempty"`
	// Path is the file that declared the resource (repo-relative).
	Path string `json:"path,omitempty"`
	// RenderHash is the stable hash of the normalised spec.
	RenderHash string `json:"renderHash,omitempty"`
}

// FlinkDeploymentStatus is the operator's FlinkDeploymentStatus.
type FlinkDeploymentStatus struct {
	CommonStatus `json:",inline"`
	// ClusterInfo holds cluster details (flink-version, revision, ...).
	ClusterInfo map[string]string `json:"clusterInfo,omitempty"`
	// JobManagerDeploymentStatus of the JobManager deployment (default MISSING).
	JobManagerDeploymentStatus JobManagerDeploymentStatus `json:"jobManagerDeploymentStatus,omitempty"`
	// ReconciliationStatus of the spec.
	ReconciliationStatus ReconciliationStatus `json:"reconciliationStatus"`
	// TaskManager info for scaling.
	TaskManager *TaskManagerInfo `json:"taskManager,omitempty"`
	// Conditions (Running).
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FlinkSessionJobStatus is the operator's FlinkSessionJobStatus.
type FlinkSessionJobStatus struct {
	CommonStatus `json:",inline"`
	// ReconciliationStatus of the spec.
	ReconciliationStatus ReconciliationStatus `json:"reconciliationStatus"`
}

// TaskManagerInfo is the operator's TaskManagerInfo.
type TaskManagerInfo struct {
	// LabelSelector of the TaskManager pods.
	LabelSelector string `json:"labelSelector,omitempty"`
	// Replicas of TaskManagers.
	Replicas int32 `json:"replicas"`
}

// JobStatus is the operator's JobStatus.
type JobStatus struct {
	// JobName as reported by Flink.
	JobName string `json:"jobName,omitempty"`
	// JobID of the running job.
	JobID string `json:"jobId,omitempty"`
	// State is Flink's job status.
	State FlinkJobState `json:"state,omitempty"`
	// StartTime in epoch millis, as a string.
	StartTime string `json:"startTime,omitempty"`
	// UpdateTime in epoch millis, as a string.
	UpdateTime string `json:"updateTime,omitempty"`
	// UpgradeSavepointPath is the savepoint taken for the last upgrade.
	UpgradeSavepointPath string `json:"upgradeSavepointPath,omitempty"`
	// SavepointInfo (deprecated in the operator, still written).
	SavepointInfo *SavepointInfo `json:"savepointInfo,omitempty"`
	// CheckpointInfo (deprecated in the operator, still written).
	CheckpointInfo *CheckpointInfo `json:"checkpointInfo,omitempty"`
}

// SavepointInfo is the operator's SavepointInfo.
type SavepointInfo struct {
	LastSavepoint                  *Savepoint          `json:"lastSavepoint,omitempty"`
	TriggerID                      string              `json:"triggerId,omitempty"`
	TriggerTimestamp               *int64              `json:"triggerTimestamp,omitempty"`
	TriggerType                    SnapshotTriggerType `json:"triggerType,omitempty"`
	FormatType                     SavepointFormatType `json:"formatType,omitempty"`
	SavepointHistory               []Savepoint         `json:"savepointHistory,omitempty"`
	LastPeriodicSavepointTimestamp int64               `json:"lastPeriodicSavepointTimestamp"`
}

// Savepoint is the operator's Savepoint.
type Savepoint struct {
	TimeStamp    int64               `json:"timeStamp"`
	Location     string              `json:"location,omitempty"`
	TriggerType  SnapshotTriggerType `json:"triggerType,omitempty"`
	FormatType   SavepointFormatType `json:"formatType,omitempty"`
	TriggerNonce *int64              `json:"triggerNonce,omitempty"`
	// Commit is the Git commit of the spec the job ran when the savepoint
	// was taken (flink-gitops extension).
	Commit string `json:"commit,omitempty"`
}

// CheckpointInfo is the operator's CheckpointInfo.
type CheckpointInfo struct {
	LastCheckpoint                  *Checkpoint         `json:"lastCheckpoint,omitempty"`
	TriggerID                       string              `json:"triggerId,omitempty"`
	TriggerTimestamp                *int64              `json:"triggerTimestamp,omitempty"`
	TriggerType                     SnapshotTriggerType `json:"triggerType,omitempty"`
	FormatType                      CheckpointType      `json:"formatType,omitempty"`
	LastPeriodicCheckpointTimestamp int64               `json:"lastPeriodicCheckpointTimestamp"`
}

// Checkpoint is the operator's Checkpoint.
type Checkpoint struct {
	TimeStamp    int64               `json:"timeStamp"`
	TriggerType  SnapshotTriggerType `json:"triggerType,omitempty"`
	FormatType   CheckpointType      `json:"formatType,omitempty"`
	TriggerNonce *int64              `json:"triggerNonce,omitempty"`
	// ID is Flink's checkpoint id and Location its external path ("" when
	// not externally addressable): flink-gitops extensions.
	ID       int64  `json:"checkpointId,omitempty"`
	Location string `json:"location,omitempty"`
}

// ReconciliationStatus is the operator's ReconciliationStatus.
type ReconciliationStatus struct {
	ReconciliationTimestamp int64 `json:"reconciliationTimestamp"`
	// LastReconciledSpec is the JSON of the last deployed spec (with meta).
	LastReconciledSpec string `json:"lastReconciledSpec,omitempty"`
	// LastStableSpec is the JSON of the last spec that became stable.
	LastStableSpec string              `json:"lastStableSpec,omitempty"`
	State          ReconciliationState `json:"state,omitempty"`
}

// SnapshotTriggerType says what triggered a snapshot.
type SnapshotTriggerType string

// SnapshotTriggerType values.
const (
	TriggerManual   SnapshotTriggerType = "MANUAL"
	TriggerPeriodic SnapshotTriggerType = "PERIODIC"
	TriggerUpgrade  SnapshotTriggerType = "UPGRADE"
	TriggerUnknown  SnapshotTriggerType = "UNKNOWN"
)

// SavepointFormatType is the savepoint format.
type SavepointFormatType string

// SavepointFormatType values.
const (
	SavepointCanonical SavepointFormatType = "CANONICAL"
	SavepointNative    SavepointFormatType = "NATIVE"
	SavepointUnknown   SavepointFormatType = "UNKNOWN"
)

// CheckpointType is the checkpoint format.
type CheckpointType string

// CheckpointType values.
const (
	CheckpointFull        CheckpointType = "FULL"
	CheckpointIncremental CheckpointType = "INCREMENTAL"
	CheckpointUnknown     CheckpointType = "UNKNOWN"
)

// ReconciliationState is the state of spec reconciliation.
type ReconciliationState string

// ReconciliationState values.
const (
	ReconciliationDeployed    ReconciliationState = "DEPLOYED"
	ReconciliationUpgrading   ReconciliationState = "UPGRADING"
	ReconciliationRollingBack ReconciliationState = "ROLLING_BACK"
	ReconciliationRolledBack  ReconciliationState = "ROLLED_BACK"
)

// JobManagerDeploymentStatus is the state of the JobManager deployment.
type JobManagerDeploymentStatus string

// JobManagerDeploymentStatus values.
const (
	JMReady            JobManagerDeploymentStatus = "READY"
	JMDeployedNotReady JobManagerDeploymentStatus = "DEPLOYED_NOT_READY"
	JMDeploying        JobManagerDeploymentStatus = "DEPLOYING"
	JMMissing          JobManagerDeploymentStatus = "MISSING"
	JMError            JobManagerDeploymentStatus = "ERROR"
)

// LifecycleState summarises a resource's state.
type LifecycleState string

// LifecycleState values.
const (
	LifecycleCreated     LifecycleState = "CREATED"
	LifecycleSuspended   LifecycleState = "SUSPENDED"
	LifecycleUpgrading   LifecycleState = "UPGRADING"
	LifecycleDeployed    LifecycleState = "DEPLOYED"
	LifecycleStable      LifecycleState = "STABLE"
	LifecycleRollingBack LifecycleState = "ROLLING_BACK"
	LifecycleRolledBack  LifecycleState = "ROLLED_BACK"
	LifecycleFailed      LifecycleState = "FAILED"
	LifecycleDeleting    LifecycleState = "DELETING"
	LifecycleDeleted     LifecycleState = "DELETED"
)

// FlinkJobState is Flink's JobStatus as reported by the REST API.
type FlinkJobState string

// FlinkJobState values.
const (
	JobInitializing FlinkJobState = "INITIALIZING"
	JobCreated      FlinkJobState = "CREATED"
	JobRunning      FlinkJobState = "RUNNING"
	JobFailing      FlinkJobState = "FAILING"
	JobFailed       FlinkJobState = "FAILED"
	JobCancelling   FlinkJobState = "CANCELLING"
	JobCanceled     FlinkJobState = "CANCELED"
	JobFinished     FlinkJobState = "FINISHED"
	JobRestarting   FlinkJobState = "RESTARTING"
	JobSuspended    FlinkJobState = "SUSPENDED"
	JobReconciling  FlinkJobState = "RECONCILING"
)
