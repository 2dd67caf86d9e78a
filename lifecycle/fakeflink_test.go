package lifecycle

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
)

// This file simulates Flink JobManagers closely enough to test the
// reconciler without JVMs: jobs with a counter whose value is their state,
// periodic externalised checkpoints, savepoints and stop-with-savepoint with
// caller-chosen trigger ids, cancellation, disposal, and session clusters
// taking jars. A JobManager is started by the simulated kubelet (fakekube_test.go)
// from the container args of the JobManager Deployment, as the official
// image's entrypoint would.

// simClock is the one clock of a simulated world: the reconciler's Now,
// Flink's timestamps and the kubelet all read it.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func newSimClock() *simClock {
	return &simClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// simSnapshot is a checkpoint or savepoint on the simulated file system.
type simSnapshot struct {
	Path      string
	JobID     string
	Counter   int64 // the job's state when the snapshot was taken
	Savepoint bool
	TriggerID string
	At        time.Time
	Disposed  bool
}

// simJob is a job in a simulated JobManager. Its counter is its state: it
// starts from the restored snapshot's counter (or 0) and grows on every tick.
type simJob struct {
	ID, Name     string
	State        flinkclient.JobStatus
	Start, End   time.Time
	Counter      int64
	StartCounter int64
	RestoredFrom string
	Checkpoints  []*simSnapshot
	Failure      string
	// NoCheckpoints: the job has checkpointing off (args --no-checkpoints).
	NoCheckpoints bool
	// FailAfter makes the job fail after that many ticks (args --fail-after N); 0 never.
	FailAfter int
	// Vertices are the job's two vertices (source, counter) with their
	// parallelism and adaptive-scheduler bounds; Rescales counts in-place
	// rescales, RescaleTicks the ticks until a requested one happens.
	Vertices     []*simVertex
	Rescales     int
	RescaleTicks int
	// FailFile makes the job fail at the first tick at which that file
	// exists (args --fail-file PATH), as the real test job does.
	FailFile string
	// RestartFile makes the job fail and restart by itself (Flink's own
	// restart strategy) at every tick at which that file exists, back to
	// its newest checkpoint (args --restart-file PATH); Restarts counts them.
	RestartFile string
	Restarts    int
	ticks       int
}

// simVertex is one vertex of a simulated job.
type simVertex struct {
	ID          string
	Parallelism int
	Bounds      flinkclient.Bounds
}

// simVertexIDs are the ids of every simulated job's vertices.
var simVertexIDs = []string{"0a448493b4782967b150582570326227", "bc764cd8ddf7a0cff126f51c16239658"}

// simOp is a savepoint or stop-with-savepoint operation.
type simOp struct {
	TriggerID, JobID string
	Stop             bool
	TargetDir        string
	PollsLeft        int
	TicksLeft        int
	Done             bool
	DoneAt           time.Time
	Location         string
	Failure          string
}

// simJM is one running JobManager process.
type simJM struct {
	Namespace, Name string
	UID             string
	Generation      int64
	Args            []string
	Session         bool
	Jobs            map[string]*simJob
	Ops             map[string]*simOp
	Jars            map[string]string    // jar id -> local path or upload name
	JarUploaded     map[string]time.Time // jar id -> upload time
}

// flinkSim is the simulated Flink side of a world: JobManagers by cluster,
// the state file system, and counters of everything that matters.
type flinkSim struct {
	mu    sync.Mutex
	clock *simClock
	jms   map[string]*simJM // by namespace/name
	fs    map[string]*simSnapshot

	// Every savepoint and checkpoint ever taken, and every job ever started.
	Savepoints  []*simSnapshot
	Checkpoints int
	Started     []*simJob
	Disposals   []string
	Calls       []string
	// FailJarDeletes makes every jar deletion fail.
	FailJarDeletes bool

	// SavepointPolls is how many status polls a savepoint stays in
	// progress; SavepointTicks how many ticks, polled or not (Flink finishes
	// a savepoint whether anybody asks or not).
	SavepointPolls, SavepointTicks int
	// RescaleTicks is how many ticks an in-place rescale takes once new
	// resource requirements arrive.
	RescaleTicks int
	// StoreDuration is how long a JobManager remembers a finished
	// operation (rest.async.store-duration, 5 minutes).
	StoreDuration time.Duration
	// FailSavepoints makes every savepoint fail.
	FailSavepoints bool
	seq            int
}

