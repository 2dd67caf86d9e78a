package flinktb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Memory sizes of the test bed's processes: a JobManager and a TaskManager
// together stay under ~3 GiB RSS (in practice well under 1 GiB).
const (
	JobManagerProcessSize  = "1024m"
	TaskManagerProcessSize = "1280m"
)

// Option changes how a test cluster is started.
type Option func(*settings)

type settings struct {
	slots        int
	taskManagers int
	conf         map[string]string
	savepoint    string
	allowNonRest bool
	jobID        string
	userJars     []string
	startTimeout time.Duration
}

// WithSlots sets taskmanager.numberOfTaskSlots (default 2).
func WithSlots(n int) Option { return func(s *settings) { s.slots = n } }

// WithTaskManagers sets how many TaskManagers to start (default 1).
func WithTaskManagers(n int) Option { return func(s *settings) { s.taskManagers = n } }

// WithConfig adds or overrides Flink configuration entries.
func WithConfig(conf map[string]string) Option {
	return func(s *settings) {
		for k, v := range conf {
			s.conf[k] = v
		}
	}
}

// WithSavepoint starts an application cluster from a savepoint or retained
// checkpoint (standalone-job --fromSavepoint).
func WithSavepoint(path string) Option { return func(s *settings) { s.savepoint = path } }

// WithAllowNonRestoredState adds --allowNonRestoredState to standalone-job.
func WithAllowNonRestoredState() Option { return func(s *settings) { s.allowNonRest = true } }

// WithJobID fixes the application's job id (32 hex digits; default random),
// set as $internal.pipeline.job-id as the operator does.
func WithJobID(id string) Option { return func(s *settings) { s.jobID = id } }

// WithUserJars sets the application cluster's usrlib jars (default: the test
// job jar of the cluster's version).
func WithUserJars(jars ...string) Option { return func(s *settings) { s.userJars = jars } }

// WithStartTimeout bounds the wait for the REST API and the TaskManagers
// (default 3 minutes; the machine is small and shared).
func WithStartTimeout(d time.Duration) Option { return func(s *settings) { s.startTimeout = d } }

// Startup records how long a cluster took to come up.
type Startup struct {
	// Commands is the time to build the java commands (BashJavaUtils runs).
	Commands time.Duration
	// JobManagerREST is from starting the JobManager to the REST API answering.
	JobManagerREST time.Duration
	// TaskManagersRegistered is from starting the TaskManagers (after the
	// JobManager answered) to all of them being registered.
	TaskManagersRegistered time.Duration
}

// Process is one running Flink JVM of a cluster.
type Process struct {
	// Name is "jobmanager" or "taskmanager-<i>".
	Name string
	// Cmd is the running command.
	Cmd *exec.Cmd
	// LogFile is the Flink log file; OutFile has stdout and stderr.
	LogFile, OutFile string

	done chan struct{}
	err  error
}

// Exited reports whether the process has exited, and its error if so.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Cluster is a running Flink cluster: one JobManager and its TaskManagers, on
// free 127.0.0.1 ports, with file-based checkpoint and savepoint directories.
type Cluster struct {
	// Version is the Flink version.
	Version string
	// Dir holds everything of this cluster (conf, logs, state, tmp).
	Dir string
	// ConfDir is the Flink config dir the processes read.
	ConfDir string
	// RESTURL is the JobManager's REST API, e.g. http://127.0.0.1:41234.
	RESTURL string
	// CheckpointDir and SavepointDir are the configured state directories
	// (plain paths; the config holds them as file:// URIs).
	CheckpointDir, SavepointDir string
	// LogDir has the processes' log and stdout files.
	LogDir string
	// JobID is the fixed job id of an application cluster ("" for sessions).
	JobID string
	// Startup has the start-up timings.
	Startup Startup

	mu    sync.Mutex
	procs []*Process
}

func newSettings(opts []Option) *settings {
	s := &settings{slots: 2, taskManagers: 1, conf: map[string]string{}, startTimeout: 3 * time.Minute}
	for _, o := range opts {
		o(s)
	}
	return s
}

