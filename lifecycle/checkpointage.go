package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// keyCheckpointMaxAge bounds how old the checkpoint a last-state upgrade of
// a running job restores from may be (the operator's key; no default).
const keyCheckpointMaxAge = "kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age"

// ageVerdict is what a last-state upgrade of a running job does about the
// age of its newest checkpoint.
type ageVerdict int

const (
	ageOK        ageVerdict = iota // restore from the newest checkpoint as usual
	ageWait                        // a checkpoint within the age is in progress: wait for it
	ageSavepoint                   // too old: take a savepoint instead
)

// checkpointAge judges a running job's newest checkpoint against maxAge as
// the operator does: a job that started within maxAge, or a completed
// checkpoint triggered within it, is fine; a checkpoint in progress that
// was triggered within it is waited for; anything else needs a savepoint.
// maxAge 0 means no limit.
func checkpointAge(maxAge time.Duration, now, jobStart time.Time, cps flinkclient.Checkpoints) (ageVerdict, time.Time) {
	if maxAge <= 0 {
		return ageOK, time.Time{}
	}
	within := func(t time.Time) bool { return !t.IsZero() && now.Add(-maxAge).Before(t) }
	if within(jobStart) {
		return ageOK, time.Time{}
	}
	var newest time.Time
	if c := cps.LatestCompleted; c != nil {
		newest = c.TriggerTime
		if within(newest) {
			return ageOK, newest
		}
	}
	for _, c := range cps.History {
		if c.Status == "IN_PROGRESS" && !c.IsSavepoint && within(c.TriggerTime) {
			return ageWait, newest
		}
	}
	return ageSavepoint, newest
}

// targetConfig is the flinkConfiguration of the operation's target spec
// (either kind), or nil.
func (p *pass) targetConfig() v1beta1.FlinkConfiguration {
	s, _ := decodeSpec[struct {
		FlinkConfiguration v1beta1.FlinkConfiguration `json:"flinkConfiguration"`
	}](p.rec.Operation.TargetSpec, "spec")
	if s == nil {
		return nil
	}
	return s.FlinkConfiguration
}

// lastStateMaxAge applies kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age
// to a last-state upgrade of the running job: when its newest checkpoint
// is too old the job is stopped with a savepoint instead (or, without a
// savepoint directory, the upgrade is refused with the job left running);
// while a recent checkpoint is in progress the step waits. handled reports
// that the step is dealt with here.
func (p *pass) lastStateMaxAge(ctx context.Context, f Flink, job *flinkclient.JobDetails, fc v1beta1.FlinkConfiguration) (handled bool, err error) {
	op := p.rec.Operation
	tc := p.targetConfig()
	if tc == nil {
		tc = fc
	}
	maxAge := p.confDuration(tc, keyCheckpointMaxAge, 0)
	if maxAge == 0 {
		return false, nil
	}
	cps, err := f.Checkpoints(ctx, job.ID)
	if err != nil {
		return true, fmt.Errorf("read checkpoints of job %s for %s: %w", job.ID, keyCheckpointMaxAge, err)
	}
	verdict, newest := checkpointAge(maxAge, p.now(), job.StartTime, cps)
	age := "none completed"
	if !newest.IsZero() {
		age = "taken " + p.now().Sub(newest).Round(time.Second).String() + " ago"
	}
	switch verdict {
	case ageWait:
		msg := fmt.Sprintf("waiting for the checkpoint in progress: the newest completed one (%s) is older than %s (%s)", age, maxAge, keyCheckpointMaxAge)
		if op.Message != msg {
			op.Message = msg
			p.dirty = true
		}
		return true, nil
	case ageSavepoint:
		if p.savepointDir(tc) == "" && p.savepointDir(fc) == "" {
			p.fail(ctx, ReasonUpgradeFailed, fmt.Sprintf("last-state upgrade: the newest checkpoint of job %s (%s) is older than %s (%s) "+
				"and no savepoint can be taken without execution.checkpointing.savepoint-dir; nothing was changed and the job keeps running. "+
				"Set execution.checkpointing.savepoint-dir, raise %s, or wait for a checkpoint, and push again", job.ID, age, maxAge, keyCheckpointMaxAge, keyCheckpointMaxAge))
			return true, nil
		}
		p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, fmt.Sprintf("last-state upgrade: the newest checkpoint (%s) is older than %s (%s); stopping with a savepoint instead",
			age, maxAge, keyCheckpointMaxAge))
		op.UpgradeMode = v1beta1.UpgradeModeSavepoint
		op.TriggerID = flinkclient.NewTriggerID()
		op.TriggerType = v1beta1.TriggerUpgrade
		return true, p.to(ctx, PhaseTriggerSavepoint)
	}
	return false, nil
}