func newFlinkSim(clock *simClock) *flinkSim {
	return &flinkSim{clock: clock, jms: map[string]*simJM{}, fs: map[string]*simSnapshot{}, SavepointPolls: 1, SavepointTicks: 2, StoreDuration: 5 * time.Minute, RescaleTicks: 2}
}

func simKey(namespace, name string) string { return namespace + "/" + name }

// startJM starts (or restarts) the JobManager of a cluster from its
// container args. An application JobManager runs its job at once.
func (s *flinkSim) startJM(namespace, name, uid string, generation int64, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jm := &simJM{Namespace: namespace, Name: name, UID: uid, Generation: generation, Args: args,
		Jobs: map[string]*simJob{}, Ops: map[string]*simOp{}, Jars: map[string]string{}, JarUploaded: map[string]time.Time{}}
	s.jms[simKey(namespace, name)] = jm
	if len(args) == 0 || args[0] != "standalone-job" {
		jm.Session = true
		return
	}
	var jobID, from string
	var jobArgs []string
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--job-id":
			i++
			jobID = args[i]
		case "--fromSavepoint":
			i++
			from = args[i]
		case "--job-classname", "-D":
			i++
		case "--allowNonRestoredState":
		default:
			jobArgs = append(jobArgs, args[i])
		}
	}
	if jobID == "" {
		jobID = flinkclient.NewJobID()
	}
	s.submit(jm, jobID, name, from, jobArgs)
}

// submit starts a job restored from the snapshot at from ("" for none); a
// snapshot that does not exist fails the job, as Flink does.
func (s *flinkSim) submit(jm *simJM, jobID, name, from string, args []string) *simJob {
	now := s.clock.Now()
	j := &simJob{ID: jobID, Name: name, State: flinkclient.JobRunning, Start: now, RestoredFrom: from}
	for _, id := range simVertexIDs {
		j.Vertices = append(j.Vertices, &simVertex{ID: id, Parallelism: 1, Bounds: flinkclient.Bounds{LowerBound: 1, UpperBound: 1}})
	}
	for i, a := range args {
		switch a {
		case "--no-checkpoints":
			j.NoCheckpoints = true
		case "--fail-after":
			if i+1 < len(args) {
				fmt.Sscan(args[i+1], &j.FailAfter)
			}
		case "--fail-file":
			if i+1 < len(args) {
				j.FailFile = args[i+1]
			}
		case "--restart-file":
			if i+1 < len(args) {
				j.RestartFile = args[i+1]
			}
		}
	}
	if from != "" {
		sn := s.fs[from]
		if sn == nil || sn.Disposed {
			j.State, j.End = flinkclient.JobFailed, now
			j.Failure = "java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory '" + from + "'"
		} else {
			j.Counter, j.StartCounter = sn.Counter, sn.Counter
		}
	}
	jm.Jobs[jobID] = j
	s.Started = append(s.Started, j)
	return j
}

// stopJM removes a JobManager (its Deployment is gone); snapshots stay.
func (s *flinkSim) stopJM(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jms, simKey(namespace, name))
}

func (s *flinkSim) jm(namespace, name string) *simJM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jms[simKey(namespace, name)]
}

