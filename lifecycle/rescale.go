package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// In-place rescaling, as the operator's NativeFlinkService#scale does it: a
// change of parallelism only, on a job the adaptive scheduler runs (Flink
// 1.18 and later), is applied through PUT /jobs/:id/resource-requirements.
// The job keeps its id and restarts its tasks from its latest checkpoint;
// nothing is redeployed. Anything else, or any failure on the way, is a
// full upgrade as before.

const (
	// keyInPlaceScaling switches in-place rescaling off (operator default true).
	keyInPlaceScaling = "kubernetes.operator.job.upgrade.inplace-scaling.enabled"
	keyScheduler      = "jobmanager.scheduler"
	keySchedulerMode  = "scheduler-mode"
)

// ReasonScaling is the event reason of an in-place rescale (the operator's).
const ReasonScaling = "Scaling"

// parallelismPaths are the spec fields a rescale can apply in place.
var parallelismPaths = map[string]bool{
	"spec.job.parallelism":      true,
	"spec.taskManager.replicas": true,
	`spec.flinkConfiguration["` + cluster.KeyParallelismOver + `"]`: true,
}

// rescaleBlocker returns why the change from last to tgt cannot be
// rescaled in place ("" when it can), looking only at the specs: conf reads
// a spec's Flink configuration with the daemon's defaults under it. The
// job must also be running, which the caller checks.
func rescaleBlocker(last, tgt *v1beta1.FlinkDeploymentSpec, d Diff, conf func(v1beta1.FlinkConfiguration, string) string) string {
	if tgt.Job == nil || last.Job == nil {
		return "a session cluster has no job to rescale"
	}
	touched := false
	for _, c := range d.Changes {
		switch {
		case parallelismPaths[c.Path]:
			touched = true
		case c.Type != DiffIgnore:
			return c.Path + " changed too, which needs a redeploy"
		}
	}
	if !touched {
		return "no parallelism changed"
	}
	if v, err := strconv.ParseBool(strings.TrimSpace(conf(tgt.FlinkConfiguration, keyInPlaceScaling))); err == nil && !v {
		return keyInPlaceScaling + " is false"
	}
	if !versionAtLeast(tgt.FlinkVersion, 1, 18) {
		return fmt.Sprintf("flinkVersion %s has no resource-requirements API (Flink 1.18 and later have)", orUnset(string(tgt.FlinkVersion)))
	}
	for _, s := range []*v1beta1.FlinkDeploymentSpec{last, tgt} {
		if !strings.EqualFold(strings.TrimSpace(conf(s.FlinkConfiguration, keyScheduler)), "adaptive") {
			return keyScheduler + " is not adaptive (only the adaptive scheduler rescales a running job)"
		}
		if strings.EqualFold(strings.TrimSpace(conf(s.FlinkConfiguration, keySchedulerMode)), "reactive") {
			return "reactive mode scales with the TaskManagers"
		}
	}
	return ""
}

// versionAtLeast reports whether a spec's flinkVersion (v1_18, v2_2) is at
// least major.minor.
func versionAtLeast(v v1beta1.FlinkVersion, major, minor int) bool {
	maj, min, ok := strings.Cut(strings.TrimPrefix(string(v), "v"), "_")
	a, errA := strconv.Atoi(maj)
	b, errB := strconv.Atoi(min)
	if !ok || errA != nil || errB != nil {
		return false
	}
	return a > major || (a == major && b >= minor)
}

func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// parallelismOf is what decides a job's vertex parallelism: the parallelism
// its vertices get by default and the per-vertex overrides.
type parallelismOf struct {
	Default   int
	Overrides map[string]int
}

// specParallelism reads a spec's parallelism the way its cluster gets it
// (cluster.Parallelism over the effective configuration).
func specParallelism(s *v1beta1.FlinkDeploymentSpec, conf map[string]string) (parallelismOf, error) {
	eff := maps.Clone(conf)
	if eff == nil {
		eff = map[string]string{}
	}
	maps.Copy(eff, s.FlinkConfiguration)
	p, err := cluster.Parallelism(s, eff)
	if err != nil {
		return parallelismOf{}, err
	}
	ov, err := parseOverrides(eff[cluster.KeyParallelismOver])
	return parallelismOf{Default: int(p), Overrides: ov}, err
}

