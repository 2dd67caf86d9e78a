package daemon

import (
	"fmt"
	gosync "sync"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// upgradeGate is the daemon's lifecycle.Gate: it admits an upgrade while
// fewer than reconcile.maxConcurrentUpgrades (globally) and
// reconcile.maxConcurrentUpgradesPerNamespace (in the resource's namespace)
// are in flight. A resource holds its place from admission until a pass
// returns a record without a gated operation (done, failed over to a
// rollback, or the record gone), so a place is never lost for good.
type upgradeGate struct {
	limits func() (global, perNamespace int)

	mu       gosync.Mutex
	inFlight map[string]string // key → namespace
}

func newUpgradeGate(limits func() (int, int)) *upgradeGate {
	return &upgradeGate{limits: limits, inFlight: map[string]string{}}
}

// Admit implements lifecycle.Gate.
func (g *upgradeGate) Admit(kind, namespace, name string, op lifecycle.OpKind) (bool, string) {
	key := Key(kind, namespace, name)
	global, perNS := g.limits()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.inFlight[key]; ok {
		return true, ""
	}
	if global > 0 && len(g.inFlight) >= global {
		return false, fmt.Sprintf("%s waits: %d upgrades in flight, reconcile.maxConcurrentUpgrades is %d", op, len(g.inFlight), global)
	}
	if perNS > 0 {
		n := 0
		for _, ns := range g.inFlight {
			if ns == namespace {
				n++
			}
		}
		if n >= perNS {
			return false, fmt.Sprintf("%s waits: %d upgrades in flight in namespace %s, reconcile.maxConcurrentUpgradesPerNamespace is %d", op, n, namespace, perNS)
		}
	}
	g.inFlight[key] = namespace
	return true, ""
}

// observe updates key's place from the record a pass (or the start-up
// listing) returned: a gated operation in flight holds one.
func (g *upgradeGate) observe(key string, r *lifecycle.Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r != nil && r.Operation != nil && lifecycle.Gated(r.Operation.Kind) {
		g.inFlight[key] = r.Namespace
		return
	}
	delete(g.inFlight, key)
}
