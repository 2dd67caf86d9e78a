package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Checkpoints on request, as the operator takes them: a change of
// spec.job.checkpointTriggerNonce (MANUAL) or the schedule in
// kubernetes.operator.periodic.checkpoint.interval (PERIODIC) triggers a
// checkpoint of the running job through Flink's REST API (Flink 1.17 and
// later; validation refuses the keys on older versions). The trigger id is
// chosen and persisted in the operation before it is sent, so a daemon
// restarted at any point polls the same checkpoint; Flink answers a
// repeated trigger id with the same operation. If Flink has forgotten the
// trigger (a JobManager restart, or rest.async.store-duration passed), it
// is sent again, which takes one more checkpoint: a checkpoint asked for is
// never lost, at worst taken twice.

// Operator keys for checkpoints, with the operator's defaults.
const (
	keyPeriodicCheckpoint = "kubernetes.operator.periodic.checkpoint.interval" // off
	keyCheckpointType     = "kubernetes.operator.checkpoint.type"              // FULL
)

// OpCheckpoint is a manual or periodic checkpoint.
const OpCheckpoint OpKind = "Checkpoint"

// Phases of a checkpoint.
const (
	// PhaseTriggerCheckpoint triggers a checkpoint with the persisted TriggerID.
	PhaseTriggerCheckpoint Phase = "TriggerCheckpoint"
	// PhaseAwaitCheckpoint waits for the triggered checkpoint and its path.
	PhaseAwaitCheckpoint Phase = "AwaitCheckpoint"
)

// Event reasons of checkpoints (the operator's names).
const (
	ReasonCheckpoint      = "CheckpointCompleted"
	ReasonCheckpointError = "CheckpointError"
)

// checkpointer is the part of the Flink REST API checkpoints need;
// flinkclient.Client has it.
type checkpointer interface {
	TriggerCheckpoint(ctx context.Context, jobID, triggerID string, typ flinkclient.CheckpointType) (string, error)
	CheckpointStatus(ctx context.Context, jobID, triggerID string) (flinkclient.Operation, error)
}

// checkpointRetries bounds the triggers of one checkpoint refused because
// the job's tasks were not all running yet.
const checkpointRetries = 5

// tasksStarting reports whether Flink refused a checkpoint because some of
// the job's tasks were not running yet (a job that just reached RUNNING;
// Flink's vertex states can lag behind).
func tasksStarting(err error) bool {
	return strings.Contains(err.Error(), "Not all required tasks are currently running")
}

// retrigger sends the operation back to its trigger phase under a new
// trigger id, to be tried shortly: Flink refused the last trigger because
// the job's tasks were still being deployed (that id stays failed in
// Flink). attempt is the caller's retry count; the caller persists, so the
// new id is recorded before it is sent.
func (p *pass) retrigger(to Phase, attempt int, cause error) {
	op := p.rec.Operation
	p.log.Info("step", "op", op.Kind, "from", op.Phase, "to", to, "attempt", attempt)
	op.TriggerID, op.Phase, op.PhaseStarted = flinkclient.NewTriggerID(), to, p.now()
	op.NextAttempt, op.Message = p.now().Add(2*time.Second), cause.Error()
}

// checkpointPathWait bounds how long a completed checkpoint's path is
// looked for in the job's checkpoint statistics (Flink caches them for
// rest.cache.checkpoint-statistics.timeout, 3 s by default).
const checkpointPathWait = 30 * time.Second

// decideCheckpoint returns the checkpoint to take of the running job, if
// its nonce changed or a periodic one is due; nil otherwise.
func (p *pass) decideCheckpoint(fc v1beta1.FlinkConfiguration, nonce *int64, job *flinkclient.JobDetails) *Operation {
	if job == nil || job.State != flinkclient.JobRunning || !tasksRunning(job) {
		return nil
	}
	op := &Operation{Kind: OpCheckpoint, Phase: PhaseTriggerCheckpoint, TriggerID: flinkclient.NewTriggerID(), StoppedJobID: job.ID}
	switch {
	case nonceChanged(p.rec.LastCheckpointNonce, nonce):
		op.TriggerType, op.TriggerNonce = v1beta1.TriggerManual, nonce
	case p.periodicCheckpointDue(fc):
		op.TriggerType = v1beta1.TriggerPeriodic
	default:
		return nil
	}
	return op
}

// tasksRunning reports whether every task of the job runs (or finished):
// Flink refuses to trigger a checkpoint while some are still being
// deployed ("Not all required tasks are currently running"), which a job
// that just reached RUNNING often is.
func tasksRunning(job *flinkclient.JobDetails) bool {
	for _, v := range job.Vertices {
		if v.Status != "RUNNING" && v.Status != "FINISHED" {
			return false
		}
	}
	return true
}

// periodicCheckpointDue reports whether a periodic checkpoint is due.
func (p *pass) periodicCheckpointDue(fc v1beta1.FlinkConfiguration) bool {
	due, _ := p.periodicCheckpointNext(fc)
	return due
}