// parseOverrides reads pipeline.jobvertex-parallelism-overrides
// ("vertex:4,vertex:2").
func parseOverrides(v string) (map[string]int, error) {
	m := map[string]int{}
	if strings.TrimSpace(v) == "" {
		return m, nil
	}
	for _, kv := range strings.Split(v, ",") {
		id, p, ok := strings.Cut(kv, ":")
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("flinkConfiguration %s: %q is not a list of vertex:parallelism pairs; write e.g. 0a448493b4782967b150582570326227:4", cluster.KeyParallelismOver, v)
		}
		m[strings.TrimSpace(id)] = n
	}
	return m, nil
}

// targetRequirements returns the resource requirements that move a job
// from parallelism old to new, given what Flink reports now. As the
// operator does, an overridden vertex gets its override as upper bound, and
// its lower bound is lowered to it when needed but never raised (raising it
// could make the job wait for resources it cannot get); a removed override
// cannot be rescaled in place (its vertex's parallelism is not known without
// the job graph). A vertex without override that ran at the old default
// parallelism moves to the new default; one set in the job's code (another
// parallelism) keeps it. changed is false when Flink already has them.
func targetRequirements(cur flinkclient.ResourceRequirements, old, new parallelismOf) (req flinkclient.ResourceRequirements, changed bool, err error) {
	req = make(flinkclient.ResourceRequirements, len(cur))
	for id, b := range cur {
		upper := b.UpperBound
		switch ov, ok := new.Overrides[id]; {
		case ok:
			upper = ov
		case old.Overrides[id] > 0:
			return nil, false, fmt.Errorf("the parallelism override of vertex %s was removed", id)
		case old.Default != new.Default && b.UpperBound == old.Default:
			upper = new.Default
		}
		nb := flinkclient.Bounds{LowerBound: min(b.LowerBound, upper), UpperBound: upper}
		if nb.LowerBound < 1 {
			nb.LowerBound = 1
		}
		if nb != b {
			changed = true
		}
		req[id] = nb
	}
	for id := range new.Overrides {
		if _, ok := cur[id]; !ok {
			return nil, false, fmt.Errorf("flinkConfiguration %s names vertex %s, which the job does not have", cluster.KeyParallelismOver, id)
		}
	}
	return req, changed, nil
}

// rescaled reports whether every vertex of job runs at its requirement's
// upper bound, all tasks running.
func rescaled(job *flinkclient.JobDetails, req flinkclient.ResourceRequirements) bool {
	if job.State != flinkclient.JobRunning || !job.AllTasksRunning() {
		return false
	}
	for _, v := range job.Vertices {
		if b, ok := req[v.ID]; ok && v.Parallelism != b.UpperBound {
			return false
		}
	}
	return true
}

// decideRescale is decide's hook for a scale diff: an OpRescale when the
// change can be applied in place, an upgrade when it cannot but needs one
// (a parallelism change), nil to leave a TaskManager-only change to
// applyInPlace as before.
func (p *pass) decideRescale(ctx context.Context, obs *observation, last, tgt *v1beta1.FlinkDeploymentSpec, diff Diff, newOp func(OpKind, Phase) *Operation) *Operation {
	reactive := strings.EqualFold(strings.TrimSpace(p.conf(tgt.FlinkConfiguration, keySchedulerMode)), "reactive")
	if tgt.Job == nil || (reactive && tgt.EffectiveMode() == v1beta1.ModeStandalone && !touchesOverrides(diff)) {
		// A session cluster, or reactive mode: the job follows the
		// TaskManagers, which applyInPlace scales.
		return nil
	}
	why := rescaleBlocker(last, tgt, diff, p.conf)
	if why == "" && (obs.job == nil || obs.flink == nil || isTerminal(obs.job.State) || obs.job.State == flinkclient.JobStatus(v1beta1.JobReconciling)) {
		why = "the job is not running (" + jobStateOf(obs.job) + ")"
	}
	if why == "" {
		p.r.Events.Normal(ctx, p.rec, ReasonScaling, "rescaling in place: "+strings.TrimSpace(strings.ReplaceAll(diff.String(), "\n", "; ")))
		return newOp(OpRescale, PhaseRescale)
	}
	if !needsUpgradeWithoutRescale(diff) {
		return nil
	}
	p.log.Info("cannot rescale in place; upgrading", "why", why)
	p.r.Events.Normal(ctx, p.rec, ReasonSpecChanged, "spec changed (upgrade, not rescaled in place: "+why+"): "+strings.TrimSpace(strings.ReplaceAll(diff.String(), "\n", "; ")))
	return newOp(OpUpgrade, PhaseStopJob)
}

