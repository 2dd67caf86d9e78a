package lifecycle

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// The rest of the operator's FlinkDeployment status: clusterInfo,
// taskManager and the Running condition, filled from what observe saw.

// Keys of status.clusterInfo, the operator's names.
const (
	infoFlinkVersion  = "flink-version"
	infoFlinkRevision = "flink-revision"
	infoTotalCPU      = "total-cpu"
	infoTotalMemory   = "total-memory"
)

// conditionRunning is the operator's one condition type.
const conditionRunning = "Running"

// configReader is the REST call clusterInfo needs; flinkclient.Client has it.
type configReader interface {
	Config(ctx context.Context) (flinkclient.Config, error)
}

// observeCluster fills clusterInfo, taskManager and conditions from one
// observation. /config is read once per JobManager: clusterInfo is
// cleared when the JobManager is gone.
func (p *pass) observeCluster(ctx context.Context, obs *observation, ov *flinkclient.Overview) {
	st := p.rec.Deployment
	spec := p.clusterSpec()
	info := map[string]string{}
	if st.JobManagerDeploymentStatus == v1beta1.JMReady && obs.flink != nil {
		for _, k := range []string{infoFlinkVersion, infoFlinkRevision} {
			if v := st.ClusterInfo[k]; v != "" {
				info[k] = v
			}
		}
		if info[infoFlinkVersion] == "" {
			if c, ok := obs.flink.(configReader); ok {
				if cfg, err := c.Config(ctx); err == nil {
					info[infoFlinkVersion], info[infoFlinkRevision] = cfg.FlinkVersion, cfg.FlinkRevision
				}
			}
		}
		if spec != nil && ov != nil {
			cpu, mem := clusterResources(spec, ov.TaskManagers)
			info[infoTotalCPU], info[infoTotalMemory] = cpu, mem
		}
	}
	// The health check keeps its history in clusterInfo too (as the
	// operator does); it is the health check's to clear.
	if v := st.ClusterInfo[clusterHealthKey]; v != "" {
		info[clusterHealthKey] = v
	}
	if !sameStrings(info, st.ClusterInfo) {
		st.ClusterInfo = info
		if len(info) == 0 {
			st.ClusterInfo = nil
		}
		p.dirty = true
	}
	var tm *v1beta1.TaskManagerInfo
	if spec != nil && (spec.Job == nil || obs.job != nil && obs.job.State == flinkclient.JobRunning) && st.JobManagerDeploymentStatus == v1beta1.JMReady {
		n, err := cluster.TaskManagerReplicas(spec, p.effectiveConf(spec))
		if err == nil {
			tm = &v1beta1.TaskManagerInfo{LabelSelector: cluster.LabelComponent + "=" + cluster.ComponentTaskManager + ",app=" + p.rec.Name, Replicas: n}
		}
	}
	if (tm == nil) != (st.TaskManager == nil) || tm != nil && *tm != *st.TaskManager {
		st.TaskManager = tm
		p.dirty = true
	}
	if spec != nil {
		if conds := runningCondition(st.Conditions, spec.Job != nil, st.JobStatus.State, st.JobManagerDeploymentStatus, p.now()); !sameConditions(conds, st.Conditions) {
			st.Conditions = conds
			p.dirty = true
		}
	}
}

// effectiveConf is spec's Flink configuration over the daemon's defaults.
func (p *pass) effectiveConf(spec *v1beta1.FlinkDeploymentSpec) map[string]string {
	conf := map[string]string{}
	for k, v := range p.set.FlinkDefaults {
		conf[k] = v
	}
	for k, v := range spec.FlinkConfiguration {
		conf[k] = v
	}
	return conf
}

// clusterResources sums the cluster's CPU and memory (bytes) as the
// operator does: the JobManager replicas and the registered TaskManagers,
// each with the resources its spec asks for.
func clusterResources(spec *v1beta1.FlinkDeploymentSpec, taskManagers int) (cpu, mem string) {
	var c float64
	var m int64
	add := func(r *v1beta1.Resource, n int) {
		if r == nil || n <= 0 {
			return
		}
		if r.CPU != nil {
			c += *r.CPU * float64(n)
		}
		if b, err := v1beta1.ParseMemory(r.Memory); err == nil {
			m += b * int64(n)
		}
	}
	if jm := spec.JobManager; jm != nil {
		n := int(jm.Replicas)
		if n < 1 {
			n = 1
		}
		add(jm.Resource, n)
	}
	if spec.TaskManager != nil {
		add(spec.TaskManager.Resource, taskManagers)
	}
	return strconv.FormatFloat(c, 'f', -1, 64), strconv.FormatInt(m, 10)
}

// runningCondition is the operator's Running condition: for an
// application cluster, whether the job runs (reason: the job state in
// CamelCase); for a session cluster, whether the JobManager is ready. The
// transition time changes only when the status does.
func runningCondition(old []metav1.Condition, application bool, job v1beta1.FlinkJobState, jm v1beta1.JobManagerDeploymentStatus, now time.Time) []metav1.Condition {
	c := metav1.Condition{Type: conditionRunning, Status: metav1.ConditionFalse}
	if application {
		state := string(job)
		if state == "" {
			state = "UNKNOWN"
		}
		if job == v1beta1.JobRunning {
			c.Status = metav1.ConditionTrue
		}
		c.Reason = camel(state)
		c.Message = "Job status " + state
	} else {
		if jm == v1beta1.JMReady {
			c.Status = metav1.ConditionTrue
		}
		c.Reason = camel(string(jm))
		c.Message = "JobManager deployment " + string(jm)
	}
	c.LastTransitionTime = metav1.NewTime(now.UTC().Truncate(time.Second))
	for _, o := range old {
		if o.Type == c.Type && o.Status == c.Status {
			c.LastTransitionTime = o.LastTransitionTime
		}
	}
	return []metav1.Condition{c}
}

// camel turns an upper-case enum value (RUNNING, DEPLOYED_NOT_READY) into
// a condition reason (Running, DeployedNotReady).
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(s), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	if b.Len() == 0 {
		return "Unknown"
	}
	return b.String()
}

func sameStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || !x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}

// maxExceptionSummary bounds the exception summary kept in status.error.
const maxExceptionSummary = 2000

// exceptionSummary summarises a failed job's newest exceptions, newest
// first, bounded in size: what status.error and the status branch show.
func exceptionSummary(ex flinkclient.Exceptions) string {
	var parts []string
	for i, e := range ex.Entries {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("(%d more in the JobManager's exception history)", len(ex.Entries)-i))
			break
		}
		s := e.Message
		if s == "" {
			s = e.Name
		}
		if e.TaskName != "" {
			s += " (in " + e.TaskName + ")"
		}
		if !e.Time.IsZero() {
			s = e.Time.UTC().Format(time.RFC3339) + " " + s
		}
		parts = append(parts, s)
	}
	return truncate(strings.Join(parts, "; "), maxExceptionSummary-2) // "…" is 3 bytes
}

// savepointFormat is the format savepoints are taken in: the one
// triggerSavepoint asks Flink for (kubernetes.operator.savepoint.format.type),
// CANONICAL, Flink's default, when none is set.
func (p *pass) savepointFormat() v1beta1.SavepointFormatType {
	_, fc, _, _ := p.lastJob()
	if f := strings.ToUpper(strings.TrimSpace(p.conf(fc, keySavepointFormat))); f != "" {
		return v1beta1.SavepointFormatType(f)
	}
	return v1beta1.SavepointCanonical
}
