package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Operator configuration keys the reconciler honours, with the operator's
// names and defaults.
const (
	keyLastStateFallback   = "kubernetes.operator.job.upgrade.last-state-fallback.enabled" // true
	keySavepointOnDeletion = "kubernetes.operator.job.savepoint-on-deletion"               // false
	keyHistoryMaxCount     = "kubernetes.operator.savepoint.history.max.count"             // 10
	keyHistoryMaxAge       = "kubernetes.operator.savepoint.history.max.age"               // 24h
	keyCleanupEnabled      = "kubernetes.operator.savepoint.cleanup.enabled"               // true
	keyPeriodicSavepoint   = "kubernetes.operator.periodic.savepoint.interval"             // off
	keyRollbackEnabled     = "kubernetes.operator.deployment.rollback.enabled"             // false
	keyReadinessTimeout    = "kubernetes.operator.deployment.readiness.timeout"            // 5m
	keySavepointFormat     = "kubernetes.operator.savepoint.format.type"                   // CANONICAL
	keyDrainOnStop         = "kubernetes.operator.job.drain-on-savepoint-deletion"         // false
)

// savepointDir returns the configured savepoint directory ("" when none).
func (p *pass) savepointDir(fc v1beta1.FlinkConfiguration) string {
	for _, k := range []string{"execution.checkpointing.savepoint-dir", "state.savepoints.dir"} {
		if v := p.conf(fc, k); v != "" {
			return v
		}
	}
	return ""
}

// deploymentSpec decodes a spec JSON kept in the record.
func deploymentSpec(js string) (*v1beta1.FlinkDeploymentSpec, error) {
	return decodeSpec[v1beta1.FlinkDeploymentSpec](js, "spec")
}

// decodeSpec decodes a spec JSON kept in the record; "" is no spec.
func decodeSpec[T any](js, what string) (*T, error) {
	if js == "" {
		return nil, nil
	}
	var s T
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", what, err)
	}
	return &s, nil
}

// observation is what one pass saw of the cluster.
type observation struct {
	jm    *appsv1.Deployment
	flink Flink // nil unless the JobManager answers
	job   *flinkclient.JobDetails
	// restErr is why a running JobManager did not answer (unreachable,
	// TLS refused, its REST TLS Secret unusable).
	restErr error
}

// reconcileDeployment is one pass over a FlinkDeployment: observe, drive
// the operation in flight or decide on one, settle.
func (p *pass) reconcileDeployment(ctx context.Context) (Result, error) {
	obs, err := p.observe(ctx)
	if err != nil {
		return p.fast(), err
	}
	if p.rec.Operation == nil {
		if p.desired.observeOnly() {
			return p.settle(ctx, obs)
		}
		var op *Operation
		if p.refusedNow() {
			op = p.whileRefused(obs)
		} else if op, err = p.decide(ctx, obs); err != nil {
			return p.rest(), err
		}
		if op == nil {
			p.notWaiting()
			return p.settle(ctx, obs)
		}
		if !p.admit(ctx, op) {
			res, err := p.settle(ctx, obs)
			if res.RequeueAfter > gateRetry {
				res.RequeueAfter = gateRetry
			}
			return res, err
		}
		if needsPreflight(p.rec.Kind, op) {
			withPreflight(op)
		}
		if err := p.begin(ctx, op); err != nil {
			return p.fast(), err
		}
	}
	return p.drive(ctx)
}

// observe reads the JobManager Deployment and, when it answers, the job.
func (p *pass) observe(ctx context.Context) (*observation, error) {
	st := p.rec.Deployment
	obs := &observation{}
	var ov *flinkclient.Overview
	jm, err := jobManagerDeployment(ctx, p.r.kube(), p.rec.Name, p.rec.Namespace)
	if err != nil {
		return nil, err
	}
	obs.jm = jm
	prev := st.JobManagerDeploymentStatus
	switch {
	case jm == nil:
		st.JobManagerDeploymentStatus = v1beta1.JMMissing
	case deploymentFailure(jm) != "":
		st.JobManagerDeploymentStatus = v1beta1.JMError
	case jm.Status.ObservedGeneration < jm.Generation || jm.Status.AvailableReplicas < 1:
		st.JobManagerDeploymentStatus = v1beta1.JMDeploying
	default:
		f, err := p.flink()
		if err == nil {
			var o flinkclient.Overview
			if o, err = f.Overview(ctx); err == nil {
				ov = &o
			}
		}
		if err != nil {
			st.JobManagerDeploymentStatus = v1beta1.JMDeployedNotReady
			obs.restErr = err
		} else {
			st.JobManagerDeploymentStatus = v1beta1.JMReady
			obs.flink = f
		}
	}
	if prev != st.JobManagerDeploymentStatus {
		p.dirty = true
		if st.JobManagerDeploymentStatus == v1beta1.JMReady {
			p.r.Events.Normal(ctx, p.rec, ReasonDeploymentReady, "JobManager deployment is ready")
		}
	}
	if obs.flink != nil && p.rec.Deployed != nil && p.rec.Deployed.JobID != "" {
		job, err := obs.flink.Job(ctx, p.rec.Deployed.JobID)
		switch {
		case err == nil:
			liveState(ctx, obs.flink, &job)
			obs.job = &job
			p.setJobStatus(ctx, &job)
			if job.State == flinkclient.JobRunning || isTerminal(job.State) {
				p.observeCheckpoints(ctx, obs.flink, job.ID)
			}
		case errors.Is(err, flinkclient.ErrNotFound):
			// Submitted moments ago, or the JobManager restarted empty.
		default:
			p.log.Debug("cannot read job", "err", err)
		}
	}
	p.observeCluster(ctx, obs, ov)
	return obs, nil
}

// setJobStatus copies what Flink says about the job into the status.
func (p *pass) setJobStatus(ctx context.Context, job *flinkclient.JobDetails) {
	js := p.jobStatus()
	state := v1beta1.FlinkJobState(job.State)
	if js.State != state {
		if js.State != "" {
			p.r.Events.Normal(ctx, p.rec, ReasonJobStatusChanged, fmt.Sprintf("job status changed from %s to %s", js.State, state))
		}
		js.State = state
		js.UpdateTime = strconv.FormatInt(p.now().UnixMilli(), 10)
		p.dirty = true
	}
	if js.JobID != job.ID || js.JobName != job.Name {
		js.JobID, js.JobName = job.ID, job.Name
		p.dirty = true
	}
	if st := strconv.FormatInt(job.StartTime.UnixMilli(), 10); !job.StartTime.IsZero() && js.StartTime != st {
		js.StartTime = st
		p.dirty = true
	}
}

// observeCheckpoints remembers the newest externalised checkpoint.
func (p *pass) observeCheckpoints(ctx context.Context, f Flink, jobID string) {
	cps, err := f.Checkpoints(ctx, jobID)
	if err != nil || cps.LatestCompleted == nil || cps.LatestCompleted.ExternalPath == "" {
		return
	}
	c := cps.LatestCompleted
	if p.rec.LatestCheckpoint == nil || p.rec.LatestCheckpoint.Location != c.ExternalPath {
		p.rec.LatestCheckpoint = &v1beta1.Savepoint{TimeStamp: c.LatestAckTime.UnixMilli(), Location: c.ExternalPath, TriggerType: v1beta1.TriggerPeriodic}
		p.dirty = true
	}
}

func isTerminal(s flinkclient.JobStatus) bool {
	switch s {
	case flinkclient.JobFinished, flinkclient.JobCanceled, flinkclient.JobFailed:
		return true
	}
	return false
}

