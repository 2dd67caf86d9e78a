package lifecycle

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// The operator's keys for restarting a job without a push, with its
// defaults (KubernetesOperatorConfigOptions).
const (
	keyRestartFailed           = "kubernetes.operator.job.restart.failed"                               // false
	keyHealthCheck             = "kubernetes.operator.cluster.health-check.enabled"                     // false
	keyHealthRestartsWindow    = "kubernetes.operator.cluster.health-check.restarts.window"             // 2m
	keyHealthRestartsThreshold = "kubernetes.operator.cluster.health-check.restarts.threshold"          // 64
	keyHealthCheckpoints       = "kubernetes.operator.cluster.health-check.checkpoint-progress.enabled" // true
	keyHealthCheckpointWindow  = "kubernetes.operator.cluster.health-check.checkpoint-progress.window"  // derived
)

// Event reasons of restarts the daemon starts by itself. RestartUnhealthyJob
// is the operator's; it records no event of its own for a failed job.
const (
	ReasonRestartFailedJob    = "RestartFailedJob"
	ReasonRestartUnhealthyJob = "RestartUnhealthyJob"
)

// Causes of a restart the daemon starts by itself (Operation.Cause).
const (
	CauseJobFailed = "JobFailed"
	CauseUnhealthy = "Unhealthy"
)

// Backoff between automatic restarts of one resource: a job that fails
// again right after its restart waits 10 s, then 20 s, … up to 10 minutes;
// once it ran restartStableAfter without one, the next restart is fast again.
const (
	restartBackoffBase  = 10 * time.Second
	restartBackoffLimit = 10 * time.Minute
	restartStableAfter  = 10 * time.Minute
)

// clusterHealthKey is where the operator keeps its health observations in
// status.clusterInfo.
const clusterHealthKey = "ClusterHealthInfo"

// Restarts counts the restarts the daemon started by itself (failed job,
// health check); it is in the status ConfigMap and on the status branch.
type Restarts struct {
	// Count is every automatic restart; Consecutive those since the job
	// last ran for 10 minutes without one (it sets the backoff).
	Count       int `json:"count"`
	Consecutive int `json:"consecutive"`
	// Last is when the latest started, Reason why, JobID the job it replaced.
	Last   time.Time `json:"last"`
	Reason string    `json:"reason"`
	JobID  string    `json:"jobId,omitempty"`
	// NextAttempt is the earliest time of the next automatic restart.
	NextAttempt time.Time `json:"nextAttempt"`
}

// autoRestart returns a restart of the running spec (configuration fc)
// when its job failed and kubernetes.operator.job.restart.failed is true,
// or when the cluster health check (application clusters only, as in the
// operator) finds the job unhealthy; nil otherwise, or while the backoff
// after the previous automatic restart runs. The restart is the
// restartNonce operation (stop per upgrade mode, redeploy from the newest
// state) with its cause recorded; newOp builds it.
func (p *pass) autoRestart(ctx context.Context, job *flinkclient.JobDetails, fc v1beta1.FlinkConfiguration, suspended bool, newOp func(OpKind, Phase) *Operation) *Operation {
	d := p.rec.Deployed
	if job == nil || d == nil || job.ID != d.JobID || suspended {
		return nil
	}
	f, err := p.flink()
	if err != nil {
		return nil
	}
	obs := &observation{flink: f, job: job}
	now := p.now()
	rs := p.rec.Restarts
	if rs != nil && rs.Consecutive > 0 && obs.job.State == flinkclient.JobRunning && now.Sub(rs.Last) > restartStableAfter {
		rs.Consecutive = 0
		p.dirty = true
	}
	var cause, why string
	switch {
	case obs.job.State == flinkclient.JobFailed:
		if !p.confBool(fc, keyRestartFailed, false) {
			return nil
		}
		cause, why = CauseJobFailed, "job failed: "+p.jobFailure(ctx, obs)
	case p.rec.Kind == KindDeployment && !isTerminal(obs.job.State) && p.confBool(fc, keyHealthCheck, false):
		if why = p.checkHealth(ctx, obs, fc); why == "" {
			return nil
		}
		cause = CauseUnhealthy
	default:
		return nil
	}
	if rs != nil && now.Before(rs.NextAttempt) {
		p.log.Debug("automatic restart waits for its backoff", "cause", cause, "next", rs.NextAttempt)
		return nil
	}
	if rs == nil {
		rs = &Restarts{}
		p.rec.Restarts = rs
	}
	rs.Count++
	rs.Consecutive++
	rs.Last, rs.Reason, rs.JobID = now, why, obs.job.ID
	rs.NextAttempt = now.Add(retryDelay(rs.Consecutive, restartBackoffBase, restartBackoffLimit))
	if st := p.rec.Deployment; st != nil && st.ClusterInfo != nil {
		delete(st.ClusterInfo, clusterHealthKey) // as the operator: the next job is judged afresh
	}
	p.dirty = true

	op := newOp(OpRestart, PhaseStopJob)
	op.Cause, op.Message = cause, why
	if op.UpgradeMode == v1beta1.UpgradeModeSavepoint {
		// A failing or unhealthy job cannot be relied on for a savepoint:
		// restore from the newest savepoint or checkpoint instead.
		op.UpgradeMode = v1beta1.UpgradeModeLastState
	}
	reason := ReasonRestartFailedJob
	if cause == CauseUnhealthy {
		reason = ReasonRestartUnhealthyJob
	}
	p.r.Events.Warn(ctx, p.rec, reason, fmt.Sprintf("restarting job %s (restart %d, %s upgrade mode): %s", obs.job.ID, rs.Count, op.UpgradeMode, why))
	return op
}

