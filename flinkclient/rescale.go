package flinkclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Bounds is the parallelism range the adaptive scheduler may run one job
// vertex at: it runs at most UpperBound, and keeps running (rather than
// waiting for resources) with as few as LowerBound.
type Bounds struct {
	LowerBound int `json:"lowerBound"`
	UpperBound int `json:"upperBound"`
}

// ResourceRequirements are the parallelism bounds of a job's vertices, by
// vertex id, as GET/PUT /jobs/:jobid/resource-requirements carry them
// (Flink 1.18 and later, adaptive scheduler only).
type ResourceRequirements map[string]Bounds

// requirementsJSON is the wire shape: {"<vertex>": {"parallelism": {...}}}.
type requirementsJSON map[string]struct {
	Parallelism Bounds `json:"parallelism"`
}

// maxVertices bounds the requirements a client accepts or sends: a job graph
// has tens of vertices, never this many.
const maxVertices = 10000

// ResourceRequirements returns the parallelism bounds of the job's vertices
// (GET /jobs/:jobid/resource-requirements). An unknown job is ErrNotFound; a
// job whose scheduler cannot be rescaled (the default scheduler) is
// ErrServer with Flink's reason in the message.
func (c *Client) ResourceRequirements(ctx context.Context, jobID string) (ResourceRequirements, error) {
	op := "get resource requirements of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return nil, err
	}
	var j requirementsJSON
	if err := c.do(ctx, request{op: op, method: http.MethodGet, segments: []string{"jobs", jobID, "resource-requirements"}}, &j); err != nil {
		return nil, jobNotFound(err)
	}
	if len(j) > maxVertices {
		return nil, &Error{Kind: KindServer, Op: op, Message: fmt.Sprintf("answer lists %d vertices, more than %d", len(j), maxVertices)}
	}
	r := make(ResourceRequirements, len(j))
	for id, v := range j {
		r[id] = v.Parallelism
	}
	return r, nil
}

// SetResourceRequirements replaces the parallelism bounds of the job's
// vertices (PUT /jobs/:jobid/resource-requirements); the adaptive scheduler
// then rescales the job in place, keeping its id, from its latest
// checkpoint. The call returns once Flink accepted the new requirements, not
// once the job runs with them: poll Job for the vertices' parallelism.
// Sending the same requirements again is harmless. Bounds Flink rejects
// (an upper bound above the vertex's max parallelism, a vertex missing) are
// ErrBadRequest; an unknown job ErrNotFound; a scheduler that cannot be
// rescaled ErrServer.
func (c *Client) SetResourceRequirements(ctx context.Context, jobID string, req ResourceRequirements) error {
	op := "set resource requirements of job " + jobID
	if err := checkID(op, "job id", jobID); err != nil {
		return err
	}
	if len(req) == 0 || len(req) > maxVertices {
		return &Error{Kind: KindBadRequest, Op: op, Message: fmt.Sprintf("%d vertices given; give every vertex of the job", len(req))}
	}
	body := make(requirementsJSON, len(req))
	for id, b := range req {
		if err := checkID(op, "vertex id", id); err != nil {
			return err
		}
		if b.LowerBound < 1 || b.UpperBound < b.LowerBound {
			return &Error{Kind: KindBadRequest, Op: op, Message: fmt.Sprintf("vertex %s: bounds %d..%d; the lower bound must be at least 1 and not above the upper bound", id, b.LowerBound, b.UpperBound)}
		}
		v := body[id]
		v.Parallelism = b
		body[id] = v
	}
	return jobNotFound(c.do(ctx, request{op: op, method: http.MethodPut, segments: []string{"jobs", jobID, "resource-requirements"}, body: body}, nil))
}

// jobNotFound makes an unknown job ErrNotFound: the resource-requirements
// handlers answer it with HTTP 500 and FlinkJobNotFoundException (1.20, 2.2).
func jobNotFound(err error) error {
	var fe *Error
	if errors.As(err, &fe) && fe.Kind == KindServer && strings.Contains(fe.Message, "FlinkJobNotFoundException") {
		nf := *fe
		nf.Kind = KindNotFound
		return &nf
	}
	return err
}