// touchesOverrides reports whether the diff changes the vertex overrides.
func touchesOverrides(d Diff) bool {
	for _, c := range d.Changes {
		if c.Path == `spec.flinkConfiguration["`+cluster.KeyParallelismOver+`"]` {
			return true
		}
	}
	return false
}

// planScale predicts decideRescale from the specs alone (the spec's own
// configuration, without the daemon's defaults): rescale in place, upgrade,
// or scale the TaskManagers. A job that is not running when the change
// arrives is upgraded instead.
func planScale(last, tgt *v1beta1.FlinkDeploymentSpec, d Diff) string {
	conf := func(fc v1beta1.FlinkConfiguration, key string) string { return fc[key] }
	reactive := strings.EqualFold(strings.TrimSpace(tgt.FlinkConfiguration[keySchedulerMode]), "reactive")
	if tgt.Job == nil || (reactive && tgt.EffectiveMode() == v1beta1.ModeStandalone && !touchesOverrides(d)) {
		return ActionScale
	}
	switch {
	case rescaleBlocker(last, tgt, d, conf) == "":
		return ActionRescale
	case needsUpgradeWithoutRescale(d):
		return ActionUpgrade
	}
	return ActionScale
}

// needsUpgradeWithoutRescale reports whether a scale diff changes job
// parallelism or overrides, which only an upgrade applies when they
// cannot be rescaled in place (standalone TaskManager replicas alone are
// applied to the Deployment, as before).
func needsUpgradeWithoutRescale(d Diff) bool {
	for _, c := range d.Changes {
		if c.Type == DiffScale && c.Path != "spec.taskManager.replicas" {
			return true
		}
	}
	return false
}

// rescaleStep sends the target's resource requirements: read what Flink
// has, compute and persist the target (the write-ahead record a restarted
// daemon sends again), add TaskManagers first when scaling up in standalone
// mode, then PUT.
func (p *pass) rescaleStep(ctx context.Context) error {
	op := p.rec.Operation
	tgt, err := deploymentSpec(op.TargetSpec)
	if err != nil {
		return err
	}
	last, err := deploymentSpec(p.rec.Reconciliation().LastReconciledSpec)
	if err != nil || last == nil {
		return p.rescaleFallback(ctx, "the last reconciled spec is unknown")
	}
	if p.rec.Deployed == nil || p.rec.Deployed.JobID == "" {
		return p.rescaleFallback(ctx, "the running job's id is unknown")
	}
	f, err := p.flink()
	if err != nil {
		return err
	}
	jobID := p.rec.Deployed.JobID
	if op.Requirements == nil {
		cur, err := f.ResourceRequirements(ctx, jobID)
		if err != nil {
			if flinkclient.Retryable(err) && !errors.Is(err, flinkclient.ErrServer) {
				return err
			}
			return p.rescaleFallback(ctx, "reading the job's resource requirements: "+err.Error())
		}
		oldP, err1 := specParallelism(last, p.set.FlinkDefaults)
		newP, err2 := specParallelism(tgt, p.set.FlinkDefaults)
		if err := errors.Join(err1, err2); err != nil {
			return p.rescaleFallback(ctx, err.Error())
		}
		req, _, err := targetRequirements(cur, oldP, newP)
		if err != nil {
			return p.rescaleFallback(ctx, err.Error())
		}
		op.Requirements, op.StoppedJobID = req, jobID
		if err := p.persist(ctx); err != nil {
			return err
		}
	}
	if tgt.Mode != v1beta1.ModeNative && p.tmReplicas(tgt) > p.tmReplicas(last) {
		// The new slots must be there for the scheduler to use them.
		if err := p.applyInPlace(ctx, tgt, op.Source); err != nil {
			return err
		}
	}
	if err := f.SetResourceRequirements(ctx, jobID, op.Requirements); err != nil {
		if errors.Is(err, flinkclient.ErrBadRequest) || errors.Is(err, flinkclient.ErrNotFound) || errors.Is(err, flinkclient.ErrServer) {
			return p.rescaleFallback(ctx, "Flink refused the new resource requirements: "+err.Error())
		}
		return err
	}
	p.r.Events.Normal(ctx, p.rec, ReasonScaling, "In-place scaling triggered: "+describeRequirements(op.Requirements))
	return p.to(ctx, PhaseAwaitRescaled)
}