// advance moves every running job on by one tick: its counter grows and,
// unless checkpointing is off, a checkpoint completes.
func (s *flinkSim) advance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	keys := make([]string, 0, len(s.jms))
	for k := range s.jms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		jm := s.jms[k]
		ops := make([]*simOp, 0, len(jm.Ops))
		for _, o := range jm.Ops {
			ops = append(ops, o)
		}
		sort.Slice(ops, func(a, b int) bool { return ops[a].TriggerID < ops[b].TriggerID })
		for _, o := range ops {
			if !o.Done {
				if o.TicksLeft--; o.TicksLeft <= 0 {
					s.complete(jm, o)
				}
			} else if now.Sub(o.DoneAt) > s.StoreDuration {
				delete(jm.Ops, o.TriggerID) // forgotten, as Flink's operation cache does
			}
		}
		for _, j := range sortedJobs(jm) {
			if j.State != flinkclient.JobRunning {
				continue
			}
			j.ticks++
			if j.RescaleTicks > 0 {
				if j.RescaleTicks--; j.RescaleTicks == 0 {
					// The adaptive scheduler restarts the tasks at the new
					// parallelism from the latest checkpoint; the id stays.
					for _, v := range j.Vertices {
						v.Parallelism = v.Bounds.UpperBound
					}
					if n := len(j.Checkpoints); n > 0 {
						j.Counter = j.Checkpoints[n-1].Counter
					}
					j.Rescales++
					continue
				}
			}
			failNow := j.FailAfter > 0 && j.ticks >= j.FailAfter
			if j.FailFile != "" {
				if _, err := os.Stat(j.FailFile); err == nil {
					failNow = true
				}
			}
			if failNow {
				j.State, j.End, j.Failure = flinkclient.JobFailed, now, "java.lang.RuntimeException: the test job failed on purpose"
				continue
			}
			if _, err := os.Stat(j.RestartFile); j.RestartFile != "" && err == nil {
				j.Restarts++
				j.Counter = j.StartCounter
				if n := len(j.Checkpoints); n > 0 {
					j.Counter = j.Checkpoints[n-1].Counter
				}
			}
			j.Counter += 10
			if j.NoCheckpoints {
				continue
			}
			s.Checkpoints++
			sn := &simSnapshot{Path: fmt.Sprintf("file:/state/checkpoints/%s/chk-%d", j.ID, len(j.Checkpoints)+1),
				JobID: j.ID, Counter: j.Counter, At: now}
			j.Checkpoints = append(j.Checkpoints, sn)
			s.fs[sn.Path] = sn
		}
	}
}

func sortedJobs(jm *simJM) []*simJob {
	out := make([]*simJob, 0, len(jm.Jobs))
	for _, j := range jm.Jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// savepointsOf returns the savepoints taken of a job.
func (s *flinkSim) savepointsOf(jobID string) []*simSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*simSnapshot
	for _, sp := range s.Savepoints {
		if sp.JobID == jobID {
			out = append(out, sp)
		}
	}
	return out
}

// job returns a job by id from any JobManager, nil when no JobManager has it.
func (s *flinkSim) job(jobID string) *simJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, jm := range s.jms {
		if j := jm.Jobs[jobID]; j != nil {
			return j
		}
	}
	for _, j := range s.Started {
		if j.ID == jobID {
			return j
		}
	}
	return nil
}

// startedJobIDs lists the ids of all jobs ever started, in order.
func (s *flinkSim) startedJobIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, j := range s.Started {
		out = append(out, j.ID)
	}
	return out
}

// fakeFlink is the REST client of one simulated JobManager. hit, when set,
// is told about every call before it happens (the crash tests count and
// cut calls there).
type fakeFlink struct {
	sim             *flinkSim
	namespace, name string
	hit             func(what string)
}

var _ Flink = (*fakeFlink)(nil)

func flinkErr(kind flinkclient.Kind, op, msg string) error {
	return &flinkclient.Error{Kind: kind, Op: op, Message: msg}
}

