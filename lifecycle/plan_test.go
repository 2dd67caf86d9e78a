package lifecycle

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestPlanAction(t *testing.T) {
	deployedRec := func(js string) *Record {
		return &Record{Kind: KindDeployment, Deployment: &v1beta1.FlinkDeploymentStatus{
			CommonStatus:         v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable},
			ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: js}}}
	}
	want := func(edit func(s *v1beta1.FlinkDeploymentSpec)) *Desired {
		s := spec(t, baseSpec)
		edit(s)
		return &Desired{Deployment: &v1beta1.FlinkDeployment{Spec: *s}}
	}
	base := func() string { b, _ := json.Marshal(spec(t, baseSpec)); return string(b) }()
	adaptive := func() string {
		s := spec(t, baseSpec)
		s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
		b, _ := json.Marshal(s)
		return string(b)
	}()
	n := int64(5)
	cases := []struct {
		name    string
		rec     *Record
		desired *Desired
		action  string
		warn    string
	}{
		{"new", nil, want(func(*v1beta1.FlinkDeploymentSpec) {}), "deploy", ""},
		{"unchanged", deployedRec(base), want(func(*v1beta1.FlinkDeploymentSpec) {}), "none", ""},
		{"parallelism", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.Parallelism = 4 }), "upgrade (savepoint)", ""},
		{"stateless with state", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.Job.Parallelism = 4
			s.Job.UpgradeMode = v1beta1.UpgradeModeStateless
			s.FlinkConfiguration["execution.checkpointing.interval"] = "10s"
		}), "upgrade (stateless)", "state is discarded"},
		{"suspend", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.State = v1beta1.JobStateSuspended }), "suspend (savepoint)", ""},
		{"savepoint nonce", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.SavepointTriggerNonce = &n }), "savepoint", ""},
		{"checkpoint nonce", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.CheckpointTriggerNonce = &n }), "checkpoint", ""},
		{"restart nonce", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.RestartNonce = &n }), "restart (savepoint)", ""},
		{"scale", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { r := int32(5); s.TaskManager.Replicas = &r }), "scale", ""},
		{"parallelism, adaptive scheduler", deployedRec(adaptive), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			s.Job.Parallelism = 4
		}), "rescale in place", ""},
		{"overrides, adaptive scheduler", deployedRec(adaptive), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			s.FlinkConfiguration["pipeline.jobvertex-parallelism-overrides"] = "0a448493b4782967b150582570326227:4"
		}), "rescale in place", ""},
		{"tm replicas, adaptive scheduler", deployedRec(adaptive), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			r := int32(5)
			s.TaskManager.Replicas = &r
		}), "rescale in place", ""},
		{"parallelism, adaptive, in-place off", deployedRec(adaptive), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			s.FlinkConfiguration["kubernetes.operator.job.upgrade.inplace-scaling.enabled"] = "false"
			s.Job.Parallelism = 4
		}), "upgrade (savepoint)", ""},
		{"parallelism, adaptive, Flink 1.17", deployedRec(strings.Replace(adaptive, `"v2_2"`, `"v1_17"`, 1)), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			s.FlinkVersion = "v1_17"
			s.Job.Parallelism = 4
		}), "upgrade (savepoint)", ""},
		{"parallelism and image, adaptive", deployedRec(adaptive), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			s.Job.Parallelism = 4
			s.Image = "flink:2.2.1"
		}), "upgrade (savepoint)", ""},
		{"adaptive scheduler switched on with the parallelism", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) {
			s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
			s.Job.Parallelism = 4
		}), "upgrade (savepoint)", ""},
		{"ignorable", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Job.UpgradeMode = v1beta1.UpgradeModeLastState }), "update", ""},
		{"removed", deployedRec(base), nil, "delete", "without a savepoint"},
		{"removed, savepoint on deletion", deployedRec(strings.Replace(base, `"flinkConfiguration":{`, `"flinkConfiguration":{"kubernetes.operator.job.savepoint-on-deletion":"true",`, 1)), nil, "delete (savepoint)", "a savepoint is taken first"},
		{"never deployed, removed", nil, nil, "none", ""},
		{"mode switch", deployedRec(base), want(func(s *v1beta1.FlinkDeploymentSpec) { s.Mode = v1beta1.ModeNative }), "none", "switching spec.mode from standalone to native is rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := PlanAction(c.rec, c.desired)
			if a.String() != c.action {
				t.Errorf("action %q, want %q (diff %s)", a, c.action, a.Diff)
			}
			if got := strings.Join(a.Warnings, "; "); (c.warn == "") != (got == "") || !strings.Contains(got, c.warn) {
				t.Errorf("warnings %q, want one containing %q", got, c.warn)
			}
		})
	}
}

