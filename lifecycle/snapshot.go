package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// A FlinkStateSnapshot committed to Git asks for one savepoint of a job
// (or records one that already exists), or one checkpoint of it
// (snapshotcheckpoint.go). Its record is a write-ahead log
// like the others: the trigger id is chosen and persisted before the
// savepoint is triggered, and the job's latest savepoint before it, so a
// daemon killed at any point takes the savepoint once. The spec it acted
// on is kept, so that when the resource leaves Git its savepoint is
// disposed of as that spec says (disposeOnDelete).

// SnapshotRecord is the state of one FlinkStateSnapshot.
type SnapshotRecord struct {
	// Common carries the bookkeeping every record has (lifecycle state,
	// source, error). Its LifecycleState mirrors Status.State, so lists of
	// records show the snapshot's state.
	Common v1beta1.CommonStatus `json:"common"`
	// Status is the operator's FlinkStateSnapshotStatus.
	Status v1beta1.FlinkStateSnapshotStatus `json:"status"`
	// Spec is the JSON of the spec acted on and SpecHash its render hash:
	// a snapshot is taken once, so a later change of the spec is reported,
	// not acted on.
	Spec     string `json:"spec,omitempty"`
	SpecHash string `json:"specHash,omitempty"`
	// Cluster is the FlinkDeployment whose JobManager took the savepoint
	// (for a session job, its session cluster): disposal asks it.
	Cluster string `json:"cluster,omitempty"`
}

func newSnapshotRecord() *SnapshotRecord {
	return &SnapshotRecord{Status: v1beta1.FlinkStateSnapshotStatus{State: v1beta1.SnapshotTriggerPending}}
}

// Event reasons of snapshots (the operator's).
const (
	ReasonSnapshotError     = "SnapshotError"
	ReasonSnapshotAbandoned = "SnapshotAbandoned"
	ReasonCleanupFailed     = "CleanupFailed"
)

// snapshotBackoff is the first wait after a failed try (the operator's
// 10 s), doubled per failure up to snapshotBackoffMax.
const (
	snapshotBackoff    = 10 * time.Second
	snapshotBackoffMax = 10 * time.Minute
)

// errSpecChanged is the error shown while a snapshot's spec differs from
// the one it acted on.
const errSpecChanged = "the spec changed after the snapshot was requested; a FlinkStateSnapshot is taken once: " +
	"revert the change, or add a FlinkStateSnapshot with a new name for another savepoint"

// reconcileSnapshot makes one pass over a FlinkStateSnapshot.
func (p *pass) reconcileSnapshot(ctx context.Context) (Result, error) {
	s := p.rec.Snapshot
	if s == nil { // a record of another kind under this name cannot be (Store.Get checks the kind)
		return Result{}, fmt.Errorf("status of %s %s/%s holds no snapshot", p.rec.Kind, p.rec.Namespace, p.rec.Name)
	}
	if p.desired == nil {
		return p.removeSnapshot(ctx)
	}
	if !p.desired.observeOnly() {
		if s.Common.LifecycleState == v1beta1.LifecycleDeleted {
			// Added to Git again after it left: a new snapshot.
			*s = *newSnapshotRecord()
			p.rec.Operation = nil
		}
		p.adoptSnapshotSpec()
	} else if s.Common.LifecycleState == v1beta1.LifecycleDeleted {
		return Result{}, nil
	}
	spec, err := decodeSpec[v1beta1.FlinkStateSnapshotSpec](s.Spec, "snapshot spec")
	if err != nil || spec == nil || spec.Savepoint == nil && spec.Checkpoint == nil {
		return Result{}, err // nothing acted on yet, and nothing known to act on
	}
	defer p.mirrorSnapshotState()
	switch s.Status.State {
	case v1beta1.SnapshotCompleted, v1beta1.SnapshotFailed, v1beta1.SnapshotAbandoned:
		return Result{}, nil
	}
	if p.rec.Operation == nil {
		if spec.Savepoint != nil && spec.Savepoint.Exists() {
			p.snapshotDone(ctx, spec.Savepoint.Path, "existing savepoint recorded: "+spec.Savepoint.Path)
			return Result{}, nil
		}
		s.Status.TriggerID = flinkclient.NewTriggerID()
		s.Status.TriggerTimestamp = p.now().UTC().Format(time.RFC3339)
		op := &Operation{Kind: OpSnapshot, Phase: snapshotTriggerPhase(spec), TriggerID: s.Status.TriggerID, TriggerType: v1beta1.TriggerManual}
		if err := p.begin(ctx, op); err != nil {
			return Result{}, err
		}
	}
	if d, ok := p.waiting(); ok {
		return Result{RequeueAfter: d}, nil
	}
	var wait bool
	switch p.rec.Operation.Phase {
	case PhaseTriggerSavepoint:
		wait, err = p.triggerSnapshot(ctx, spec)
	case PhaseAwaitSavepoint:
		wait, err = p.awaitSnapshot(ctx)
	case PhaseTriggerCheckpoint:
		wait, err = p.triggerSnapshotCheckpoint(ctx, spec)
	case PhaseAwaitCheckpoint:
		wait, err = p.awaitSnapshotCheckpoint(ctx)
	default:
		err = fmt.Errorf("snapshot operation in unknown phase %q", p.rec.Operation.Phase)
	}
	if err != nil {
		return p.snapshotFailed(ctx, spec, err), nil
	}
	if p.rec.Operation == nil {
		return Result{}, nil
	}
	if wait {
		return p.fast(), nil
	}
	return Result{RequeueAfter: time.Millisecond}, nil
}