// deploymentFailure returns the message of a ReplicaFailure condition.
func deploymentFailure(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return c.Message
		}
	}
	return ""
}

// target returns the desired spec with the daemon's default mode applied.
func (p *pass) target() *v1beta1.FlinkDeploymentSpec {
	s := p.desired.Deployment.Spec
	if s.Mode == "" {
		s.Mode = p.set.DefaultMode
	}
	if s.Mode == "" {
		s.Mode = v1beta1.ModeStandalone
	}
	return &s
}

// decide compares the desired spec with the last reconciled one and returns
// the operation to start, or nil when there is nothing to do.
func (p *pass) decide(ctx context.Context, obs *observation) (*Operation, error) {
	st := p.rec.Deployment
	last, err := deploymentSpec(st.ReconciliationStatus.LastReconciledSpec)
	if err != nil {
		return nil, err
	}
	if p.desired == nil {
		if last == nil && obs.jm == nil {
			p.markDeleted()
			return nil, nil
		}
		op := &Operation{Kind: OpDelete, Phase: PhaseDeleteCluster}
		if last != nil && last.Job != nil && !cluster.Suspended(last) && p.confBool(last.FlinkConfiguration, keySavepointOnDeletion, false) {
			op.Phase, op.UpgradeMode = PhaseStopJob, v1beta1.UpgradeModeSavepoint
		}
		return op, nil
	}
	tgt := p.target()
	src := p.desired.Source
	src.RenderHash = p.desired.Hash
	newOp := func(kind OpKind, phase Phase) *Operation {
		op := &Operation{Kind: kind, Phase: phase, TargetSpec: specJSON(tgt), TargetHash: p.desired.Hash, Source: &src}
		if tgt.Job != nil {
			op.UpgradeMode = tgt.Job.UpgradeMode
		}
		// Any operation on tgt restarts the job: it answers tgt's
		// restartNonce too, which must not restart it once more after.
		p.rec.LastRestartNonce = tgt.RestartNonce
		return op
	}

	if last == nil { // first deployment
		if tgt.Job != nil {
			p.rec.LastSavepointNonce = tgt.Job.SavepointTriggerNonce
			p.rec.LastCheckpointNonce = tgt.Job.CheckpointTriggerNonce
		}
		p.rec.LastRestartNonce = tgt.RestartNonce
		if cluster.Suspended(tgt) {
			p.recordSuspended(tgt, &src)
			return nil, nil
		}
		op := newOp(OpDeploy, PhaseApply)
		if tgt.Job != nil {
			op.RestorePath = tgt.Job.InitialSavepointPath
		}
		p.r.Events.Normal(ctx, p.rec, ReasonSubmit, "deploying "+short(src.Commit))
		return op, nil
	}

	if (last.Job == nil) != (tgt.Job == nil) {
		p.fail(ctx, ReasonValidationError, "spec.job: switching between an application and a session cluster is not supported; remove the resource from Git, let it be deleted, then add it under a new name")
		return nil, nil
	}
	if last.EffectiveMode() != tgt.EffectiveMode() {
		p.fail(ctx, ReasonValidationError, "spec.mode: switching between native and standalone is not supported; remove the resource from Git first")
		return nil, nil
	}
	if st.ReconciliationStatus.State == v1beta1.ReconciliationRolledBack && st.Source != nil && st.Source.RenderHash == p.desired.Hash {
		// This spec was deployed and rolled back; as in the operator, it is
		// not tried again until it changes. The running (last stable) spec
		// rules meanwhile.
		tgt = last
	}

	wasSuspended, nowSuspended := cluster.Suspended(last), cluster.Suspended(tgt)
	diff := CompareDeployments(last, tgt)
	switch {
	case !wasSuspended && nowSuspended:
		p.r.Events.Normal(ctx, p.rec, ReasonSuspended, "suspending the job")
		return newOp(OpSuspend, PhaseStopJob), nil
	case wasSuspended && nowSuspended:
		if !diff.Empty() {
			p.recordSuspended(tgt, &src)
		}
		return nil, nil
	case wasSuspended && !nowSuspended:
		op := newOp(OpDeploy, PhaseApply)
		if tgt.Job.UpgradeMode != v1beta1.UpgradeModeStateless {
			op.RestorePath = st.JobStatus.UpgradeSavepointPath
		}
		p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, "resuming the job")
		return op, nil
	}
	if tgt.Job != nil && nonceChanged(last.Job.SavepointRedeployNonce, tgt.Job.SavepointRedeployNonce) {
		op := newOp(OpUpgrade, PhaseStopJob)
		op.UpgradeMode = v1beta1.UpgradeModeStateless
		op.RestorePath = tgt.Job.InitialSavepointPath
		p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, "redeploying from "+tgt.Job.InitialSavepointPath)
		return op, nil
	}
	if diff.Type == DiffUpgrade {
		p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, "spec changed: "+strings.TrimSpace(strings.ReplaceAll(diff.String(), "\n", "; ")))
		return newOp(OpUpgrade, PhaseStopJob), nil
	}
	if nonceChanged(p.rec.LastRestartNonce, tgt.RestartNonce) {
		return newOp(OpRestart, PhaseStopJob), nil // newOp records the nonce
	}
	if diff.Type == DiffScale {
		if op := p.decideRescale(ctx, obs, last, tgt, diff, newOp); op != nil {
			return op, nil
		}
	}
	if !diff.Empty() || specJSON(tgt) != st.ReconciliationStatus.LastReconciledSpec {
		// Scale, ignorable, or only a nonce acted on below: apply in place,
		// no restart, and record the commit as reconciled.
		if diff.Type == DiffScale && obs.jm != nil {
			if err := p.applyInPlace(ctx, tgt, &src); err != nil {
				return nil, err
			}
		}
		st.ReconciliationStatus.LastReconciledSpec = specJSON(tgt)
		st.Source = &src
		p.dirty = true
	}
	if op := p.autoRestart(ctx, obs.job, tgt.FlinkConfiguration, tgt.Job == nil || nowSuspended, newOp); op != nil {
		return op, nil
	}
	// Snapshots wait until every task runs: Flink refuses them while some are
	// still being deployed, which a job that just reached RUNNING often is.
	if tgt.Job != nil && obs.job != nil && obs.job.State == flinkclient.JobRunning && tasksRunning(obs.job) {
		if nonceChanged(p.rec.LastSavepointNonce, tgt.Job.SavepointTriggerNonce) {
			op := &Operation{Kind: OpSavepoint, Phase: PhaseTriggerSavepoint, TriggerID: flinkclient.NewTriggerID(),
				TriggerType: v1beta1.TriggerManual, TriggerNonce: tgt.Job.SavepointTriggerNonce, StoppedJobID: obs.job.ID}
			return op, nil
		}
		if due, _ := p.periodicDue(tgt.FlinkConfiguration); due {
			return &Operation{Kind: OpSavepoint, Phase: PhaseTriggerSavepoint, TriggerID: flinkclient.NewTriggerID(),
				TriggerType: v1beta1.TriggerPeriodic, StoppedJobID: obs.job.ID}, nil
		}
		if op := p.decideCheckpoint(tgt.FlinkConfiguration, tgt.Job.CheckpointTriggerNonce, obs.job); op != nil {
			return op, nil
		}
	}
	if obs.jm == nil && p.rec.Deployed != nil && !nowSuspended {
		// Someone deleted the JobManager: redeploy from the newest state we
		// know — with Kubernetes HA, the checkpoint its metadata records.
		op := newOp(OpDeploy, PhaseApply)
		if p.haEligible(last, tgt) {
			n, _, err := haCheckpoint(ctx, p.r.Kube, p.rec.Namespace, p.rec.Name, p.rec.Deployed.JobID)
			if err != nil {
				return nil, err
			}
			// Stale HA data must not bring the old job graph back: the
			// cluster's leftovers go first either way.
			op.Phase = PhaseDeleteCluster
			if n > 0 {
				op.RestoreFromHA, op.JobID = true, p.rec.Deployed.JobID
				p.r.Events.Warn(ctx, p.rec, ReasonSpecChanged, fmt.Sprintf("JobManager deployment missing; redeploying from the Kubernetes HA metadata (checkpoint %d)", n))
				return op, nil
			}
		}
		op.RestorePath = p.newestState()
		p.r.Events.Warn(ctx, p.rec, ReasonSpecChanged, "JobManager deployment missing; redeploying from "+orNone(op.RestorePath))
		return op, nil
	}
	return nil, nil
}

