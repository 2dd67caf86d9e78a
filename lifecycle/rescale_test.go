package lifecycle

import (
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

const (
	vSrc = "0a448493b4782967b150582570326227"
	vCnt = "bc764cd8ddf7a0cff126f51c16239658"
)

func TestTargetRequirements(t *testing.T) {
	t.Parallel()
	b := func(lo, hi int) flinkclient.Bounds { return flinkclient.Bounds{LowerBound: lo, UpperBound: hi} }
	cur := flinkclient.ResourceRequirements{vSrc: b(1, 2), vCnt: b(1, 2)}
	cases := []struct {
		name     string
		cur      flinkclient.ResourceRequirements
		old, new parallelismOf
		want     flinkclient.ResourceRequirements
		changed  bool
		err      string
	}{
		{"default up", cur, parallelismOf{Default: 2}, parallelismOf{Default: 4}, flinkclient.ResourceRequirements{vSrc: b(1, 4), vCnt: b(1, 4)}, true, ""},
		{"default down lowers the lower bound", flinkclient.ResourceRequirements{vSrc: b(2, 2), vCnt: b(2, 2)}, parallelismOf{Default: 2}, parallelismOf{Default: 1},
			flinkclient.ResourceRequirements{vSrc: b(1, 1), vCnt: b(1, 1)}, true, ""},
		{"a vertex set in code keeps its parallelism", flinkclient.ResourceRequirements{vSrc: b(1, 1), vCnt: b(1, 2)}, parallelismOf{Default: 2}, parallelismOf{Default: 4},
			flinkclient.ResourceRequirements{vSrc: b(1, 1), vCnt: b(1, 4)}, true, ""},
		{"override one vertex", cur, parallelismOf{Default: 2}, parallelismOf{Default: 2, Overrides: map[string]int{vCnt: 3}},
			flinkclient.ResourceRequirements{vSrc: b(1, 2), vCnt: b(1, 3)}, true, ""},
		{"lower bound never raised", flinkclient.ResourceRequirements{vSrc: b(1, 2), vCnt: b(1, 2)}, parallelismOf{Default: 2}, parallelismOf{Default: 2, Overrides: map[string]int{vSrc: 5, vCnt: 5}},
			flinkclient.ResourceRequirements{vSrc: b(1, 5), vCnt: b(1, 5)}, true, ""},
		{"already there", cur, parallelismOf{Default: 2}, parallelismOf{Default: 2}, cur, false, ""},
		{"override removed", cur, parallelismOf{Default: 2, Overrides: map[string]int{vCnt: 3}}, parallelismOf{Default: 2}, nil, false, "override of vertex " + vCnt + " was removed"},
		{"unknown vertex", cur, parallelismOf{Default: 2}, parallelismOf{Default: 2, Overrides: map[string]int{"ffffffffffffffffffffffffffffffff": 3}}, nil, false, "which the job does not have"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, changed, err := targetRequirements(c.cur, c.old, c.new)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || changed != c.changed || len(got) != len(c.want) {
				t.Fatalf("got %v, %v, %v; want %v, %v", got, changed, err, c.want, c.changed)
			}
			for id, w := range c.want {
				if got[id] != w {
					t.Errorf("vertex %s: %+v, want %+v", id, got[id], w)
				}
			}
		})
	}
}

