package daemon

import (
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

func TestUpgradeGate(t *testing.T) {
	global, perNS := 2, 1
	g := newUpgradeGate(func() (int, int) { return global, perNS })
	admit := func(ns, name string) (bool, string) {
		return g.Admit(lifecycle.KindDeployment, ns, name, lifecycle.OpUpgrade)
	}
	if ok, _ := admit("a", "one"); !ok {
		t.Fatal("first upgrade refused")
	}
	if ok, _ := admit("a", "one"); !ok {
		t.Fatal("an admitted resource asking again is refused")
	}
	if ok, why := admit("a", "two"); ok || !strings.Contains(why, "maxConcurrentUpgradesPerNamespace is 1") {
		t.Fatalf("second upgrade in namespace a: ok=%v %q", ok, why)
	}
	if ok, _ := admit("b", "three"); !ok {
		t.Fatal("upgrade in namespace b refused")
	}
	if ok, why := admit("c", "four"); ok || !strings.Contains(why, "2 upgrades in flight, reconcile.maxConcurrentUpgrades is 2") {
		t.Fatalf("third upgrade overall: ok=%v %q", ok, why)
	}
	// one's upgrade finished: its place goes to the next.
	g.observe(lifecycle.Key(lifecycle.KindDeployment, "a", "one"), &lifecycle.Record{Namespace: "a"})
	if ok, _ := admit("a", "two"); !ok {
		t.Fatal("place not freed when the record shows no operation")
	}
	// A record with a gated operation (e.g. read at start-up) holds a place.
	g.observe(lifecycle.Key(lifecycle.KindDeployment, "c", "five"), &lifecycle.Record{Namespace: "c", Operation: &lifecycle.Operation{Kind: lifecycle.OpRestart}})
	if len(g.inFlight) != 3 {
		t.Fatalf("in flight: %v", g.inFlight)
	}
	// Live limits: 0 is no bound.
	global, perNS = 0, 0
	if ok, _ := admit("c", "six"); !ok {
		t.Fatal("refused with no bound")
	}
}