// adoptSnapshotSpec takes the desired spec the first time, and reports a
// later change of it.
func (p *pass) adoptSnapshotSpec() {
	s, d := p.rec.Snapshot, p.desired
	src := d.Source
	src.RenderHash = d.Hash
	switch {
	case s.SpecHash == "":
		s.Spec, s.SpecHash = specJSON(d.Snapshot.Spec), d.Hash
		s.Common.Source = &src
		p.dirty = true
	case s.SpecHash != d.Hash:
		if s.Common.Error != errSpecChanged {
			s.Common.Error = errSpecChanged
			p.dirty = true
		}
	case s.Common.Error == errSpecChanged:
		s.Common.Error = s.Status.Error
		p.dirty = true
	}
}

// mirrorSnapshotState keeps the record's lifecycle state equal to the
// snapshot's state.
func (p *pass) mirrorSnapshotState() {
	s := p.rec.Snapshot
	if ls := v1beta1.LifecycleState(s.Status.State); s.Common.LifecycleState != ls {
		s.Common.LifecycleState = ls
		p.dirty = true
	}
}

// snapshotTarget is the running job a snapshot is taken of.
type snapshotTarget struct {
	jobID, cluster string
}

// errTargetBusy: the referenced resource is being deployed or changed;
// the snapshot waits for it without counting a failure.
var errTargetBusy = errors.New("busy")

// resolveTarget finds the referenced resource's running job. It returns
// errTargetBusy while that resource is on its way to running, and an
// abandon reason when its job will not run without a new push.
func (p *pass) resolveTarget(ctx context.Context, ref *v1beta1.JobReference) (snapshotTarget, string, error) {
	rec, err := p.r.Store.Get(ctx, ref.Kind, p.rec.Namespace, ref.Name)
	if err != nil {
		return snapshotTarget{}, "", err
	}
	what := ref.Kind + " " + ref.Name
	if rec == nil {
		return snapshotTarget{}, "", fmt.Errorf("%s is not deployed yet: %w", what, errTargetBusy)
	}
	c := rec.Common()
	js := c.JobStatus
	running := js.State == v1beta1.JobRunning && js.JobID != ""
	switch {
	case rec.Operation != nil && rec.Operation.Kind != OpSavepoint:
		return snapshotTarget{}, "", fmt.Errorf("%s is in the middle of %s: %w", what, rec.Operation.Kind, errTargetBusy)
	case c.LifecycleState == v1beta1.LifecycleDeleted:
		return snapshotTarget{}, what + " is deleted", nil
	case !running && (c.LifecycleState == v1beta1.LifecycleSuspended || c.LifecycleState == v1beta1.LifecycleFailed ||
		js.State == v1beta1.JobFinished || js.State == v1beta1.JobCanceled || js.State == v1beta1.JobFailed):
		return snapshotTarget{}, fmt.Sprintf("the job of %s is not running (lifecycle %s, job %s)", what, c.LifecycleState, js.State), nil
	case !running:
		return snapshotTarget{}, "", fmt.Errorf("the job of %s is not running yet (job %s): %w", what, js.State, errTargetBusy)
	}
	t := snapshotTarget{jobID: js.JobID, cluster: ref.Name}
	if rec.Kind == KindSessionJob {
		spec, _ := sessionJobSpec(rec.SessionJob.ReconciliationStatus.LastReconciledSpec)
		if spec == nil || spec.DeploymentName == "" {
			return snapshotTarget{}, "", fmt.Errorf("%s has no reconciled spec naming its session cluster: %w", what, errTargetBusy)
		}
		t.cluster = spec.DeploymentName
	}
	return t, "", nil
}

