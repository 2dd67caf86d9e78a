package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

const (
	// keyJarSHA256 optionally pins the jar's SHA-256 (hex) in the session
	// job's flinkConfiguration; a jar that does not match is not submitted.
	keyJarSHA256 = "flink-gitops.jar.sha256"
	// keyArtifactHeaders are HTTP headers for fetching the jar.
	keyArtifactHeaders = "kubernetes.operator.user.artifacts.http.header"
)

// sessionJobSpec decodes a session job spec JSON kept in the record.
func sessionJobSpec(js string) (*v1beta1.FlinkSessionJobSpec, error) {
	return decodeSpec[v1beta1.FlinkSessionJobSpec](js, "session job spec")
}

// jobStatus is the job status of either kind.
func (p *pass) jobStatus() *v1beta1.JobStatus {
	return &p.rec.Common().JobStatus
}

// lastJob returns the job of the last reconciled spec of either kind, its
// Flink configuration, and whether it is suspended.
func (p *pass) lastJob() (*v1beta1.JobSpec, v1beta1.FlinkConfiguration, bool, error) {
	js := p.rec.Reconciliation().LastReconciledSpec
	if p.rec.Kind == KindSessionJob {
		s, err := sessionJobSpec(js)
		if err != nil || s == nil || s.Job == nil {
			return nil, nil, false, err
		}
		return s.Job, s.FlinkConfiguration, s.Job.State == v1beta1.JobStateSuspended, nil
	}
	s, err := deploymentSpec(js)
	if err != nil || s == nil || s.Job == nil {
		var fc v1beta1.FlinkConfiguration
		if s != nil {
			fc = s.FlinkConfiguration
		}
		return nil, fc, false, err
	}
	return s.Job, s.FlinkConfiguration, s.Job.State == v1beta1.JobStateSuspended, nil
}

// clusterName is the FlinkDeployment whose JobManager runs the job.
func (p *pass) clusterName() string {
	if p.rec.Kind != KindSessionJob {
		return p.rec.Name
	}
	if op := p.rec.Operation; op != nil && op.TargetSpec != "" {
		if s, _ := sessionJobSpec(op.TargetSpec); s != nil {
			return s.DeploymentName
		}
	}
	if s, _ := sessionJobSpec(p.rec.SessionJob.ReconciliationStatus.LastReconciledSpec); s != nil {
		return s.DeploymentName
	}
	if p.desired != nil && p.desired.SessionJob != nil {
		return p.desired.SessionJob.Spec.DeploymentName
	}
	return ""
}

// flink returns the REST client of the JobManager running the job.
func (p *pass) flink() (Flink, error) {
	name := p.clusterName()
	if name == "" {
		return nil, fmt.Errorf("no session cluster named")
	}
	return p.r.Flink(p.rec.Namespace, name)
}

// stopped moves on once the old job is stopped: a cluster is deleted next;
// a session job is done (suspend, delete) or submitted again.
func (p *pass) stopped(ctx context.Context) error {
	if p.rec.Kind != KindSessionJob {
		return p.to(ctx, PhaseDeleteCluster)
	}
	op := p.rec.Operation
	switch op.Kind {
	case OpDelete:
		p.markDeleted()
		p.finish("deleted")
		return nil
	case OpSuspend:
		st := p.rec.SessionJob
		st.ReconciliationStatus.LastReconciledSpec = op.TargetSpec
		st.ReconciliationStatus.ReconciliationTimestamp = p.now().UnixMilli()
		st.Source = op.Source
		p.rec.Deployed = nil
		p.r.Events.Normal(ctx, p.rec, ReasonSuspended, "job suspended; state in "+orNone(st.JobStatus.UpgradeSavepointPath))
		p.finish("suspended")
		return nil
	}
	return p.to(ctx, PhaseApply)
}

