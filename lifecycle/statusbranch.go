package lifecycle

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// NotDeployed is the lifecycle state shown for a resource whose spec was
// rejected before anything of it was deployed.
const NotDeployed = "NOT_DEPLOYED"

// ResourceStatus is one resource's file on the status branch,
// <namespace>/<kind>/<name>.yaml: what a person needs to see after a push.
type ResourceStatus struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`

	// LifecycleState, JobState and JobManager as in the operator's status.
	LifecycleState string `json:"lifecycleState"`
	JobState       string `json:"jobState,omitempty"`
	JobID          string `json:"jobId,omitempty"`
	JobManager     string `json:"jobManager,omitempty"`

	// SourceCommit is the commit whose spec the daemon is working towards;
	// LastReconciledCommit the one whose spec is deployed.
	SourceCommit         string `json:"sourceCommit,omitempty"`
	LastReconciledCommit string `json:"lastReconciledCommit,omitempty"`
	EntryPoint           string `json:"entryPoint,omitempty"`
	Path                 string `json:"path,omitempty"`

	// Operation in flight, e.g. "Upgrade (savepoint): AwaitSavepoint".
	Operation string `json:"operation,omitempty"`
	// Error of the last reconciliation; Problems are validation problems of
	// the resource in SourceCommit (nothing of it was applied).
	Error    string   `json:"error,omitempty"`
	Problems []string `json:"problems,omitempty"`
	// Warnings are what the resource's spec sets that flink-gitops accepts
	// but does not act on (see README's field-by-field table).
	Warnings []string `json:"warnings,omitempty"`
	// Waiting says why the operation the spec asks for has not started
	// (e.g. reconcile.maxConcurrentUpgrades reached).
	Waiting string `json:"waiting,omitempty"`
	// Attempts counts the failed tries of the operation's current step (or
	// the refusals of the refused spec); NextAttempt is when it is tried
	// again (RFC 3339).
	Attempts    int    `json:"attempts,omitempty"`
	NextAttempt string `json:"nextAttempt,omitempty"`

	// UpgradeSavepointPath is what a suspended job resumes from.
	UpgradeSavepointPath string `json:"upgradeSavepointPath,omitempty"`
	// Savepoints, newest first.
	Savepoints []SavepointEntry `json:"savepoints,omitempty"`
	// Snapshots are the savepoints and checkpoints the daemon took of the
	// job by itself, newest first, as the operator lists them as
	// FlinkStateSnapshot resources (snapshotlist.go).
	Snapshots []SnapshotEntry `json:"snapshots,omitempty"`
	// LastCheckpoint is the newest checkpoint taken on request (nonce or
	// periodic.checkpoint.interval); CheckpointInProgress its trigger while
	// one is taken.
	LastCheckpoint       *CheckpointEntry `json:"lastCheckpoint,omitempty"`
	CheckpointInProgress string           `json:"checkpointInProgress,omitempty"`

	// ClusterInfo, TaskManager and Conditions as in the operator's
	// FlinkDeployment status (Flink version and revision, total CPU and
	// memory; the TaskManager pods; the Running condition).
	ClusterInfo map[string]string        `json:"clusterInfo,omitempty"`
	TaskManager *v1beta1.TaskManagerInfo `json:"taskManager,omitempty"`
	Conditions  []metav1.Condition       `json:"conditions,omitempty"`
	// Snapshot is a FlinkStateSnapshot's status (the operator's schema).
	Snapshot *v1beta1.FlinkStateSnapshotStatus `json:"snapshot,omitempty"`

	// Restarts are the restarts the daemon started by itself, with the
	// latest one's reason.
	Restarts *Restarts `json:"restarts,omitempty"`
}

// State is the lifecycle state with the operation in flight, if any.
func (r ResourceStatus) State() string {
	if r.Operation != "" {
		return r.LifecycleState + " (" + r.Operation + ")"
	}
	return r.LifecycleState
}

// Trouble is what needs attention: the validation problems of the wanted
// commit, else the reconcile error ("" when there is none).
func (r ResourceStatus) Trouble() string {
	if len(r.Problems) > 0 {
		return strings.Join(r.Problems, "; ")
	}
	return r.Error
}

// SavepointEntry is one savepoint of the history.
type SavepointEntry struct {
	Time    string `json:"time"`
	Trigger string `json:"trigger"`
	Path    string `json:"path"`
	// Commit is the source commit whose spec the job ran.
	Commit string `json:"commit,omitempty"`
}

// Summary is what the status branch's README says about one cycle.
type Summary struct {
	// SourceCommit is the watched branch's commit the cycle rendered.
	SourceCommit string
	// Problems not tied to one resource (entry points that failed).
	Problems []string
	// Warnings per resource key (Kind/namespace/name) in SourceCommit.
	Warnings map[string][]string
	// Generated is when the files were made.
	Generated time.Time
}

// StatusFiles renders the status branch: one YAML file per resource and a
// README.md table. problems holds validation problems per resource key
// ("Kind/namespace/name"); desiredCommit the commit of each key's desired
// spec. Files of resources without a record are not written.
func StatusFiles(records []*Record, problems map[string][]string, desiredCommit map[string]string, sum Summary) (map[string][]byte, error) {
	files := map[string][]byte{}
	var rows []ResourceStatus
	for _, r := range records {
		key := Key(r.Kind, r.Namespace, r.Name)
		rs := resourceStatus(r, problems[key], desiredCommit[key])
		rs.Warnings = sum.Warnings[key]
		b, err := yaml.Marshal(rs)
		if err != nil {
			return nil, fmt.Errorf("status file of %s: %w", key, err)
		}
		files[StatusPath(r.Kind, r.Namespace, r.Name)] = append([]byte("# Written by flink-gitops; do not edit.\n"), b...)
		rows = append(rows, rs)
	}
	// A resource rejected before it was ever deployed has no record; its
	// problems must still show where the user looks.
	seen := map[string]bool{}
	for _, r := range records {
		seen[Key(r.Kind, r.Namespace, r.Name)] = true
	}
	for key, probs := range problems {
		if seen[key] || len(probs) == 0 {
			continue
		}
		parts := strings.SplitN(key, "/", 3)
		if len(parts) != 3 {
			continue
		}
		rs := ResourceStatus{Kind: parts[0], Namespace: parts[1], Name: parts[2], LifecycleState: NotDeployed,
			Problems: probs, Warnings: sum.Warnings[key], SourceCommit: desiredCommit[key]}
		if rs.SourceCommit == "" {
			rs.SourceCommit = sum.SourceCommit
		}
		b, err := yaml.Marshal(rs)
		if err != nil {
			return nil, fmt.Errorf("status file of %s: %w", key, err)
		}
		files[StatusPath(rs.Kind, rs.Namespace, rs.Name)] = append([]byte("# Written by flink-gitops; do not edit.\n"), b...)
		rows = append(rows, rs)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	files["README.md"] = []byte(readme(rows, sum))
	return files, nil
}

// Key is the daemon's key of a resource: Kind/namespace/name.
func Key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// StatusPath is a resource's file on the status branch.
func StatusPath(kind, namespace, name string) string {
	return path.Join(namespace, kind, name+".yaml")
}

func resourceStatus(r *Record, problems []string, desiredCommit string) ResourceStatus {
	c := r.Common()
	rs := ResourceStatus{
		Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
		LifecycleState: string(c.LifecycleState),
		JobState:       string(c.JobStatus.State),
		JobID:          c.JobStatus.JobID,
		Error:          c.Error,
		Problems:       problems,
		SourceCommit:   desiredCommit,

		UpgradeSavepointPath: c.JobStatus.UpgradeSavepointPath,
		Restarts:             r.Restarts,
		Waiting:              r.Waiting,
	}
	if d := r.Deployment; d != nil {
		rs.JobManager = string(d.JobManagerDeploymentStatus)
		rs.ClusterInfo, rs.TaskManager, rs.Conditions = d.ClusterInfo, d.TaskManager, d.Conditions
	}
	if r.Snapshot != nil {
		st := r.Snapshot.Status
		rs.Snapshot, rs.JobState = &st, ""
	}
	if c.Source != nil {
		rs.LastReconciledCommit = c.Source.Commit
		rs.EntryPoint, rs.Path = c.Source.EntryPoint, c.Source.Path
	}
	if op := r.Operation; op != nil {
		rs.Operation = string(op.Kind)
		if op.UpgradeMode != "" && op.Kind != OpSavepoint && op.Kind != OpCheckpoint {
			rs.Operation += " (" + string(op.UpgradeMode) + ")"
		}
		rs.Operation += ": " + string(op.Phase)
		if op.Message != "" {
			rs.Operation += " — " + op.Message
		}
		if op.Source != nil && rs.SourceCommit == "" {
			rs.SourceCommit = op.Source.Commit
		}
	}
	switch op, rf := r.Operation, r.Refused; {
	case op != nil && op.Attempts > 0:
		rs.Attempts = op.Attempts
		if !op.NextAttempt.IsZero() {
			rs.NextAttempt = op.NextAttempt.UTC().Format(time.RFC3339)
		}
	case op == nil && rf != nil:
		rs.Attempts, rs.NextAttempt = rf.Attempts, rf.NextAttempt.UTC().Format(time.RFC3339)
	}
	rs.LastCheckpoint, rs.CheckpointInProgress = checkpointEntry(c.JobStatus.CheckpointInfo)
	if si := c.JobStatus.SavepointInfo; si != nil {
		for i := len(si.SavepointHistory) - 1; i >= 0; i-- {
			rs.Savepoints = append(rs.Savepoints, savepointEntry(si.SavepointHistory[i]))
		}
	}
	if snapshotResourcesEnabled(r) {
		var hist []v1beta1.Savepoint
		if si := c.JobStatus.SavepointInfo; si != nil {
			hist = si.SavepointHistory
		}
		var last *v1beta1.Checkpoint
		if ci := c.JobStatus.CheckpointInfo; ci != nil {
			last = ci.LastCheckpoint
		}
		rs.Snapshots = snapshotEntries(r.Name, hist, last)
	}
	return rs
}

func savepointEntry(sp v1beta1.Savepoint) SavepointEntry {
	return SavepointEntry{
		Time:    time.UnixMilli(sp.TimeStamp).UTC().Format(time.RFC3339),
		Trigger: string(sp.TriggerType),
		Path:    sp.Location,
		Commit:  sp.Commit,
	}
}

// readme renders the summary table, readable in any Git web UI.
func readme(rows []ResourceStatus, sum Summary) string {
	var b strings.Builder
	b.WriteString("# flink-gitops status\n\n")
	fmt.Fprintf(&b, "Source commit `%s`, written %s. One file per resource: `<namespace>/<kind>/<name>.yaml`.\n\n",
		short(sum.SourceCommit), sum.Generated.UTC().Format(time.RFC3339))
	if len(sum.Problems) > 0 {
		b.WriteString("## Problems\n\n")
		for _, p := range sum.Problems {
			fmt.Fprintf(&b, "- %s\n", mdEscape(p))
		}
		b.WriteString("\n")
	}
	b.WriteString("| namespace | kind | name | lifecycle | job | last reconciled | last savepoint | error |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		lastSP := ""
		if len(r.Savepoints) > 0 {
			lastSP = r.Savepoints[0].Path
		} else if r.Snapshot != nil {
			lastSP = r.Snapshot.Path
		}
		state, errText := r.State(), r.Trouble()
		fmt.Fprintf(&b, "| %s | %s | [%s](%s) | %s | %s | %s | %s | %s |\n",
			r.Namespace, r.Kind, r.Name, StatusPath(r.Kind, r.Namespace, r.Name),
			mdEscape(state), r.JobState, short(r.LastReconciledCommit), mdEscape(lastSP), mdEscape(truncate(errText, 200)))
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