// StartSession starts a session cluster of version for a test (one
// JobManager, one TaskManager with 2 slots unless opts say otherwise) and
// stops it when the test ends; on failure the test's log shows the log paths
// and their last lines.
func StartSession(t testing.TB, version string, opts ...Option) *Cluster {
	t.Helper()
	return startForTest(t, func(ctx context.Context, dir string) (*Cluster, error) {
		return NewSession(ctx, dir, version, opts...)
	})
}

// StartApplication starts an application cluster of version for a test: a
// standalone-job JobManager running jobClass with args from the usrlib jars
// (default: the test job jar), and its TaskManagers. Cluster.JobID is the job.
func StartApplication(t testing.TB, version, jobClass string, args []string, opts ...Option) *Cluster {
	t.Helper()
	return startForTest(t, func(ctx context.Context, dir string) (*Cluster, error) {
		return NewApplication(ctx, dir, version, jobClass, args, opts...)
	})
}

func startForTest(t testing.TB, start func(context.Context, string) (*Cluster, error)) *Cluster {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := start(ctx, dir)
	if err != nil {
		t.Fatalf("start flink cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("flink cluster %s logs:\n%s", c.Dir, c.Tail(40))
		}
	})
	return c
}

// NewSession starts a session cluster of version under dir (which must exist
// and is left in place) outside of a test: the JobManager runs the image's
// "jobmanager" args, the TaskManagers "taskmanager". It returns once the REST
// API answers and all TaskManagers are registered. Stop it with Stop.
func NewSession(ctx context.Context, dir, version string, opts ...Option) (*Cluster, error) {
	s := newSettings(opts)
	return start(ctx, dir, version, s, []string{"jobmanager"})
}