func TestPlanRender(t *testing.T) {
	base := func() string { b, _ := json.Marshal(spec(t, baseSpec)); return string(b) }()
	rec := func(name, ep string) *Record {
		return &Record{Kind: KindDeployment, Namespace: "flink", Name: name, Deployment: &v1beta1.FlinkDeploymentStatus{
			CommonStatus:         v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable, Source: &v1beta1.SourceRef{Commit: "c1", EntryPoint: ep, Path: ep + "/" + name + ".yaml"}},
			ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: base}}}
	}
	changed := spec(t, baseSpec)
	changed.Job.Parallelism = 4
	delete(changed.FlinkConfiguration, "state.savepoints.dir")
	delete(changed.FlinkConfiguration, "execution.checkpointing.savepoint-dir")
	res := &render.Result{
		Resources: []render.Resource{{EntryPoint: "apps", File: "apps/a.yaml",
			Deployment: &v1beta1.FlinkDeployment{TypeMeta: metav1.TypeMeta{Kind: KindDeployment}, ObjectMeta: metav1.ObjectMeta{Namespace: "flink", Name: "a"}, Spec: *changed}}},
		Invalid:     []render.Key{{Kind: KindDeployment, Namespace: "flink", Name: "bad"}},
		EntryPoints: []render.EntryResult{{EntryPoint: "apps"}, {EntryPoint: "broken", Failed: true}},
	}
	records := map[string]*Record{
		"FlinkDeployment/flink/a":    rec("a", "apps"),
		"FlinkDeployment/flink/bad":  rec("bad", "apps"),    // invalid now: kept, not planned
		"FlinkDeployment/flink/gone": rec("gone", "apps"),   // its entry point built without it: deleted
		"FlinkDeployment/flink/lost": rec("lost", "broken"), // its entry point failed: unknown, kept
		"FlinkDeployment/flink/old":  rec("old", "removed"), // its entry point directory is gone: deleted
	}
	got := PlanRender(res, records, PlanOptions{HasDir: func(d string) bool { return d == "apps" || d == "broken" }})
	var lines []string
	for _, p := range got {
		lines = append(lines, p.Key+" "+p.Action.String()+" "+strings.Join(p.Action.Warnings, "; "))
	}
	want := []string{
		"FlinkDeployment/flink/a upgrade (savepoint) savepoint mode without a savepoint directory (execution.checkpointing.savepoint-dir): the savepoint step will fail",
		"FlinkDeployment/flink/gone delete deletes a running job without a savepoint (set kubernetes.operator.job.savepoint-on-deletion to take one first)",
		"FlinkDeployment/flink/old delete deletes a running job without a savepoint (set kubernetes.operator.job.savepoint-on-deletion to take one first)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// With the daemon's defaults naming a savepoint directory, no warning.
	got = PlanRender(res, records, PlanOptions{FlinkDefaults: map[string]string{"state.savepoints.dir": "s3://b/sp"}})
	if w := got[0].Action.Warnings; len(w) != 0 {
		t.Errorf("warnings with a default savepoint dir: %q", w)
	}
}

// TestPlanRenderDefaultMode: a spec without spec.mode gets the daemon's
// flink.defaultMode, as the reconciler gives it; the plan compares the
// native cluster deployed with a native spec, not with a standalone one.
func TestPlanRenderDefaultMode(t *testing.T) {
	deployed := spec(t, baseSpec)
	deployed.Mode = v1beta1.ModeNative
	js, _ := json.Marshal(deployed)
	records := map[string]*Record{"FlinkDeployment/flink/a": {Kind: KindDeployment, Namespace: "flink", Name: "a", Deployment: &v1beta1.FlinkDeploymentStatus{
		CommonStatus:         v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable},
		ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: string(js)}}}}
	rendered := spec(t, baseSpec)
	rendered.Mode = ""
	res := &render.Result{Resources: []render.Resource{{EntryPoint: "apps", File: "apps/a.yaml",
		Deployment: &v1beta1.FlinkDeployment{TypeMeta: metav1.TypeMeta{Kind: KindDeployment}, ObjectMeta: metav1.ObjectMeta{Namespace: "flink", Name: "a"}, Spec: *rendered}}}}
	if a := PlanRender(res, records, PlanOptions{DefaultMode: v1beta1.ModeNative})[0].Action; a.Kind != ActionNone || len(a.Warnings) != 0 {
		t.Errorf("with defaultMode native: %s %q, want none without warnings", a, a.Warnings)
	}
	if res.Resources[0].Deployment.Spec.Mode != "" {
		t.Errorf("PlanRender changed the rendered spec")
	}
	if a := PlanRender(res, records, PlanOptions{})[0].Action; len(a.Warnings) == 0 || !strings.Contains(a.Warnings[0], "native to standalone") {
		t.Errorf("with defaultMode standalone: %s %q, want the mode switch rejected", a, a.Warnings)
	}
}