// reconcileSessionJob is one pass over a FlinkSessionJob.
func (p *pass) reconcileSessionJob(ctx context.Context) (Result, error) {
	st := p.rec.SessionJob
	var job *flinkclient.JobDetails
	if f, err := p.flink(); err == nil && p.rec.Deployed != nil && p.rec.Deployed.JobID != "" {
		if j, err := f.Job(ctx, p.rec.Deployed.JobID); err == nil {
			job = &j
			p.setJobStatus(ctx, &j)
			if j.State == flinkclient.JobRunning || isTerminal(j.State) {
				p.observeCheckpoints(ctx, f, j.ID)
			}
		} else if errors.Is(err, flinkclient.ErrNotFound) {
			p.jobLost = true
		}
	}
	if p.rec.Operation == nil {
		op, err := p.decideSessionJob(ctx, job)
		if err != nil {
			return p.rest(), err
		}
		if op == nil {
			p.notWaiting()
			rs := &st.ReconciliationStatus
			if job != nil && job.State == flinkclient.JobRunning && rs.LastStableSpec != rs.LastReconciledSpec {
				rs.LastStableSpec = rs.LastReconciledSpec
				p.dirty = true
			}
			if f, err := p.flink(); err == nil && job != nil {
				p.disposePending(ctx, f)
			}
			res := p.rest()
			if last, fc, _, _ := p.lastJob(); last != nil {
				if _, next := p.periodicDue(fc); next > 0 && next < res.RequeueAfter {
					res.RequeueAfter = next
				}
				if _, next := p.periodicCheckpointNext(fc); next > 0 && next < res.RequeueAfter {
					res.RequeueAfter = next
				}
			}
			p.updateLifecycle()
			p.sweepJarsAtRest(ctx)
			return res, nil
		}
		if !p.admit(ctx, op) {
			p.updateLifecycle()
			return Result{RequeueAfter: gateRetry}, nil
		}
		if err := p.begin(ctx, op); err != nil {
			return p.fast(), err
		}
	}
	op, cl := p.rec.Operation, p.clusterName()
	res, err := p.drive(ctx)
	p.sweepJarsAfter(ctx, op, cl)
	return res, err
}