// pinSnapshotJob resolves the snapshot's job once and persists it with its
// cluster before anything is sent to Flink; it reports whether the snapshot
// was abandoned instead (no such job running).
func (p *pass) pinSnapshotJob(ctx context.Context, spec *v1beta1.FlinkStateSnapshotSpec) (bool, error) {
	s, op := p.rec.Snapshot, p.rec.Operation
	if op.StoppedJobID != "" {
		return false, nil
	}
	t, abandon, err := p.resolveTarget(ctx, spec.JobReference)
	if err != nil {
		return false, err
	}
	if abandon != "" {
		p.abandonSnapshot(ctx, abandon)
		return true, nil
	}
	op.StoppedJobID, s.Cluster = t.jobID, t.cluster
	return false, p.persist(ctx)
}

// triggerSnapshot triggers the savepoint with the persisted trigger id,
// after persisting the job and its latest savepoint before the trigger.
func (p *pass) triggerSnapshot(ctx context.Context, spec *v1beta1.FlinkStateSnapshotSpec) (bool, error) {
	s, op := p.rec.Snapshot, p.rec.Operation
	if abandoned, err := p.pinSnapshotJob(ctx, spec); abandoned || err != nil {
		return false, err
	}
	f, err := p.r.Flink(p.rec.Namespace, s.Cluster)
	if err != nil {
		return false, err
	}
	if op.SavepointBefore == nil {
		cps, err := f.Checkpoints(ctx, op.StoppedJobID)
		if errors.Is(err, flinkclient.ErrNotFound) {
			p.abandonSnapshot(ctx, fmt.Sprintf("job %s is gone from %s", op.StoppedJobID, s.Cluster))
			return false, nil
		}
		if err != nil {
			return false, err
		}
		before := ""
		if cps.LatestSavepoint != nil {
			before = cps.LatestSavepoint.ExternalPath
		}
		op.SavepointBefore = &before
		if err := p.persist(ctx); err != nil {
			return false, err
		}
	} else if p.takenSavepoint(ctx, f) != "" {
		return false, p.to(ctx, PhaseAwaitSavepoint) // sent before a restart, and done since
	}
	_, err = f.TriggerSavepoint(ctx, op.StoppedJobID, flinkclient.SavepointOptions{TargetDir: spec.Savepoint.Path, TriggerID: op.TriggerID,
		FormatType: flinkclient.SavepointFormat(spec.Savepoint.Format())})
	if err != nil && !errors.Is(err, flinkclient.ErrConflict) { // conflict: this trigger id is already running
		return false, err
	}
	s.Status.State = v1beta1.SnapshotInProgress
	return false, p.to(ctx, PhaseAwaitSavepoint)
}

// awaitSnapshot polls the savepoint and records it when done.
func (p *pass) awaitSnapshot(ctx context.Context) (bool, error) {
	s, op := p.rec.Snapshot, p.rec.Operation
	f, err := p.r.Flink(p.rec.Namespace, s.Cluster)
	if err != nil {
		return true, err
	}
	res, err := f.SavepointStatus(ctx, op.StoppedJobID, op.TriggerID)
	if errors.Is(err, flinkclient.ErrNotFound) {
		// Forgotten (done long ago) or never taken (the JobManager
		// restarted): the job's savepoints tell which.
		if loc := p.takenSavepoint(ctx, f); loc != "" {
			res, err = flinkclient.Operation{Status: flinkclient.Completed, Location: loc}, nil
		} else if job, jerr := f.Job(ctx, op.StoppedJobID); errors.Is(jerr, flinkclient.ErrNotFound) || jerr == nil && job.State != flinkclient.JobRunning {
			p.abandonSnapshot(ctx, fmt.Sprintf("job %s stopped before its savepoint completed", op.StoppedJobID))
			return false, nil
		} else {
			return false, p.to(ctx, PhaseTriggerSavepoint) // trigger again, same id
		}
	}
	if err != nil {
		return true, err
	}
	if res.Status == flinkclient.InProgress {
		return true, nil
	}
	if res.FailureCause != nil {
		return false, fmt.Errorf("savepoint failed: %w", res.FailureCause)
	}
	p.snapshotDone(ctx, res.Location, "savepoint completed: "+res.Location)
	return false, nil
}