// call records the call and returns the JobManager, or an error when none
// runs. The caller must unlock s.mu.
func (f *fakeFlink) call(op string) (*simJM, error) {
	if f.hit != nil {
		f.hit("flink " + op)
	}
	f.sim.mu.Lock()
	f.sim.Calls = append(f.sim.Calls, op)
	jm := f.sim.jms[simKey(f.namespace, f.name)]
	if jm == nil {
		return nil, flinkErr(flinkclient.KindNotReachable, op, "connection refused")
	}
	return jm, nil
}

func (f *fakeFlink) Overview(ctx context.Context) (flinkclient.Overview, error) {
	jm, err := f.call("Overview")
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.Overview{}, err
	}
	o := flinkclient.Overview{TaskManagers: 1, SlotsTotal: 2, FlinkVersion: "2.2.1"}
	for _, j := range jm.Jobs {
		switch j.State {
		case flinkclient.JobRunning:
			o.JobsRunning++
		case flinkclient.JobFinished:
			o.JobsFinished++
		case flinkclient.JobCanceled:
			o.JobsCancelled++
		case flinkclient.JobFailed:
			o.JobsFailed++
		}
	}
	return o, nil
}

func (f *fakeFlink) Jobs(ctx context.Context) ([]flinkclient.JobSummary, error) {
	jm, err := f.call("Jobs")
	defer f.sim.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []flinkclient.JobSummary
	for _, j := range sortedJobs(jm) {
		out = append(out, flinkclient.JobSummary{ID: j.ID, Name: j.Name, State: j.State, StartTime: j.Start, EndTime: j.End})
	}
	return out, nil
}

func (f *fakeFlink) Job(ctx context.Context, jobID string) (flinkclient.JobDetails, error) {
	op := "Job " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.JobDetails{}, err
	}
	j := jm.Jobs[jobID]
	if j == nil {
		return flinkclient.JobDetails{}, flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	}
	d := flinkclient.JobDetails{ID: j.ID, Name: j.Name, State: j.State, StartTime: j.Start, EndTime: j.End,
		IsStoppable: false, JobType: "STREAMING", Now: f.sim.clock.Now()}
	for _, v := range j.Vertices {
		tasks := map[string]int{string(j.State): v.Parallelism}
		if j.RescaleTicks > 0 {
			tasks = map[string]int{"DEPLOYING": v.Parallelism}
		}
		d.Vertices = append(d.Vertices, flinkclient.Vertex{ID: v.ID, Parallelism: v.Parallelism, MaxParallelism: 128, Status: string(j.State), Tasks: tasks})
	}
	return d, nil
}

// setParallelism gives the jobs of a JobManager that just started the
// parallelism of its configuration (parallelism.default), as Flink does.
func (s *flinkSim) setParallelism(namespace, name string, p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jm := s.jms[simKey(namespace, name)]
	if jm == nil || p < 1 {
		return
	}
	for _, j := range jm.Jobs {
		for _, v := range j.Vertices {
			v.Parallelism, v.Bounds = p, flinkclient.Bounds{LowerBound: 1, UpperBound: p}
		}
	}
}

func (f *fakeFlink) ResourceRequirements(ctx context.Context, jobID string) (flinkclient.ResourceRequirements, error) {
	op := "ResourceRequirements " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return nil, err
	}
	j := jm.Jobs[jobID]
	if j == nil {
		return nil, flinkErr(flinkclient.KindNotFound, op, "Could not find Flink job ("+jobID+")")
	}
	r := flinkclient.ResourceRequirements{}
	for _, v := range j.Vertices {
		r[v.ID] = v.Bounds
	}
	return r, nil
}