// neverRan reports whether the deployed job cannot have state of its own:
// it started empty (no restore path), its spec never ran stably, and no
// checkpoint of it was seen — e.g. a first deploy whose JobManager never
// started. Restoring its "last state" means starting empty, as it did.
func (p *pass) neverRan() bool {
	d := p.rec.Deployed
	return d != nil && d.RestorePath == "" && p.rec.LatestCheckpoint == nil && p.rec.Reconciliation().LastStableSpec != d.Spec
}

// haEligible reports whether a job moving from spec last to tgt can be
// restored through Flink's Kubernetes HA metadata: both use Kubernetes HA,
// and we know the running job's id (the HA ConfigMaps are keyed by it).
func (p *pass) haEligible(last, tgt *v1beta1.FlinkDeploymentSpec) bool {
	if p.rec.Kind != KindDeployment || last == nil || tgt == nil || last.Job == nil || tgt.Job == nil ||
		p.rec.Deployed == nil || p.rec.Deployed.JobID == "" {
		return false
	}
	return p.kubernetesHA(last) && p.kubernetesHA(tgt)
}

// kubernetesHA reports whether spec's cluster uses Kubernetes HA (with the
// daemon's defaults under its configuration; high-availability is the
// option's old name).
func (p *pass) kubernetesHA(spec *v1beta1.FlinkDeploymentSpec) bool {
	v := p.conf(spec.FlinkConfiguration, "high-availability.type")
	if strings.TrimSpace(v) == "" {
		v = p.conf(spec.FlinkConfiguration, "high-availability")
	}
	return kubernetesHA(v)
}

// clusterSpec is the spec of the cluster that exists or is being replaced:
// the last reconciled one, else the operation's target.
func (p *pass) clusterSpec() *v1beta1.FlinkDeploymentSpec {
	if s, _ := deploymentSpec(p.rec.Reconciliation().LastReconciledSpec); s != nil {
		return s
	}
	if op := p.rec.Operation; op != nil {
		if s, _ := deploymentSpec(op.TargetSpec); s != nil {
			return s
		}
	}
	return nil
}

// native reports whether the cluster is a native one (its JobManager
// creates TaskManager pods).
func (p *pass) native() bool {
	s := p.clusterSpec()
	return s != nil && s.Mode == v1beta1.ModeNative
}

// stopForHARestore starts a last-state upgrade through the Kubernetes HA
// metadata: the job is not cancelled (that would make Flink delete its HA
// data); the cluster is deleted with its HA ConfigMaps kept, and the new
// cluster runs the job under the same id. Without a checkpoint in the HA
// metadata the new job would start empty, so the upgrade stops first and
// says so, with the job left running.
func (p *pass) stopForHARestore(ctx context.Context) error {
	op := p.rec.Operation
	jobID := p.rec.Deployed.JobID
	n, found, err := haCheckpoint(ctx, p.r.Kube, p.rec.Namespace, p.rec.Name, jobID)
	if err != nil {
		return err
	}
	if n == 0 {
		why := "has no completed checkpoint yet"
		if !found {
			why = "is missing (Flink deletes it when the job finishes, fails for good or is cancelled)"
		}
		p.fail(ctx, ReasonUpgradeFailed, fmt.Sprintf("last-state upgrade with Kubernetes HA: the HA metadata of job %s (ConfigMap %s) %s, "+
			"so the new job would start empty; nothing was changed. Wait for a checkpoint (execution.checkpointing.interval), "+
			"or set job.initialSavepointPath to the state to restore and change job.savepointRedeployNonce, or use upgradeMode: stateless to start empty",
			jobID, jobHAConfigMap(p.rec.Name, jobID), why))
		return nil
	}
	op.RestoreFromHA, op.JobID, op.StoppedJobID = true, jobID, jobID
	op.Message = fmt.Sprintf("restoring from the Kubernetes HA metadata (checkpoint %d)", n)
	p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, fmt.Sprintf("last-state upgrade: keeping job %s and its HA metadata (checkpoint %d)", jobID, n))
	return p.stopped(ctx)
}

// afterClusterGone handles the HA metadata once the old cluster is gone: it
// is kept for a restore through it (applyTarget removes its job graphs),
// kept on deletion when flink-gitops.ha.keep-on-deletion is true, and
// deleted otherwise, so a new cluster never recovers the old job.
func (p *pass) afterClusterGone(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	spec := p.clusterSpec()
	if spec == nil || !p.kubernetesHA(spec) {
		return true, nil
	}
	switch {
	case op.RestoreFromHA:
		return true, nil
	case op.Kind == OpDelete && p.confBool(spec.FlinkConfiguration, keyKeepHAOnDeletion, false):
		p.r.Events.Normal(ctx, p.rec, ReasonCleanup, "HA metadata kept ("+keyKeepHAOnDeletion+")")
		return true, nil
	}
	names, kept, err := deleteHAData(ctx, p.r.Kube, p.rec.Namespace, p.rec.Name)
	if err != nil {
		return false, err
	}
	if len(kept) > 0 && op.HACleared.IsZero() {
		p.r.Events.Warn(ctx, p.rec, ReasonNotOwned, "ConfigMaps named like Flink's HA metadata but not made by Flink were left alone: "+strings.Join(kept, ", "))
	}
	if len(names) > 0 {
		p.r.Events.Normal(ctx, p.rec, ReasonCleanup, "HA metadata deleted: "+strings.Join(names, ", "))
	}
	// The Deployments are gone, but a JobManager process may still be
	// shutting down and write its leader ConfigMap again: move on only
	// when a look haSettle after the last deletion finds nothing.
	if len(names) > 0 || op.HACleared.IsZero() {
		op.HACleared = p.now()
		return false, p.persist(ctx)
	}
	return p.now().Sub(op.HACleared) >= haSettle, nil
}

// haSettle is how long after deleting a gone cluster's HA metadata the
// daemon looks again before it trusts the deletion.
const haSettle = 3 * time.Second

// periodicDue reports whether a periodic savepoint is due, and when the
// next one is.
func (p *pass) periodicDue(fc v1beta1.FlinkConfiguration) (bool, time.Duration) {
	last := time.Time{}
	if si := p.jobStatus().SavepointInfo; si != nil && si.LastPeriodicSavepointTimestamp > 0 {
		last = time.UnixMilli(si.LastPeriodicSavepointTimestamp)
	}
	if p.rec.Deployed != nil && p.rec.Deployed.At.After(last) {
		last = p.rec.Deployed.At
	}
	at, ok, err := nextPeriodicFloor(p.conf(fc, keyPeriodicSavepoint), last, p.set.MinPeriodicInterval)
	if err != nil {
		p.log.Warn("periodic savepoints are off: cannot read "+keyPeriodicSavepoint, "err", err)
	}
	if !ok {
		return false, 0
	}
	next := at.Sub(p.now())
	return next <= 0, next
}

