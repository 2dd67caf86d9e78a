package e2e

import (
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// aliasBomb is a FlinkDeployment of under 1 KB whose YAML aliases expand
// to hundreds of millions of nodes ("billion laughs").
const aliasBomb = `apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: bomb
  namespace: NAMESPACE
  labels:
    a: &a [x, x, x, x, x, x, x, x, x]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
spec: {}
`

// TestDaemonSurvivesHostileRepository pushes, to the real daemon on the
// test bed, a git bomb (a 200 MiB file of zeros: a pack of a few hundred
// KiB) and then a commit with an alias bomb in one entry point and a
// `configurations:` URL to a server that accepts connections and never
// answers in another, together with an upgrade of a valid resource in a
// third. The daemon must refuse the git bomb at fetch time, report both
// hostile entry points, never contact the server, stay up with bounded
// memory, and upgrade the valid resource.
func TestDaemonSurvivesHostileRepository(t *testing.T) {
	e := newEnv(t, map[string]string{
		"apps/counter/kustomization.yaml":   kustomization,
		"apps/counter/flinkdeployment.yaml": appSpec("counter", "stateless", 1, ""),
	}, nil)
	// A small snapshot cap, so a 200 MiB bomb is far over it (restart-only
	// key: restart the daemon with it).
	e.s.StopDaemon(false)
	git := e.s.Config(nil)["git"].(map[string]any)
	git["maxSnapshotBytes"] = 16 << 20
	if err := e.s.WriteConfig(map[string]any{"git": git}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	e.wait("FlinkDeployment", "counter", "first deploy", 4*time.Minute, stableAt(""))

	var peakRSS float64
	sampleRSS := func() {
		if addr := e.s.MetricsAddr; addr != "" && e.s.DaemonRunning() {
			peakRSS = max(peakRSS, sum(metrics(t, addr), "process_resident_memory_bytes"))
		}
	}

	// 1. The git bomb: refused while fetching, the daemon stays up.
	e.push("a git bomb", map[string]string{"zeros.bin": strings.Repeat("\x00", 200<<20)})
	eventually(t, 2*time.Minute, "the git bomb refused", func() (bool, string) {
		sampleRSS()
		if !e.s.DaemonRunning() {
			t.Fatal("the daemon exited after the git bomb")
		}
		return fileHas(e.s.DaemonLog, regexp.MustCompile(`fetch too large: its objects inflate to more than \d+ bytes`)), tail(e.s.DaemonLog, 5)
	})

	// 2. An alias bomb, a stuck configurations URL and a valid upgrade.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			defer c.Close() // never answers
		}
	}()
	c3 := e.push("hostile entry points and a valid upgrade", map[string]string{
		"zeros.bin":                         "",
		"apps/bomb/kustomization.yaml":      "resources: [bomb.yaml]\n",
		"apps/bomb/bomb.yaml":               aliasBomb,
		"apps/stuck/kustomization.yaml":     "resources: [job.yaml]\nconfigurations: [http://" + l.Addr().String() + "/config.yaml]\n",
		"apps/stuck/job.yaml":               appSpec("stuck", "stateless", 1, ""),
		"apps/counter/flinkdeployment.yaml": appSpec("counter", "stateless", 2, ""),
	})
	e.wait("FlinkDeployment", "counter", "the valid resource upgraded beside the hostile ones", 4*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		sampleRSS()
		return stableAt(c3)(rs)
	})
	if !e.s.DaemonRunning() {
		t.Fatal("the daemon is not running")
	}
	eventually(t, time.Minute, "both hostile entry points reported on the status branch", func() (bool, string) {
		readme := statusREADME(e)
		return strings.Contains(readme, "bomb.yaml") && strings.Contains(readme, "expands to") &&
			strings.Contains(readme, "configurations") && strings.Contains(readme, "never the network"), readme
	})
	if n := conns.Load(); n != 0 {
		t.Errorf("the daemon connected %d times to the configurations URL", n)
	}
	sampleRSS()
	t.Logf("daemon peak sampled RSS: %.0f MiB", peakRSS/(1<<20))
	if peakRSS > 512<<20 {
		t.Errorf("the daemon's RSS reached %.0f MiB", peakRSS/(1<<20))
	}
}