func (f *fakeFlink) SetResourceRequirements(ctx context.Context, jobID string, req flinkclient.ResourceRequirements) error {
	op := "SetResourceRequirements " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return err
	}
	j := jm.Jobs[jobID]
	if j == nil {
		return flinkErr(flinkclient.KindNotFound, op, "Could not find Flink job ("+jobID+")")
	}
	for _, v := range j.Vertices {
		b, ok := req[v.ID]
		if !ok || b.UpperBound > 128 {
			return flinkErr(flinkclient.KindBadRequest, op, "bad requirements for vertex "+v.ID)
		}
	}
	changed := false
	for _, v := range j.Vertices {
		if v.Bounds != req[v.ID] {
			v.Bounds, changed = req[v.ID], true
		}
	}
	if changed && j.State == flinkclient.JobRunning {
		j.RescaleTicks = f.sim.RescaleTicks
	}
	return nil
}

func (f *fakeFlink) Checkpoints(ctx context.Context, jobID string) (flinkclient.Checkpoints, error) {
	op := "Checkpoints " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.Checkpoints{}, err
	}
	j := jm.Jobs[jobID]
	if j == nil {
		return flinkclient.Checkpoints{}, flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	}
	var cps flinkclient.Checkpoints
	if n := len(j.Checkpoints); n > 0 {
		c := j.Checkpoints[n-1]
		cps.LatestCompleted = &flinkclient.Checkpoint{ID: int64(n), Status: "COMPLETED", ExternalPath: c.Path,
			TriggerTime: c.At, LatestAckTime: c.At, Type: "CHECKPOINT"}
		cps.Counts.Completed = int64(n)
		for i := n; i > 0 && i > n-10; i-- { // Flink's history: newest first, web.checkpoints.history 10
			h := j.Checkpoints[i-1]
			cps.History = append(cps.History, flinkclient.Checkpoint{ID: int64(i), Status: "COMPLETED", ExternalPath: h.Path,
				TriggerTime: h.At, LatestAckTime: h.At, Type: "CHECKPOINT"})
		}
	}
	for _, sp := range f.sim.Savepoints {
		if sp.JobID == jobID {
			cps.LatestSavepoint = &flinkclient.Checkpoint{Status: "COMPLETED", IsSavepoint: true, ExternalPath: sp.Path, LatestAckTime: sp.At, Type: "SAVEPOINT"}
		}
	}
	if j.RestoredFrom != "" {
		cps.Restored = &flinkclient.Restored{ExternalPath: j.RestoredFrom, RestoreTime: j.Start}
	}
	return cps, nil
}

// JobMetrics answers numRestarts and numberOfCompletedCheckpoints, the job
// metrics the health check reads.
func (f *fakeFlink) JobMetrics(ctx context.Context, jobID string, names ...string) (map[string]string, error) {
	op := "JobMetrics " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return nil, err
	}
	j := jm.Jobs[jobID]
	if j == nil {
		return nil, flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	}
	out := map[string]string{}
	for _, n := range names {
		switch n {
		case "numRestarts":
			out[n] = fmt.Sprint(j.Restarts)
		case "numberOfCompletedCheckpoints":
			out[n] = fmt.Sprint(len(j.Checkpoints))
		}
	}
	return out, nil
}

func (f *fakeFlink) Exceptions(ctx context.Context, jobID string, max int) (flinkclient.Exceptions, error) {
	op := "Exceptions " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.Exceptions{}, err
	}
	j := jm.Jobs[jobID]
	if j == nil {
		return flinkclient.Exceptions{}, flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	}
	var ex flinkclient.Exceptions
	if j.Failure != "" {
		ex.Entries = []flinkclient.Exception{{Name: "java.lang.Exception", Message: j.Failure, Time: j.End}}
	}
	return ex, nil
}