func TestRescaleBlocker(t *testing.T) {
	t.Parallel()
	adaptive := func(s *v1beta1.FlinkDeploymentSpec) { s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive" }
	spec := func(p int32, edits ...func(*v1beta1.FlinkDeploymentSpec)) *v1beta1.FlinkDeploymentSpec {
		s := appSpecOf(v1beta1.UpgradeModeSavepoint, p, append([]func(*v1beta1.FlinkDeploymentSpec){func(s *v1beta1.FlinkDeploymentSpec) { s.TaskManager.Replicas = nil }}, edits...)...)
		return &s
	}
	defaults := map[string]string{}
	conf := func(fc v1beta1.FlinkConfiguration, k string) string {
		if v, ok := fc[k]; ok {
			return v
		}
		return defaults[k]
	}
	cases := []struct {
		name      string
		last, tgt *v1beta1.FlinkDeploymentSpec
		defaults  map[string]string
		want      string
	}{
		{"adaptive 2.2", spec(2, adaptive), spec(4, adaptive), nil, ""},
		{"adaptive from the daemon defaults", spec(2), spec(4), map[string]string{"jobmanager.scheduler": "adaptive"}, ""},
		{"default scheduler", spec(2), spec(4), nil, "jobmanager.scheduler is not adaptive"},
		{"switched off", spec(2, adaptive), spec(4, adaptive, withConf(keyInPlaceScaling, "false")), nil, keyInPlaceScaling + " is false"},
		{"Flink 1.17", spec(2, adaptive, func(s *v1beta1.FlinkDeploymentSpec) { s.FlinkVersion = "v1_17" }),
			spec(4, adaptive, func(s *v1beta1.FlinkDeploymentSpec) { s.FlinkVersion = "v1_17" }), nil, "v1_17 has no resource-requirements API"},
		{"Flink 1.18", spec(2, adaptive, func(s *v1beta1.FlinkDeploymentSpec) { s.FlinkVersion = "v1_18" }),
			spec(4, adaptive, func(s *v1beta1.FlinkDeploymentSpec) { s.FlinkVersion = "v1_18" }), nil, ""},
		{"image too", spec(2, adaptive), spec(4, adaptive, withImage("flink:2.2.1")), nil, "spec.image changed too"},
		{"nothing scales", spec(2, adaptive), spec(2, adaptive, withConf("kubernetes.operator.periodic.savepoint.interval", "1h")), nil, "no parallelism changed"},
		{"reactive", spec(2, adaptive, withConf("scheduler-mode", "reactive")), spec(4, adaptive, withConf("scheduler-mode", "reactive")), nil, "reactive"},
	}
	for _, c := range cases {
		defaults = c.defaults
		got := rescaleBlocker(c.last, c.tgt, CompareDeployments(c.last, c.tgt), conf)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: blocker %q, want %q", c.name, got, c.want)
		}
	}
}

// adaptiveApp is an application whose parallelism comes from the job (no
// TaskManager replicas) on the adaptive scheduler.
func adaptiveApp(p int32, edits ...func(*v1beta1.FlinkDeploymentSpec)) v1beta1.FlinkDeploymentSpec {
	all := append([]func(*v1beta1.FlinkDeploymentSpec){func(s *v1beta1.FlinkDeploymentSpec) {
		s.TaskManager.Replicas = nil
		s.FlinkConfiguration["jobmanager.scheduler"] = "adaptive"
	}}, edits...)
	return appSpecOf(v1beta1.UpgradeModeSavepoint, p, all...)
}

// vertexParallelism returns the simulated job's vertex parallelisms.
func vertexParallelism(w *simWorld, jobID string) []int {
	w.flink.mu.Lock()
	defer w.flink.mu.Unlock()
	var out []int
	for _, jm := range w.flink.jms {
		if j := jm.Jobs[jobID]; j != nil {
			for _, v := range j.Vertices {
				out = append(out, v.Parallelism)
			}
		}
	}
	return out
}

