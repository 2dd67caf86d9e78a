// Package flinksim is a SIMULATION of the Flink JobManager REST API of many
// clusters at once, for load tests only (make scale): one loopback HTTP
// server stands in for every JobManager of a fleet, so the daemon can be
// measured with thousands of FlinkDeployments on a machine that could not
// run a thousand JVMs. It answers the subset of the API flinkclient calls,
// with the JSON shapes of the captures in flinkclient/testdata, and keeps
// each cluster's jobs in memory. It says nothing about correctness against
// real Flink: that is what the test bed's real JVMs are for.
//
// A cluster is addressed by the path prefix /<namespace>/<name>, so the
// daemon's flink.restURLTemplate is URL + "/{{.Namespace}}/{{.Name}}".
// A cluster answers only while its JobManager runs (Start … Stop, called by
// the harness's node-agent runtime); otherwise it is 503, as the test bed's
// Service proxy says of a Service without a ready backend.
package flinksim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
)

// Version is the Flink version the simulated clusters report.
const Version = "2.2.1"

// maxBody caps a request body the simulator reads.
const maxBody = 1 << 20

// Server is the simulated REST API of a fleet of JobManagers.
type Server struct {
	calls atomic.Int64

	mu       gosync.Mutex
	clusters map[string]*cluster // by namespace/name
	routes   map[string]int64    // calls by route, e.g. "GET /jobs/:id"
	now      func() time.Time
}

type cluster struct {
	running bool
	jobs    map[string]*job
	order   []string          // job ids, oldest first
	ops     map[string]string // trigger id → savepoint location
	jars    map[string]string // jar id → name
}

type job struct {
	id, name, state string
	start, end      time.Time
}

// New returns an empty simulator.
func New() *Server {
	return &Server{clusters: map[string]*cluster{}, routes: map[string]int64{}, now: time.Now}
}

// Start marks the JobManager of namespace/name running. A non-empty jobID
// is the application job it runs (standalone-job --job-id); it is RUNNING
// at once. Jobs from before (a restart) are forgotten, as a JobManager
// without HA forgets them.
func (s *Server) Start(namespace, name, jobID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &cluster{running: true, jobs: map[string]*job{}, ops: map[string]string{}, jars: map[string]string{}}
	if jobID != "" {
		c.add(&job{id: jobID, name: name, state: "RUNNING", start: s.now()})
	}
	s.clusters[namespace+"/"+name] = c
}

// Stop marks the JobManager of namespace/name gone.
func (s *Server) Stop(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clusters, namespace+"/"+name)
}

// Running returns the number of clusters whose JobManager runs.
func (s *Server) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clusters)
}

// JobState returns the state of job id on namespace/name ("" if unknown).
func (s *Server) JobState(namespace, name, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clusters[namespace+"/"+name]; c != nil && c.jobs[id] != nil {
		return c.jobs[id].state
	}
	return ""
}

// Calls returns the number of requests served so far.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Routes returns the number of requests by route ("GET /jobs/:id", …).
func (s *Server) Routes() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.routes))
	for k, v := range s.routes {
		out[k] = v
	}
	return out
}

func (c *cluster) add(j *job) {
	c.jobs[j.id] = j
	c.order = append(c.order, j.id)
}

// ServeHTTP answers /<namespace>/<name>/<Flink REST path>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		s.count("? " + r.URL.Path)
		writeErr(w, http.StatusNotFound, "want /<namespace>/<name>/<flink REST path>")
		return
	}
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, maxBody)); err != nil {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	route, code, out := s.handle(parts[0]+"/"+parts[1], r.Method, strings.Split(strings.Trim(parts[2], "/"), "/"), r.URL.Query().Get("mode"), body)
	s.count(route)
	writeJSON(w, code, out)
}

func (s *Server) count(route string) {
	s.mu.Lock()
	s.routes[route]++
	s.mu.Unlock()
}

