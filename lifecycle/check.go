package lifecycle

import (
	"strconv"
	"strings"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// checkJobID stands in for the job id the reconciler chooses at deploy time.
const checkJobID = "00000000000000000000000000000000"

// CheckDeployment builds a FlinkDeployment's cluster objects the way the
// reconciler will, so that render (plan, validate, the daemon, pull-request
// plans) refuses what the builder would refuse, before anything is stopped.
// A suspended spec is built as if running: resuming it builds those objects.
// It is render.Options.Check for every caller (daemon.RenderOptions).
func CheckDeployment(d *v1beta1.FlinkDeployment, defaults map[string]string) *render.FieldProblem {
	spec := d.Spec
	in := cluster.Input{Name: d.Name, Namespace: d.Namespace, Spec: &spec, FlinkDefaults: defaults, SpecHash: "check", SourceCommit: "check"}
	if spec.Job != nil {
		job := *spec.Job
		job.State = v1beta1.JobStateRunning
		spec.Job = &job
		in.JobID = checkJobID
		in.SavepointPath = job.InitialSavepointPath
	}
	if _, err := cluster.Build(in); err != nil {
		p := BuildProblem(err)
		return &p
	}
	return nil
}

// BuildProblem turns a builder error into a field problem. The builder's
// errors follow one convention — "FIELD: what is wrong; what to do", FIELD
// being a spec path or "flinkConfiguration KEY" — so the field and the fix
// are read from the text.
func BuildProblem(err error) render.FieldProblem {
	msg := err.Error()
	p := render.FieldProblem{Message: msg}
	if i := strings.LastIndex(msg, "; "); i > 0 {
		p.Message, p.Fix = msg[:i], msg[i+2:]
	}
	head, rest, ok := strings.Cut(p.Message, ": ")
	switch {
	case !ok:
	case strings.HasPrefix(head, "flinkConfiguration "):
		key := strings.TrimPrefix(head, "flinkConfiguration ")
		if k, err := strconv.Unquote(strings.TrimPrefix(key, "key ")); err == nil {
			key = k
		}
		if !strings.ContainsAny(key, " ") {
			p.Field, p.Message = "spec.flinkConfiguration["+strconv.Quote(key)+"]", rest
		}
	case strings.HasPrefix(head, "spec.") || strings.HasPrefix(head, "metadata."):
		field, _, _ := strings.Cut(head, " ")
		p.Field, p.Message = field, strings.TrimPrefix(head, field)+": "+rest
		p.Message = strings.TrimPrefix(strings.TrimPrefix(p.Message, " "), ": ")
	}
	if p.Fix == "" {
		p.Fix = "correct the field as the message says"
	}
	return p
}

// Objects returns the Kubernetes objects the reconciler would apply for a
// rendered FlinkDeployment on its first deployment (what `plan -o objects`
// prints): defaults and mode applied as the reconciler applies them, the
// job restored from spec.job.initialSavepointPath. The job id is chosen at
// deploy time, so it is left out. A suspended spec has no objects.
func Objects(r render.Resource, defaults map[string]string, mode v1beta1.DeploymentMode, commit string) (*cluster.Objects, error) {
	if r.Deployment == nil {
		return &cluster.Objects{}, nil
	}
	spec := r.Deployment.Spec
	if spec.Mode == "" {
		spec.Mode = mode
		if spec.Mode == "" {
			spec.Mode = v1beta1.ModeStandalone
		}
	}
	in := cluster.Input{Name: r.Deployment.Name, Namespace: r.Deployment.Namespace, Spec: &spec, FlinkDefaults: defaults,
		SpecHash: r.Hash, SourceCommit: commit}
	if spec.Job != nil {
		in.SavepointPath = spec.Job.InitialSavepointPath
		if spec.Job.AllowNonRestoredState != nil {
			in.AllowNonRestoredState = *spec.Job.AllowNonRestoredState
		}
	}
	return cluster.Build(in)
}