func TestRescaleInPlace(t *testing.T) {
	w := newSimWorld(t)
	r := deployStable(w, "app", adaptiveApp(2))
	old := r.Common().JobStatus.JobID
	if got := vertexParallelism(w, old); len(got) != 2 || got[0] != 2 {
		t.Fatalf("deployed job runs at %v, want 2", got)
	}
	counter := w.flink.job(old).Counter
	d := w.desired("app", adaptiveApp(4))
	r = w.until(KindDeployment, "app", d, "rescaled", func(r *Record) bool {
		return stableRunning(r) && r.Reconciliation().LastReconciledSpec == specJSON(d.Deployment.Spec)
	})
	if r.Common().JobStatus.JobID != old || len(w.flink.Started) != 1 || w.callsOf("StopWithSavepoint")+w.callsOf("Cancel") != 0 {
		t.Fatalf("the rescale restarted the job: job %s (was %s), %d jobs started", r.Common().JobStatus.JobID, old, len(w.flink.Started))
	}
	if got := vertexParallelism(w, old); got[0] != 4 || got[1] != 4 || w.flink.job(old).Rescales != 1 {
		t.Fatalf("job runs at %v after %d rescales, want 4 after 1", got, w.flink.job(old).Rescales)
	}
	if w.flink.job(old).Counter < counter {
		t.Errorf("counter %d after the rescale, %d before", w.flink.job(old).Counter, counter)
	}
	if tm := w.deploymentObj("app-taskmanager"); tm == nil || *tm.Spec.Replicas != 2 {
		t.Errorf("TaskManagers not scaled to 4/2 slots: %+v", tm.Spec.Replicas)
	}
	if jm := w.flink.jm(w.ns, "app"); jm == nil || jm.Generation != 1 {
		t.Errorf("the JobManager was rolled: %+v", jm)
	}
	if !w.hasEvent(ReasonScaling, "rescaled in place") {
		t.Errorf("no Scaling event: %v", w.events())
	}
	// And back down: the surplus TaskManager goes once the job runs at 2.
	d = w.desired("app", adaptiveApp(2))
	w.until(KindDeployment, "app", d, "rescaled down", func(r *Record) bool {
		return stableRunning(r) && r.Reconciliation().LastReconciledSpec == specJSON(d.Deployment.Spec)
	})
	if got := vertexParallelism(w, old); got[0] != 2 || len(w.flink.Started) != 1 {
		t.Fatalf("job runs at %v after scaling down, %d jobs started", got, len(w.flink.Started))
	}
	if tm := w.deploymentObj("app-taskmanager"); tm == nil || *tm.Spec.Replicas != 1 {
		t.Errorf("TaskManagers not scaled down to 1: %+v", tm.Spec.Replicas)
	}
}

func TestRescaleFallsBackToUpgrade(t *testing.T) {
	upgradedFrom := func(old string, d *Desired) func(*Record) bool {
		return func(r *Record) bool {
			return stableRunning(r) && r.Common().JobStatus.JobID != old && r.Reconciliation().LastReconciledSpec == specJSON(d.Deployment.Spec)
		}
	}
	t.Run("default scheduler", func(t *testing.T) {
		w := newSimWorld(t)
		spec := func(p int32) v1beta1.FlinkDeploymentSpec {
			return appSpecOf(v1beta1.UpgradeModeSavepoint, p, func(s *v1beta1.FlinkDeploymentSpec) { s.TaskManager.Replicas = nil })
		}
		old := deployStable(w, "app", spec(2)).Common().JobStatus.JobID
		d := w.desired("app", spec(4))
		w.until(KindDeployment, "app", d, "upgraded", upgradedFrom(old, d))
		if w.callsOf("SetResourceRequirements") != 0 || w.callsOf("StopWithSavepoint") != 1 {
			t.Errorf("calls: %v", w.flink.Calls)
		}
	})
	t.Run("Flink refuses the requirements", func(t *testing.T) {
		w := newSimWorld(t)
		old := deployStable(w, "app", adaptiveApp(2)).Common().JobStatus.JobID
		d := w.desired("app", adaptiveApp(2, withConf("pipeline.jobvertex-parallelism-overrides", vCnt+":500")))
		w.until(KindDeployment, "app", d, "upgraded", upgradedFrom(old, d))
		if w.callsOf("SetResourceRequirements") != 1 || !w.hasEvent(ReasonScaling, "upgrading instead") {
			t.Errorf("no refused rescale before the upgrade: %v", w.events())
		}
	})
	t.Run("the job does not rescale in time", func(t *testing.T) {
		w := newSimWorld(t)
		w.flink.RescaleTicks = 1 << 20
		old := deployStable(w, "app", adaptiveApp(2, withConf(keyReadinessTimeout, "30s"))).Common().JobStatus.JobID
		d := w.desired("app", adaptiveApp(4, withConf(keyReadinessTimeout, "30s")))
		w.until(KindDeployment, "app", d, "upgraded", upgradedFrom(old, d))
		if !w.hasEvent(ReasonScaling, "did not run at the new parallelism within 30s") {
			t.Errorf("no timeout event: %v", w.events())
		}
	})
}
