package lifecycle

import (
	"fmt"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Action kinds a plan can show.
const (
	ActionDeploy    = "deploy"
	ActionUpgrade   = "upgrade"
	ActionSuspend   = "suspend"
	ActionResume    = "resume"
	ActionSavepoint = "savepoint"
	ActionRestart   = "restart"
	ActionScale     = "scale"
	ActionUpdate    = "update" // only ignorable fields change: recorded, nothing restarts
	ActionDelete    = "delete"
	ActionNone      = "none"
)

// Action is what the reconciler would do with a desired spec, given the
// resource's status: what `plan` prints and a pull-request comment shows.
type Action struct {
	Kind string
	// Mode is the upgrade mode that stops the running job, for upgrade,
	// suspend, restart and (with savepoint-on-deletion) delete.
	Mode v1beta1.UpgradeMode
	// Diff is the classified spec change against lastReconciledSpec.
	Diff Diff
	// Warnings are what a reviewer must see before merging.
	Warnings []string
}

// String is the action as one phrase, e.g. "upgrade (savepoint)".
func (a Action) String() string {
	if a.Mode != "" {
		return fmt.Sprintf("%s (%s)", a.Kind, a.Mode)
	}
	return a.Kind
}

// PlanAction predicts the action for desired (nil: the resource left Git)
// against rec (nil: never deployed). It follows the reconciler's decision
// table (decide, decideSessionJob) without looking at the live cluster, so
// an in-flight operation or a job that is not running can change the
// outcome; periodic savepoints are not predicted.
func PlanAction(rec *Record, desired *Desired) Action {
	deployed := rec != nil && rec.Common().LifecycleState != v1beta1.LifecycleDeleted && rec.Reconciliation().LastReconciledSpec != ""
	if desired == nil || desired.observeOnly() {
		if !deployed {
			return Action{Kind: ActionNone}
		}
		a := Action{Kind: ActionDelete}
		job, fc, suspended := recordJob(rec)
		if job != nil && !suspended {
			if truthy(fc[keySavepointOnDeletion]) {
				a.Mode = v1beta1.UpgradeModeSavepoint
			} else {
				a.Warnings = append(a.Warnings, "deletes a running job without a savepoint (set kubernetes.operator.job.savepoint-on-deletion to take one first)")
			}
		}
		return a
	}
	if desired.SessionJob != nil {
		return planSessionJob(rec, deployed, &desired.SessionJob.Spec)
	}
	tgt := desired.Deployment.Spec
	if tgt.Mode == "" {
		tgt.Mode = v1beta1.ModeStandalone
	}
	if !deployed {
		if tgt.Job != nil && tgt.Job.State == v1beta1.JobStateSuspended {
			return Action{Kind: ActionUpdate}
		}
		return Action{Kind: ActionDeploy}
	}
	last, err := deploymentSpec(rec.Reconciliation().LastReconciledSpec)
	if err != nil || last == nil {
		return Action{Kind: ActionDeploy}
	}
	diff := CompareDeployments(last, &tgt)
	a := Action{Diff: diff}
	if tgt.Job != nil {
		a.Mode = tgt.Job.UpgradeMode
	}
	wasSuspended := last.Job != nil && last.Job.State == v1beta1.JobStateSuspended
	nowSuspended := tgt.Job != nil && tgt.Job.State == v1beta1.JobStateSuspended
	switch {
	case (last.Job == nil) != (tgt.Job == nil):
		a.Kind, a.Mode = ActionNone, ""
		a.Warnings = append(a.Warnings, "switching between an application and a session cluster is rejected")
	case !wasSuspended && nowSuspended:
		a.Kind = ActionSuspend
	case wasSuspended && nowSuspended:
		a.Kind, a.Mode = ActionUpdate, ""
	case wasSuspended:
		a.Kind = ActionResume
	case tgt.Job != nil && nonceChanged(last.Job.SavepointRedeployNonce, tgt.Job.SavepointRedeployNonce):
		a.Kind, a.Mode = ActionUpgrade, v1beta1.UpgradeModeStateless
		a.Warnings = append(a.Warnings, "redeploys from job.initialSavepointPath "+tgt.Job.InitialSavepointPath+"; the running job's newer state is dropped")
	case diff.Type == DiffUpgrade:
		a.Kind = ActionUpgrade
	case nonceChanged(rec.LastRestartNonce, tgt.RestartNonce):
		a.Kind = ActionRestart
	case diff.Type == DiffScale:
		a.Kind, a.Mode = ActionScale, ""
	case tgt.Job != nil && nonceChanged(rec.LastSavepointNonce, tgt.Job.SavepointTriggerNonce):
		a.Kind, a.Mode = ActionSavepoint, ""
	case !diff.Empty():
		a.Kind, a.Mode = ActionUpdate, ""
	default:
		a.Kind, a.Mode = ActionNone, ""
	}
	if tgt.Job != nil && (a.Kind == ActionUpgrade || a.Kind == ActionRestart || a.Kind == ActionResume) && a.Mode == v1beta1.UpgradeModeStateless && hasState(tgt.FlinkConfiguration) {
		a.Warnings = append(a.Warnings, "stateless upgrade of a job with checkpointing: the new job starts empty and its state is discarded")
	}
	return a
}

func planSessionJob(rec *Record, deployed bool, tgt *v1beta1.FlinkSessionJobSpec) Action {
	if !deployed {
		return Action{Kind: ActionDeploy}
	}
	last, err := sessionJobSpec(rec.Reconciliation().LastReconciledSpec)
	if err != nil || last == nil || last.Job == nil || tgt.Job == nil {
		return Action{Kind: ActionDeploy}
	}
	diff := CompareSessionJobs(last, tgt)
	a := Action{Diff: diff, Mode: tgt.Job.UpgradeMode}
	wasSuspended, nowSuspended := last.Job.State == v1beta1.JobStateSuspended, tgt.Job.State == v1beta1.JobStateSuspended
	switch {
	case !wasSuspended && nowSuspended:
		a.Kind = ActionSuspend
	case wasSuspended && nowSuspended:
		a.Kind, a.Mode = ActionUpdate, ""
	case wasSuspended:
		a.Kind = ActionResume
	case diff.Type == DiffUpgrade:
		a.Kind = ActionUpgrade
	case nonceChanged(rec.LastRestartNonce, tgt.RestartNonce):
		a.Kind = ActionRestart
	case nonceChanged(rec.LastSavepointNonce, tgt.Job.SavepointTriggerNonce):
		a.Kind, a.Mode = ActionSavepoint, ""
	case !diff.Empty():
		a.Kind, a.Mode = ActionUpdate, ""
	default:
		a.Kind, a.Mode = ActionNone, ""
	}
	return a
}

// recordJob returns the job of the record's last reconciled spec.
func recordJob(rec *Record) (*v1beta1.JobSpec, v1beta1.FlinkConfiguration, bool) {
	p := &pass{rec: rec}
	job, fc, suspended, _ := p.lastJob()
	return job, fc, suspended
}

func hasState(fc v1beta1.FlinkConfiguration) bool {
	for _, k := range []string{"execution.checkpointing.interval", "execution.checkpointing.dir", "state.checkpoints.dir"} {
		if fc[k] != "" {
			return true
		}
	}
	return false
}

func truthy(s string) bool { return s == "true" || s == "TRUE" || s == "True" }
