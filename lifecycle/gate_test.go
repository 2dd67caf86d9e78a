package lifecycle

import (
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// closedGate admits nothing until opened.
type closedGate struct{ open bool }

func (g *closedGate) Admit(kind, namespace, name string, op OpKind) (bool, string) {
	if g.open {
		return true, ""
	}
	return false, string(op) + " waits: test gate closed"
}

// TestGateHoldsUpgrades: with the gate closed, a spec change starts no
// operation (the old job keeps running, the record says what it waits
// for); opened, the upgrade runs and the note is cleared. Savepoints are
// never held.
func TestGateHoldsUpgrades(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)).Common().JobStatus.JobID
	g := &closedGate{}
	w.rec.Gate = g

	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4))
	r := w.settle(KindDeployment, "app", d, 5)
	if r.Operation != nil || r.Common().JobStatus.JobID != old || w.callsOf("StopWithSavepoint") != 0 {
		t.Fatalf("the closed gate let the upgrade start: op %+v, job %s (was %s)", r.Operation, r.Common().JobStatus.JobID, old)
	}
	if !strings.Contains(r.Waiting, "test gate closed") {
		t.Fatalf("record does not say what it waits for: %q", r.Waiting)
	}
	if st := resourceStatus(r, nil, ""); st.Waiting != r.Waiting {
		t.Fatalf("status branch shows waiting %q, want %q", st.Waiting, r.Waiting)
	}

	// A manual savepoint is not an upgrade: it goes through.
	sp := appSpecOf(v1beta1.UpgradeModeSavepoint, 2, func(s *v1beta1.FlinkDeploymentSpec) { n := int64(1); s.Job.SavepointTriggerNonce = &n })
	w.until(KindDeployment, "app", w.desired("app", sp), "manual savepoint despite the closed gate", func(r *Record) bool {
		return r.Operation == nil && r.LastSavepointNonce != nil && *r.LastSavepointNonce == 1
	})

	g.open = true
	d = w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, func(s *v1beta1.FlinkDeploymentSpec) { n := int64(1); s.Job.SavepointTriggerNonce = &n }))
	r = w.until(KindDeployment, "app", d, "upgraded once admitted", func(r *Record) bool {
		return stableRunning(r) && r.Common().JobStatus.JobID != old
	})
	if r.Waiting != "" {
		t.Fatalf("waiting note kept after the upgrade: %q", r.Waiting)
	}
}
