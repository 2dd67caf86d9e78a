package scale

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/scale/flinksim"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// Settings of a run, from the environment (make scale passes them on).
type settings struct {
	n, namespaces int
	rest          time.Duration // the at-rest measurement window
	deployTimeout time.Duration // bound on the initial deployment and the base change
	record        string        // a file to append the results to (docs/benchmarks.md)
	binary        string
	config        string // SCALE_DAEMON_CONFIG
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 90s", name, v)
	}
	return d
}

// TestScale is the fleet load harness; it runs only with SCALE_HARNESS=1
// (make scale). SCALE_N FlinkDeployments (default 1000) in SCALE_NAMESPACES
// namespaces (4) are deployed by the real daemon (default config: qps 50,
// concurrency 4, resync 30 s), then it measures:
//
//   - the initial deployment of all N (to every job RUNNING, nothing in flight);
//   - at rest, over SCALE_REST (90 s): daemon RSS and CPU (from /proc),
//     apiserver requests/s (the daemon's flink_gitops_kube_requests_total),
//     Flink REST calls/s (the simulator's count), apiserver CPU;
//   - a push changing one resource: time to the daemon's first write (its
//     status ConfigMap), to the first change of its JobManager Deployment,
//     and to the job RUNNING again on the new commit;
//   - a push changing the shared base (all N): time until all N run the new
//     commit, with the requests and peak RSS on the way.
//
// SCALE_RECORD=docs/benchmarks.md appends the results as a section;
// SCALE_DAEMON_CONFIG (YAML) replaces top-level blocks of the daemon config.
func TestScale(t *testing.T) {
	if os.Getenv("SCALE_HARNESS") == "" {
		t.Skip("the scale harness runs with make scale (SCALE_HARNESS=1)")
	}
	if testing.Short() {
		t.Skip("integration test")
	}
	s := settings{
		n:          envInt(t, "SCALE_N", 1000),
		namespaces: envInt(t, "SCALE_NAMESPACES", 4),
		rest:       envDuration(t, "SCALE_REST", 90*time.Second),
		record:     os.Getenv("SCALE_RECORD"),
		binary:     os.Getenv("SCALE_BINARY"),
	}
	s.deployTimeout = envDuration(t, "SCALE_DEPLOY_TIMEOUT", max(10*time.Minute, time.Duration(s.n)*time.Second))
	if s.binary == "" {
		s.binary = buildBinary(t)
	}
	fleet := Fleet{N: s.n, Namespaces: s.namespaces}
	ctx := context.Background()
	dir := t.TempDir()
	r := &report{s: s, start: time.Now()}

	// The simulated JobManagers, on loopback.
	sim := flinksim.New()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = simSrv.Serve(l) }()
	t.Cleanup(func() { _ = simSrv.Close() })

	seed := filepath.Join(dir, "seed")
	for p, c := range fleet.Files(1) {
		writeFile(t, filepath.Join(seed, p), c)
	}
	t.Logf("starting the stack: kube-apiserver, etcd, git server, node agent (virtual replicas), %d FlinkDeployments in %d namespaces", s.n, s.namespaces)
	st, err := stack.Start(ctx, stack.Options{
		Dir: filepath.Join(dir, "stack"), Binary: s.binary, Seed: seed,
		EntryPoints: fleet.EntryPoints(), Namespaces: fleet.NamespaceList(),
		Runtime:      Runtime{Sim: sim},
		AgentOptions: []nodeagent.Option{nodeagent.WithTick(2 * time.Second), nodeagent.WithCachedConfigMaps()},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		st.Stop()
		if t.Failed() {
			t.Logf("daemon log (kept: %s):\n%s", st.DaemonLog, tail(st.DaemonLog, 60))
			t.Logf("control plane:\n%s", st.Kube.LogTails(20))
		}
	})
	// The daemon's defaults (config.Defaults, written out), except: the
	// simulator is its REST API, and git polls stay at 1 s (the stack's;
	// the default is 30 s). Environment variables named FLINK_GITOPS_* would
	// reach the daemon, which refuses unknown ones: hence SCALE_*.
	extra := map[string]any{
		"flink":     map[string]any{"restURLTemplate": "http://" + l.Addr().String() + "/{{.Namespace}}/{{.Name}}"},
		"reconcile": map[string]any{"concurrency": 4, "resyncInterval": "30s", "fastPollInterval": "500ms", "operationTimeout": "5m", "minPeriodicInterval": "1m"},
	}
	// SCALE_DAEMON_CONFIG: YAML merged over the above and the stack's
	// config, two levels deep (kubernetes: {qps: 500} keeps the kubeconfig).
	if v := os.Getenv("SCALE_DAEMON_CONFIG"); v != "" {
		var more map[string]any
		if err := yaml.Unmarshal([]byte(v), &more); err != nil {
			t.Fatalf("SCALE_DAEMON_CONFIG: %v", err)
		}
		base := st.Config(extra)
		for k, v := range more {
			mv, ok1 := v.(map[string]any)
			bv, ok2 := base[k].(map[string]any)
			if ok1 && ok2 {
				for kk, vv := range mv {
					bv[kk] = vv
				}
				v = bv
			}
			extra[k] = v
		}
		s.config = v
	}
	if err := st.WriteConfig(extra); err != nil {
		t.Fatal(err)
	}
	store := &lifecycle.Store{Client: st.Kube.Client()}
	apiserverPID := 0
	for _, p := range st.Kube.Processes() {
		if p.Name == "kube-apiserver" {
			apiserverPID = p.PID
		}
	}
	metricsURL := "http://" + st.MetricsAddr + "/metrics"
	c0, err := st.Work.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// 1. The initial deployment.
	if err := st.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	peak := waitAll(t, ctx, store, st, s, func(rec *lifecycle.Record) bool { return settledAt(rec, c0) }, "the initial deployment", r)
	r.deploy, r.deployPeak = time.Since(t0), peak
	t.Logf("initial deployment of %d: %s (peak RSS %s)", s.n, r.deploy.Round(time.Second), mib(peak))

	// 2. At rest.
	pid := st.DaemonPID()
	m1, k1, p1, a1, calls1 := mustScrape(t, ctx, metricsURL), apiserverMetrics(t, ctx, st), mustProc(t, pid), mustProc(t, apiserverPID), sim.Calls()
	routes1 := sim.Routes()
	t.Logf("measuring at rest for %s", s.rest)
	time.Sleep(s.rest) // a measurement window, not a synchronisation
	m2, k2, p2, a2, calls2 := mustScrape(t, ctx, metricsURL), apiserverMetrics(t, ctx, st), mustProc(t, pid), mustProc(t, apiserverPID), sim.Calls()
	secs := p2.At.Sub(p1.At).Seconds()
	r.restRSS, r.restCPU, r.apiserverCPU = p2.RSS, CPUShare(p1, p2), CPUShare(a1, a2)
	// The daemon's own count, where it exports one; the apiserver's
	// count of every client (at rest: the daemon, the node agent's status
	// writes on change and the controller manager, which only watches).
	r.restKube = -1
	if len(Delta(Metrics{}, m2, kubeRequestsMetric)) > 0 {
		r.restKube = (m2.Sum(kubeRequestsMetric) - m1.Sum(kubeRequestsMetric)) / secs
	}
	ad := APIServerRequests(k1, k2)
	r.restAPIServer = sum(ad) / secs
	r.restKubeTop = Top(ad, 6, secs)
	r.restFlink = float64(calls2-calls1) / secs
	r.restFlinkTop = Top(routeDelta(routes1, sim.Routes()), 5, secs)
	r.restPasses = (m2.Sum("flink_gitops_reconcile_total") - m1.Sum("flink_gitops_reconcile_total")) / secs
	r.restStatusWrites = m2.Sum("flink_gitops_status_writes_total") - m1.Sum("flink_gitops_status_writes_total")
	t.Logf("at rest: RSS %s, CPU %.1f%% of a core, daemon kube requests/s %s, apiserver requests/s %.1f (%s), %.1f Flink REST calls/s (%s), %.1f passes/s, apiserver CPU %.1f%%",
		mib(r.restRSS), 100*r.restCPU, orNA(r.restKube, "%.1f"), r.restAPIServer, r.restKubeTop, r.restFlink, r.restFlinkTop, r.restPasses, 100*r.apiserverCPU)

	// 3. A push that changes one resource.
	one := 0
	ns, name := fleet.Namespace(one), fleet.Name(one)
	cms := st.Kube.Client().CoreV1().ConfigMaps(ns)
	deps := st.Kube.Client().AppsV1().Deployments(ns)
	cm0, err := cms.Get(ctx, lifecycle.StatusConfigMapName(lifecycle.KindDeployment, name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d0, err := deps.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := st.Work.CommitPush(ctx, map[string]string{fleet.OverlayPath(one): fleet.Overlay(one, 1)}, "scale: change "+name)
	if err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	var firstWrite, firstApply time.Duration
	deadline := pushed.Add(5 * time.Minute)
	for firstApply == 0 || firstWrite == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("5 min after the push of %s changing %s/%s: first status write %v, first JobManager Deployment change %v", c1, ns, name, firstWrite, firstApply)
		}
		if firstWrite == 0 {
			if cm, err := cms.Get(ctx, cm0.Name, metav1.GetOptions{}); err == nil && cm.ResourceVersion != cm0.ResourceVersion {
				firstWrite = time.Since(pushed)
			}
		}
		if firstApply == 0 {
			d, err := deps.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || err == nil && (d.UID != d0.UID || d.Generation != d0.Generation) {
				firstApply = time.Since(pushed)
			}
		}
		time.Sleep(20 * time.Millisecond) // poll interval of the measurement
	}
	for {
		rec, err := store.Get(ctx, lifecycle.KindDeployment, ns, name)
		if err == nil && settledAt(rec, c1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 min after the push of %s, %s/%s is not running the new commit: %s", c1, ns, name, describe(rec))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.oneWrite, r.oneApply, r.oneDone = firstWrite, firstApply, time.Since(pushed)
	t.Logf("one resource: first status write %s, first JobManager Deployment change %s, running again on the new commit %s after the push",
		ms(firstWrite), ms(firstApply), ms(r.oneDone))

	// 4. A push that changes the base of all N.
	k3, calls3 := apiserverMetrics(t, ctx, st), sim.Calls()
	c2, err := st.Work.CommitPush(ctx, fleet.BaseFiles(2), "scale: base change (all resources)")
	if err != nil {
		t.Fatal(err)
	}
	pushed = time.Now()
	peak = waitAll(t, ctx, store, st, s, func(rec *lifecycle.Record) bool { return settledAt(rec, c2) }, "the base change", r)
	r.base, r.basePeak = time.Since(pushed), peak
	k4 := apiserverMetrics(t, ctx, st)
	r.baseAPIServer = sum(APIServerRequests(k3, k4))
	r.baseTop = Top(APIServerRequests(k3, k4), 4, 1)
	r.baseFlink = sim.Calls() - calls3
	t.Logf("base change: all %d running the new commit after %s; %.0f apiserver requests (%s), %d Flink REST calls, peak RSS %s",
		s.n, r.base.Round(time.Second), r.baseAPIServer, r.baseTop, r.baseFlink, mib(peak))

	r.write(t)
}

// write logs the report and appends it to SCALE_RECORD.
func (r *report) write(t *testing.T) {
	text := r.markdown()
	t.Log("\n" + text)
	if r.s.record == "" {
		return
	}
	f, err := os.OpenFile(r.s.record, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("SCALE_RECORD: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + text); err != nil {
		t.Fatal(err)
	}
}

// settledAt reports whether rec runs commit's spec with nothing in flight.
func settledAt(rec *lifecycle.Record, commit string) bool {
	if rec == nil || rec.Operation != nil {
		return false
	}
	c := rec.Common()
	return c.Source != nil && c.Source.Commit == commit && c.JobStatus.State == "RUNNING"
}

func describe(rec *lifecycle.Record) string {
	if rec == nil {
		return "no status"
	}
	c := rec.Common()
	s := fmt.Sprintf("lifecycle %s, job %s", c.LifecycleState, c.JobStatus.State)
	if c.Source != nil {
		s += ", commit " + c.Source.Commit
	}
	if rec.Operation != nil {
		s += fmt.Sprintf(", operation %s: %s", rec.Operation.Kind, rec.Operation.Phase)
	}
	if c.Error != "" {
		s += ", error " + c.Error
	}
	return s
}

// waitAll waits until done holds for all N records, within the deploy
// timeout, logging progress; it returns the daemon's peak RSS on the way.
// On timeout the report so far, with the progress, is written before the
// test fails.
func waitAll(t *testing.T, ctx context.Context, store *lifecycle.Store, st *stack.Stack, s settings, done func(*lifecycle.Record) bool, what string, r *report) int64 {
	t.Helper()
	start := time.Now()
	deadline := start.Add(s.deployTimeout)
	r.progress = nil
	var peak int64
	lastLog := start
	for {
		if !st.DaemonRunning() {
			t.Fatalf("%s: the daemon exited", what)
		}
		if p, err := ReadProc(st.DaemonPID()); err == nil && p.RSS > peak {
			peak = p.RSS
		}
		recs, err := store.List(ctx, "")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n, states := 0, map[string]int{}
		for _, rec := range recs {
			if done(rec) {
				n++
				continue
			}
			c := rec.Common()
			k := string(c.LifecycleState) + "/" + string(c.JobStatus.State)
			if rec.Operation != nil {
				k += " " + string(rec.Operation.Kind) + ":" + string(rec.Operation.Phase)
			}
			states[k]++
		}
		if n == s.n {
			return peak
		}
		if time.Now().After(deadline) {
			r.unfinished = fmt.Sprintf("%s did not finish: after %s, %d of %d ran the wanted commit and %d had a status at all (progress: %s); the rest was not measured",
				what, s.deployTimeout, n, s.n, len(recs), strings.Join(r.progress, ", "))
			r.write(t)
			t.Fatalf("%s: after %s only %d of %d run the wanted commit (%d have a status); the others: %s",
				what, s.deployTimeout, n, s.n, len(recs), counts(states))
		}
		if time.Since(lastLog) >= 15*time.Second {
			t.Logf("%s: %d of %d after %s; others: %s", what, n, s.n, time.Since(start).Round(time.Second), counts(states))
			lastLog = time.Now()
		}
		if el := time.Since(start); el >= time.Duration(len(r.progress)+1)*2*time.Minute {
			r.progress = append(r.progress, fmt.Sprintf("%d at %s", n, el.Round(time.Minute)))
		}
		time.Sleep(max(2*time.Second, time.Duration(s.n)*5*time.Millisecond)) // poll interval of the measurement (a LIST of N status ConfigMaps)
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func routeDelta(a, b map[string]int64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d := v - a[k]; d != 0 {
			out[k] = float64(d)
		}
	}
	return out
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// kubeRequestsMetric is the daemon's count of its Kubernetes requests
// (absent in builds before it was added: then only the apiserver's count
// is reported).
const kubeRequestsMetric = "flink_gitops_kube_requests_total"

// apiserverMetrics scrapes the apiserver's own /metrics as admin.
func apiserverMetrics(t *testing.T, ctx context.Context, st *stack.Stack) Metrics {
	t.Helper()
	raw, err := st.Kube.Client().Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("scrape the apiserver's metrics: %v", err)
	}
	m, err := ParseMetrics(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustScrape(t *testing.T, ctx context.Context, url string) Metrics {
	t.Helper()
	m, err := Scrape(ctx, url)
	if err != nil {
		t.Fatalf("scrape the daemon's metrics: %v", err)
	}
	return m
}

func mustProc(t *testing.T, pid int) ProcSample {
	t.Helper()
	p, err := ReadProc(pid)
	if err != nil {
		t.Fatalf("read /proc of pid %d: %v", pid, err)
	}
	return p
}

// report holds one run's numbers.
type report struct {
	unfinished                         string   // what did not finish in time, if anything
	progress                           []string // "k at 2m0s", every 2 minutes of a fleet-wide wait
	s                                  settings
	start                              time.Time
	deploy                             time.Duration
	deployPeak                         int64
	restRSS                            int64
	restCPU, apiserverCPU              float64
	restKube, restAPIServer, restFlink float64
	restPasses, restStatusWrites       float64
	restKubeTop, restFlinkTop          string
	oneWrite, oneApply, oneDone        time.Duration
	base                               time.Duration
	basePeak                           int64
	baseAPIServer                      float64
	baseTop                            string
	baseFlink                          int64
}

func (r *report) markdown() string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "## Scale harness: %d FlinkDeployments (%s)\n\n", r.s.n, r.start.UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "`make scale SCALE_N=%d` (tests/scale: real kube-apiserver, git server and daemon binary; node agent with virtual replicas; JobManagers simulated by tests/scale/flinksim). "+
		"Daemon config: the defaults (kubernetes.qps 50, reconcile.concurrency 4, resyncInterval 30 s) but git.pollInterval 1 s. "+
		"%d namespaces, one entry point per resource sharing one base, upgradeMode stateless. Machine: %d cores (%s), shared with other builds and tests; one run.\n\n",
		r.s.n, r.s.namespaces, runtime.NumCPU(), host)
	if r.s.config != "" {
		fmt.Fprintf(&b, "Daemon config replaced by SCALE_DAEMON_CONFIG:\n\n```yaml\n%s\n```\n\n", strings.TrimSpace(r.s.config))
	}
	if r.unfinished != "" {
		fmt.Fprintf(&b, "**Unfinished:** %s.\n\n", r.unfinished)
	}
	if r.deploy == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| initial deployment of all %d (daemon start → every job RUNNING, nothing in flight) | %s |\n", r.s.n, r.deploy.Round(time.Second))
	fmt.Fprintf(&b, "| daemon RSS at rest (peak during deployment) | %s (%s) |\n", mib(r.restRSS), mib(r.deployPeak))
	fmt.Fprintf(&b, "| daemon CPU at rest (over %s) | %.1f%% of a core |\n", r.s.rest, 100*r.restCPU)
	fmt.Fprintf(&b, "| apiserver requests/s at rest: the daemon's `%s` | %s |\n", kubeRequestsMetric, orNA(r.restKube, "%.1f"))
	fmt.Fprintf(&b, "| apiserver requests/s at rest: the apiserver's `apiserver_request_total`, all clients (top verbs and resources per s) | %.1f — %s |\n", r.restAPIServer, r.restKubeTop)
	fmt.Fprintf(&b, "| Flink REST calls/s at rest (simulator) | %.1f — %s |\n", r.restFlink, r.restFlinkTop)
	fmt.Fprintf(&b, "| reconcile passes/s at rest; status branch writes in the window | %.1f; %.0f |\n", r.restPasses, r.restStatusWrites)
	fmt.Fprintf(&b, "| kube-apiserver CPU at rest | %.1f%% of a core |\n", 100*r.apiserverCPU)
	fmt.Fprintf(&b, "| push changing one resource → first status write / first JobManager Deployment change / running on the new commit | %s / %s / %s |\n", ms(r.oneWrite), ms(r.oneApply), ms(r.oneDone))
	if r.base == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "| push changing the base of all %d → all running the new commit (stateless upgrades, no wave policy) | %s |\n", r.s.n, r.base.Round(time.Second))
	fmt.Fprintf(&b, "| … its apiserver requests (all clients; top), Flink REST calls, peak RSS | %.0f (%s), %d, %s |\n", r.baseAPIServer, r.baseTop, r.baseFlink, mib(r.basePeak))
	return b.String()
}

func orNA(v float64, format string) string {
	if v < 0 {
		return "n/a (this build does not export it)"
	}
	return fmt.Sprintf(format, v)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildBinary builds flink-gitops into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flink-gitops")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/flink-gitops")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build flink-gitops: %v\n%s", err, out)
	}
	return bin
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