// awaitRescaled waits for the job to run at the new parallelism, then
// removes surplus TaskManagers (standalone) and records the spec as
// reconciled. Past the readiness timeout, or if the job stops, it falls back
// to a full upgrade.
func (p *pass) awaitRescaled(ctx context.Context) (bool, error) {
	op := p.rec.Operation
	tgt, err := deploymentSpec(op.TargetSpec)
	if err != nil {
		return false, err
	}
	_, job := p.jobFlink(ctx)
	if job != nil {
		p.setJobStatus(ctx, job)
	}
	switch {
	case job != nil && rescaled(job, op.Requirements):
		if tgt.Mode != v1beta1.ModeNative {
			if err := p.applyInPlace(ctx, tgt, op.Source); err != nil {
				return false, err
			}
		}
		rs := p.rec.Reconciliation()
		rs.LastReconciledSpec = op.TargetSpec
		rs.ReconciliationTimestamp = p.now().UnixMilli()
		rs.State = v1beta1.ReconciliationDeployed
		p.rec.Deployment.Source = op.Source
		took := p.now().Sub(op.Started).Round(time.Millisecond)
		p.r.Events.Normal(ctx, p.rec, ReasonScaling, fmt.Sprintf("job %s rescaled in place in %s: %s", job.ID, took, describeRequirements(op.Requirements)))
		p.finish("rescaled in place")
		return false, nil
	case job != nil && isTerminal(job.State):
		return false, p.rescaleFallback(ctx, "the job stopped ("+string(job.State)+") while rescaling")
	}
	timeout := p.confDuration(tgt.FlinkConfiguration, keyReadinessTimeout, 5*time.Minute)
	if p.now().Sub(op.PhaseStarted) < timeout {
		return true, nil
	}
	return false, p.rescaleFallback(ctx, fmt.Sprintf("the job did not run at the new parallelism within %s (%s)", timeout, keyReadinessTimeout))
}

// rescaleFallback turns the rescale into a full upgrade to the same target,
// as the operator falls back when in-place scaling fails.
func (p *pass) rescaleFallback(ctx context.Context, why string) error {
	op := p.rec.Operation
	p.log.Warn("in-place rescale not possible; upgrading", "why", why)
	p.r.Events.Warn(ctx, p.rec, ReasonScaling, "in-place rescale not possible, upgrading instead: "+why)
	op.Kind, op.Requirements, op.StoppedJobID = OpUpgrade, nil, ""
	op.AfterPreflight = PhaseStopJob
	if err := p.to(ctx, PhasePreflight); err != nil {
		return err
	}
	op.Message = "in-place rescale not possible: " + why
	return nil
}

// tmReplicas is the TaskManager count of a spec's standalone cluster (0
// when it cannot be told).
func (p *pass) tmReplicas(s *v1beta1.FlinkDeploymentSpec) int32 {
	conf := maps.Clone(p.set.FlinkDefaults)
	if conf == nil {
		conf = map[string]string{}
	}
	maps.Copy(conf, s.FlinkConfiguration)
	n, _ := cluster.TaskManagerReplicas(s, conf)
	return n
}

// describeRequirements renders requirements for an event, sorted by vertex.
func describeRequirements(req flinkclient.ResourceRequirements) string {
	ids := slices.Sorted(maps.Keys(req))
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s: %d..%d", short(id), req[id].LowerBound, req[id].UpperBound))
	}
	return strings.Join(parts, ", ")
}