// NewApplication starts an application cluster of version under dir outside
// of a test (see StartApplication). It returns once the REST API answers, the
// TaskManagers are registered and the job is known to the JobManager.
func NewApplication(ctx context.Context, dir, version, jobClass string, args []string, opts ...Option) (*Cluster, error) {
	s := newSettings(opts)
	if s.jobID == "" {
		s.jobID = randomJobID()
	}
	if len(s.userJars) == 0 {
		jar, err := TestJobJar(ctx, version)
		if err != nil {
			return nil, err
		}
		s.userJars = []string{jar}
	}
	s.conf["$internal.pipeline.job-id"] = s.jobID
	jmArgs := []string{"standalone-job", "--job-classname", jobClass}
	if s.savepoint != "" {
		jmArgs = append(jmArgs, "--fromSavepoint", s.savepoint)
	}
	if s.allowNonRest {
		jmArgs = append(jmArgs, "--allowNonRestoredState")
	}
	jmArgs = append(jmArgs, args...)
	c, err := start(ctx, dir, version, s, jmArgs)
	if err != nil {
		return nil, err
	}
	c.JobID = s.jobID
	if err := c.waitFor(ctx, s.startTimeout, "job "+c.JobID+" to be submitted", func() (bool, error) {
		code, err := getJSON(ctx, c.RESTURL+"/jobs/"+c.JobID, nil)
		return code == http.StatusOK, err
	}); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func start(ctx context.Context, dir, version string, s *settings, jmArgs []string) (*Cluster, error) {
	if _, err := Ensure(ctx, version); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Version:       version,
		Dir:           dir,
		ConfDir:       filepath.Join(dir, "conf"),
		CheckpointDir: filepath.Join(dir, "checkpoints"),
		SavepointDir:  filepath.Join(dir, "savepoints"),
		LogDir:        filepath.Join(dir, "log"),
	}
	for _, d := range []string{c.CheckpointDir, c.SavepointDir, c.LogDir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start flink cluster: %w", err)
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	conf := SessionConfig(version, ports[0], ports[1], c.CheckpointDir, c.SavepointDir, filepath.Join(dir, "tmp"), s.slots)
	for k, v := range s.conf {
		conf[k] = v
	}
	if err := WriteConfig(c.ConfDir, version, conf); err != nil {
		return nil, err
	}
	c.RESTURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])

	t0 := time.Now()
	jm, err := Command(ctx, ProcessSpec{Version: version, Args: jmArgs, ConfDir: c.ConfDir, LogDir: c.LogDir,
		UserJars: s.userJars, WorkDir: filepath.Join(dir, "jobmanager")})
	if err != nil {
		return nil, err
	}
	var tms []*exec.Cmd
	for i := 0; i < s.taskManagers; i++ {
		// Each TaskManager gets its own log dir: the log file name is per service.
		// TaskManagers get the usrlib jars too, as in the image: an application
		// cluster's job graph names them relative to the working directory.
		tm, err := Command(ctx, ProcessSpec{Version: version, Args: []string{"taskmanager"}, ConfDir: c.ConfDir,
			UserJars: s.userJars, LogDir: filepath.Join(c.LogDir, fmt.Sprintf("taskmanager-%d", i)),
			WorkDir: filepath.Join(dir, fmt.Sprintf("taskmanager-%d", i))})
		if err != nil {
			return nil, err
		}
		tms = append(tms, tm)
	}
	c.Startup.Commands = time.Since(t0)

	t1 := time.Now()
	if err := c.run("jobmanager", jm, filepath.Join(c.LogDir, "flink-"+serviceOf(jmArgs)+".log")); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, s.startTimeout, "the REST API", func() (bool, error) {
		code, _ := getJSON(ctx, c.RESTURL+"/overview", nil)
		return code == http.StatusOK, nil
	}); err != nil {
		c.Stop()
		return nil, err
	}
	c.Startup.JobManagerREST = time.Since(t1)

	t2 := time.Now()
	for i, tm := range tms {
		name := fmt.Sprintf("taskmanager-%d", i)
		if err := c.run(name, tm, filepath.Join(c.LogDir, name, "flink-taskexecutor.log")); err != nil {
			c.Stop()
			return nil, err
		}
	}
	// Registered means the slots are reported too; /overview counts the
	// TaskManager a moment before its slots.
	if err := c.waitFor(ctx, s.startTimeout, fmt.Sprintf("%d TaskManager(s) to register", s.taskManagers), func() (bool, error) {
		var o struct {
			TaskManagers int `json:"taskmanagers"`
			Slots        int `json:"slots-total"`
		}
		code, err := getJSON(ctx, c.RESTURL+"/overview", &o)
		return code == http.StatusOK && err == nil && o.TaskManagers >= s.taskManagers && o.Slots >= s.taskManagers*s.slots, nil
	}); err != nil {
		c.Stop()
		return nil, err
	}
	c.Startup.TaskManagersRegistered = time.Since(t2)
	return c, nil
}

func serviceOf(args []string) string {
	inv, err := ParseArgs(args, "")
	if err != nil {
		return "unknown"
	}
	return inv.Service
}

// SessionConfig is the Flink configuration of a test bed cluster: everything
// bound to 127.0.0.1 (rest.port and jobmanager.rpc.port as given, every other
// port chosen by the OS, so clusters never clash), explicit process memory,
// the heap state backend with file checkpoints and savepoints under the given
// directories (keys per version), and a 1 s metric fetch interval so
// JobProgress sees fresh values.
func SessionConfig(version string, rpcPort, restPort int, checkpointDir, savepointDir, tmpDir string, slots int) map[string]string {
	conf := map[string]string{
		"jobmanager.rpc.address":              "127.0.0.1",
		"jobmanager.rpc.port":                 strconv.Itoa(rpcPort),
		"jobmanager.bind-host":                "127.0.0.1",
		"rest.address":                        "127.0.0.1",
		"rest.bind-address":                   "127.0.0.1",
		"rest.port":                           strconv.Itoa(restPort),
		"blob.server.port":                    "0",
		"taskmanager.host":                    "127.0.0.1",
		"taskmanager.bind-host":               "127.0.0.1",
		"taskmanager.rpc.port":                "0",
		"taskmanager.data.port":               "0",
		"metrics.internal.query-service.port": "0",
		"jobmanager.memory.process.size":      JobManagerProcessSize,
		"taskmanager.memory.process.size":     TaskManagerProcessSize,
		"taskmanager.numberOfTaskSlots":       strconv.Itoa(slots),
		"parallelism.default":                 "1",
		"state.backend.type":                  "hashmap",
		"metrics.fetcher.update-interval":     "1000",
		"io.tmp.dirs":                         tmpDir,
		"web.tmpdir":                          tmpDir,
		"blob.storage.directory":              tmpDir,
	}
	if major(version) >= 2 {
		conf["execution.checkpointing.dir"] = "file://" + checkpointDir
		conf["execution.checkpointing.savepoint-dir"] = "file://" + savepointDir
	} else {
		conf["state.checkpoints.dir"] = "file://" + checkpointDir
		conf["state.savepoints.dir"] = "file://" + savepointDir
	}
	return conf
}