// handle answers one call on cluster key: the route it matched, the status
// and the JSON body.
func (s *Server) handle(key, method string, seg []string, mode string, body []byte) (string, int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	route := method + " " + pattern(seg)
	c := s.clusters[key]
	if c == nil {
		return route, http.StatusServiceUnavailable, errBody("simulated JobManager " + key + " is not running")
	}
	now := s.now()
	switch route {
	case "GET /config":
		return route, 200, map[string]any{"refresh-interval": 3000, "timezone-name": "Coordinated Universal Time", "timezone-offset": 0,
			"flink-version": Version, "flink-revision": "simulated", "features": map[string]bool{"web-submit": true, "web-cancel": true, "web-rescale": false, "web-history": false}}
	case "GET /jobmanager/config":
		return route, 200, []map[string]string{{"key": "parallelism.default", "value": "1"}, {"key": "taskmanager.numberOfTaskSlots", "value": "1"}}
	case "GET /overview":
		counts := map[string]int{}
		for _, j := range c.jobs {
			counts[j.state]++
		}
		return route, 200, map[string]any{"taskmanagers": 1, "slots-total": 1, "slots-available": 1 - min(1, counts["RUNNING"]),
			"jobs-running": counts["RUNNING"], "jobs-finished": counts["FINISHED"], "jobs-cancelled": counts["CANCELED"], "jobs-failed": counts["FAILED"],
			"flink-version": Version, "flink-commit": "simulated"}
	case "GET /taskmanagers":
		return route, 200, map[string]any{"taskmanagers": []map[string]any{{"id": key + "-tm-0", "path": "pekko.tcp://flink@127.0.0.1:1/user/rpc/taskmanager_0",
			"dataPort": 1, "jmxPort": -1, "timeSinceLastHeartbeat": 0, "slotsNumber": 1, "freeSlots": 0}}}
	case "GET /jobs/overview":
		jobs := []map[string]any{}
		for _, id := range c.order {
			j := c.jobs[id]
			jobs = append(jobs, map[string]any{"jid": j.id, "name": j.name, "state": j.state, "start-time": ms(j.start), "end-time": endMS(j.end),
				"duration": now.Sub(j.start).Milliseconds(), "last-modification": ms(j.start), "tasks": map[string]int{"running": 1, "total": 1}})
		}
		return route, 200, map[string]any{"jobs": jobs}
	case "GET /jars":
		files := []map[string]any{}
		ids := make([]string, 0, len(c.jars))
		for id := range c.jars {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			files = append(files, map[string]any{"id": id, "name": c.jars[id], "uploaded": ms(now), "entry": []any{}})
		}
		return route, 200, map[string]any{"address": "http://127.0.0.1:8081", "files": files}
	case "POST /jars/upload":
		id := randomHex() + "_upload.jar"
		c.jars[id] = "upload.jar"
		return route, 200, map[string]any{"filename": "/tmp/flink-web-upload/" + id, "status": "success"}
	case "POST /savepoint-disposal":
		return route, 200, map[string]any{"request-id": randomHex()}
	}
	if len(seg) >= 2 && seg[0] == "savepoint-disposal" && method == http.MethodGet {
		return route, 200, map[string]any{"status": map[string]string{"id": "COMPLETED"}, "operation": map[string]any{}}
	}
	if len(seg) >= 2 && seg[0] == "jars" {
		id := seg[1]
		if _, ok := c.jars[id]; !ok {
			return route, http.StatusNotFound, errBody("jar " + id + " not found")
		}
		switch route {
		case "DELETE /jars/:id":
			delete(c.jars, id)
			return route, 200, map[string]any{}
		case "POST /jars/:id/run":
			var req struct {
				JobID string `json:"jobId"`
			}
			_ = json.Unmarshal(body, &req)
			if req.JobID == "" {
				req.JobID = randomHex()
			}
			if c.jobs[req.JobID] != nil {
				return route, http.StatusInternalServerError, errBody("DuplicateJobSubmissionException: job " + req.JobID + " already exists")
			}
			c.add(&job{id: req.JobID, name: strings.TrimSuffix(c.jars[id], ".jar"), state: "RUNNING", start: now})
			return route, 200, map[string]any{"jobid": req.JobID}
		}
	}
	if len(seg) < 2 || seg[0] != "jobs" {
		return route, http.StatusNotFound, errBody("Not found: /" + strings.Join(seg, "/"))
	}
	j := c.jobs[seg[1]]
	if j == nil {
		return route, http.StatusNotFound, errBody("org.apache.flink.runtime.rest.NotFoundException: Job " + seg[1] + " not found")
	}
	switch route {
	case "GET /jobs/:id":
		return route, 200, map[string]any{"jid": j.id, "name": j.name, "isStoppable": false, "state": j.state, "job-type": "STREAMING",
			"start-time": ms(j.start), "end-time": endMS(j.end), "duration": now.Sub(j.start).Milliseconds(), "maxParallelism": -1, "now": ms(now),
			"timestamps": map[string]int64{"INITIALIZING": ms(j.start), "RUNNING": ms(j.start)},
			"vertices": []map[string]any{{"id": "5eadbd25f5e5ea36e1d79110004cc6d7", "name": "Source: simulated", "maxParallelism": 128, "parallelism": 1,
				"status": j.state, "start-time": ms(j.start), "tasks": map[string]int{j.state: 1}}}}
	case "PATCH /jobs/:id":
		if mode != "" && mode != "cancel" {
			return route, http.StatusBadRequest, errBody("unknown mode " + mode)
		}
		if j.state != "RUNNING" {
			return route, http.StatusConflict, errBody("job " + j.id + " is not running: " + j.state)
		}
		j.state, j.end = "CANCELED", now
		return route, 202, map[string]any{}
	case "GET /jobs/:id/checkpoints":
		return route, 200, map[string]any{"counts": map[string]int{"restored": 0, "total": 0, "in_progress": 0, "completed": 0, "failed": 0},
			"latest": map[string]any{"completed": nil, "savepoint": nil, "failed": nil, "restored": nil}, "history": []any{}}
	case "GET /jobs/:id/exceptions":
		return route, 200, map[string]any{"exceptionHistory": map[string]any{"entries": []any{}, "truncated": false}}
	case "GET /jobs/:id/metrics":
		return route, 200, []any{}
	case "GET /jobs/:id/resource-requirements", "PUT /jobs/:id/resource-requirements":
		return route, 200, map[string]any{"5eadbd25f5e5ea36e1d79110004cc6d7": map[string]any{"parallelism": map[string]int{"lowerBound": 1, "upperBound": 1}}}
	case "POST /jobs/:id/savepoints", "POST /jobs/:id/stop", "POST /jobs/:id/checkpoints":
		if j.state != "RUNNING" {
			return route, http.StatusConflict, errBody("job " + j.id + " is not running: " + j.state)
		}
		var req struct {
			TriggerID string `json:"triggerId"`
		}
		_ = json.Unmarshal(body, &req)
		if req.TriggerID == "" {
			req.TriggerID = randomHex()
		}
		if seg[2] == "checkpoints" {
			c.ops[req.TriggerID] = ""
		} else {
			c.ops[req.TriggerID] = fmt.Sprintf("file:/simulated/savepoints/savepoint-%s-%s", j.id[:6], req.TriggerID[:12])
		}
		if seg[2] == "stop" {
			j.state, j.end = "FINISHED", now
		}
		return route, 202, map[string]any{"request-id": req.TriggerID}
	case "GET /jobs/:id/savepoints/:trigger", "GET /jobs/:id/checkpoints/:trigger":
		loc, ok := c.ops[seg[3]]
		if !ok {
			return route, http.StatusNotFound, errBody("unknown trigger " + seg[3])
		}
		op := map[string]any{"location": loc}
		if seg[2] == "checkpoints" {
			op = map[string]any{"checkpointId": 1}
		}
		return route, 200, map[string]any{"status": map[string]string{"id": "COMPLETED"}, "operation": op}
	}
	return route, http.StatusNotFound, errBody("Not found: /" + strings.Join(seg, "/"))
}

// pattern names a route with its ids replaced: jobs/abc/savepoints/def →
// /jobs/:id/savepoints/:trigger.
func pattern(seg []string) string {
	out := make([]string, len(seg))
	copy(out, seg)
	if len(out) >= 2 && (out[0] == "jobs" && out[1] != "overview" || out[0] == "jars" && out[1] != "upload") {
		out[1] = ":id"
	}
	if len(out) >= 2 && out[0] == "savepoint-disposal" {
		out[1] = ":trigger"
	}
	if len(out) >= 4 && out[0] == "jobs" {
		out[3] = ":trigger"
	}
	return "/" + strings.Join(out, "/")
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func endMS(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func errBody(msg string) map[string][]string { return map[string][]string{"errors": {msg}} }

func writeErr(w http.ResponseWriter, code int, msg string) { writeJSON(w, code, errBody(msg)) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
