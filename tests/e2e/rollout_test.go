package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// TestMaxConcurrentUpgrades pushes one commit that changes two running
// jobs with reconcile.maxConcurrentUpgrades: 1. Watching the status
// ConfigMaps throughout, never more than one upgrade is in flight; the
// one held back says so (its record's waiting note names the setting);
// both end upgraded to the commit.
func TestMaxConcurrentUpgrades(t *testing.T) {
	files := map[string]string{
		"apps/a/kustomization.yaml":   kustomization,
		"apps/a/flinkdeployment.yaml": appSpec("a", "stateless", 1, ""),
		"apps/b/kustomization.yaml":   kustomization,
		"apps/b/flinkdeployment.yaml": appSpec("b", "stateless", 1, ""),
	}
	e := newEnv(t, files, map[string]any{"reconcile": map[string]any{"maxConcurrentUpgrades": 1}})
	start := time.Now()
	e.wait(lifecycle.KindDeployment, "a", "a deployed", 4*time.Minute, stableAt(""))
	e.wait(lifecycle.KindDeployment, "b", "b deployed", 4*time.Minute, stableAt(""))

	commit := e.push("both to parallelism 2", map[string]string{
		"apps/a/flinkdeployment.yaml": appSpec("a", "stateless", 2, ""),
		"apps/b/flinkdeployment.yaml": appSpec("b", "stateless", 2, ""),
	})
	store := &lifecycle.Store{Client: kube.Shared(t).Client()}
	ctx := context.Background()
	deadline := time.Now().Add(6 * time.Minute)
	waited, maxInFlight := "", 0
	for {
		recs, err := store.List(ctx, e.ns)
		if err != nil {
			t.Fatal(err)
		}
		inFlight, done := 0, 0
		for _, r := range recs {
			if r.Operation != nil && lifecycle.Gated(r.Operation.Kind) {
				inFlight++
			}
			if r.Waiting != "" {
				waited = r.Name + ": " + r.Waiting
			}
			if c := r.Common(); r.Operation == nil && c.Source != nil && c.Source.Commit == commit && c.LifecycleState == "STABLE" {
				done++
			}
		}
		maxInFlight = max(maxInFlight, inFlight)
		if inFlight > 1 {
			t.Fatalf("%d upgrades in flight at once with maxConcurrentUpgrades 1", inFlight)
		}
		if done == 2 {
			break
		}
		if time.Now().After(deadline) || !e.s.DaemonRunning() {
			t.Fatalf("both not upgraded to %s (daemon running: %v)", commit, e.s.DaemonRunning())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if maxInFlight != 1 || !strings.Contains(waited, "reconcile.maxConcurrentUpgrades is 1") {
		t.Fatalf("the bound never acted: most in flight %d, waiting note %q", maxInFlight, waited)
	}
	t.Logf("held back: %s; both upgraded in %s (whole test)", waited, time.Since(start).Round(time.Second))
}
