package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// TestUpgradeSavepointFailureIsBounded: an upgrade whose savepoint Flink
// keeps failing is tried a bounded number of times, then stops with the
// reason; the old job keeps running.
func TestUpgradeSavepointFailureIsBounded(t *testing.T) {
	w := newSimWorld(t)
	app := deployedApp(w)
	w.flink.FailSavepoints = true
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2, func(s *v1beta1.FlinkDeploymentSpec) {
		s.FlinkConfiguration["pipeline.name"] = "changed"
	}))
	r := w.until(KindDeployment, "app", d, "the upgrade given up", func(r *Record) bool {
		return r.Operation == nil && strings.Contains(r.Common().Error, "storage is full")
	})
	stops := func() int {
		n := 0
		for _, c := range w.flink.Calls {
			if strings.HasPrefix(c, "StopWithSavepoint ") {
				n++
			}
		}
		return n
	}
	n := stops()
	if n < 1 || n > 3 {
		t.Errorf("%d stop-with-savepoint triggers, want 1 to 3", n)
	}
	// Given up means held off: the same commit is tried again only after
	// the refusal backoff (30 s, ±20 %), not on the next passes.
	if r.Refused == nil || r.Refused.NextAttempt.Sub(w.clock.Now()) < 20*time.Second {
		t.Fatalf("no hold-off recorded: %+v", r.Refused)
	}
	for i := 0; i < 20; i++ {
		w.tick()
		w.pass(KindDeployment, "app", d)
	}
	if more := stops() - n; more != 0 {
		t.Errorf("%d more stop-with-savepoint triggers within 20 s of giving up", more)
	}
	if got := r.Common().JobStatus.JobID; got != app.Common().JobStatus.JobID {
		t.Errorf("job %s after the failed upgrade, want the old %s still running", got, app.Common().JobStatus.JobID)
	}
}