// snapshotDone records a completed snapshot and ends the operation.
func (p *pass) snapshotDone(ctx context.Context, path, msg string) {
	s := p.rec.Snapshot
	s.Status.State, s.Status.Path, s.Status.Error = v1beta1.SnapshotCompleted, path, ""
	s.Status.ResultTimestamp = p.now().UTC().Format(time.RFC3339)
	if s.Common.Error != errSpecChanged {
		s.Common.Error = ""
	}
	reason := ReasonSavepoint
	if op := p.rec.Operation; op != nil && op.Phase == PhaseAwaitCheckpoint {
		reason = ReasonCheckpoint
	}
	p.r.Events.Normal(ctx, p.rec, reason, msg)
	p.finish(msg)
}

// abandonSnapshot ends a snapshot whose job does not run (the operator's
// ABANDONED): it is not tried again.
func (p *pass) abandonSnapshot(ctx context.Context, why string) {
	s := p.rec.Snapshot
	s.Status.State, s.Status.Path, s.Status.Error = v1beta1.SnapshotAbandoned, "", why
	s.Status.ResultTimestamp = p.now().UTC().Format(time.RFC3339)
	s.Common.Error = why
	p.r.Events.Warn(ctx, p.rec, ReasonSnapshotAbandoned, why)
	p.finish("abandoned: " + why)
}

// snapshotFailed handles a failed try. Waiting for a busy job counts no
// failure. Otherwise the failure is counted; within the backoff limit the
// savepoint is tried again after 10 s, 20 s, 40 s, ... (a savepoint Flink
// failed gets a new trigger id, persisted before it is sent), beyond it
// the snapshot is FAILED.
func (p *pass) snapshotFailed(ctx context.Context, spec *v1beta1.FlinkStateSnapshotSpec, err error) Result {
	s, op := p.rec.Snapshot, p.rec.Operation
	if errors.Is(err, errTargetBusy) {
		msg := "waiting: " + err.Error()
		if op.Message != msg {
			op.Message = msg
			p.dirty = true
		}
		return Result{RequeueAfter: max(p.set.FastPoll, time.Second)}
	}
	s.Status.Failures++
	s.Status.Error = err.Error()
	s.Common.Error = err.Error()
	p.dirty = true
	p.r.Events.Warn(ctx, p.rec, ReasonSnapshotError, err.Error())
	if limit := spec.Backoff(); limit >= 0 && s.Status.Failures > limit {
		s.Status.State = v1beta1.SnapshotFailed
		s.Status.ResultTimestamp = p.now().UTC().Format(time.RFC3339)
		p.finish("failed: " + err.Error())
		return Result{}
	}
	if (op.Phase == PhaseAwaitSavepoint || op.Phase == PhaseAwaitCheckpoint) && errors.Is(err, flinkclient.ErrOperationFailed) {
		// Flink failed this savepoint or checkpoint (not the REST call): a
		// new try needs a new trigger id, as Flink remembers the failed one.
		op.TriggerID = flinkclient.NewTriggerID()
		op.SavepointBefore = nil
		op.Phase = snapshotTriggerPhase(spec)
		s.Status.TriggerID = op.TriggerID
		s.Status.TriggerTimestamp = p.now().UTC().Format(time.RFC3339)
		s.Status.State = v1beta1.SnapshotTriggerPending
	}
	d := min(snapshotBackoff<<min(s.Status.Failures-1, 10), snapshotBackoffMax)
	op.Attempts++
	op.Message = err.Error()
	op.NextAttempt = p.now().Add(d)
	return Result{RequeueAfter: d}
}