// restartsFailedJob reports whether the operation restarts a job that
// failed for good: Flink has removed its HA metadata, so its state is the
// newest retained checkpoint or savepoint, not the HA store.
func restartsFailedJob(op *Operation) bool {
	return op != nil && op.Kind == OpRestart && op.Cause == CauseJobFailed
}

// jobMetrics is the Flink call the health check needs; flinkclient.Client
// has it.
type jobMetrics interface {
	JobMetrics(ctx context.Context, jobID string, names ...string) (map[string]string, error)
}

// Job metrics the health check reads, as the operator does.
const (
	metricNumRestarts          = "numRestarts"
	metricFullRestarts         = "fullRestarts"
	metricCompletedCheckpoints = "numberOfCompletedCheckpoints"
)

// checkHealth observes the job's restart and checkpoint counters, keeps
// them in status.clusterInfo as the operator does, and returns why the job
// is unhealthy ("" when it is healthy or cannot be judged yet).
func (p *pass) checkHealth(ctx context.Context, obs *observation, fc v1beta1.FlinkConfiguration) string {
	st := p.rec.Deployment
	mr, ok := obs.flink.(jobMetrics)
	if !ok || st == nil {
		return ""
	}
	m, err := mr.JobMetrics(ctx, obs.job.ID, metricNumRestarts, metricFullRestarts, metricCompletedCheckpoints)
	if err != nil {
		p.log.Debug("health check: cannot read job metrics", "err", err)
		return ""
	}
	restarts, err := strconv.Atoi(m[metricNumRestarts])
	if err != nil {
		if restarts, err = strconv.Atoi(m[metricFullRestarts]); err != nil {
			p.log.Debug("health check: no restart metric", "metrics", m)
			return ""
		}
	}
	cps, _ := strconv.Atoi(m[metricCompletedCheckpoints])
	observed := clusterHealth{TimeStamp: p.now().UnixMilli(), NumRestarts: restarts, NumCompletedCheckpoints: cps}
	var last *clusterHealth
	if js := st.ClusterInfo[clusterHealthKey]; js != "" {
		last, _ = decodeSpec[clusterHealth](js, "cluster health")
	}
	h := evaluateHealth(p.healthConfig(fc), last, observed, p.now().UnixMilli())
	if st.ClusterInfo == nil {
		st.ClusterInfo = map[string]string{}
	}
	if js := specJSON(h); st.ClusterInfo[clusterHealthKey] != js {
		st.ClusterInfo[clusterHealthKey] = js
		p.dirty = true
	}
	if h.HealthResult.Healthy {
		return ""
	}
	return "unhealthy: " + h.HealthResult.Error
}

