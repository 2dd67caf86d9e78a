package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flink-gitops/flink-gitops/flinkclient"
)

// Triggered checkpoints and /config in the simulated JobManagers. A
// triggered checkpoint is an operation keyed by its trigger id, as in
// Flink: a repeated trigger id names the same checkpoint, until Flink
// forgets it StoreDuration after it finished. It stays in
// progress for SavepointPolls status polls, then completes as one more
// externalised checkpoint of the job.

// simCheckpointOp is a triggered checkpoint.
type simCheckpointOp struct {
	JobID     string
	Type      flinkclient.CheckpointType
	PollsLeft int
	Done      bool
	DoneAt    time.Time
	ID        int64
	Failure   string
}

// simCheckpointOps holds each JobManager's triggered checkpoints; a
// restarted JobManager is a new *simJM and knows none of them. Worlds run
// in parallel, so the map has its own lock (taken inside the world's).
var simCheckpointOps = struct {
	sync.Mutex
	m map[*simJM]map[string]*simCheckpointOp
	// refuse makes the next n triggered checkpoints of a world fail as
	// Flink fails one while the job's tasks are still being deployed.
	refuse map[*flinkSim]int
}{m: map[*simJM]map[string]*simCheckpointOp{}, refuse: map[*flinkSim]int{}}

// triggeredCheckpoints returns the checkpoints of a job taken on request.
func (s *flinkSim) triggeredCheckpoints(jobID string) []*simSnapshot {
	j := s.job(jobID)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*simSnapshot
	if j != nil {
		for _, c := range j.Checkpoints {
			if c.TriggerID != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

func (f *fakeFlink) TriggerCheckpoint(ctx context.Context, jobID, triggerID string, typ flinkclient.CheckpointType) (string, error) {
	op := "TriggerCheckpoint " + jobID + " " + triggerID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return "", err
	}
	if jm.Jobs[jobID] == nil {
		return "", flinkErr(flinkclient.KindNotFound, op, "Job "+jobID+" not found")
	}
	if typ == flinkclient.CheckpointIncremental {
		return "", flinkErr(flinkclient.KindBadRequest, op, "Triggering incremental checkpoints is not supported")
	}
	simCheckpointOps.Lock()
	defer simCheckpointOps.Unlock()
	ops := simCheckpointOps.m[jm]
	if ops == nil {
		ops = map[string]*simCheckpointOp{}
		simCheckpointOps.m[jm] = ops
	}
	if ops[triggerID] != nil {
		return triggerID, nil
	}
	ops[triggerID] = &simCheckpointOp{JobID: jobID, Type: typ, PollsLeft: f.sim.SavepointPolls}
	return triggerID, nil
}

func (f *fakeFlink) CheckpointStatus(ctx context.Context, jobID, triggerID string) (flinkclient.Operation, error) {
	op := "CheckpointStatus " + jobID + " " + triggerID
	jm, err := f.call(op)
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.Operation{}, err
	}
	simCheckpointOps.Lock()
	defer simCheckpointOps.Unlock()
	o := simCheckpointOps.m[jm][triggerID]
	if o != nil && o.Done && f.sim.clock.Now().Sub(o.DoneAt) > f.sim.StoreDuration {
		delete(simCheckpointOps.m[jm], triggerID) // forgotten, as Flink's operation cache does
		o = nil
	}
	if o == nil || o.JobID != jobID {
		return flinkclient.Operation{}, flinkErr(flinkclient.KindNotFound, op, "There is no checkpoint operation with triggerId="+triggerID)
	}
	if !o.Done {
		if o.PollsLeft > 0 {
			o.PollsLeft--
			return flinkclient.Operation{Status: flinkclient.InProgress}, nil
		}
		o.Done, o.DoneAt = true, f.sim.clock.Now()
		j := jm.Jobs[jobID]
		if simCheckpointOps.refuse[f.sim] > 0 {
			simCheckpointOps.refuse[f.sim]--
			o.Failure = "org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint triggering task Source: datagen (1/1) of job " + jobID +
				" is not being executed at the moment. Aborting checkpoint. Failure reason: Not all required tasks are currently running."
		} else if j == nil || j.State != flinkclient.JobRunning {
			o.Failure = fmt.Sprintf("org.apache.flink.runtime.checkpoint.CheckpointException: job %s is not running", jobID)
		} else {
			f.sim.Checkpoints++
			sn := &simSnapshot{Path: fmt.Sprintf("file:/state/checkpoints/%s/chk-%d", j.ID, len(j.Checkpoints)+1),
				JobID: j.ID, Counter: j.Counter, At: f.sim.clock.Now(), TriggerID: triggerID}
			j.Checkpoints = append(j.Checkpoints, sn)
			f.sim.fs[sn.Path] = sn
			o.ID = int64(len(j.Checkpoints))
		}
	}
	res := flinkclient.Operation{Status: flinkclient.Completed, CheckpointID: o.ID}
	if o.Failure != "" {
		res.FailureCause = flinkErr(flinkclient.KindOperationFailed, op, o.Failure)
	}
	return res, nil
}

func (f *fakeFlink) Config(ctx context.Context) (flinkclient.Config, error) {
	_, err := f.call("Config")
	defer f.sim.mu.Unlock()
	if err != nil {
		return flinkclient.Config{}, err
	}
	return flinkclient.Config{FlinkVersion: "2.2.1", FlinkRevision: "a1b2c3d @ 2026-01-01T00:00:00+01:00"}, nil
}