// trigger starts a savepoint or stop-with-savepoint. A trigger id the
// JobManager already knows names the same operation (Flink's operation
// cache makes triggering idempotent): no second savepoint is taken.
func (f *fakeFlink) trigger(op, jobID, triggerID, dir string, stop bool) (string, error) {
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return "", err
	}
	if jm.Jobs[jobID] == nil {
		return "", flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	}
	if triggerID == "" {
		triggerID = flinkclient.NewTriggerID()
	}
	if o := jm.Ops[triggerID]; o != nil {
		return triggerID, nil
	}
	o := &simOp{TriggerID: triggerID, JobID: jobID, Stop: stop, TargetDir: dir, PollsLeft: f.sim.SavepointPolls, TicksLeft: f.sim.SavepointTicks}
	jm.Ops[triggerID] = o
	if o.PollsLeft == 0 {
		f.sim.complete(jm, o)
	}
	return triggerID, nil
}

// complete finishes a savepoint operation: the savepoint is written with
// the job's counter, and stop-with-savepoint finishes the job.
func (s *flinkSim) complete(jm *simJM, o *simOp) {
	o.Done, o.DoneAt = true, s.clock.Now()
	j := jm.Jobs[o.JobID]
	switch {
	case j == nil || j.State != flinkclient.JobRunning:
		st := flinkclient.JobStatus("gone")
		if j != nil {
			st = j.State
		}
		o.Failure = fmt.Sprintf("java.lang.IllegalStateException: job %s is %s, not RUNNING", o.JobID, st)
		return
	case s.FailSavepoints:
		o.Failure = "java.io.IOException: savepoint storage is full"
		return
	}
	dir := o.TargetDir
	if dir == "" {
		dir = "file:/state/savepoints"
	}
	s.seq++
	sp := &simSnapshot{Path: fmt.Sprintf("%s/savepoint-%s-%04d", strings.TrimSuffix(dir, "/"), o.JobID[:6], s.seq),
		JobID: o.JobID, Counter: j.Counter, Savepoint: true, TriggerID: o.TriggerID, At: s.clock.Now()}
	s.fs[sp.Path] = sp
	s.Savepoints = append(s.Savepoints, sp)
	o.Location = sp.Path
	if o.Stop {
		j.State, j.End = flinkclient.JobFinished, s.clock.Now()
	}
}

func (f *fakeFlink) TriggerSavepoint(ctx context.Context, jobID string, opts flinkclient.SavepointOptions) (string, error) {
	return f.trigger("TriggerSavepoint "+jobID+" "+opts.TriggerID, jobID, opts.TriggerID, opts.TargetDir, opts.Cancel)
}

func (f *fakeFlink) StopWithSavepoint(ctx context.Context, jobID string, opts flinkclient.StopOptions) (string, error) {
	return f.trigger("StopWithSavepoint "+jobID+" "+opts.TriggerID, jobID, opts.TriggerID, opts.TargetDir, true)
}

func (f *fakeFlink) SavepointStatus(ctx context.Context, jobID, triggerID string) (flinkclient.Operation, error) {
	op := "SavepointStatus " + jobID + " " + triggerID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.Operation{}, err
	}
	o := jm.Ops[triggerID]
	if o == nil || o.JobID != jobID {
		return flinkclient.Operation{}, flinkErr(flinkclient.KindNotFound, op, "There is no savepoint operation with triggerId="+triggerID)
	}
	if !o.Done {
		if o.PollsLeft > 0 {
			o.PollsLeft--
			return flinkclient.Operation{Status: flinkclient.InProgress}, nil
		}
		f.sim.complete(jm, o)
	}
	res := flinkclient.Operation{Status: flinkclient.Completed, Location: o.Location}
	if o.Failure != "" {
		res.FailureCause = flinkErr(flinkclient.KindOperationFailed, op, o.Failure)
	}
	return res, nil
}

func (f *fakeFlink) Cancel(ctx context.Context, jobID string) error {
	op := "Cancel " + jobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return err
	}
	j := jm.Jobs[jobID]
	switch {
	case j == nil:
		return flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	case j.State.GloballyTerminal():
		return flinkErr(flinkclient.KindConflict, op, "Job cancellation failed because the job has already reached another terminal state ("+string(j.State)+")")
	}
	j.State, j.End = flinkclient.JobCanceled, f.sim.clock.Now()
	return nil
}

