package flinkclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Asynchronous operations (savepoint, stop-with-savepoint, checkpoint,
// disposal) are triggered with a POST that answers {"request-id": …} and
// polled with a GET on the trigger id.
//
// Idempotency: Flink (1.17 and later, including 1.20 and 2.x) keys savepoint
// and checkpoint operations by (job id, trigger id). A trigger repeated with
// the same caller-chosen trigger id while the first is running or after it
// finished is acknowledged with the same id and starts nothing new, so a
// retry after a lost answer or a crash is safe. The key is kept only in the
// JobManager's memory, for rest.async.store-duration (default 5 minutes)
// after completion: after a JobManager restart, or later than that, the
// status call answers ErrNotFound and the same trigger id starts a new
// operation. Savepoint disposal takes no caller-chosen id.

type triggerJSON struct {
	RequestID string `json:"request-id"`
}

// throwableJSON is Flink's JSON form of a Java exception (SerializedThrowable).
type throwableJSON struct {
	Class      string `json:"class"`
	StackTrace string `json:"stack-trace"`
}

func (t *throwableJSON) err(op string) error {
	if t == nil {
		return nil
	}
	msg := ReadableCause(t.StackTrace)
	if msg == "" {
		msg = t.Class
	}
	if msg == "" {
		msg = "failed without a cause"
	}
	return &Error{Kind: failureKind(t.StackTrace), Op: op, Message: msg}
}

// failureKind classifies an operation's failure cause. Two causes mean
// "not found" rather than a failure to investigate: a savepoint or stop of
// a job that is no longer running (FlinkJobNotFoundException: lifecycle
// falls back to last-state; or, while the scheduler of a job that just ended
// still answers, "Job <id> is not a streaming job.", since a terminated
// job's checkpoint coordinator is gone: seen on a real Flink 2.0.2), and
// disposing a savepoint that is already gone (an idempotent disposal treats
// that as done).
func failureKind(stackTrace string) Kind {
	switch {
	case strings.Contains(stackTrace, "FlinkJobNotFoundException"),
		strings.Contains(stackTrace, "is not a streaming job."),
		strings.Contains(stackTrace, "java.io.FileNotFoundException: Cannot find checkpoint or savepoint"):
		return KindNotFound
	}
	return KindOperationFailed
}

type operationJSON struct {
	Status struct {
		ID string `json:"id"`
	} `json:"status"`
	Operation json.RawMessage `json:"operation"`
}

// poll fetches the status of an asynchronous operation.
func (c *Client) poll(ctx context.Context, op string, segments []string) (Operation, error) {
	var j operationJSON
	if err := c.do(ctx, request{op: op, method: http.MethodGet, segments: segments}, &j); err != nil {
		return Operation{}, err
	}
	switch OperationStatus(j.Status.ID) {
	case InProgress:
		return Operation{Status: InProgress}, nil
	case Completed:
	default:
		return Operation{}, &Error{Kind: KindServer, Op: op, Message: fmt.Sprintf("unknown operation status %q", j.Status.ID)}
	}
	var info struct {
		Location     string         `json:"location"`
		CheckpointID int64          `json:"checkpointId"`
		FailureCause *throwableJSON `json:"failure-cause"`
		// Checkpoint status spells its failure cause in camel case.
		FailureCauseCamel *throwableJSON `json:"failureCause"`
	}
	if len(j.Operation) > 0 {
		if err := json.Unmarshal(j.Operation, &info); err != nil {
			return Operation{}, &Error{Kind: KindServer, Op: op, Message: "decode operation: " + err.Error()}
		}
	}
	o := Operation{Status: Completed, Location: info.Location, CheckpointID: info.CheckpointID}
	if info.FailureCause != nil {
		o.FailureCause = info.FailureCause.err(op)
	} else if info.FailureCauseCamel != nil {
		o.FailureCause = info.FailureCauseCamel.err(op)
	}
	return o, nil
}

// trigger posts body and returns the trigger id Flink acknowledged.
func (c *Client) trigger(ctx context.Context, op string, segments []string, body any) (string, error) {
	var t triggerJSON
	if err := c.do(ctx, request{op: op, method: http.MethodPost, segments: segments, body: body}, &t); err != nil {
		return "", err
	}
	if t.RequestID == "" {
		return "", &Error{Kind: KindServer, Op: op, Message: "answer has no request-id"}
	}
	return t.RequestID, nil
}

func checkTrigger(op, triggerID string) error {
	if triggerID == "" {
		return nil
	}
	return checkID(op, "trigger id", triggerID)
}

// TriggerSavepoint starts a savepoint of a running job and returns its
// trigger id (opts.TriggerID when given). Poll SavepointStatus with it.
func (c *Client) TriggerSavepoint(ctx context.Context, jobID string, opts SavepointOptions) (string, error) {
	op := "trigger savepoint of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return "", err
	}
	if err := checkTrigger(op, opts.TriggerID); err != nil {
		return "", err
	}
	body := struct {
		TargetDirectory string          `json:"target-directory,omitempty"`
		CancelJob       bool            `json:"cancel-job"`
		TriggerID       string          `json:"triggerId,omitempty"`
		FormatType      SavepointFormat `json:"formatType,omitempty"`
	}{opts.TargetDir, opts.Cancel, opts.TriggerID, opts.FormatType}
	return c.trigger(ctx, op, []string{"jobs", jobID, "savepoints"}, body)
}