// periodicCheckpointNext reports whether a periodic checkpoint is due, and
// when the next one is (0: none scheduled).
func (p *pass) periodicCheckpointNext(fc v1beta1.FlinkConfiguration) (bool, time.Duration) {
	last := time.Time{}
	if ci := p.jobStatus().CheckpointInfo; ci != nil && ci.LastPeriodicCheckpointTimestamp > 0 {
		last = time.UnixMilli(ci.LastPeriodicCheckpointTimestamp)
	}
	if p.rec.Deployed != nil && p.rec.Deployed.At.After(last) {
		last = p.rec.Deployed.At
	}
	at, ok, err := nextPeriodicFloor(p.conf(fc, keyPeriodicCheckpoint), last, p.set.MinPeriodicInterval)
	if err != nil {
		p.log.Warn("periodic checkpoints are off: cannot read "+keyPeriodicCheckpoint, "err", err)
	}
	if !ok {
		return false, 0
	}
	next := at.Sub(p.now())
	return next <= 0, next
}

// checkpointType is the type of checkpoint to ask for.
func (p *pass) checkpointType(fc v1beta1.FlinkConfiguration) flinkclient.CheckpointType {
	if t := strings.ToUpper(strings.TrimSpace(p.conf(fc, keyCheckpointType))); t != "" {
		return flinkclient.CheckpointType(t)
	}
	return flinkclient.CheckpointFull
}

func (p *pass) checkpointInfo() *v1beta1.CheckpointInfo {
	js := p.jobStatus()
	if js.CheckpointInfo == nil {
		js.CheckpointInfo = &v1beta1.CheckpointInfo{}
	}
	return js.CheckpointInfo
}

// checkpointClient returns the REST client as a checkpointer.
func (p *pass) checkpointClient() (checkpointer, error) {
	f, err := p.flink()
	if err != nil {
		return nil, err
	}
	c, ok := f.(checkpointer)
	if !ok {
		return nil, permanent(fmt.Errorf("the Flink client cannot trigger checkpoints"))
	}
	return c, nil
}

// triggerCheckpoint sends the trigger with the persisted trigger id and
// records it in checkpointInfo, as the operator does.
func (p *pass) triggerCheckpoint(ctx context.Context) error {
	op := p.rec.Operation
	_, fc, _, _ := p.lastJob()
	c, err := p.checkpointClient()
	if err != nil {
		return err
	}
	typ := p.checkpointType(fc)
	_, err = c.TriggerCheckpoint(ctx, op.StoppedJobID, op.TriggerID, typ)
	switch {
	case err == nil, errors.Is(err, flinkclient.ErrConflict): // conflict: this trigger id is already running
	case errors.Is(err, flinkclient.ErrNotFound), errors.Is(err, flinkclient.ErrBadRequest):
		return p.checkpointFailed(ctx, err)
	default:
		return err
	}
	ci := p.checkpointInfo()
	if ci.TriggerID != op.TriggerID {
		at := p.now().UnixMilli()
		ci.TriggerID, ci.TriggerTimestamp, ci.TriggerType, ci.FormatType = op.TriggerID, &at, op.TriggerType, v1beta1.CheckpointType(typ)
	}
	// Not p.to: the attempts of a checkpoint refused while tasks started
	// must add up across triggers.
	p.log.Info("step", "op", op.Kind, "from", op.Phase, "to", PhaseAwaitCheckpoint)
	op.Phase, op.PhaseStarted, op.NextAttempt = PhaseAwaitCheckpoint, p.now(), time.Time{}
	return p.persist(ctx)
}

// awaitCheckpoint polls the checkpoint, then finds its path in the job's
// checkpoint statistics and records it.
func (p *pass) awaitCheckpoint(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	f, err := p.flink()
	if err != nil {
		return true, err
	}
	c, err := p.checkpointClient()
	if err != nil {
		return false, err
	}
	res, err := c.CheckpointStatus(ctx, op.StoppedJobID, op.TriggerID)
	if errors.Is(err, flinkclient.ErrNotFound) {
		// Forgotten (or never taken: the JobManager restarted): ask again
		// with the same id.
		return false, p.to(ctx, PhaseTriggerCheckpoint)
	}
	if err != nil {
		return true, err
	}
	if res.Status == flinkclient.InProgress {
		if p.now().Sub(op.PhaseStarted) > p.set.OperationTimeout {
			msg := fmt.Sprintf("checkpoint %s still in progress after more than %s; waiting for Flink to complete or fail it", op.TriggerID, p.set.OperationTimeout)
			if op.Message != msg {
				op.Message = msg
				p.dirty = true
			}
		}
		return true, nil
	}
	if res.FailureCause != nil {
		if tasksStarting(res.FailureCause) && op.Attempts < checkpointRetries {
			// The job's tasks were still being deployed: ask again shortly,
			// under a new trigger id (the old one stays failed in Flink),
			// persisted before it is sent.
			op.Attempts++
			p.retrigger(PhaseTriggerCheckpoint, op.Attempts, res.FailureCause)
			return true, p.persist(ctx)
		}
		return false, p.checkpointFailed(ctx, res.FailureCause)
	}
	path, found := checkpointPath(ctx, f, op.StoppedJobID, res.CheckpointID)
	if !found && p.now().Sub(op.PhaseStarted) < checkpointPathWait {
		return true, nil // statistics not refreshed yet
	}
	p.recordCheckpoint(ctx, res.CheckpointID, path)
	p.finish(fmt.Sprintf("checkpoint %d %s", res.CheckpointID, path))
	return false, nil
}

