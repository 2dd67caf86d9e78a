package flinkclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Jobs lists all jobs the JobManager knows, running and terminated
// (GET /jobs/overview).
func (c *Client) Jobs(ctx context.Context) ([]JobSummary, error) {
	var j struct {
		Jobs []struct {
			ID               string    `json:"jid"`
			Name             string    `json:"name"`
			State            JobStatus `json:"state"`
			StartTime        int64     `json:"start-time"`
			EndTime          int64     `json:"end-time"`
			LastModification int64     `json:"last-modification"`
		} `json:"jobs"`
	}
	if err := c.do(ctx, request{op: "list jobs", method: http.MethodGet, segments: []string{"jobs", "overview"}}, &j); err != nil {
		return nil, err
	}
	jobs := make([]JobSummary, 0, len(j.Jobs))
	for _, x := range j.Jobs {
		jobs = append(jobs, JobSummary{
			ID:               x.ID,
			Name:             x.Name,
			State:            x.State,
			StartTime:        msTime(x.StartTime),
			EndTime:          msTime(x.EndTime),
			LastModification: msTime(x.LastModification),
		})
	}
	return jobs, nil
}

// Job returns the details of one job; an unknown job is ErrNotFound.
func (c *Client) Job(ctx context.Context, jobID string) (JobDetails, error) {
	op := "get job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return JobDetails{}, err
	}
	var j struct {
		ID             string           `json:"jid"`
		Name           string           `json:"name"`
		IsStoppable    bool             `json:"isStoppable"`
		State          JobStatus        `json:"state"`
		JobType        string           `json:"job-type"`
		StartTime      int64            `json:"start-time"`
		EndTime        int64            `json:"end-time"`
		Duration       int64            `json:"duration"`
		MaxParallelism int              `json:"maxParallelism"`
		Now            int64            `json:"now"`
		Timestamps     map[string]int64 `json:"timestamps"`
		Vertices       []struct {
			ID             string         `json:"id"`
			Name           string         `json:"name"`
			MaxParallelism int            `json:"maxParallelism"`
			Parallelism    int            `json:"parallelism"`
			Status         string         `json:"status"`
			StartTime      int64          `json:"start-time"`
			Tasks          map[string]int `json:"tasks"`
		} `json:"vertices"`
	}
	if err := c.do(ctx, request{op: op, method: http.MethodGet, segments: []string{"jobs", jobID}}, &j); err != nil {
		return JobDetails{}, err
	}
	d := JobDetails{
		ID:             j.ID,
		Name:           j.Name,
		State:          j.State,
		JobType:        j.JobType,
		IsStoppable:    j.IsStoppable,
		StartTime:      msTime(j.StartTime),
		EndTime:        msTime(j.EndTime),
		Duration:       time.Duration(j.Duration) * time.Millisecond,
		MaxParallelism: j.MaxParallelism,
		Now:            msTime(j.Now),
		Timestamps:     make(map[JobStatus]time.Time, len(j.Timestamps)),
	}
	for s, ms := range j.Timestamps {
		if t := msTime(ms); !t.IsZero() {
			d.Timestamps[JobStatus(s)] = t
		}
	}
	for _, v := range j.Vertices {
		d.Vertices = append(d.Vertices, Vertex{
			ID:             v.ID,
			Name:           v.Name,
			Parallelism:    v.Parallelism,
			MaxParallelism: v.MaxParallelism,
			Status:         v.Status,
			Tasks:          v.Tasks,
			StartTime:      msTime(v.StartTime),
		})
	}
	return d, nil
}

// exceptionJSON is one entry of exceptionHistory. Flink 1.x sends the
// TaskManager's address as "location" (deprecated in 1.19 for "endpoint");
// 2.x sends only "endpoint".
type exceptionJSON struct {
	ExceptionName string            `json:"exceptionName"`
	Stacktrace    string            `json:"stacktrace"`
	Timestamp     int64             `json:"timestamp"`
	TaskName      string            `json:"taskName"`
	Location      string            `json:"location"`
	Endpoint      string            `json:"endpoint"`
	TaskManagerID string            `json:"taskManagerId"`
	FailureLabels map[string]string `json:"failureLabels"`
	Concurrent    []exceptionJSON   `json:"concurrentExceptions"`
}

func (e exceptionJSON) convert() Exception {
	x := Exception{
		Name:          e.ExceptionName,
		Message:       ReadableCause(e.Stacktrace),
		Stacktrace:    e.Stacktrace,
		Time:          msTime(e.Timestamp),
		TaskName:      e.TaskName,
		Endpoint:      e.Endpoint,
		TaskManagerID: e.TaskManagerID,
		FailureLabels: e.FailureLabels,
	}
	if x.Endpoint == "" {
		x.Endpoint = e.Location
	}
	if x.Message == "" {
		x.Message = e.ExceptionName
	}
	for _, cc := range e.Concurrent {
		x.Concurrent = append(x.Concurrent, cc.convert())
	}
	return x
}