func nonceChanged(old, new *int64) bool {
	if new == nil {
		return false
	}
	return old == nil || *old != *new
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func orNone(s string) string {
	if s == "" {
		return "empty state"
	}
	return s
}

// recordSuspended records a suspended spec as reconciled (nothing runs).
func (p *pass) recordSuspended(tgt *v1beta1.FlinkDeploymentSpec, src *v1beta1.SourceRef) {
	st := p.rec.Deployment
	st.ReconciliationStatus.LastReconciledSpec = specJSON(tgt)
	st.ReconciliationStatus.State = v1beta1.ReconciliationDeployed
	st.ReconciliationStatus.ReconciliationTimestamp = p.now().UnixMilli()
	st.Source = src
	st.LifecycleState = v1beta1.LifecycleSuspended
	p.dirty = true
}

// newestState is the newest savepoint or checkpoint known for the job.
func (p *pass) newestState() string {
	best := v1beta1.Savepoint{}
	d := p.rec.Deployed
	if d != nil {
		// State older than the running job is not its state: a stateless
		// upgrade dropped it. The job's own state starts where it restored from.
		best.Location = d.RestorePath
	}
	if si := p.jobStatus().SavepointInfo; si != nil && si.LastSavepoint != nil {
		if sp := si.LastSavepoint; d == nil || sp.Location == d.RestorePath || sp.TimeStamp >= d.At.UnixMilli() {
			best = *sp
		}
	}
	if c := p.rec.LatestCheckpoint; c != nil && c.TimeStamp >= best.TimeStamp {
		best = *c
	}
	return best.Location
}

// applyInPlace re-applies the cluster objects for a scale change, keeping
// the job's id and restore path so nothing restarts but what must.
func (p *pass) applyInPlace(ctx context.Context, tgt *v1beta1.FlinkDeploymentSpec, src *v1beta1.SourceRef) error {
	objs, err := p.deployedObjects(tgt)
	if err != nil {
		return err
	}
	p.log.Info("scaling in place")
	_, err = applyCluster(ctx, p.r.kube(), objs)
	return err
}

// deployedObjects rebuilds the running cluster's objects as they were
// deployed (spec, defaults, job id, restore path) with the TaskManager
// replicas of cur. Building them from cur instead would change the Flink
// configuration (kubernetes.operator.* keys, parallelism.default derived
// from the replicas) and with it the config hash on the JobManager's pod
// template: the JobManager would roll and, without HA, restart the job from
// its original restore path, losing the state since.
func (p *pass) deployedObjects(cur *v1beta1.FlinkDeploymentSpec) (*cluster.Objects, error) {
	d := p.rec.Deployed
	spec := cur
	if d.Spec != "" {
		s, err := deploymentSpec(d.Spec)
		if err != nil {
			return nil, err
		}
		spec = s
	}
	in := cluster.Input{Name: p.rec.Name, Namespace: p.rec.Namespace, Spec: spec, FlinkDefaults: d.defaults(p.set.FlinkDefaults),
		SpecHash: d.SpecHash, SourceCommit: d.Commit, JobID: d.JobID, SavepointPath: d.RestorePath}
	objs, err := cluster.Build(in)
	if err != nil || spec == cur {
		return objs, err
	}
	in.Spec = cur
	now, err := cluster.Build(in)
	if err != nil {
		return nil, err
	}
	if objs.TaskManager != nil && now.TaskManager != nil {
		objs.TaskManager.Spec.Replicas = now.TaskManager.Spec.Replicas
	}
	return objs, nil
}

// drive advances the operation in flight by as many steps as it can take
// without waiting on anything.
func (p *pass) drive(ctx context.Context) (Result, error) {
	if d, ok := p.waiting(); ok { // a failed step backs off
		p.updateLifecycle()
		return Result{RequeueAfter: d}, nil
	}
	for i := 0; i < 12 && p.rec.Operation != nil; i++ {
		before := p.rec.Operation.Phase
		wait, err := p.step(ctx)
		if err != nil {
			if errors.Is(err, ErrConflict) {
				return p.fast(), err
			}
			return p.stepFailed(ctx, err), nil
		}
		if wait || p.rec.Operation == nil || p.rec.Operation.Phase == before {
			break
		}
	}
	if p.rec.Operation != nil {
		p.updateLifecycle()
		return p.fast(), nil
	}
	p.updateLifecycle()
	return p.rest(), nil
}

// step runs the current phase once. wait means the phase waits on
// something outside (a savepoint, a JVM starting).
func (p *pass) step(ctx context.Context) (wait bool, err error) {
	op := p.rec.Operation
	// Stopping a job is the same for both kinds.
	switch op.Phase {
	case PhasePreflight:
		return false, p.preflightStep(ctx)
	case PhaseStopJob:
		return false, p.stopJob(ctx)
	case PhaseTriggerSavepoint:
		return false, p.triggerSavepoint(ctx)
	case PhaseAwaitSavepoint:
		return p.awaitSavepoint(ctx)
	case PhaseTriggerCheckpoint:
		return false, p.triggerCheckpoint(ctx)
	case PhaseAwaitCheckpoint:
		return p.awaitCheckpoint(ctx)
	case PhaseCancelJob:
		return false, p.cancelJob(ctx)
	case PhaseAwaitStopped:
		return p.awaitStopped(ctx)
	}
	if p.rec.Kind == KindSessionJob {
		switch op.Phase {
		case PhaseApply:
			return p.submitSessionJob(ctx)
		case PhaseAwaitRunning:
			return p.awaitSessionJobRunning(ctx)
		}
		return false, fmt.Errorf("session job: unexpected phase %q", op.Phase)
	}
	switch op.Phase {
	case PhaseDeleteCluster:
		if op.Kind == OpDelete && p.blockedBySessionJobs(ctx) {
			return true, nil
		}
		kept, err := deleteCluster(ctx, p.r.kube(), p.rec.Name, p.rec.Namespace, p.native())
		if err != nil {
			return false, err
		}
		p.reportNotOwned(ctx, kept)
		p.r.Events.Normal(ctx, p.rec, ReasonCleanup, "cluster objects deleted")
		return false, p.to(ctx, PhaseAwaitDeleted)
	case PhaseAwaitDeleted:
		gone, err := clusterGone(ctx, p.r.kube(), p.rec.Name, p.rec.Namespace, p.native())
		if err != nil || !gone {
			return true, err
		}
		if settled, err := p.afterClusterGone(ctx); err != nil || !settled {
			return true, err
		}
		return false, p.afterDeleted(ctx)
	case PhaseApply:
		return false, p.applyTarget(ctx)
	case PhaseAwaitRunning:
		return p.awaitRunning(ctx)
	case PhaseRescale:
		return false, p.rescaleStep(ctx)
	case PhaseAwaitRescaled:
		return p.awaitRescaled(ctx)
	}
	return false, fmt.Errorf("unknown phase %q", op.Phase)
}

// jobFlink returns the REST client and the job being stopped, if the
// JobManager answers and knows it.
func (p *pass) jobFlink(ctx context.Context) (Flink, *flinkclient.JobDetails) {
	f, err := p.flink()
	if err != nil {
		return nil, nil
	}
	id := p.rec.Operation.StoppedJobID
	if id == "" && p.rec.Deployed != nil {
		id = p.rec.Deployed.JobID
	}
	if id == "" {
		return f, nil
	}
	job, err := f.Job(ctx, id)
	if err != nil {
		return f, nil
	}
	liveState(ctx, f, &job)
	return f, &job
}

// liveState takes a job's state (and end time) from the jobs overview when
// GET /jobs/:id says it is between states: that answer comes from a cache
// Flink refreshes every web.refresh-interval (3 s), the overview does not,
// so a job that got RUNNING (or CANCELED) is seen at once, not up to 3 s
// later. A job at rest (RUNNING) or finished costs no extra call.
func liveState(ctx context.Context, f Flink, job *flinkclient.JobDetails) {
	if job.State == flinkclient.JobRunning || isTerminal(job.State) {
		return
	}
	jobs, err := f.Jobs(ctx)
	if err != nil {
		return
	}
	for _, j := range jobs {
		if j.ID == job.ID && j.State != "" {
			job.State = j.State
			if !j.EndTime.IsZero() {
				job.EndTime = j.EndTime
			}
			return
		}
	}
}

// stopJob decides how the running job stops, by upgrade mode. It makes no
// external change: it chooses and persists ids, then moves on.
func (p *pass) stopJob(ctx context.Context) error {
	op := p.rec.Operation
	lastJob, fc, suspended, err := p.lastJob()
	if err != nil {
		return err
	}
	if lastJob == nil || suspended { // session cluster, or nothing runs
		return p.stopped(ctx)
	}
	f, job := p.jobFlink(ctx)
	alive := job != nil && !isTerminal(job.State)
	running := job != nil && job.State == flinkclient.JobRunning
	if job != nil {
		op.StoppedJobID = job.ID
	}
	mode := op.UpgradeMode
	if mode == "" {
		mode = v1beta1.UpgradeModeStateless
	}
	switch mode {
	case v1beta1.UpgradeModeSavepoint:
		if running && f != nil {
			op.TriggerID = flinkclient.NewTriggerID()
			op.TriggerType = v1beta1.TriggerUpgrade
			return p.to(ctx, PhaseTriggerSavepoint)
		}
		if op.Kind == OpDelete {
			return p.stopped(ctx) // nothing runs: nothing to save
		}
		if !p.confBool(fc, keyLastStateFallback, true) {
			p.fail(ctx, ReasonUpgradeFailed, fmt.Sprintf("the job is %s, so no savepoint can be taken, and %s is false; "+
				"start the job again (or set upgradeMode: last-state or stateless) and push again", jobStateOf(job), keyLastStateFallback))
			return nil
		}
		p.log.Info("job not running; falling back to last-state", "job", jobStateOf(job))
		op.UpgradeMode = v1beta1.UpgradeModeLastState
		fallthrough
	case v1beta1.UpgradeModeLastState:
		if running && f != nil && op.Kind != OpDelete && op.Cause == "" {
			if handled, err := p.lastStateMaxAge(ctx, f, job, fc); handled || err != nil {
				return err
			}
		}
		if op.Kind == OpUpgrade || op.Kind == OpRestart {
			tgt, err := deploymentSpec(op.TargetSpec)
			if err != nil {
				return err
			}
			if last, _ := deploymentSpec(p.rec.Reconciliation().LastReconciledSpec); p.haEligible(last, tgt) && (alive || !p.neverRan()) && !restartsFailedJob(op) {
				return p.stopForHARestore(ctx)
			}
		}
		if alive && f != nil {
			return p.to(ctx, PhaseCancelJob)
		}
		if op.RestorePath == "" {
			op.RestorePath = p.newestState()
		}
		if op.RestorePath == "" && p.neverRan() {
			// Its last state is where it started: nothing.
			p.log.Info("the job never ran; deploying the new spec from empty state, as the old one started")
			return p.stopped(ctx)
		}
		if op.RestorePath == "" {
			p.fail(ctx, ReasonUpgradeFailed, "last-state upgrade: no checkpoint or savepoint of the job is known and the job cannot be asked; "+
				"set job.initialSavepointPath to the state to restore and change job.savepointRedeployNonce, or use upgradeMode: stateless to start empty")
			return nil
		}
		return p.stopped(ctx)
	default: // stateless
		if alive && f != nil {
			return p.to(ctx, PhaseCancelJob)
		}
		return p.stopped(ctx)
	}
}

func jobStateOf(job *flinkclient.JobDetails) string {
	if job == nil {
		return "not reachable"
	}
	return string(job.State)
}

// triggerSavepoint triggers the savepoint with the persisted trigger id; a
// retry after a crash asks Flink for the same savepoint again.
func (p *pass) triggerSavepoint(ctx context.Context) error {
	op := p.rec.Operation
	_, fc, _, _ := p.lastJob()
	f, err := p.flink()
	if err != nil {
		return err
	}
	if op.SavepointBefore == nil {
		cps, err := f.Checkpoints(ctx, op.StoppedJobID)
		if errors.Is(err, flinkclient.ErrNotFound) {
			return p.savepointFailed(ctx, err)
		}
		if err != nil {
			return err
		}
		before := ""
		if cps.LatestSavepoint != nil {
			before = cps.LatestSavepoint.ExternalPath
		}
		op.SavepointBefore = &before
		if err := p.persist(ctx); err != nil {
			return err
		}
	} else if p.takenSavepoint(ctx, f) != "" {
		// Sent before a restart, and done since: awaitSavepoint records it.
		return p.to(ctx, PhaseAwaitSavepoint)
	}
	format := flinkclient.SavepointFormat(strings.ToUpper(p.conf(fc, keySavepointFormat)))
	dir := p.savepointDir(fc)
	if op.Kind == OpSavepoint {
		_, err = f.TriggerSavepoint(ctx, op.StoppedJobID, flinkclient.SavepointOptions{TargetDir: dir, TriggerID: op.TriggerID, FormatType: format})
	} else {
		_, err = f.StopWithSavepoint(ctx, op.StoppedJobID, flinkclient.StopOptions{TargetDir: dir, TriggerID: op.TriggerID, FormatType: format,
			Drain: op.Kind == OpDelete && p.confBool(fc, keyDrainOnStop, false)})
	}
	switch {
	case err == nil, errors.Is(err, flinkclient.ErrConflict): // conflict: this trigger id is already running
	case errors.Is(err, flinkclient.ErrNotFound), errors.Is(err, flinkclient.ErrBadRequest):
		return p.savepointFailed(ctx, err)
	default:
		return err
	}
	return p.to(ctx, PhaseAwaitSavepoint)
}

// awaitSavepoint polls the savepoint and records it when done.
func (p *pass) awaitSavepoint(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	f, err := p.flink()
	if err != nil {
		return true, err
	}
	res, err := f.SavepointStatus(ctx, op.StoppedJobID, op.TriggerID)
	if errors.Is(err, flinkclient.ErrNotFound) {
		// The JobManager does not know the trigger: it finished long
		// enough ago to be forgotten, or never happened (the JobManager
		// restarted). The job's savepoints tell which.
		loc := p.takenSavepoint(ctx, f)
		if loc == "" {
			return false, p.to(ctx, PhaseTriggerSavepoint) // trigger again, same id
		}
		res, err = flinkclient.Operation{Status: flinkclient.Completed, Location: loc}, nil
	}
	if err != nil {
		return true, err
	}
	if res.Status == flinkclient.InProgress {
		if p.now().Sub(op.PhaseStarted) > p.set.OperationTimeout {
			// Flink finishes or fails every savepoint (its checkpoint
			// timeout); triggering another meanwhile could take a second
			// savepoint, or fail once the first stopped the job and leave
			// that one unrecorded. Keep waiting, and say so.
			msg := fmt.Sprintf("savepoint %s still in progress after more than %s; waiting for Flink to complete or fail it", op.TriggerID, p.set.OperationTimeout)
			if op.Message != msg {
				op.Message = msg
				p.dirty = true
			}
		}
		return true, nil
	}
	if res.FailureCause != nil {
		return false, p.savepointFailed(ctx, res.FailureCause)
	}
	p.recordSavepoint(ctx, res.Location, op.TriggerType, op.TriggerNonce)
	if op.Kind == OpSavepoint {
		if op.TriggerType == v1beta1.TriggerManual {
			p.rec.LastSavepointNonce = op.TriggerNonce
		}
		p.finish("savepoint " + res.Location)
		return false, nil
	}
	op.RestorePath = res.Location
	p.jobStatus().UpgradeSavepointPath = res.Location
	return false, p.to(ctx, PhaseAwaitStopped)
}

// takenSavepoint returns the savepoint the operation's trigger took, found
// by looking at the job: its latest savepoint, if that is not the one it had
// before the trigger was sent. "" when there is none or it cannot be told.
func (p *pass) takenSavepoint(ctx context.Context, f Flink) string {
	op := p.rec.Operation
	if op.SavepointBefore == nil {
		return ""
	}
	cps, err := f.Checkpoints(ctx, op.StoppedJobID)
	if err != nil || cps.LatestSavepoint == nil || cps.LatestSavepoint.ExternalPath == *op.SavepointBefore {
		return ""
	}
	return cps.LatestSavepoint.ExternalPath
}

// savepointFailed handles a savepoint that failed: a plain savepoint is
// reported and dropped (the job keeps running); an upgrade savepoint is
// retried a few times, then the upgrade stops and says why.
func (p *pass) savepointFailed(ctx context.Context, cause error) error {
	op := p.rec.Operation
	if op.Kind == OpSavepoint && tasksStarting(cause) && op.SavepointFailures < checkpointRetries {
		// Refused because tasks were still being deployed (they can restart
		// after the decision): ask again shortly under a new trigger id,
		// persisted before it is sent, as for checkpoints.
		op.SavepointFailures++
		p.retrigger(PhaseTriggerSavepoint, op.SavepointFailures, cause)
		op.SavepointBefore = nil
		return p.persist(ctx)
	}
	msg := "savepoint failed: " + cause.Error()
	p.r.Events.Warn(ctx, p.rec, ReasonSavepointError, msg)
	if op.Kind == OpSavepoint {
		if op.TriggerType == v1beta1.TriggerManual {
			p.rec.LastSavepointNonce = op.TriggerNonce // answered, with an error
		} else if si := p.savepointInfo(); si != nil {
			si.LastPeriodicSavepointTimestamp = p.now().UnixMilli() // try again next interval
		}
		p.rec.Common().Error = msg
		p.finish(msg)
		return nil
	}
	if op.SavepointFailures >= 2 {
		// Given up for this spec until a backoff passes or a new commit
		// comes: without the hold-off the next pass would start the same
		// upgrade, and its savepoint, again at once.
		msg += "; the job keeps running the old spec. Fix the cause, or use upgradeMode: last-state, and push again"
		p.holdOff(op.TargetHash, op.Source, msg)
		p.fail(ctx, ReasonSavepointError, msg)
		return nil
	}
	op.SavepointFailures++
	op.Message = msg
	op.Phase = PhaseStopJob
	return p.persist(ctx)
}

func (p *pass) savepointInfo() *v1beta1.SavepointInfo {
	js := p.jobStatus()
	if js.SavepointInfo == nil {
		js.SavepointInfo = &v1beta1.SavepointInfo{}
	}
	return js.SavepointInfo
}

// recordSavepoint adds a completed savepoint to the history and prunes it.
func (p *pass) recordSavepoint(ctx context.Context, path string, typ v1beta1.SnapshotTriggerType, nonce *int64) {
	si := p.savepointInfo()
	sp := v1beta1.Savepoint{TimeStamp: p.now().UnixMilli(), Location: path, TriggerType: typ, FormatType: p.savepointFormat(), TriggerNonce: nonce}
	if p.rec.Deployed != nil {
		sp.Commit = p.rec.Deployed.Commit
	}
	si.LastSavepoint = &sp
	si.SavepointHistory = append(si.SavepointHistory, sp)
	if typ == v1beta1.TriggerPeriodic {
		si.LastPeriodicSavepointTimestamp = sp.TimeStamp
	}
	si.TriggerID, si.TriggerTimestamp, si.TriggerType = "", nil, ""
	p.r.Events.Normal(ctx, p.rec, ReasonSavepoint, fmt.Sprintf("%s savepoint completed: %s", strings.ToLower(string(typ)), path))
	p.pruneHistory(ctx)
	p.dirty = true
}

// cancelJob cancels the job; cancelling a finished job is not an error.
func (p *pass) cancelJob(ctx context.Context) error {
	op := p.rec.Operation
	f, err := p.flink()
	if err != nil {
		return err
	}
	if op.UpgradeMode == v1beta1.UpgradeModeLastState {
		// Remember where state is before the job goes, in case the
		// JobManager goes with it.
		p.observeCheckpoints(ctx, f, op.StoppedJobID)
		if op.RestorePath == "" && p.newestState() == "" {
			// Cancelling would throw the job's state away with nothing to
			// restore: leave it running and say so.
			p.fail(ctx, ReasonUpgradeFailed, "last-state upgrade: the job has no completed, retained checkpoint to restore from, so it was left running; "+
				"enable checkpointing with externalized checkpoints retained on cancellation (or wait for the first checkpoint), or use upgradeMode: savepoint, and push again")
			return nil
		}
	}
	if err := f.Cancel(ctx, op.StoppedJobID); err != nil && !errors.Is(err, flinkclient.ErrNotFound) && !errors.Is(err, flinkclient.ErrConflict) {
		return err
	}
	return p.to(ctx, PhaseAwaitStopped)
}

// awaitStopped waits for the job to reach a terminal state; last-state
// then takes the newest retained checkpoint as the restore path.
func (p *pass) awaitStopped(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	f, job := p.jobFlink(ctx)
	if job != nil && !isTerminal(job.State) {
		if p.now().Sub(op.PhaseStarted) > p.set.OperationTimeout {
			return false, fmt.Errorf("job %s still %s after %s", op.StoppedJobID, job.State, p.set.OperationTimeout)
		}
		return true, nil
	}
	if job != nil {
		p.setJobStatus(ctx, job)
	}
	if op.UpgradeMode == v1beta1.UpgradeModeLastState && op.RestorePath == "" {
		if job != nil {
			// Flink caches checkpoint statistics for
			// rest.cache.checkpoint-statistics.timeout: a read from before
			// the job stopped (cancelJob makes one) can name a checkpoint
			// that a newer one has since subsumed and deleted. Read them
			// only once anything cached before the stop has expired.
			_, fc, _, _ := p.lastJob()
			ttl := p.confDuration(fc, "rest.cache.checkpoint-statistics.timeout", p.confDuration(fc, "web.refresh-interval", 3*time.Second))
			stoppedAt := op.PhaseStarted
			if job.EndTime.After(stoppedAt) {
				stoppedAt = job.EndTime
			}
			if p.now().Before(stoppedAt.Add(ttl)) {
				return true, nil
			}
		}
		if f != nil && op.StoppedJobID != "" {
			p.observeCheckpoints(ctx, f, op.StoppedJobID)
		}
		op.RestorePath = p.newestState()
		if op.RestorePath == "" {
			p.fail(ctx, ReasonUpgradeFailed, "last-state upgrade: the job has no completed, retained checkpoint to restore from; "+
				"enable checkpointing with externalized checkpoints retained on cancellation, or use upgradeMode: savepoint, and push again")
			return false, nil
		}
		p.jobStatus().UpgradeSavepointPath = op.RestorePath
	}
	return false, p.stopped(ctx)
}

// blockedBySessionJobs reports whether a session cluster still has session
// jobs, which must go first (as in the operator).
func (p *pass) blockedBySessionJobs(ctx context.Context) bool {
	recs, err := p.r.Store.List(ctx, p.rec.Namespace)
	if err != nil {
		return true
	}
	var names []string
	for _, r := range recs {
		if r.Kind != KindSessionJob || r.SessionJob == nil || r.SessionJob.LifecycleState == v1beta1.LifecycleDeleted {
			continue
		}
		if js, _ := sessionJobSpec(r.SessionJob.ReconciliationStatus.LastReconciledSpec); js != nil && js.DeploymentName == p.rec.Name {
			names = append(names, r.Name)
		}
	}
	if len(names) == 0 {
		return false
	}
	msg := "waiting for session jobs to be deleted first: " + strings.Join(names, ", ")
	if p.rec.Operation.Message != msg {
		p.rec.Operation.Message = msg
		p.dirty = true
	}
	return true
}

// afterDeleted ends deletion and suspension, or moves an upgrade on.
func (p *pass) afterDeleted(ctx context.Context) error {
	op := p.rec.Operation
	st := p.rec.Deployment
	st.JobManagerDeploymentStatus = v1beta1.JMMissing
	switch op.Kind {
	case OpDelete:
		p.markDeleted()
		p.finish("deleted")
		return nil
	case OpSuspend:
		tgt, err := deploymentSpec(op.TargetSpec)
		if err != nil {
			return err
		}
		p.recordSuspended(tgt, op.Source)
		p.rec.Deployed = nil
		p.r.Events.Normal(ctx, p.rec, ReasonSuspended, "job suspended; state in "+orNone(st.JobStatus.UpgradeSavepointPath))
		p.finish("suspended")
		return nil
	}
	return p.to(ctx, PhaseApply)
}

// markDeleted keeps the record, with its savepoint history, as DELETED.
func (p *pass) markDeleted() {
	c := p.rec.Common()
	c.LifecycleState = v1beta1.LifecycleDeleted
	rs := p.rec.Reconciliation()
	rs.LastReconciledSpec, rs.LastStableSpec = "", ""
	p.rec.Deployed = nil
	p.dirty = true
}

// applyTarget applies the target spec's cluster with a job id chosen and
// persisted first.
func (p *pass) applyTarget(ctx context.Context) error {
	op := p.rec.Operation
	tgt, err := deploymentSpec(op.TargetSpec)
	if err != nil {
		return err
	}
	if tgt.Job != nil && op.JobID == "" {
		op.JobID = flinkclient.NewJobID()
		if err := p.persist(ctx); err != nil {
			return err
		}
	}
	if op.RestoreFromHA {
		n, _, err := haCheckpoint(ctx, p.r.Kube, p.rec.Namespace, p.rec.Name, op.JobID)
		if err != nil {
			return err
		}
		if n == 0 {
			p.fail(ctx, ReasonUpgradeFailed, fmt.Sprintf("the Kubernetes HA metadata of job %s (ConfigMap %s) disappeared during the upgrade; "+
				"the job was not started empty. Set job.initialSavepointPath to its newest checkpoint or savepoint and change job.savepointRedeployNonce",
				op.JobID, jobHAConfigMap(p.rec.Name, op.JobID)))
			return nil
		}
		if err := stripJobGraphs(ctx, p.r.Kube, p.rec.Namespace, p.rec.Name); err != nil {
			return err
		}
	}
	commit := ""
	if op.Source != nil {
		commit = op.Source.Commit
	}
	in := cluster.Input{
		Name: p.rec.Name, Namespace: p.rec.Namespace, Spec: tgt, FlinkDefaults: p.set.FlinkDefaults,
		SpecHash: op.TargetHash, SourceCommit: commit, JobID: op.JobID, SavepointPath: op.RestorePath,
	}
	if tgt.Job != nil && tgt.Job.AllowNonRestoredState != nil {
		in.AllowNonRestoredState = *tgt.Job.AllowNonRestoredState
	}
	objs, err := cluster.Build(in)
	if err != nil {
		return permanent(err) // pre-flight builds the same objects: only a rollback target gets here
	}
	if _, err := applyCluster(ctx, p.r.kube(), objs); err != nil {
		return err
	}
	st := p.rec.Deployment
	rs := &st.ReconciliationStatus
	rs.LastReconciledSpec = op.TargetSpec
	rs.ReconciliationTimestamp = p.now().UnixMilli()
	rs.State = v1beta1.ReconciliationDeployed
	if op.Kind == OpRollback {
		rs.State = v1beta1.ReconciliationRolledBack
	}
	st.Source = op.Source
	p.rec.LatestCheckpoint = nil // the previous job's; the new one starts from RestorePath
	p.rec.Deployed = &Deployed{JobID: op.JobID, RestorePath: op.RestorePath, SpecHash: op.TargetHash, Commit: commit, At: p.now(),
		FlinkDefaults: maps.Clone(in.FlinkDefaults), Spec: op.TargetSpec}
	if p.rec.Deployed.FlinkDefaults == nil {
		p.rec.Deployed.FlinkDefaults = map[string]string{}
	}
	if tgt.Job != nil {
		st.JobStatus.JobID = op.JobID
		st.JobStatus.State = v1beta1.JobReconciling
	}
	p.r.Events.Normal(ctx, p.rec, ReasonSubmit, fmt.Sprintf("cluster applied (commit %s, restore from %s)", short(commit), orNone(op.RestorePath)))
	return p.to(ctx, PhaseAwaitRunning)
}

// awaitRunning waits for the JobManager and the job; past the readiness
// timeout it rolls back (when enabled) or stops waiting and reports.
func (p *pass) awaitRunning(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	st := p.rec.Deployment
	tgt, err := deploymentSpec(op.TargetSpec)
	if err != nil {
		return false, err
	}
	obs, err := p.observe(ctx)
	if err != nil {
		return true, err
	}
	failure := ""
	if obs.jm != nil && st.JobManagerDeploymentStatus == v1beta1.JMError {
		failure = "JobManager cannot start: " + deploymentFailure(obs.jm)
	}
	if tgt.Job == nil {
		if st.JobManagerDeploymentStatus == v1beta1.JMReady {
			p.finish("session cluster ready")
			return false, nil
		}
	} else if obs.job != nil {
		switch obs.job.State {
		case flinkclient.JobRunning:
			p.finish("job running")
			return false, nil
		case flinkclient.JobFailed:
			failure = "job failed: " + p.jobFailure(ctx, obs)
		}
	}
	timeout := p.confDuration(tgt.FlinkConfiguration, keyReadinessTimeout, 5*time.Minute)
	if failure == "" && p.now().Sub(op.PhaseStarted) < timeout {
		return true, nil
	}
	if failure == "" {
		failure = fmt.Sprintf("not running %s after deploy (JobManager %s, job %s)", timeout, st.JobManagerDeploymentStatus, st.JobStatus.State)
		if obs.restErr != nil {
			failure += "; its REST API: " + obs.restErr.Error()
		}
		if tgt.Job != nil && tgt.Mode == v1beta1.ModeNative && obs.jm != nil {
			failure += p.noTaskManagersHint(ctx, tgt)
		}
	}
	return false, p.notStable(ctx, tgt, failure)
}

// noTaskManagersHint explains a native job that never ran when its
// JobManager created no TaskManager pod: most often its service account
// may not create pods.
func (p *pass) noTaskManagersHint(ctx context.Context, tgt *v1beta1.FlinkDeploymentSpec) string {
	pods, err := taskManagerPods(ctx, p.r.Kube, p.rec.Namespace, p.rec.Name)
	if err != nil || len(pods) > 0 {
		return ""
	}
	sa := tgt.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return fmt.Sprintf("; the JobManager created no TaskManager pod: in native mode it creates them itself, as service account %q, "+
		"which needs the rights of deploy/flink-serviceaccount (pods, configmaps) in %s — see the JobManager log", sa, p.rec.Namespace)
}

// jobFailure summarises the job's newest exception.
func (p *pass) jobFailure(ctx context.Context, obs *observation) string {
	if obs.flink != nil && obs.job != nil {
		if e, err := obs.flink.Exceptions(ctx, obs.job.ID, 4); err == nil && len(e.Entries) > 0 {
			return exceptionSummary(e)
		}
	}
	return "see the JobManager log"
}

// notStable handles a deploy that did not become stable: roll back to the
// last stable spec when enabled, otherwise stop waiting and report.
func (p *pass) notStable(ctx context.Context, tgt *v1beta1.FlinkDeploymentSpec, failure string) error {
	op := p.rec.Operation
	rs := &p.rec.Deployment.ReconciliationStatus
	if op.Kind != OpRollback && p.confBool(tgt.FlinkConfiguration, keyRollbackEnabled, false) &&
		rs.LastStableSpec != "" && rs.LastStableSpec != op.TargetSpec {
		msg := "rolling back to the last stable spec: " + failure
		p.r.Events.Warn(ctx, p.rec, ReasonRollback, msg)
		p.rec.Common().Error = failure
		rb := &Operation{Kind: OpRollback, Phase: PhaseDeleteCluster, TargetSpec: rs.LastStableSpec,
			UpgradeMode: op.UpgradeMode, RestorePath: op.RestorePath, Source: p.rec.Deployment.Source, Message: failure}
		if op.RestoreFromHA {
			// Back from the same HA metadata, under the same job id.
			rb.RestoreFromHA, rb.JobID = true, op.JobID
		}
		now := p.now()
		rb.Started, rb.PhaseStarted = now, now
		p.rec.Operation = rb
		return p.persist(ctx)
	}
	p.fail(ctx, ReasonUpgradeFailed, failure+"; fix the spec and push again")
	return nil
}

// settle runs at rest: it marks a healthy deployment stable, re-applies
// objects to undo drift, disposes pruned savepoints and schedules the next
// pass.
func (p *pass) settle(ctx context.Context, obs *observation) (Result, error) {
	st := p.rec.Deployment
	rs := &st.ReconciliationStatus
	res := p.rest()
	if rs.LastReconciledSpec == "" {
		p.updateLifecycle()
		return res, nil
	}
	last, err := deploymentSpec(rs.LastReconciledSpec)
	if err != nil {
		return res, err
	}
	healthy := st.JobManagerDeploymentStatus == v1beta1.JMReady && (last.Job == nil || (obs.job != nil && obs.job.State == flinkclient.JobRunning))
	if healthy && rs.LastStableSpec != rs.LastReconciledSpec && rs.State != v1beta1.ReconciliationRolledBack {
		rs.LastStableSpec = rs.LastReconciledSpec
		st.Error = ""
		p.dirty = true
	}
	if healthy && st.Error != "" && st.LifecycleState == v1beta1.LifecycleFailed && !p.failed {
		st.Error = ""
		p.dirty = true
	}
	if obs.job != nil && obs.job.State == flinkclient.JobFailed && st.Error == "" {
		st.Error = "job failed: " + p.jobFailure(ctx, obs)
		p.dirty = true
	}
	if obs.jm != nil && p.rec.Deployed != nil && !cluster.Suspended(last) {
		// Re-apply the same objects: drift is corrected, nothing restarts.
		objs, err := p.deployedObjects(last)
		if err == nil {
			fixed, err := applyCluster(ctx, p.r.kube(), objs)
			if err != nil {
				p.log.Warn("drift correction failed", "err", err)
			}
			if len(fixed) > 0 {
				msg := "changed by someone else, set back to the spec of commit " + short(p.rec.Deployed.Commit) + ": " + strings.Join(fixed, ", ")
				p.log.Info("drift corrected", "objects", fixed)
				p.r.Events.Warn(ctx, p.rec, ReasonDriftCorrected, msg)
			}
		}
	}
	if obs.flink != nil {
		p.disposePending(ctx, obs.flink)
	}
	if last.Job != nil {
		if _, next := p.periodicDue(last.FlinkConfiguration); next > 0 && next < res.RequeueAfter {
			res.RequeueAfter = next
		}
		if _, next := p.periodicCheckpointNext(last.FlinkConfiguration); next > 0 && next < res.RequeueAfter {
			res.RequeueAfter = next
		}
	}
	p.updateLifecycle()
	return res, nil
}

// updateLifecycle derives the lifecycle state as the operator does.
func (p *pass) updateLifecycle() {
	c := p.rec.Common()
	rs := p.rec.Reconciliation()
	var s v1beta1.LifecycleState
	switch op := p.rec.Operation; {
	case c.LifecycleState == v1beta1.LifecycleDeleted && op == nil:
		return
	case op != nil && op.Kind == OpDelete:
		s = v1beta1.LifecycleDeleting
	case op != nil && op.Kind == OpRollback:
		s = v1beta1.LifecycleRollingBack
	case op != nil && op.Kind != OpSavepoint && op.Kind != OpCheckpoint:
		s = v1beta1.LifecycleUpgrading
	case rs.LastReconciledSpec == "":
		s = v1beta1.LifecycleCreated
	case c.LifecycleState == v1beta1.LifecycleFailed && c.Error != "":
		s = v1beta1.LifecycleFailed
	case p.rec.Deployment != nil && isSuspendedJSON(rs.LastReconciledSpec):
		s = v1beta1.LifecycleSuspended
	case p.rec.Kind == KindSessionJob && isSuspendedSessionJobJSON(rs.LastReconciledSpec):
		s = v1beta1.LifecycleSuspended
	case c.JobStatus.State == v1beta1.JobFailed:
		s = v1beta1.LifecycleFailed
	case rs.State == v1beta1.ReconciliationRolledBack:
		s = v1beta1.LifecycleRolledBack
	case rs.LastStableSpec == rs.LastReconciledSpec:
		s = v1beta1.LifecycleStable
	default:
		s = v1beta1.LifecycleDeployed
	}
	if c.LifecycleState != s {
		c.LifecycleState = s
		p.dirty = true
	}
}

func isSuspendedJSON(js string) bool {
	s, err := deploymentSpec(js)
	return err == nil && s != nil && cluster.Suspended(s)
}

func isSuspendedSessionJobJSON(js string) bool {
	s, err := sessionJobSpec(js)
	return err == nil && s != nil && s.Job != nil && s.Job.State == v1beta1.JobStateSuspended
}
