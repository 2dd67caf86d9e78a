package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/tests/scale/flinksim"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	m, err := ParseMetrics(strings.NewReader(`# HELP x
# TYPE flink_gitops_kube_requests_total counter
flink_gitops_kube_requests_total{resource="configmaps",verb="GET"} 12
flink_gitops_kube_requests_total{resource="deployments",verb="PATCH"} 3
flink_gitops_kube_rate_limiter_wait_seconds_total 1.5e-3
process_resident_memory_bytes 2.5e+07
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("flink_gitops_kube_requests_total"); got != 15 {
		t.Errorf("sum = %v, want 15", got)
	}
	if got := m.Sum("process_resident_memory_bytes"); got != 25e6 {
		t.Errorf("rss = %v", got)
	}
	b := Metrics{}
	for k, v := range m {
		b[k] = v
	}
	b[`flink_gitops_kube_requests_total{resource="configmaps",verb="GET"}`] += 20
	d := Delta(m, b, "flink_gitops_kube_requests_total")
	if len(d) != 1 || d[`{resource="configmaps",verb="GET"}`] != 20 {
		t.Errorf("delta = %v", d)
	}
	if got := Top(d, 3, 10); got != `{resource="configmaps",verb="GET"} 2.00` {
		t.Errorf("top = %q", got)
	}
}

func TestAPIServerRequests(t *testing.T) {
	t.Parallel()
	a, _ := ParseMetrics(strings.NewReader(`apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="GET",version="v1"} 10
`))
	b, _ := ParseMetrics(strings.NewReader(`apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="GET",version="v1"} 25
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="GET",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="status",verb="PUT",version="v1"} 2
`))
	got := APIServerRequests(a, b)
	if len(got) != 2 || got["GET configmaps"] != 20 || got["PUT deployments/status"] != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestProcParsing(t *testing.T) {
	t.Parallel()
	cpu, err := parseStatCPU("4242 (flink gitops) (x) S 1 4242 4242 0 -1 4194560 2958 0 0 0 250 50 0 0 20 0 12 0 123 0 0")
	if err != nil || cpu != 3*time.Second {
		t.Fatalf("cpu = %v, %v; want 3s (300 ticks)", cpu, err)
	}
	rss, err := parseStatusRSS("Name:\tx\nVmRSS:\t  1024 kB\nThreads: 3\n")
	if err != nil || rss != 1<<20 {
		t.Fatalf("rss = %d, %v", rss, err)
	}
	// Our own process, read for real.
	s, err := ReadProc(os.Getpid())
	if err != nil || s.RSS <= 0 {
		t.Fatalf("ReadProc(self) = %+v, %v", s, err)
	}
}

// TestFleetRenders renders a small generated fleet with the daemon's own
// render pipeline: every entry point yields its one valid FlinkDeployment,
// named and namespaced as the harness expects.
func TestFleetRenders(t *testing.T) {
	t.Parallel()
	f := Fleet{N: 5, Namespaces: 2}
	files := f.Files(1)
	for i := 0; i < f.N; i++ {
		if !strings.Contains(files[f.OverlayPath(i)], "value: "+f.Name(i)) {
			t.Fatalf("overlay %d: %s", i, files[f.OverlayPath(i)])
		}
	}
	if f.Namespace(3) != "scale-1" || f.Name(3) != "app-00003" || len(f.NamespaceList()) != 2 {
		t.Fatalf("names: %s %s %v", f.Namespace(3), f.Name(3), f.NamespaceList())
	}
	dir := t.TempDir()
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := render.PlanDir(context.Background(), dir, render.Options{EntryPoints: f.EntryPoints(), AllowedNamespaces: f.NamespaceList(), DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || len(res.Warnings) > 0 || len(res.Resources) != f.N {
		t.Fatalf("render: %d resources (want %d), problems %+v, warnings %+v", len(res.Resources), f.N, res.Problems, res.Warnings)
	}
	got := map[string]bool{}
	for _, r := range res.Resources {
		if d := r.Deployment; d != nil && len(d.Spec.Job.Args) == 4 {
			got[d.Namespace+"/"+d.Name+" "+d.Spec.Job.Args[1]] = true
		}
	}
	for i := 0; i < f.N; i++ {
		if k := fmt.Sprintf("%s/%s %d", f.Namespace(i), f.Name(i), i); !got[k] {
			t.Errorf("no FlinkDeployment %s in %v", k, got)
		}
	}
}

// TestRuntime checks the virtual runtime: a standalone JobManager registers
// its cluster and job with the simulator while it runs.
func TestRuntime(t *testing.T) {
	t.Parallel()
	sim := flinksim.New()
	rt := Runtime{Sim: sim}
	jm := nodeagent.Container{Namespace: "ns", Deployment: "app", Pod: "app-0",
		Spec: corev1.Container{Args: []string{"standalone-job", "--job-classname", "x.Y", "--job-id", "0123456789abcdef0123456789abcdef", "--rev", "1"}}}
	p, err := rt.Prepare(context.Background(), jm)
	if err != nil || p.Cmd != nil || p.Stop == nil {
		t.Fatalf("jobmanager: %+v, %v", p, err)
	}
	if s := sim.JobState("ns", "app", "0123456789abcdef0123456789abcdef"); s != "RUNNING" {
		t.Fatalf("job state %q", s)
	}
	p.Stop()
	if sim.Running() != 0 {
		t.Fatal("cluster still running after Stop")
	}
	tm := jm
	tm.Spec.Args = []string{"taskmanager"}
	if p, err := rt.Prepare(context.Background(), tm); err != nil || p.Cmd != nil || sim.Running() != 0 {
		t.Fatalf("taskmanager: %+v, %v", p, err)
	}
	tm.Spec.Args = []string{"kubernetes-jobmanager.sh", "kubernetes-application"}
	if _, err := rt.Prepare(context.Background(), tm); err == nil {
		t.Fatal("native mode: want an error (not simulated)")
	}
}