// decideSessionJob chooses the operation for a session job.
func (p *pass) decideSessionJob(ctx context.Context, job *flinkclient.JobDetails) (*Operation, error) {
	st := p.rec.SessionJob
	if p.desired.observeOnly() {
		return nil, nil
	}
	last, err := sessionJobSpec(st.ReconciliationStatus.LastReconciledSpec)
	if err != nil {
		return nil, err
	}
	if p.desired == nil {
		if last == nil {
			p.markDeleted()
			return nil, nil
		}
		op := &Operation{Kind: OpDelete, Phase: PhaseStopJob, UpgradeMode: v1beta1.UpgradeModeStateless}
		if p.confBool(last.FlinkConfiguration, keySavepointOnDeletion, false) {
			op.UpgradeMode = v1beta1.UpgradeModeSavepoint
		}
		return op, nil
	}
	tgt := p.desired.SessionJob.Spec
	src := p.desired.Source
	src.RenderHash = p.desired.Hash
	newOp := func(kind OpKind, phase Phase) *Operation {
		p.rec.LastRestartNonce = tgt.RestartNonce // answered by any operation on tgt, as for deployments
		return &Operation{Kind: kind, Phase: phase, TargetSpec: specJSON(tgt), TargetHash: p.desired.Hash, Source: &src, UpgradeMode: tgt.Job.UpgradeMode}
	}
	suspendedNow := tgt.Job.State == v1beta1.JobStateSuspended
	if last == nil {
		p.rec.LastSavepointNonce = tgt.Job.SavepointTriggerNonce
		p.rec.LastCheckpointNonce = tgt.Job.CheckpointTriggerNonce
		p.rec.LastRestartNonce = tgt.RestartNonce
		if suspendedNow {
			st.ReconciliationStatus.LastReconciledSpec = specJSON(tgt)
			st.Source = &src
			p.dirty = true
			return nil, nil
		}
		op := newOp(OpDeploy, PhaseApply)
		op.RestorePath = tgt.Job.InitialSavepointPath
		return op, nil
	}
	if last.DeploymentName != tgt.DeploymentName {
		p.fail(ctx, ReasonValidationError, "spec.deploymentName: moving a session job to another session cluster is not supported; remove it from Git first, then add it again")
		return nil, nil
	}
	wasSuspended := last.Job.State == v1beta1.JobStateSuspended
	diff := CompareSessionJobs(last, &tgt)
	switch {
	case !wasSuspended && suspendedNow:
		return newOp(OpSuspend, PhaseStopJob), nil
	case wasSuspended && suspendedNow:
		if !diff.Empty() {
			st.ReconciliationStatus.LastReconciledSpec = specJSON(tgt)
			p.dirty = true
		}
		return nil, nil
	case wasSuspended:
		op := newOp(OpDeploy, PhaseApply)
		if tgt.Job.UpgradeMode != v1beta1.UpgradeModeStateless {
			op.RestorePath = st.JobStatus.UpgradeSavepointPath
		}
		return op, nil
	}
	if diff.Type == DiffUpgrade {
		p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, "spec changed: "+strings.TrimSpace(strings.ReplaceAll(diff.String(), "\n", "; ")))
		return newOp(OpUpgrade, PhaseStopJob), nil
	}
	if nonceChanged(p.rec.LastRestartNonce, tgt.RestartNonce) {
		p.rec.LastRestartNonce = tgt.RestartNonce
		return newOp(OpRestart, PhaseStopJob), nil
	}
	if !diff.Empty() || specJSON(tgt) != st.ReconciliationStatus.LastReconciledSpec { // ignorable, or only a nonce acted on below
		st.ReconciliationStatus.LastReconciledSpec = specJSON(tgt)
		st.Source = &src
		p.dirty = true
	}
	if op := p.autoRestart(ctx, job, tgt.FlinkConfiguration, suspendedNow, newOp); op != nil {
		return op, nil
	}
	if job != nil && job.State == flinkclient.JobRunning {
		if nonceChanged(p.rec.LastSavepointNonce, tgt.Job.SavepointTriggerNonce) {
			return &Operation{Kind: OpSavepoint, Phase: PhaseTriggerSavepoint, TriggerID: flinkclient.NewTriggerID(),
				TriggerType: v1beta1.TriggerManual, TriggerNonce: tgt.Job.SavepointTriggerNonce, StoppedJobID: job.ID}, nil
		}
		if due, _ := p.periodicDue(tgt.FlinkConfiguration); due {
			return &Operation{Kind: OpSavepoint, Phase: PhaseTriggerSavepoint, TriggerID: flinkclient.NewTriggerID(),
				TriggerType: v1beta1.TriggerPeriodic, StoppedJobID: job.ID}, nil
		}
		if op := p.decideCheckpoint(tgt.FlinkConfiguration, tgt.Job.CheckpointTriggerNonce, job); op != nil {
			return op, nil
		}
	}
	if p.jobLost && !suspendedNow {
		// The session cluster was redeployed or restarted and forgot the
		// job: submit it again from its newest state.
		op := newOp(OpDeploy, PhaseApply)
		if tgt.Job.UpgradeMode != v1beta1.UpgradeModeStateless {
			op.RestorePath = p.newestState()
		}
		p.r.Events.Warn(ctx, p.rec, ReasonJobStatusChanged, fmt.Sprintf("job %s is gone from session cluster %s; submitting it again from %s",
			p.rec.Deployed.JobID, tgt.DeploymentName, orNone(op.RestorePath)))
		return op, nil
	}
	return nil, nil
}