// run starts cmd with its stdout and stderr in LogDir/<name>.out.
func (c *Cluster) run(name string, cmd *exec.Cmd, logFile string) error {
	out := filepath.Join(c.LogDir, name+".out")
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, LogFile: logFile, OutFile: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}

// waitFor polls cond every 200 ms until it holds, a process exits, or the
// timeout passes.
func (c *Cluster) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		for _, p := range c.Processes() {
			if exited, perr := p.Exited(); exited {
				return fmt.Errorf("flink %s %s exited (%v) while waiting for %s; logs:\n%s", c.Version, p.Name, perr, what, c.Tail(40))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flink %s: waiting for %s: %w (last error: %v); logs:\n%s", c.Version, what, ctx.Err(), err, c.Tail(40))
		case <-tick.C:
		}
	}
}

// Processes returns the cluster's processes, JobManager first.
func (c *Cluster) Processes() []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Process(nil), c.procs...)
}

// Stop kills every process of the cluster (SIGKILL to each process group) and
// waits for them to exit. It is safe to call more than once.
func (c *Cluster) Stop() {
	for _, p := range c.Processes() {
		if exited, _ := p.Exited(); exited {
			continue
		}
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
		}
	}
}

// Tail returns the paths and the last n lines of every log and stdout file.
func (c *Cluster) Tail(n int) string {
	var b strings.Builder
	for _, p := range c.Processes() {
		for _, f := range []string{p.OutFile, p.LogFile} {
			data, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintf(&b, "==> %s: %v\n", f, err)
				continue
			}
			fmt.Fprintf(&b, "==> %s (last %d lines)\n%s\n", f, n, lastLines(string(data), n))
		}
	}
	return b.String()
}

// RSS returns the resident set size in bytes of each running process, by
// process name.
func (c *Cluster) RSS() (map[string]int64, error) {
	out := map[string]int64{}
	for _, p := range c.Processes() {
		if exited, _ := p.Exited(); exited {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
		if err != nil {
			return nil, fmt.Errorf("rss of %s: %w", p.Name, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("rss of %s: %w", p.Name, err)
				}
				out[p.Name] = kb * 1024
			}
		}
	}
	return out, nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomJobID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// getJSON GETs url and decodes a 200 response into v (when v is not nil). It
// returns the status code (0 when the request failed).
func getJSON(ctx context.Context, url string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if v == nil {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return resp.StatusCode, nil
}

// MatrixEnv, when set, runs every Flink version of the tests that call
// MatrixOnly (make matrix).
const MatrixEnv = "FLINK_GITOPS_MATRIX"

// MatrixOnly skips t unless MatrixEnv is set. The heaviest test-bed tests
// run their second Flink version only in make matrix, which keeps make test
// within its time budget; make test still runs them on one version.
func MatrixOnly(t testing.TB) {
	t.Helper()
	if os.Getenv(MatrixEnv) == "" {
		t.Skipf("this Flink version of the test runs in make matrix (%s=1)", MatrixEnv)
	}
}