// removeSnapshot runs when the snapshot left Git: a savepoint still being
// taken is awaited (its path is needed to dispose of it), a completed one
// is disposed of when its spec says so, then the record is marked DELETED.
func (p *pass) removeSnapshot(ctx context.Context) (Result, error) {
	s := p.rec.Snapshot
	if s.Common.LifecycleState == v1beta1.LifecycleDeleted {
		return Result{}, nil
	}
	spec, _ := decodeSpec[v1beta1.FlinkStateSnapshotSpec](s.Spec, "snapshot spec")
	if op := p.rec.Operation; op != nil && (op.Phase == PhaseAwaitSavepoint || op.Phase == PhaseAwaitCheckpoint) {
		await := p.awaitSnapshot
		if op.Phase == PhaseAwaitCheckpoint {
			await = p.awaitSnapshotCheckpoint
		}
		wait, err := await(ctx)
		if err != nil || wait {
			p.mirrorSnapshotState()
			return p.fast(), nil
		}
	}
	p.rec.Operation = nil
	if s.Status.State == v1beta1.SnapshotCompleted && s.Status.Path != "" && spec != nil && spec.Savepoint != nil &&
		spec.Savepoint.Dispose() && spec.JobReference != nil {
		if err := p.disposeSnapshot(ctx, spec.JobReference); err != nil {
			msg := fmt.Sprintf("cannot dispose of savepoint %s yet: %v; retried, the status stays until it is disposed of", s.Status.Path, err)
			if s.Common.Error != msg {
				s.Common.Error = msg
				p.r.Events.Warn(ctx, p.rec, ReasonCleanupFailed, msg)
			}
			p.dirty = true
			return p.rest(), nil
		}
		p.r.Events.Normal(ctx, p.rec, ReasonCleanup, "savepoint disposed of: "+s.Status.Path)
	}
	// The record stays, marked DELETED like a deleted cluster's, so the
	// status branch shows what became of the savepoint.
	p.log.Info("snapshot removed", "state", s.Status.State, "path", s.Status.Path)
	s.Common.LifecycleState, s.Common.Error = v1beta1.LifecycleDeleted, ""
	p.dirty = true
	return Result{}, nil
}

// disposeSnapshot asks the referenced job's JobManager to dispose of the
// savepoint; as in the operator, the job must be running.
func (p *pass) disposeSnapshot(ctx context.Context, ref *v1beta1.JobReference) error {
	s := p.rec.Snapshot
	t, abandon, err := p.resolveTarget(ctx, ref)
	if err == nil && abandon != "" {
		err = errors.New(abandon)
	}
	if err != nil {
		return err
	}
	f, err := p.r.Flink(p.rec.Namespace, t.cluster)
	if err != nil {
		return err
	}
	_, err = f.DisposeSavepoint(ctx, s.Status.Path)
	return err
}

// planSnapshot predicts what the reconciler does with a snapshot: take a
// savepoint (or record an existing one) once, report a changed spec, and
// dispose of the savepoint when the resource leaves Git if its spec says so.
func planSnapshot(rec *Record, desired *Desired) Action {
	if desired == nil || desired.observeOnly() {
		if rec == nil || rec.Snapshot == nil {
			return Action{Kind: ActionNone}
		}
		a := Action{Kind: ActionDelete}
		s := rec.Snapshot
		spec, _ := decodeSpec[v1beta1.FlinkStateSnapshotSpec](s.Spec, "snapshot spec")
		if spec != nil && spec.Savepoint != nil && spec.Savepoint.Dispose() && spec.JobReference != nil && s.Status.Path != "" &&
			s.Status.State == v1beta1.SnapshotCompleted {
			a.Warnings = append(a.Warnings, "disposes of savepoint "+s.Status.Path+" (spec.savepoint.disposeOnDelete; set it to false to keep the files)")
		}
		if spec != nil && spec.Checkpoint != nil && s.Status.Path != "" {
			a.Warnings = append(a.Warnings, "keeps checkpoint "+s.Status.Path+" (a checkpoint belongs to Flink, which subsumes it; it is never disposed of)")
		}
		return a
	}
	sp := desired.Snapshot.Spec.Savepoint
	if rec == nil || rec.Snapshot == nil || rec.Snapshot.SpecHash == "" {
		if sp != nil && sp.Exists() {
			return Action{Kind: ActionUpdate, Warnings: []string{"records the existing savepoint " + sp.Path + " without triggering one"}}
		}
		if desired.Snapshot.Spec.Checkpoint != nil {
			return Action{Kind: ActionCheckpoint}
		}
		return Action{Kind: ActionSavepoint}
	}
	if rec.Snapshot.SpecHash != desired.Hash {
		return Action{Kind: ActionNone, Warnings: []string{errSpecChanged}}
	}
	return Action{Kind: ActionNone}
}