// submitSessionJob uploads the jar and runs it with a job id chosen and
// persisted first, so a retry never submits twice.
func (p *pass) submitSessionJob(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	tgt, err := sessionJobSpec(op.TargetSpec)
	if err != nil {
		return false, err
	}
	f, err := p.flink()
	if err != nil {
		return true, err
	}
	if op.JobID == "" {
		op.JobID = flinkclient.NewJobID()
		if err := p.persist(ctx); err != nil {
			return false, err
		}
	}
	jar, release, err := p.r.fetcher().Fetch(ctx, p.set.Artifacts, p.jarRequest(tgt))
	if err != nil {
		if errors.Is(err, artifact.ErrInvalid) {
			p.fail(ctx, ReasonValidationError, err.Error())
			return false, nil
		}
		return false, err
	}
	defer release()
	jarID, err := p.uploadJarOnce(ctx, f, jar)
	if err != nil {
		return false, err
	}
	req := flinkclient.JarRunRequest{EntryClass: tgt.Job.EntryClass, Args: tgt.Job.Args, Parallelism: int(tgt.Job.Parallelism),
		JobID: op.JobID, SavepointPath: op.RestorePath}
	if tgt.Job.AllowNonRestoredState != nil {
		req.AllowNonRestoredState = *tgt.Job.AllowNonRestoredState
	}
	conf := map[string]string{}
	for k, v := range tgt.FlinkConfiguration {
		if !strings.HasPrefix(k, "kubernetes.operator.") && k != keyJarSHA256 {
			conf[k] = v
		}
	}
	if len(conf) > 0 {
		req.FlinkConfiguration = conf
	}
	if _, err := f.RunJar(ctx, jarID, req); err != nil && !errors.Is(err, flinkclient.ErrConflict) {
		if (errors.Is(err, flinkclient.ErrBadRequest) || errors.Is(err, flinkclient.ErrOperationFailed)) && !p.jarVanished(ctx, f, jarID) {
			p.fail(ctx, ReasonRestoreFailed, "submit session job: "+err.Error())
			return false, nil
		}
		return false, err
	}
	st := p.rec.SessionJob
	st.ReconciliationStatus.LastReconciledSpec = op.TargetSpec
	st.ReconciliationStatus.ReconciliationTimestamp = p.now().UnixMilli()
	st.ReconciliationStatus.State = v1beta1.ReconciliationDeployed
	st.Source = op.Source
	st.JobStatus.JobID = op.JobID
	st.JobStatus.State = v1beta1.JobReconciling
	commit := ""
	if op.Source != nil {
		commit = op.Source.Commit
	}
	p.rec.LatestCheckpoint = nil // the previous job's; the new one starts from RestorePath
	p.rec.Deployed = &Deployed{JobID: op.JobID, RestorePath: op.RestorePath, SpecHash: op.TargetHash, Commit: commit, At: p.now(), JarDigest: op.JarDigest}
	p.r.Events.Normal(ctx, p.rec, ReasonSubmit, fmt.Sprintf("job %s submitted to %s (restore from %s)", op.JobID, tgt.DeploymentName, orNone(op.RestorePath)))
	return false, p.to(ctx, PhaseAwaitRunning)
}

// awaitSessionJobRunning waits for the submitted job to run.
func (p *pass) awaitSessionJobRunning(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	f, err := p.flink()
	if err != nil {
		return true, err
	}
	job, err := f.Job(ctx, op.JobID)
	if err == nil {
		p.setJobStatus(ctx, &job)
		switch job.State {
		case flinkclient.JobRunning:
			p.finish("job running")
			return false, nil
		case flinkclient.JobFailed:
			msg := "job failed"
			if e, err := f.Exceptions(ctx, job.ID, 1); err == nil && len(e.Entries) > 0 {
				msg += ": " + e.Entries[0].Message
			}
			p.fail(ctx, ReasonUpgradeFailed, msg+"; fix the spec and push again")
			return false, nil
		}
	}
	if p.now().Sub(op.PhaseStarted) > p.set.OperationTimeout {
		p.fail(ctx, ReasonUpgradeFailed, fmt.Sprintf("job %s not running %s after submission", op.JobID, p.set.OperationTimeout))
		return false, nil
	}
	return true, nil
}

// jarRequest is what to fetch for a session job: its jarURI, the SHA-256
// pin, and the HTTP headers of kubernetes.operator.user.artifacts.http.header
// (the session cluster's, overridden by the job's, as in the operator).
func (p *pass) jarRequest(tgt *v1beta1.FlinkSessionJobSpec) artifact.Request {
	req := artifact.Request{URI: tgt.Job.JarURI, SHA256: tgt.FlinkConfiguration[keyJarSHA256], Headers: map[string]string{}}
	var confs []v1beta1.FlinkConfiguration
	if p.desired != nil {
		confs = append(confs, p.desired.ClusterConfiguration)
	}
	for _, c := range append(confs, tgt.FlinkConfiguration) {
		if v, ok := c[keyArtifactHeaders]; ok {
			h, _ := render.ParseHeaders(v) // validated at render
			maps.Copy(req.Headers, h)
		}
	}
	return req
}