// Exceptions returns up to max entries of the job's exception history,
// newest first (max <= 0 uses Flink's default of 10).
func (c *Client) Exceptions(ctx context.Context, jobID string, max int) (Exceptions, error) {
	op := "get exceptions of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return Exceptions{}, err
	}
	var q url.Values
	if max > 0 {
		q = url.Values{"maxExceptions": {strconv.Itoa(max)}}
	}
	var j struct {
		History struct {
			Entries   []exceptionJSON `json:"entries"`
			Truncated bool            `json:"truncated"`
		} `json:"exceptionHistory"`
	}
	if err := c.do(ctx, request{op: op, method: http.MethodGet, segments: []string{"jobs", jobID, "exceptions"}, query: q}, &j); err != nil {
		return Exceptions{}, err
	}
	ex := Exceptions{Truncated: j.History.Truncated}
	for _, e := range j.History.Entries {
		ex.Entries = append(ex.Entries, e.convert())
	}
	return ex, nil
}

type checkpointJSON struct {
	ID               int64  `json:"id"`
	Status           string `json:"status"`
	IsSavepoint      bool   `json:"is_savepoint"`
	TriggerTimestamp int64  `json:"trigger_timestamp"`
	LatestAck        int64  `json:"latest_ack_timestamp"`
	CheckpointType   string `json:"checkpoint_type"`
	StateSize        int64  `json:"state_size"`
	CheckpointedSize int64  `json:"checkpointed_size"`
	ExternalPath     string `json:"external_path"`
	Discarded        bool   `json:"discarded"`
	FailureTimestamp int64  `json:"failure_timestamp"`
	FailureMessage   string `json:"failure_message"`
}

func (c *checkpointJSON) convert() *Checkpoint {
	if c == nil {
		return nil
	}
	path := c.ExternalPath
	if path == "<checkpoint-not-externally-addressable>" {
		path = ""
	}
	return &Checkpoint{
		ID:               c.ID,
		Status:           c.Status,
		IsSavepoint:      c.IsSavepoint,
		ExternalPath:     path,
		TriggerTime:      msTime(c.TriggerTimestamp),
		LatestAckTime:    msTime(c.LatestAck),
		Type:             c.CheckpointType,
		Discarded:        c.Discarded,
		FailureTime:      msTime(c.FailureTimestamp),
		FailureMessage:   c.FailureMessage,
		StateSize:        c.StateSize,
		CheckpointedSize: c.CheckpointedSize,
	}
}

// Checkpoints returns the job's checkpointing statistics: counts, the latest
// completed checkpoint and savepoint with their paths, and what the job was
// restored from. A job without checkpointing gives Checkpoints{Disabled:
// true}; an unknown job is ErrNotFound.
func (c *Client) Checkpoints(ctx context.Context, jobID string) (Checkpoints, error) {
	op := "get checkpoints of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return Checkpoints{}, err
	}
	var j struct {
		Counts struct {
			Restored   int64 `json:"restored"`
			Total      int64 `json:"total"`
			InProgress int64 `json:"in_progress"`
			Completed  int64 `json:"completed"`
			Failed     int64 `json:"failed"`
		} `json:"counts"`
		Latest struct {
			Completed *checkpointJSON `json:"completed"`
			Savepoint *checkpointJSON `json:"savepoint"`
			Failed    *checkpointJSON `json:"failed"`
			Restored  *struct {
				ID               int64  `json:"id"`
				RestoreTimestamp int64  `json:"restore_timestamp"`
				IsSavepoint      bool   `json:"is_savepoint"`
				ExternalPath     string `json:"external_path"`
			} `json:"restored"`
		} `json:"latest"`
		History []checkpointJSON `json:"history"`
	}
	if err := c.do(ctx, request{op: op, method: http.MethodGet, segments: []string{"jobs", jobID, "checkpoints"}}, &j); err != nil {
		var fe *Error
		if errors.As(err, &fe) && fe.Kind == KindNotFound && strings.Contains(fe.Message, "Checkpointing has not been enabled") {
			return Checkpoints{Disabled: true}, nil
		}
		return Checkpoints{}, err
	}
	cp := Checkpoints{
		Counts: CheckpointCounts{
			Restored:   j.Counts.Restored,
			Total:      j.Counts.Total,
			InProgress: j.Counts.InProgress,
			Completed:  j.Counts.Completed,
			Failed:     j.Counts.Failed,
		},
		LatestCompleted: j.Latest.Completed.convert(),
		LatestSavepoint: j.Latest.Savepoint.convert(),
		LatestFailed:    j.Latest.Failed.convert(),
	}
	if r := j.Latest.Restored; r != nil {
		cp.Restored = &Restored{ID: r.ID, IsSavepoint: r.IsSavepoint, ExternalPath: r.ExternalPath, RestoreTime: msTime(r.RestoreTimestamp)}
	}
	for i := range j.History {
		cp.History = append(cp.History, *j.History[i].convert())
	}
	return cp, nil
}

// Cancel asks Flink to cancel the job and returns once the request is
// accepted; poll Job until the state is CANCELED. Cancelling a job that
// already reached another terminal state is ErrConflict; an unknown job is
// ErrNotFound.
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	op := "cancel job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return err
	}
	return c.do(ctx, request{
		op: op, method: http.MethodPatch, segments: []string{"jobs", jobID},
		query: url.Values{"mode": {"cancel"}},
	}, nil)
}
