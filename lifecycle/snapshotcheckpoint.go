package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// A FlinkStateSnapshot with spec.checkpoint: {} asks for one checkpoint of
// the referenced running job, as the operator's StateSnapshotReconciler
// takes it: a FULL checkpoint through Flink's REST trigger (render refuses
// it up front on a Flink version without one). It runs as a snapshot
// operation like a savepoint: the job and the trigger id are persisted
// before the trigger is sent, so a daemon restarted at any point polls the
// same checkpoint; a trigger Flink has forgotten is sent again, which at
// worst takes one more checkpoint, never none. Checkpoints belong to Flink
// (it subsumes and deletes them), so, as in the operator, a checkpoint
// snapshot is never disposed of when it leaves Git.

// snapshotCheckpointType is the type of a checkpoint snapshot: the
// operator always asks for a FULL one.
const snapshotCheckpointType = flinkclient.CheckpointFull

// triggerSnapshotCheckpoint resolves the referenced job, persists it, and
// triggers the checkpoint with the persisted trigger id.
func (p *pass) triggerSnapshotCheckpoint(ctx context.Context, spec *v1beta1.FlinkStateSnapshotSpec) (bool, error) {
	s, op := p.rec.Snapshot, p.rec.Operation
	if abandoned, err := p.pinSnapshotJob(ctx, spec); abandoned || err != nil {
		return false, err
	}
	c, err := p.snapshotCheckpointer()
	if err != nil {
		return false, err
	}
	_, err = c.TriggerCheckpoint(ctx, op.StoppedJobID, op.TriggerID, snapshotCheckpointType)
	switch {
	case err == nil, errors.Is(err, flinkclient.ErrConflict): // conflict: this trigger id is already running
	case errors.Is(err, flinkclient.ErrNotFound):
		p.abandonSnapshot(ctx, fmt.Sprintf("job %s is gone from %s", op.StoppedJobID, s.Cluster))
		return false, nil
	default:
		return false, err
	}
	s.Status.State = v1beta1.SnapshotInProgress
	// Not p.to: the retries of a checkpoint refused while the job's tasks
	// started must add up across triggers.
	p.log.Info("step", "op", op.Kind, "from", op.Phase, "to", PhaseAwaitCheckpoint)
	op.Phase, op.PhaseStarted, op.NextAttempt = PhaseAwaitCheckpoint, p.now(), time.Time{}
	return false, p.persist(ctx)
}

// awaitSnapshotCheckpoint polls the checkpoint and, once it completed,
// records its external path from the job's checkpoint statistics.
func (p *pass) awaitSnapshotCheckpoint(ctx context.Context) (bool, error) {
	s, op := p.rec.Snapshot, p.rec.Operation
	f, err := p.r.Flink(p.rec.Namespace, s.Cluster)
	if err != nil {
		return true, err
	}
	c, err := p.snapshotCheckpointer()
	if err != nil {
		return false, err
	}
	res, err := c.CheckpointStatus(ctx, op.StoppedJobID, op.TriggerID)
	if errors.Is(err, flinkclient.ErrNotFound) {
		// Forgotten, or never taken (the JobManager restarted): ask again
		// with the same id while the job runs.
		if job, jerr := f.Job(ctx, op.StoppedJobID); errors.Is(jerr, flinkclient.ErrNotFound) || jerr == nil && job.State != flinkclient.JobRunning {
			p.abandonSnapshot(ctx, fmt.Sprintf("job %s stopped before its checkpoint completed", op.StoppedJobID))
			return false, nil
		}
		return false, p.to(ctx, PhaseTriggerCheckpoint)
	}
	if err != nil {
		return true, err
	}
	if res.Status == flinkclient.InProgress {
		return true, nil
	}
	if cause := res.FailureCause; cause != nil {
		if tasksStarting(cause) && op.Attempts < checkpointRetries {
			// The job's tasks were still being deployed: not a failure of
			// the snapshot. Ask again shortly under a new trigger id (Flink
			// keeps the old one failed), persisted before it is sent.
			op.Attempts++
			p.retrigger(PhaseTriggerCheckpoint, op.Attempts, cause)
			s.Status.TriggerID, s.Status.State = op.TriggerID, v1beta1.SnapshotTriggerPending
			return true, p.persist(ctx)
		}
		return false, fmt.Errorf("checkpoint failed: %w", cause)
	}
	path, found := checkpointPath(ctx, f, op.StoppedJobID, res.CheckpointID)
	if !found && p.now().Sub(op.PhaseStarted) < checkpointPathWait {
		return true, nil // statistics not refreshed yet
	}
	msg := fmt.Sprintf("checkpoint %d completed: %s", res.CheckpointID, orNone(path))
	if path == "" {
		msg += " (not retained externally; set execution.checkpointing.externalized-checkpoint-retention to keep checkpoints)"
	}
	p.snapshotDone(ctx, path, msg)
	return false, nil
}

// snapshotCheckpointer returns the referenced cluster's REST client as a
// checkpointer.
func (p *pass) snapshotCheckpointer() (checkpointer, error) {
	f, err := p.r.Flink(p.rec.Namespace, p.rec.Snapshot.Cluster)
	if err != nil {
		return nil, err
	}
	c, ok := f.(checkpointer)
	if !ok {
		return nil, fmt.Errorf("the Flink client of %s cannot trigger checkpoints", p.rec.Snapshot.Cluster)
	}
	return c, nil
}

// snapshotTriggerPhase is the phase a snapshot operation starts in.
func snapshotTriggerPhase(spec *v1beta1.FlinkStateSnapshotSpec) Phase {
	if spec.Checkpoint != nil {
		return PhaseTriggerCheckpoint
	}
	return PhaseTriggerSavepoint
}
