package render

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// snapshot validates a FlinkStateSnapshot: a savepoint or checkpoint of a
// job declared in the repository, or a savepoint that already exists. What
// the daemon cannot do is refused here with the reason, never accepted and
// dropped.
func (v *validator) snapshot(s *v1beta1.FlinkStateSnapshot) []fieldError {
	var errs []fieldError
	errs = append(errs, validateName(s.Name)...)
	errs = append(errs, v.namespace(s.Namespace)...)
	sp := s.Spec
	switch {
	case sp.Savepoint != nil && sp.Checkpoint != nil:
		errs = append(errs, fieldError{Field: "spec.checkpoint", Message: "a snapshot is either a savepoint or a checkpoint, not both",
			Fix: "keep only spec.savepoint or only spec.checkpoint"})
	case sp.Savepoint == nil && sp.Checkpoint == nil:
		errs = append(errs, fieldError{Field: "spec.savepoint", Message: "the snapshot sets neither spec.savepoint nor spec.checkpoint",
			Fix: "add spec.savepoint: {} (optionally with path and formatType), or spec.checkpoint: {}"})
	}
	if b := sp.BackoffLimit; b != nil && *b < -1 {
		errs = append(errs, fieldError{Field: "spec.backoffLimit", Message: fmt.Sprintf("backoffLimit %d is below -1", *b),
			Fix: "use -1 (retry without limit), 0 (no retry) or a positive number of retries"})
	}
	exists := false
	if p := sp.Savepoint; p != nil {
		exists = p.Exists()
		switch p.Format() {
		case v1beta1.SavepointCanonical, v1beta1.SavepointNative:
		default:
			errs = append(errs, fieldError{Field: "spec.savepoint.formatType", Message: fmt.Sprintf("formatType %q is not CANONICAL or NATIVE", p.FormatType),
				Fix: "use CANONICAL (the default) or NATIVE"})
		}
		if exists && p.Path == "" {
			errs = append(errs, fieldError{Field: "spec.savepoint.path", Message: "alreadyExists is true but no path is given",
				Fix: "set spec.savepoint.path to the existing savepoint's directory"})
		}
		if p.Path != "" && !strings.Contains(p.Path, "/") {
			errs = append(errs, fieldError{Field: "spec.savepoint.path", Message: fmt.Sprintf("path %q is not a directory URI", p.Path),
				Fix: "give a directory such as s3://bucket/savepoints or file:///flink/savepoints"})
		}
	}
	ref := sp.JobReference
	switch {
	case ref == nil && !exists:
		errs = append(errs, fieldError{Field: "spec.jobReference", Message: "the snapshot names no job",
			Fix: "set spec.jobReference with kind (FlinkDeployment or FlinkSessionJob) and name"})
	case ref == nil:
	case ref.Kind != v1beta1.KindFlinkDeployment && ref.Kind != v1beta1.KindFlinkSessionJob:
		errs = append(errs, fieldError{Field: "spec.jobReference.kind", Message: fmt.Sprintf("kind %q is not FlinkDeployment or FlinkSessionJob", ref.Kind),
			Fix: "set kind: FlinkDeployment or kind: FlinkSessionJob"})
	case ref.Name == "":
		errs = append(errs, fieldError{Field: "spec.jobReference.name", Message: "the job reference has no name",
			Fix: "set spec.jobReference.name to the FlinkDeployment's or FlinkSessionJob's name in the same namespace"})
	}
	return errs
}

// checkSnapshotReferences refuses snapshots that must take a savepoint or
// checkpoint of a job the repository does not declare, or of a session
// cluster (no job), and checkpoints of a job whose Flink version cannot
// trigger one through its REST API. A savepoint that already exists needs
// no job.
func checkSnapshotReferences(res *Result, keys []Key, valid map[Key]Resource, declared func(Key) bool) {
	for _, k := range keys {
		r, ok := valid[k]
		if !ok || r.Snapshot == nil {
			continue
		}
		ref := r.Snapshot.Spec.JobReference
		if sp := r.Snapshot.Spec.Savepoint; ref == nil || sp != nil && sp.Exists() {
			continue
		}
		what := "savepoint"
		if r.Snapshot.Spec.Checkpoint != nil {
			what = "checkpoint"
		}
		target := Key{ref.Kind, k.Namespace, ref.Name}
		p := Problem{EntryPoint: r.EntryPoint, File: r.File, Resource: k.String(), Field: "spec.jobReference"}
		if !declared(target) {
			p.Message = fmt.Sprintf("%s is not declared in the repository", target)
			p.Fix = "declare it in the same namespace, or fix spec.jobReference"
		} else if d, ok := valid[target]; ok && d.Deployment != nil && d.Deployment.Spec.Job == nil {
			p.Message = fmt.Sprintf("%s is a session cluster; it has no job to take a %s of", target, what)
			p.Fix = "point spec.jobReference at an application FlinkDeployment or at a FlinkSessionJob"
		} else if fv := snapshotFlinkVersion(valid, target); r.Snapshot.Spec.Checkpoint != nil && !checkpointTriggerable(fv) {
			p.Field = "spec.checkpoint"
			p.Message = fmt.Sprintf("%s runs Flink %s, which cannot trigger checkpoints through its REST API (Flink %s and newer can)",
				target, fv, minCheckpointTrigger)
			p.Fix = fmt.Sprintf("use spec.savepoint: {} instead, or upgrade %s to Flink %s or newer (spec.flinkVersion and the image)", target, minCheckpointTrigger)
		} else {
			continue // valid, or invalid with its own problems (the snapshot waits for it)
		}
		res.Problems = append(res.Problems, p)
		delete(valid, k)
		res.Invalid = append(res.Invalid, k)
	}
}

// SnapshotSummary says in a few words what a snapshot resource asks for,
// e.g. "savepoint of FlinkDeployment app (CANONICAL)".
func SnapshotSummary(s *v1beta1.FlinkStateSnapshot) string {
	sp := s.Spec.Savepoint
	if sp == nil {
		out := "checkpoint"
		if ref := s.Spec.JobReference; ref != nil {
			out += " of " + ref.Kind + " " + ref.Name
		}
		return out
	}
	if sp.Exists() {
		return "existing savepoint " + sp.Path
	}
	out := "savepoint"
	if ref := s.Spec.JobReference; ref != nil {
		out += " of " + ref.Kind + " " + ref.Name
	}
	return out + " (" + string(sp.Format()) + ")"
}

// snapshotFlinkVersion is the Flink version of the cluster that runs the
// referenced job: the FlinkDeployment's own, or a session job's session
// cluster's ("" when the repository does not say).
func snapshotFlinkVersion(valid map[Key]Resource, target Key) v1beta1.FlinkVersion {
	r := valid[target]
	if r.SessionJob != nil {
		r = valid[Key{v1beta1.KindFlinkDeployment, target.Namespace, r.SessionJob.Spec.DeploymentName}]
	}
	if r.Deployment == nil {
		return ""
	}
	return r.Deployment.Spec.FlinkVersion
}

// checkpointTriggerable reports whether Flink fv can trigger checkpoints
// through its REST API; an unknown version is not refused (the trigger
// fails with Flink's answer, recorded in the snapshot's status).
func checkpointTriggerable(fv v1beta1.FlinkVersion) bool {
	return !fv.Known() || slices.Index(v1beta1.FlinkVersions, fv) >= slices.Index(v1beta1.FlinkVersions, minCheckpointTrigger)
}