// healthConfig reads the health check's keys with the operator's defaults.
// The checkpoint progress window is at least max(checkpoint interval,
// checkpoint timeout) × (tolerable failed checkpoints + 2), which is also
// its default when checkpointing is configured; without either there is no
// checkpoint progress check.
func (p *pass) healthConfig(fc v1beta1.FlinkConfiguration) healthConfig {
	c := healthConfig{
		restartsWindow: p.confDuration(fc, keyHealthRestartsWindow, 2*time.Minute),
		threshold:      64,
	}
	if n, err := strconv.Atoi(p.conf(fc, keyHealthRestartsThreshold)); err == nil {
		c.threshold = n
	}
	if !p.confBool(fc, keyHealthCheckpoints, true) {
		return c
	}
	interval := p.confDuration(fc, "execution.checkpointing.interval", 0)
	timeout := p.confDuration(fc, "execution.checkpointing.timeout", 10*time.Minute)
	tolerable := 0
	if n, err := strconv.Atoi(p.conf(fc, "execution.checkpointing.tolerable-failed-checkpoints")); err == nil && n > 0 {
		tolerable = n
	}
	least := max(interval, timeout) * time.Duration(tolerable+2)
	window := p.confDuration(fc, keyHealthCheckpointWindow, 0)
	switch {
	case window == 0 && interval == 0:
		// Checkpointing is not configured: nothing to judge.
	case window < least:
		c.checkpointWindow = least
	default:
		c.checkpointWindow = window
	}
	return c
}

// healthConfig is the health check's configuration; checkpointWindow 0
// turns the checkpoint progress check off.
type healthConfig struct {
	restartsWindow   time.Duration
	threshold        int
	checkpointWindow time.Duration
}

// clusterHealth is the operator's ClusterHealthInfo, with its JSON names,
// kept in status.clusterInfo["ClusterHealthInfo"]. Times are epoch millis.
type clusterHealth struct {
	TimeStamp                                 int64        `json:"timeStamp"`
	NumRestarts                               int          `json:"numRestarts"`
	NumRestartsEvaluationTimeStamp            int64        `json:"numRestartsEvaluationTimeStamp"`
	NumCompletedCheckpoints                   int          `json:"numCompletedCheckpoints"`
	NumCompletedCheckpointsIncreasedTimeStamp int64        `json:"numCompletedCheckpointsIncreasedTimeStamp"`
	HealthResult                              healthResult `json:"healthResult"`
}

// healthResult is the operator's ClusterHealthResult.
type healthResult struct {
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// evaluateHealth folds an observation into the last kept one, as the
// operator's ClusterHealthEvaluator does: the restarts counted since the
// start of the restarts window (scaled to the window when the evaluation
// point is older) must not exceed the threshold, and the completed
// checkpoint count must have grown within the checkpoint progress window.
// A counter that went down (a new job) starts its evaluation again.
func evaluateHealth(c healthConfig, last *clusterHealth, obs clusterHealth, now int64) clusterHealth {
	if last == nil || obs.TimeStamp < last.TimeStamp {
		obs.NumRestartsEvaluationTimeStamp = obs.TimeStamp
		obs.NumCompletedCheckpointsIncreasedTimeStamp = obs.TimeStamp
		obs.HealthResult = healthResult{Healthy: true}
		return obs
	}
	h := *last
	var errs []string

	window := c.restartsWindow.Milliseconds()
	if obs.NumRestarts < h.NumRestarts {
		h.NumRestarts, h.NumRestartsEvaluationTimeStamp = obs.NumRestarts, obs.TimeStamp
	} else {
		scale := 1.0
		if span := obs.TimeStamp - h.NumRestartsEvaluationTimeStamp; span > window && span > 0 {
			scale = float64(window) / float64(span)
		}
		if n := int(float64(obs.NumRestarts-h.NumRestarts) * scale); n > c.threshold {
			errs = append(errs, fmt.Sprintf("%d restarts within %s, over the threshold of %d (%s)", n, c.restartsWindow, c.threshold, keyHealthRestartsThreshold))
		}
		if h.NumRestartsEvaluationTimeStamp < now-window {
			h.NumRestarts, h.NumRestartsEvaluationTimeStamp = obs.NumRestarts, obs.TimeStamp
		}
	}

	if c.checkpointWindow > 0 {
		switch {
		case obs.NumCompletedCheckpoints != h.NumCompletedCheckpoints:
			// Grew, or a new job started counting again.
			h.NumCompletedCheckpoints, h.NumCompletedCheckpointsIncreasedTimeStamp = obs.NumCompletedCheckpoints, obs.TimeStamp
		case h.NumCompletedCheckpointsIncreasedTimeStamp+c.checkpointWindow.Milliseconds() < now:
			errs = append(errs, fmt.Sprintf("no checkpoint completed within %s (%s)", c.checkpointWindow, keyHealthCheckpointWindow))
		}
	}

	h.TimeStamp = obs.TimeStamp
	h.HealthResult = healthResult{Healthy: len(errs) == 0}
	for i, e := range errs {
		if i > 0 {
			h.HealthResult.Error += "; "
		}
		h.HealthResult.Error += e
	}
	return h
}
