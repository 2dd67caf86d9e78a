package lifecycle

import (
	"fmt"
	"sort"

	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Action kinds a plan can show.
const (
	ActionDeploy     = "deploy"
	ActionUpgrade    = "upgrade"
	ActionSuspend    = "suspend"
	ActionResume     = "resume"
	ActionSavepoint  = "savepoint"
	ActionCheckpoint = "checkpoint"
	ActionRestart    = "restart"
	ActionScale      = "scale"
	ActionRescale    = "rescale in place" // parallelism applied to the running job (rescale.go)
	ActionUpdate     = "update"           // only ignorable fields change: recorded, nothing restarts
	ActionDelete     = "delete"
	ActionNone       = "none"
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
	if rec != nil && rec.Snapshot != nil || desired != nil && desired.Snapshot != nil {
		return planSnapshot(rec, desired)
	}
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
				a.Warnings = append(a.Warnings, "deletes a running job (a savepoint is taken first)")
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
	case last.EffectiveMode() != tgt.EffectiveMode():
		a.Kind, a.Mode = ActionNone, ""
		a.Warnings = append(a.Warnings, fmt.Sprintf("switching spec.mode from %s to %s is rejected; remove the resource from Git first, then add it again", last.EffectiveMode(), tgt.EffectiveMode()))
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
		a.Kind = planScale(last, &tgt, diff)
		if a.Kind != ActionUpgrade {
			a.Mode = ""
		}
	case tgt.Job != nil && nonceChanged(rec.LastSavepointNonce, tgt.Job.SavepointTriggerNonce):
		a.Kind, a.Mode = ActionSavepoint, ""
	case tgt.Job != nil && nonceChanged(rec.LastCheckpointNonce, tgt.Job.CheckpointTriggerNonce):
		a.Kind, a.Mode = ActionCheckpoint, ""
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
	case nonceChanged(rec.LastCheckpointNonce, tgt.Job.CheckpointTriggerNonce):
		a.Kind, a.Mode = ActionCheckpoint, ""
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

// Planned is the predicted action of one resource of a render.
type Planned struct {
	// Key is Kind/namespace/name.
	Key                   string
	Kind, Namespace, Name string
	// EntryPoint and File the spec was rendered from; for a resource that
	// left Git, where its last reconciled spec came from.
	EntryPoint, File string
	// Desired is the rendered spec (nil for a resource that left Git).
	Desired *Desired
	Action  Action
}

// PlanOptions tune PlanRender.
type PlanOptions struct {
	// FlinkDefaults is the daemon's flink.defaultConfiguration, which the
	// reconciler applies under every spec's flinkConfiguration.
	FlinkDefaults map[string]string
	// DefaultMode is the daemon's flink.defaultMode, the mode of specs that
	// set none (empty: standalone).
	DefaultMode v1beta1.DeploymentMode
	// HasDir reports whether the rendered tree has a directory; a resource
	// whose entry point is gone entirely left Git. Nil: no directory exists.
	HasDir func(dir string) bool
}

// PlanRender predicts the action of every valid resource of a render and
// of every record whose resource left Git, against records (by Key), the
// way the daemon decides: a resource that rendered invalid is absent from
// the plan (what is deployed stays; its problems say why), and a record
// counts as removed only when the entry point that declared it built fine,
// or no longer exists, and no entry point failed that could still declare
// it. The result is sorted by Key.
func PlanRender(res *render.Result, records map[string]*Record, opts PlanOptions) []Planned {
	var out []Planned
	present := map[string]bool{}
	for _, r := range res.Resources {
		k := r.Key()
		key := Key(k.Kind, k.Namespace, k.Name)
		present[key] = true
		dep := r.Deployment
		if dep != nil && dep.Spec.Mode == "" && opts.DefaultMode != "" {
			c := *dep // the reconciler applies the daemon's default mode
			c.Spec.Mode = opts.DefaultMode
			dep = &c
		}
		d := &Desired{Deployment: dep, SessionJob: r.SessionJob, Snapshot: r.Snapshot, Hash: r.Hash,
			Source: v1beta1.SourceRef{EntryPoint: r.EntryPoint, Path: r.File}}
		a := PlanAction(records[key], d)
		a.Warnings = append(a.Warnings, savepointDirWarning(a, d, opts.FlinkDefaults)...)
		out = append(out, Planned{Key: key, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name,
			EntryPoint: r.EntryPoint, File: r.File, Desired: d, Action: a})
	}
	for _, k := range res.Invalid {
		present[Key(k.Kind, k.Namespace, k.Name)] = true
	}
	built, failed := map[string]bool{}, map[string]bool{}
	for _, ep := range res.EntryPoints {
		if ep.Failed {
			failed[ep.EntryPoint] = true
		} else {
			built[ep.EntryPoint] = true
		}
	}
	for key, r := range records {
		if present[key] || r.Common().LifecycleState == v1beta1.LifecycleDeleted {
			continue
		}
		var ep, file string
		if s := r.Common().Source; s != nil {
			ep, file = s.EntryPoint, s.Path
		}
		if failed[ep] || len(failed) > 0 && ep == "" {
			continue // unknown: kept
		}
		if built[ep] || opts.HasDir == nil || !opts.HasDir(ep) {
			out = append(out, Planned{Key: key, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
				EntryPoint: ep, File: file, Action: PlanAction(r, nil)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// savepointDirWarning warns when an action stops a deployment's job with a
// savepoint but neither the spec nor the daemon's defaults name a savepoint
// directory (render rejects such a spec; this catches a plan rendered
// without the daemon's defaults, e.g. `plan` without --config).
func savepointDirWarning(a Action, d *Desired, defaults map[string]string) []string {
	if a.Mode != v1beta1.UpgradeModeSavepoint || d.Deployment == nil {
		return nil
	}
	fc := d.Deployment.Spec.FlinkConfiguration
	for _, k := range []string{"execution.checkpointing.savepoint-dir", "state.savepoints.dir"} {
		if fc[k] != "" || defaults[k] != "" {
			return nil
		}
	}
	return []string{"savepoint mode without a savepoint directory (execution.checkpointing.savepoint-dir): the savepoint step will fail"}
}