func (f *fakeFlink) DisposeSavepoint(ctx context.Context, path string) (string, error) {
	op := "DisposeSavepoint " + path
	_, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return "", err
	}
	if sn := f.sim.fs[path]; sn != nil && !sn.Disposed {
		sn.Disposed = true
		f.sim.Disposals = append(f.sim.Disposals, path)
	}
	return flinkclient.NewTriggerID(), nil
}

func (f *fakeFlink) UploadJar(ctx context.Context, localPath string) (string, error) {
	op := "UploadJar " + localPath
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(localPath); err != nil {
		return "", flinkErr(flinkclient.KindBadRequest, op, err.Error())
	}
	f.sim.seq++
	id := fmt.Sprintf("jar-%d_%s", f.sim.seq, localPath[strings.LastIndex(localPath, "/")+1:])
	jm.Jars[id] = localPath
	jm.JarUploaded[id] = f.sim.clock.Now().Add(time.Duration(f.sim.seq))
	return id, nil
}

func (f *fakeFlink) UploadJarFrom(ctx context.Context, name string, r io.Reader) (string, error) {
	op := "UploadJarFrom " + name
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", flinkErr(flinkclient.KindBadRequest, op, err.Error())
	}
	f.sim.seq++
	id := fmt.Sprintf("jar-%d_%s", f.sim.seq, name)
	jm.Jars[id] = name
	jm.JarUploaded[id] = f.sim.clock.Now().Add(time.Duration(f.sim.seq))
	return id, nil
}

func (f *fakeFlink) ListJars(ctx context.Context) ([]flinkclient.JarFile, error) {
	jm, err := f.call("ListJars")
	defer f.sim.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]flinkclient.JarFile, 0, len(jm.Jars))
	for id := range jm.Jars {
		out = append(out, flinkclient.JarFile{ID: id, Name: id[strings.Index(id, "_")+1:], Uploaded: jm.JarUploaded[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Uploaded.After(out[j].Uploaded) })
	return out, nil
}

func (f *fakeFlink) DeleteJar(ctx context.Context, jarID string) error {
	op := "DeleteJar " + jarID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return err
	}
	if f.sim.FailJarDeletes {
		return flinkErr(flinkclient.KindServer, op, "java.nio.file.AccessDeniedException: "+jarID)
	}
	if jm.Jars[jarID] == "" {
		return flinkErr(flinkclient.KindNotFound, op, "jar "+jarID+" not found")
	}
	delete(jm.Jars, jarID)
	delete(jm.JarUploaded, jarID)
	return nil
}

// jarNames returns the names of the jars on a simulated JobManager, sorted.
func (s *flinkSim) jarNames(namespace, name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	jm := s.jms[simKey(namespace, name)]
	if jm == nil {
		return nil
	}
	var out []string
	for id := range jm.Jars {
		out = append(out, id[strings.Index(id, "_")+1:])
	}
	sort.Strings(out)
	return out
}

func (f *fakeFlink) RunJar(ctx context.Context, jarID string, req flinkclient.JarRunRequest) (string, error) {
	op := "RunJar " + jarID + " " + req.JobID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return "", err
	}
	if jm.Jars[jarID] == "" {
		// As Flink: 400, not 404.
		return "", flinkErr(flinkclient.KindBadRequest, op, "Jar file /tmp/flink-web-upload/"+jarID+" does not exist")
	}
	id := req.JobID
	if id == "" {
		id = flinkclient.NewJobID()
	}
	if jm.Jobs[id] != nil {
		return "", flinkErr(flinkclient.KindConflict, op, "DuplicateJobSubmissionException: Job has already been submitted.")
	}
	f.sim.submit(jm, id, req.EntryClass, req.SavepointPath, req.Args)
	return id, nil
}