// checkpointPath looks checkpoint id up in the job's statistics: its
// external path ("" when not externally addressable), and whether the
// statistics know it yet.
func checkpointPath(ctx context.Context, f Flink, jobID string, id int64) (string, bool) {
	cps, err := f.Checkpoints(ctx, jobID)
	if err != nil {
		return "", false
	}
	if c := cps.LatestCompleted; c != nil && c.ID == id {
		return c.ExternalPath, true
	}
	for _, c := range cps.History {
		if c.ID == id && c.Status == "COMPLETED" {
			return c.ExternalPath, true
		}
	}
	if c := cps.LatestCompleted; c != nil && c.ID > id {
		return "", true // subsumed and out of the history: no path to show
	}
	return "", false
}

// recordCheckpoint records a completed checkpoint in checkpointInfo.
func (p *pass) recordCheckpoint(ctx context.Context, id int64, path string) {
	op := p.rec.Operation
	ci := p.checkpointInfo()
	now := p.now().UnixMilli()
	cp := &v1beta1.Checkpoint{TimeStamp: now, TriggerType: op.TriggerType, FormatType: ci.FormatType, TriggerNonce: op.TriggerNonce,
		ID: id, Location: path}
	if cp.FormatType == "" {
		_, fc, _, _ := p.lastJob()
		cp.FormatType = v1beta1.CheckpointType(p.checkpointType(fc))
	}
	ci.LastCheckpoint = cp
	p.answerCheckpoint(now)
	if path != "" && (p.rec.LatestCheckpoint == nil || p.rec.LatestCheckpoint.TimeStamp <= now) {
		p.rec.LatestCheckpoint = &v1beta1.Savepoint{TimeStamp: now, Location: path, TriggerType: op.TriggerType}
	}
	p.r.Events.Normal(ctx, p.rec, ReasonCheckpoint, fmt.Sprintf("%s checkpoint %d completed: %s", strings.ToLower(string(op.TriggerType)), id, orNone(path)))
	p.dirty = true
}

// answerCheckpoint marks the operation's trigger as answered: the nonce
// (manual) or the schedule (periodic), and clears the trigger.
func (p *pass) answerCheckpoint(nowMillis int64) {
	op := p.rec.Operation
	ci := p.checkpointInfo()
	if op.TriggerType == v1beta1.TriggerManual {
		p.rec.LastCheckpointNonce = op.TriggerNonce
	} else {
		ci.LastPeriodicCheckpointTimestamp = nowMillis
	}
	ci.TriggerID, ci.TriggerTimestamp, ci.TriggerType = "", nil, ""
}

// checkpointFailed reports a checkpoint that failed; the job keeps running
// and the request counts as answered (a periodic one is tried again at its
// next time).
func (p *pass) checkpointFailed(ctx context.Context, cause error) error {
	msg := "checkpoint failed: " + cause.Error()
	p.r.Events.Warn(ctx, p.rec, ReasonCheckpointError, msg)
	p.answerCheckpoint(p.now().UnixMilli())
	p.rec.Common().Error = msg
	p.finish(msg)
	return nil
}

// CheckpointEntry is a checkpoint as the status branch shows it.
type CheckpointEntry struct {
	Time    string `json:"time"`
	Trigger string `json:"trigger"`
	Type    string `json:"type,omitempty"`
	ID      int64  `json:"id,omitempty"`
	// Path is the checkpoint's external path ("" when not retained
	// externally).
	Path  string `json:"path,omitempty"`
	Nonce *int64 `json:"nonce,omitempty"`
}

// checkpointEntry returns the status branch's view of checkpointInfo: the
// last checkpoint, and the trigger of one in progress.
func checkpointEntry(ci *v1beta1.CheckpointInfo) (*CheckpointEntry, string) {
	if ci == nil {
		return nil, ""
	}
	var e *CheckpointEntry
	if c := ci.LastCheckpoint; c != nil {
		e = &CheckpointEntry{Time: time.UnixMilli(c.TimeStamp).UTC().Format(time.RFC3339), Trigger: string(c.TriggerType),
			Type: string(c.FormatType), ID: c.ID, Path: c.Location, Nonce: c.TriggerNonce}
	}
	progress := ""
	if ci.TriggerID != "" {
		progress = strings.ToLower(string(ci.TriggerType)) + " checkpoint " + ci.TriggerID
	}
	return e, progress
}
