package flinktb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CounterMetric is the gauge the test job registers on its counting operator:
// the highest count that subtask has produced.
const CounterMetric = "flinkGitopsCounter"

// ErrNoProgress means the job has no counter value yet (not running, not
// processed a record, or the metrics were not fetched yet).
var ErrNoProgress = errors.New("the test job's counter metric has no value yet")

// JobProgress reads the test job's counter through the REST metrics API: the
// maximum over all subtasks of the CounterMetric gauge
// (/jobs/:id/vertices/:vid/subtasks/metrics?get=<op>.flinkGitopsCounter&agg=max).
// A job restored from a savepoint continues above the value it had there; a
// job started empty starts again near 0. It returns ErrNoProgress (wrapped)
// while there is no value.
func JobProgress(ctx context.Context, restURL, jobID string) (int64, error) {
	var job struct {
		State    string `json:"state"`
		Vertices []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"vertices"`
	}
	if _, err := getJSON(ctx, restURL+"/jobs/"+jobID, &job); err != nil {
		return 0, fmt.Errorf("job progress of %s: %w", jobID, err)
	}
	best, found := int64(0), false
	for _, v := range job.Vertices {
		base := restURL + "/jobs/" + jobID + "/vertices/" + v.ID + "/subtasks/metrics"
		var names []struct {
			ID string `json:"id"`
		}
		if _, err := getJSON(ctx, base, &names); err != nil {
			return 0, fmt.Errorf("job progress of %s: %w", jobID, err)
		}
		for _, n := range names {
			if n.ID != CounterMetric && !strings.HasSuffix(n.ID, "."+CounterMetric) {
				continue
			}
			var vals []struct {
				ID  string   `json:"id"`
				Max *float64 `json:"max"`
			}
			if _, err := getJSON(ctx, base+"?agg=max&get="+url.QueryEscape(n.ID), &vals); err != nil {
				return 0, fmt.Errorf("job progress of %s: %w", jobID, err)
			}
			for _, m := range vals {
				if m.Max != nil {
					found = true
					if int64(*m.Max) > best {
						best = int64(*m.Max)
					}
				}
			}
		}
	}
	if !found || best == 0 {
		return 0, fmt.Errorf("job %s (%s): %w", jobID, job.State, ErrNoProgress)
	}
	return best, nil
}

// WaitProgress polls JobProgress every 500 ms until the counter reaches
// atLeast (at least 1) or ctx ends, and returns the value it saw.
func WaitProgress(ctx context.Context, restURL, jobID string, atLeast int64) (int64, error) {
	if atLeast < 1 {
		atLeast = 1
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var last int64
	var lastErr error
	for {
		v, err := JobProgress(ctx, restURL, jobID)
		if err == nil && v >= atLeast {
			return v, nil
		}
		if err == nil {
			last = v
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("wait for job %s counter >= %d (last %d, last error %v): %w", jobID, atLeast, last, lastErr, ctx.Err())
		case <-tick.C:
		}
	}
}

// ProgressFromFiles reads the counter the test job writes with
// --progress-file PATH: the maximum over the files PATH.<subtask>. It returns
// ErrNoProgress when there is none yet.
func ProgressFromFiles(path string) (int64, error) {
	files, err := filepath.Glob(path + ".*")
	if err != nil {
		return 0, fmt.Errorf("progress files %s: %w", path, err)
	}
	best, found := int64(0), false
	for _, f := range files {
		if strings.HasSuffix(f, ".tmp") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, fmt.Errorf("progress file: %w", err)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("progress file %s: %w", f, err)
		}
		found = true
		if v > best {
			best = v
		}
	}
	if !found {
		return 0, fmt.Errorf("progress files %s.*: %w", path, ErrNoProgress)
	}
	return best, nil
}
