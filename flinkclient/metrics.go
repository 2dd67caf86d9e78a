package flinkclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// maxMetrics bounds how many metrics one JobMetrics call asks for (and
// reads back): the answer is untrusted input.
const maxMetrics = 32

// JobMetrics returns the current values of the named job-level metrics of
// the job (GET /jobs/:id/metrics?get=a,b), e.g. numRestarts and
// numberOfCompletedCheckpoints. A metric the JobManager does not have is
// absent from the map; an unknown job is ErrNotFound.
func (c *Client) JobMetrics(ctx context.Context, jobID string, names ...string) (map[string]string, error) {
	op := "get metrics of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return nil, err
	}
	if len(names) == 0 || len(names) > maxMetrics {
		return nil, &Error{Kind: KindBadRequest, Op: op, Message: "ask for 1 to 32 metrics"}
	}
	var j []struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	}
	q := url.Values{"get": {strings.Join(names, ",")}}
	if err := c.do(ctx, request{op: op, method: http.MethodGet, segments: []string{"jobs", jobID, "metrics"}, query: q}, &j); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for i, m := range j {
		if i >= maxMetrics {
			break
		}
		out[m.ID] = m.Value
	}
	return out, nil
}