// StopWithSavepoint takes a savepoint and stops the job once it completes;
// it returns the trigger id (opts.TriggerID when given). Poll SavepointStatus
// with it; the job then ends in FINISHED.
func (c *Client) StopWithSavepoint(ctx context.Context, jobID string, opts StopOptions) (string, error) {
	op := "stop job " + jobID + " with savepoint"
	if err := checkID(op, "job id", jobID); err != nil {
		return "", err
	}
	if err := checkTrigger(op, opts.TriggerID); err != nil {
		return "", err
	}
	body := struct {
		TargetDirectory string          `json:"targetDirectory,omitempty"`
		Drain           bool            `json:"drain"`
		TriggerID       string          `json:"triggerId,omitempty"`
		FormatType      SavepointFormat `json:"formatType,omitempty"`
	}{opts.TargetDir, opts.Drain, opts.TriggerID, opts.FormatType}
	return c.trigger(ctx, op, []string{"jobs", jobID, "stop"}, body)
}

// SavepointStatus returns the state of a savepoint or stop-with-savepoint
// operation. A trigger id the JobManager does not know (never triggered, or
// forgotten after a restart or rest.async.store-duration) is ErrNotFound.
// A savepoint of a job that is not running (finished, cancelled, failed)
// is accepted by Flink and then completes with a FailureCause matching
// ErrNotFound.
func (c *Client) SavepointStatus(ctx context.Context, jobID, triggerID string) (Operation, error) {
	op := "get savepoint status of job " + jobID + " trigger " + triggerID
	if err := checkID(op, "job id", jobID); err != nil {
		return Operation{}, err
	}
	if err := checkID(op, "trigger id", triggerID); err != nil {
		return Operation{}, err
	}
	return c.poll(ctx, op, []string{"jobs", jobID, "savepoints", triggerID})
}

// TriggerCheckpoint starts a checkpoint of a running job and returns its
// trigger id (triggerID when given; empty lets Flink choose). An empty typ
// uses the job's configured checkpoint type.
func (c *Client) TriggerCheckpoint(ctx context.Context, jobID, triggerID string, typ CheckpointType) (string, error) {
	op := "trigger checkpoint of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return "", err
	}
	if err := checkTrigger(op, triggerID); err != nil {
		return "", err
	}
	body := struct {
		CheckpointType CheckpointType `json:"checkpointType,omitempty"`
		TriggerID      string         `json:"triggerId,omitempty"`
	}{typ, triggerID}
	return c.trigger(ctx, op, []string{"jobs", jobID, "checkpoints"}, body)
}

// CheckpointStatus returns the state of a triggered checkpoint; on success
// Operation.CheckpointID is set.
func (c *Client) CheckpointStatus(ctx context.Context, jobID, triggerID string) (Operation, error) {
	op := "get checkpoint status of job " + jobID + " trigger " + triggerID
	if err := checkID(op, "job id", jobID); err != nil {
		return Operation{}, err
	}
	if err := checkID(op, "trigger id", triggerID); err != nil {
		return Operation{}, err
	}
	return c.poll(ctx, op, []string{"jobs", jobID, "checkpoints", triggerID})
}

// DisposeSavepoint starts deleting a savepoint and returns the trigger id to
// poll with DisposalStatus.
func (c *Client) DisposeSavepoint(ctx context.Context, path string) (string, error) {
	op := "dispose savepoint " + path
	if path == "" {
		return "", &Error{Kind: KindBadRequest, Op: op, Message: "empty savepoint path"}
	}
	body := struct {
		Path string `json:"savepoint-path"`
	}{path}
	return c.trigger(ctx, op, []string{"savepoint-disposal"}, body)
}

// DisposalStatus returns the state of a savepoint disposal. A disposal that
// failed because the savepoint does not exist (already disposed, e.g. by a
// retry after a crash) has a FailureCause of KindNotFound (errors.Is
// ErrNotFound) instead of KindOperationFailed, so callers can treat it as done.
func (c *Client) DisposalStatus(ctx context.Context, triggerID string) (Operation, error) {
	op := "get savepoint disposal status " + triggerID
	if err := checkID(op, "trigger id", triggerID); err != nil {
		return Operation{}, err
	}
	return c.poll(ctx, op, []string{"savepoint-disposal", triggerID})
}

// Await polls status every interval until the operation completes or ctx
// ends. It returns the completed operation, with err set to its
// FailureCause if it failed. Errors of the poll itself that Retryable
// accepts (JobManager briefly unreachable) are retried; others end the wait.
func Await(ctx context.Context, interval time.Duration, status func(context.Context) (Operation, error)) (Operation, error) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr error
	for {
		o, err := status(ctx)
		switch {
		case err == nil && o.Status == Completed:
			return o, o.FailureCause
		case err != nil && !Retryable(err):
			return o, err
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return Operation{}, fmt.Errorf("wait for operation: %w (last error: %v)", ctx.Err(), lastErr)
			}
			return o, fmt.Errorf("wait for operation: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// AwaitSavepoint polls SavepointStatus until the savepoint completes and
// returns its location.
func (c *Client) AwaitSavepoint(ctx context.Context, jobID, triggerID string, interval time.Duration) (string, error) {
	o, err := Await(ctx, interval, func(ctx context.Context) (Operation, error) {
		return c.SavepointStatus(ctx, jobID, triggerID)
	})
	if err != nil {
		return "", err
	}
	return o.Location, nil
}
