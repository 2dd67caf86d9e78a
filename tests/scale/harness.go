// Package scale is the fleet load harness (make scale, not part of make
// test): a real kube-apiserver, a git server with a repository of N
// FlinkDeployments, the node agent running their replicas virtually (no
// processes), every JobManager simulated by one flinksim server, and the
// real flink-gitops binary. It measures what the daemon costs at rest and
// how fast it acts on a push; see TestScale and docs/benchmarks.md.
package scale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/scale/flinksim"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// Runtime is a node-agent runtime that starts no process: a JobManager
// replica registers its cluster (and the job of standalone-job --job-id)
// with the simulator while it runs, a TaskManager replica is ready at once.
type Runtime struct{ Sim *flinksim.Server }

// Prepare implements nodeagent.Runtime.
func (r Runtime) Prepare(_ context.Context, c nodeagent.Container) (*nodeagent.Process, error) {
	args, err := flinktb.ContainerArgs(c.Spec.Command, c.Spec.Args)
	if err != nil || len(args) == 0 {
		return nil, fmt.Errorf("pod %s: simulated runtime: container args %q: %v", c.Pod, c.Spec.Args, err)
	}
	switch args[0] {
	case "standalone-job", "jobmanager":
		ns, name := c.Namespace, c.Deployment
		r.Sim.Start(ns, name, flagValue(args, "--job-id"))
		return &nodeagent.Process{Stop: func() { r.Sim.Stop(ns, name) }}, nil
	case "taskmanager":
		return &nodeagent.Process{}, nil
	}
	return nil, fmt.Errorf("pod %s: simulated runtime runs standalone JobManagers and TaskManagers only, not %q", c.Pod, args[0])
}

// flagValue returns the value after flag in args ("" if absent).
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// Fleet describes the generated repository: N FlinkDeployments spread over
// Namespaces namespaces, one Kustomize entry point each
// (apps/<namespace>/<name>), all sharing base/.
type Fleet struct {
	N          int
	Namespaces int
}

// Namespace returns the namespace of resource i.
func (f Fleet) Namespace(i int) string { return fmt.Sprintf("scale-%d", i%f.Namespaces) }

// Name returns the name of resource i.
func (f Fleet) Name(i int) string { return fmt.Sprintf("app-%05d", i) }

// NamespaceList returns every namespace of the fleet.
func (f Fleet) NamespaceList() []string {
	out := make([]string, f.Namespaces)
	for i := range out {
		out[i] = f.Namespace(i)
	}
	return out
}

// EntryPoints is the daemon's git.entryPoints for the fleet.
func (f Fleet) EntryPoints() []string { return []string{"apps/*/*"} }

// BaseFiles returns base/ with slots as taskmanager.numberOfTaskSlots: a
// change of slots touches every resource.
func (f Fleet) BaseFiles(slots int) map[string]string {
	return map[string]string{
		"base/kustomization.yaml": "resources:\n  - flinkdeployment.yaml\n",
		"base/flinkdeployment.yaml": fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: app
spec:
  image: flink:2.2
  flinkVersion: v2_2
  mode: standalone
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "%d"
  jobManager:
    resource: {memory: 1024m, cpu: 0.5}
  taskManager:
    resource: {memory: 1024m, cpu: 0.5}
  job:
    jarURI: local:///opt/flink/usrlib/app.jar
    entryClass: org.example.App
    parallelism: 1
    upgradeMode: stateless
    state: running
`, slots),
	}
}

// OverlayPath returns the kustomization file of resource i.
func (f Fleet) OverlayPath(i int) string {
	return fmt.Sprintf("apps/%s/%s/kustomization.yaml", f.Namespace(i), f.Name(i))
}

// Overlay returns the kustomization of resource i at revision rev (its
// job arguments: a change of rev touches that resource alone).
func (f Fleet) Overlay(i, rev int) string {
	return fmt.Sprintf(`resources:
  - ../../../base
namespace: %s
patches:
  - target: {kind: FlinkDeployment, name: app}
    patch: |-
      - op: replace
        path: /metadata/name
        value: %s
      - op: add
        path: /spec/job/args
        value: ["--instance", "%d", "--rev", "%d"]
`, f.Namespace(i), f.Name(i), i, rev)
}

// Files returns the whole repository at base revision slots, every
// overlay at revision 0.
func (f Fleet) Files(slots int) map[string]string {
	files := f.BaseFiles(slots)
	files["README.md"] = fmt.Sprintf("# scale fleet: %d FlinkDeployments in %d namespaces\n", f.N, f.Namespaces)
	for i := 0; i < f.N; i++ {
		files[f.OverlayPath(i)] = f.Overlay(i, 0)
	}
	return files
}

// Metrics are the samples of a Prometheus text exposition, keyed by series
// as written (name{labels}).
type Metrics map[string]float64

// ParseMetrics reads a Prometheus text exposition (comments skipped).
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] += v
	}
	return m, sc.Err()
}

// Sum adds every series of metric name.
func (m Metrics) Sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// Delta returns, per series of metric name, b minus a (series with no change left out).
func Delta(a, b Metrics, name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if k == name || strings.HasPrefix(k, name+"{") {
			if d := v - a[k]; d != 0 {
				out[strings.TrimPrefix(k, name)] = d
			}
		}
	}
	return out
}

// Top formats the largest entries of d as "k v, …" (at most n).
func Top(d map[string]float64, n int, unit float64) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range d {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	var parts []string
	for i, e := range l {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", e.k, e.v/unit))
	}
	return strings.Join(parts, ", ")
}

// Labels parses the label set of a series key, {a="x",b="y"} → a=x, b=y.
// Label values here (verbs, resources, codes) hold no quotes or commas.
func Labels(series string) map[string]string {
	out := map[string]string{}
	i := strings.IndexByte(series, '{')
	if i < 0 {
		return out
	}
	for _, kv := range strings.Split(strings.TrimSuffix(series[i+1:], "}"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// APIServerRequests sums the apiserver's own apiserver_request_total
// between two scrapes by verb and resource[/subresource] (every client,
// watches counted when they end).
func APIServerRequests(a, b Metrics) map[string]float64 {
	out := map[string]float64{}
	for k, d := range Delta(a, b, "apiserver_request_total") {
		l := Labels(k)
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		out[l["verb"]+" "+res] += d
	}
	return out
}

// Scrape fetches and parses a /metrics endpoint.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(io.LimitReader(resp.Body, 64<<20))
}

// ProcSample is a process's CPU time so far and its resident memory.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system
	RSS int64         // bytes
}

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

// ReadProc samples /proc/<pid>/stat and /proc/<pid>/status.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	cpu, err := parseStatCPU(string(stat))
	if err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	s.CPU = cpu
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.RSS, err = parseStatusRSS(string(status))
	return s, err
}

// parseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses: fields are counted after
// its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command field")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("only %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime %q stime %q", f[11], f[12])
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// parseStatusRSS returns VmRSS of a /proc/<pid>/status in bytes.
func parseStatusRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// CPUShare is the CPU used between a and b as a fraction of one core.
func CPUShare(a, b ProcSample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return float64(b.CPU-a.CPU) / float64(wall)
}
