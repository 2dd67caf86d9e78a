package flinkclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The tests in this file replay answers captured from real Flink clusters
// (testdata/<version>/*.json, written by the contract tests with
// FLINK_CAPTURE=1 through tests/capture). Each case rebuilds the call from
// the recorded request, checks that the client sends exactly that request
// (method, path, query, JSON body), and checks the typed result against the
// raw answer.

// replayCase is one captured call.
type replayCase struct {
	fixture string
	// optional cases are skipped when the fixture was not captured (e.g. an
	// in-progress status the capture run did not happen to observe).
	optional bool
	run      func(t *testing.T, c *Client, f fixture)
}

func TestReplayCapturedFixtures(t *testing.T) {
	t.Parallel()
	for _, version := range fixtureVersions {
		for _, rc := range replayCases {
			t.Run(version+"/"+rc.fixture, func(t *testing.T) {
				t.Parallel()
				p := filepath.Join("testdata", version, rc.fixture+".json")
				if _, err := os.Stat(p); rc.optional && errors.Is(err, os.ErrNotExist) {
					t.Skipf("%s not captured", p)
				}
				f := loadFixture(t, version, rc.fixture)
				if !strings.HasPrefix(f.FlinkVersion, version+".") {
					t.Fatalf("fixture captured from Flink %q, want %s.x", f.FlinkVersion, version)
				}
				c, seen := replay(t, f)
				v, err := ParseVersion(f.FlinkVersion)
				if err != nil {
					t.Fatal(err)
				}
				c.version = &v
				rc.run(t, c, f)
				if len(*seen) != 1 {
					t.Fatalf("client sent %d requests, want 1", len(*seen))
				}
				checkRequest(t, f, (*seen)[0])
			})
		}
	}
}

// checkRequest compares what the client sent with what was recorded.
func checkRequest(t *testing.T, f fixture, s seenRequest) {
	t.Helper()
	if s.Method != f.Request.Method || pathOf(s) != f.Request.Path || s.Query != f.Request.Query {
		t.Errorf("client sent %s %s?%s, recorded %s %s?%s", s.Method, pathOf(s), s.Query, f.Request.Method, f.Request.Path, f.Request.Query)
	}
	if len(f.Request.Body) == 0 {
		return
	}
	var want, got any
	if err := json.Unmarshal(f.Request.Body, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(s.Body, &got); err != nil {
		t.Fatalf("client sent non-JSON body %q: %v", s.Body, err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("client sent body %s, recorded %s", s.Body, f.Request.Body)
	}
}

// seg returns the i-th segment of the recorded request path.
func seg(f fixture, i int) string {
	parts := strings.Split(strings.Trim(f.Request.Path, "/"), "/")
	if i >= len(parts) {
		return ""
	}
	return parts[i]
}

// reqField returns a field of the recorded JSON request body.
func reqField(t *testing.T, f fixture, key string) any {
	t.Helper()
	var m map[string]any
	if len(f.Request.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(f.Request.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m[key]
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// dig walks a decoded JSON value by object keys and array indexes.
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// wantKind checks the error's kind and that its message is one readable
// line containing each of substrings.
func wantKind(t *testing.T, err error, kind Kind, substrings ...string) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != kind {
		t.Fatalf("err = %v, want kind %v", err, kind)
	}
	if fe.Message == "" || strings.Contains(fe.Message, "\tat ") || strings.Contains(fe.Message, "\n") {
		t.Errorf("message is not one readable line: %q", fe.Message)
	}
	for _, s := range substrings {
		if !strings.Contains(fe.Message, s) {
			t.Errorf("message %q lacks %q", fe.Message, s)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func ms(v any) time.Time { return msTime(num(v)) }

var replayCases = []replayCase{
	{fixture: "resource_requirements", run: func(t *testing.T, c *Client, f fixture) {
		r, err := c.ResourceRequirements(ctx(t), seg(f, 1))
		if err != nil {
			t.Fatal(err)
		}
		b := f.bodyMap(t)
		if len(r) == 0 || len(r) != len(b) {
			t.Fatalf("requirements = %+v, body %v", r, b)
		}
		for id, bounds := range r {
			if int64(bounds.LowerBound) != num(dig(b, id, "parallelism", "lowerBound")) || int64(bounds.UpperBound) != num(dig(b, id, "parallelism", "upperBound")) || bounds.LowerBound < 1 {
				t.Errorf("vertex %s: %+v, body %v", id, bounds, b[id])
			}
		}
	}},
	{fixture: "resource_requirements_update", run: func(t *testing.T, c *Client, f fixture) {
		if err := c.SetResourceRequirements(ctx(t), seg(f, 1), requirementsFromFixture(t, f)); err != nil {
			t.Fatal(err)
		}
	}},
	{fixture: "error_resource_requirements_bad", run: func(t *testing.T, c *Client, f fixture) {
		err := c.SetResourceRequirements(ctx(t), seg(f, 1), requirementsFromFixture(t, f))
		wantKind(t, err, KindBadRequest, "exceeds its maximum parallelism 128")
	}},
	{fixture: "error_resource_requirements_not_found", run: func(t *testing.T, c *Client, f fixture) {
		_, err := c.ResourceRequirements(ctx(t), seg(f, 1))
		wantKind(t, err, KindNotFound, "Could not find Flink job ("+seg(f, 1)+")")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	}},
	{fixture: "config", run: func(t *testing.T, c *Client, f fixture) {
		c.version = nil
		cfg, err := c.Config(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		b := f.bodyMap(t)
		if cfg.FlinkVersion != b["flink-version"] || cfg.FlinkRevision != b["flink-revision"] || cfg.WebSubmit != dig(b, "features", "web-submit") {
			t.Errorf("config = %+v, body %v", cfg, b)
		}
		if c.version == nil || c.version.String() != cfg.FlinkVersion {
			t.Errorf("Config did not remember the version: %v", c.version)
		}
	}},
	{fixture: "overview", run: func(t *testing.T, c *Client, f fixture) {
		ov, err := c.Overview(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		b := f.bodyMap(t)
		if int64(ov.TaskManagers) != num(b["taskmanagers"]) || int64(ov.SlotsTotal) != num(b["slots-total"]) ||
			ov.FlinkVersion != b["flink-version"] || ov.FlinkVersion == "" {
			t.Errorf("overview = %+v, body %v", ov, b)
		}
	}},
	{fixture: "jobmanager_config", run: func(t *testing.T, c *Client, f fixture) {
		m, err := c.JobManagerConfig(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var entries []map[string]string
		if err := json.Unmarshal(f.Body, &entries); err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 || len(m) != len(entries) || m[entries[0]["key"]] != entries[0]["value"] {
			t.Errorf("got %d keys, body has %d", len(m), len(entries))
		}
	}},
	{fixture: "taskmanagers", run: func(t *testing.T, c *Client, f fixture) {
		tms, err := c.TaskManagers(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		b := f.bodyMap(t)
		tm0 := dig(b, "taskmanagers", 0)
		if len(tms) == 0 || tms[0].ID != dig(tm0, "id") || int64(tms[0].SlotsNumber) != num(dig(tm0, "slotsNumber")) ||
			!tms[0].LastHeartbeat.Equal(ms(dig(tm0, "timeSinceLastHeartbeat"))) || tms[0].Path != dig(tm0, "path") {
			t.Errorf("taskmanagers = %+v, body %v", tms, tm0)
		}
	}},
	{fixture: "jar_upload", run: func(t *testing.T, c *Client, f fixture) {
		id, err := c.UploadJarFrom(ctx(t), "flink-gitops-testjob.jar", bytes.NewReader([]byte("PK\x03\x04 fake jar")))
		if err != nil {
			t.Fatal(err)
		}
		if want := path.Base(str(f.bodyMap(t)["filename"])); id != want || !strings.HasSuffix(id, ".jar") {
			t.Errorf("jar id = %q, want %q", id, want)
		}
	}},
	{fixture: "jars_list", run: func(t *testing.T, c *Client, f fixture) {
		jars, err := c.ListJars(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		f0 := dig(f.bodyMap(t), "files", 0)
		if len(jars) == 0 || jars[0].ID != str(dig(f0, "id")) || jars[0].Name != str(dig(f0, "name")) ||
			!jars[0].Uploaded.Equal(ms(dig(f0, "uploaded"))) || !strings.HasSuffix(jars[0].ID, "_"+jars[0].Name) {
			t.Errorf("jars = %+v, body %v", jars, f0)
		}
	}},
	{fixture: "jar_run", run: runJarCase},
	{fixture: "jar_run_restore", run: runJarCase},
	{fixture: "error_duplicate_job", run: func(t *testing.T, c *Client, f fixture) {
		_, err := c.RunJar(ctx(t), seg(f, 1), jarRunFromFixture(t, f))
		// 2.3 runs a jar as an application and names that instead.
		want := "DuplicateJobSubmissionException: Job has already been submitted."
		if v, _ := ParseVersion(f.FlinkVersion); v.AtLeast(2, 3) {
			want = "DuplicateApplicationSubmissionException: Application has already been submitted."
		}
		wantKind(t, err, KindConflict, want)
	}},
	{fixture: "job_running", run: func(t *testing.T, c *Client, f fixture) {
		d := jobCase(t, c, f)
		if d.State != JobRunning || !d.AllTasksRunning() || d.Timestamps[JobRunning].IsZero() || !d.EndTime.IsZero() {
			t.Errorf("running job = %+v", d)
		}
	}},
	{fixture: "job_finished", run: func(t *testing.T, c *Client, f fixture) {
		d := jobCase(t, c, f)
		if d.State != JobFinished || !d.State.GloballyTerminal() || d.EndTime.IsZero() {
			t.Errorf("finished job = %+v", d)
		}
	}},
	{fixture: "job_canceled", run: func(t *testing.T, c *Client, f fixture) {
		d := jobCase(t, c, f)
		if d.State != JobCanceled || d.EndTime.IsZero() {
			t.Errorf("canceled job = %+v", d)
		}
	}},
	{fixture: "jobs_overview", run: func(t *testing.T, c *Client, f fixture) {
		jobs, err := c.Jobs(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		j0 := dig(f.bodyMap(t), "jobs", 0)
		if len(jobs) == 0 || jobs[0].ID != dig(j0, "jid") || string(jobs[0].State) != dig(j0, "state") ||
			jobs[0].Name != dig(j0, "name") || !jobs[0].StartTime.Equal(ms(dig(j0, "start-time"))) {
			t.Errorf("jobs = %+v, body %v", jobs, j0)
		}
	}},
	{fixture: "error_job_not_found", run: func(t *testing.T, c *Client, f fixture) {
		_, err := c.Job(ctx(t), seg(f, 1))
		wantKind(t, err, KindNotFound, "Could not find Flink job ("+seg(f, 1)+")")
		if !errors.Is(err, ErrNotFound) {
			t.Error("errors.Is(err, ErrNotFound) is false")
		}
	}},
	{fixture: "exceptions_empty", run: func(t *testing.T, c *Client, f fixture) {
		ex, err := c.Exceptions(ctx(t), seg(f, 1), 5)
		if err != nil || len(ex.Entries) != 0 {
			t.Errorf("exceptions = %+v, %v", ex, err)
		}
	}},
	{fixture: "exceptions", run: func(t *testing.T, c *Client, f fixture) {
		ex, err := c.Exceptions(ctx(t), seg(f, 1), 5)
		if err != nil {
			t.Fatal(err)
		}
		e0 := dig(f.bodyMap(t), "exceptionHistory", "entries", 0)
		if len(ex.Entries) == 0 {
			t.Fatal("no entries")
		}
		x := ex.Entries[0]
		wantEndpoint := str(dig(e0, "endpoint"))
		if wantEndpoint == "" {
			wantEndpoint = str(dig(e0, "location"))
		}
		if x.Name != dig(e0, "exceptionName") || x.Stacktrace != dig(e0, "stacktrace") || !x.Time.Equal(ms(dig(e0, "timestamp"))) ||
			x.Endpoint != wantEndpoint || x.TaskName != str(dig(e0, "taskName")) {
			t.Errorf("exception = %+v, body %v", x, e0)
		}
		if x.Message == "" || strings.Contains(x.Message, "\tat ") || strings.Contains(x.Message, "\n") {
			t.Errorf("message is not readable: %q", x.Message)
		}
		t.Logf("readable cause: %s", x.Message)
	}},
	{fixture: "checkpoints", run: func(t *testing.T, c *Client, f fixture) {
		cp := checkpointsCase(t, c, f)
		if cp.LatestCompleted == nil || cp.LatestCompleted.ExternalPath == "" || cp.Restored != nil {
			t.Errorf("checkpoints = %+v", cp)
		}
	}},
	{fixture: "checkpoints_with_savepoint", run: func(t *testing.T, c *Client, f fixture) {
		cp := checkpointsCase(t, c, f)
		if cp.LatestSavepoint == nil || !cp.LatestSavepoint.IsSavepoint || cp.LatestSavepoint.ExternalPath == "" {
			t.Errorf("latest savepoint = %+v", cp.LatestSavepoint)
		}
	}},
	{fixture: "checkpoints_restored", run: func(t *testing.T, c *Client, f fixture) {
		cp := checkpointsCase(t, c, f)
		if cp.Restored == nil || !cp.Restored.IsSavepoint || cp.Restored.ExternalPath == "" || cp.Restored.RestoreTime.IsZero() {
			t.Errorf("restored = %+v", cp.Restored)
		}
	}},
	{fixture: "checkpoint_trigger", run: func(t *testing.T, c *Client, f fixture) {
		id, err := c.TriggerCheckpoint(ctx(t), seg(f, 1), str(reqField(t, f, "triggerId")), CheckpointType(str(reqField(t, f, "checkpointType"))))
		if err != nil || id != f.bodyMap(t)["request-id"] || id != reqField(t, f, "triggerId") {
			t.Errorf("trigger = %q, %v", id, err)
		}
	}},
	{fixture: "checkpoint_status_completed", run: func(t *testing.T, c *Client, f fixture) {
		op, err := c.CheckpointStatus(ctx(t), seg(f, 1), seg(f, 3))
		if err != nil || op.Status != Completed || op.Err() != nil || op.CheckpointID != num(dig(f.bodyMap(t), "operation", "checkpointId")) || op.CheckpointID == 0 {
			t.Errorf("status = %+v, %v", op, err)
		}
	}},
	{fixture: "savepoint_trigger", run: savepointTriggerCase},
	{fixture: "savepoint_trigger_retry", run: savepointTriggerCase},
	{fixture: "savepoint_status_in_progress", optional: true, run: func(t *testing.T, c *Client, f fixture) {
		op, err := c.SavepointStatus(ctx(t), seg(f, 1), seg(f, 3))
		if err != nil || op.Status != InProgress || !errors.Is(op.Err(), ErrInProgress) {
			t.Errorf("status = %+v, %v", op, err)
		}
	}},
	{fixture: "savepoint_status_completed", run: savepointDoneCase},
	{fixture: "stop_status_completed", run: savepointDoneCase},
	{fixture: "savepoint_status_failed", run: func(t *testing.T, c *Client, f fixture) {
		op, err := c.SavepointStatus(ctx(t), seg(f, 1), seg(f, 3))
		if err != nil || op.Status != Completed || op.Location != "" {
			t.Fatalf("status = %+v, %v", op, err)
		}
		wantKind(t, op.Err(), KindOperationFailed, "FileAlreadyExistsException: ")
		t.Logf("readable cause: %v", op.FailureCause)
	}},
	{fixture: "stop_status_job_not_running", run: func(t *testing.T, c *Client, f fixture) {
		op, err := c.SavepointStatus(ctx(t), seg(f, 1), seg(f, 3))
		if err != nil || op.Status != Completed || op.Location != "" {
			t.Fatalf("status = %+v, %v", op, err)
		}
		wantKind(t, op.Err(), KindNotFound, "Could not find Flink job ("+seg(f, 1)+")")
	}},
	{fixture: "error_unknown_trigger", run: func(t *testing.T, c *Client, f fixture) {
		_, err := c.SavepointStatus(ctx(t), seg(f, 1), seg(f, 3))
		wantKind(t, err, KindNotFound, "There is no savepoint operation with triggerId="+seg(f, 3))
	}},
	{fixture: "error_bad_request", run: func(t *testing.T, c *Client, f fixture) {
		_, err := c.TriggerSavepoint(ctx(t), seg(f, 1), SavepointOptions{FormatType: SavepointFormat(str(reqField(t, f, "formatType")))})
		wantKind(t, err, KindBadRequest, "BOGUS")
	}},
	{fixture: "stop_trigger", run: stopTriggerCase},
	{fixture: "stop_trigger_retry", run: stopTriggerCase},
	{fixture: "error_cancel_terminal", run: func(t *testing.T, c *Client, f fixture) {
		wantKind(t, c.Cancel(ctx(t), seg(f, 1)), KindConflict, "Job cancellation failed because the job has already reached another terminal state (FINISHED).")
	}},
	{fixture: "cancel", run: func(t *testing.T, c *Client, f fixture) {
		if err := c.Cancel(ctx(t), seg(f, 1)); err != nil {
			t.Error(err)
		}
	}},
	{fixture: "disposal_trigger", run: func(t *testing.T, c *Client, f fixture) {
		id, err := c.DisposeSavepoint(ctx(t), str(reqField(t, f, "savepoint-path")))
		if err != nil || id != f.bodyMap(t)["request-id"] || !validID(id) {
			t.Errorf("dispose = %q, %v", id, err)
		}
	}},
	{fixture: "disposal_status_completed", run: func(t *testing.T, c *Client, f fixture) {
		op, err := c.DisposalStatus(ctx(t), seg(f, 1))
		if err != nil || op.Status != Completed || op.Err() != nil {
			t.Errorf("status = %+v, %v", op, err)
		}
	}},
	{fixture: "disposal_status_missing", run: func(t *testing.T, c *Client, f fixture) {
		op, err := c.DisposalStatus(ctx(t), seg(f, 1))
		if err != nil || op.Status != Completed {
			t.Fatalf("status = %+v, %v", op, err)
		}
		wantKind(t, op.Err(), KindNotFound, "Cannot find checkpoint or savepoint")
		if !errors.Is(op.Err(), ErrNotFound) {
			t.Error("a missing savepoint's disposal must match ErrNotFound")
		}
	}},
	{fixture: "jar_delete", run: func(t *testing.T, c *Client, f fixture) {
		if err := c.DeleteJar(ctx(t), seg(f, 1)); err != nil {
			t.Error(err)
		}
	}},
}

// jarRunFromFixture rebuilds the JarRunRequest from a recorded /run body.
// requirementsFromFixture reads the recorded PUT resource-requirements body.
func requirementsFromFixture(t *testing.T, f fixture) ResourceRequirements {
	t.Helper()
	var b map[string]struct {
		Parallelism Bounds `json:"parallelism"`
	}
	if err := json.Unmarshal(f.Request.Body, &b); err != nil || len(b) == 0 {
		t.Fatalf("recorded body %s: %v", f.Request.Body, err)
	}
	r := ResourceRequirements{}
	for id, v := range b {
		r[id] = v.Parallelism
	}
	return r
}

func jarRunFromFixture(t *testing.T, f fixture) JarRunRequest {
	t.Helper()
	var b struct {
		EntryClass            string            `json:"entryClass"`
		ProgramArgsList       []string          `json:"programArgsList"`
		Parallelism           int               `json:"parallelism"`
		JobID                 string            `json:"jobId"`
		SavepointPath         string            `json:"savepointPath"`
		AllowNonRestoredState bool              `json:"allowNonRestoredState"`
		RestoreMode           ClaimMode         `json:"restoreMode"`
		ClaimMode             ClaimMode         `json:"claimMode"`
		FlinkConfiguration    map[string]string `json:"flinkConfiguration"`
	}
	if err := json.Unmarshal(f.Request.Body, &b); err != nil {
		t.Fatal(err)
	}
	mode := b.ClaimMode
	if mode == "" {
		mode = b.RestoreMode
	}
	return JarRunRequest{
		EntryClass: b.EntryClass, Args: b.ProgramArgsList, Parallelism: b.Parallelism, JobID: b.JobID,
		SavepointPath: b.SavepointPath, AllowNonRestoredState: b.AllowNonRestoredState, ClaimMode: mode,
		FlinkConfiguration: b.FlinkConfiguration,
	}
}

func runJarCase(t *testing.T, c *Client, f fixture) {
	req := jarRunFromFixture(t, f)
	id, err := c.RunJar(ctx(t), seg(f, 1), req)
	if err != nil || id != f.bodyMap(t)["jobid"] || id != req.JobID {
		t.Errorf("run = %q, %v; want %v", id, err, f.bodyMap(t)["jobid"])
	}
}

func jobCase(t *testing.T, c *Client, f fixture) JobDetails {
	d, err := c.Job(ctx(t), seg(f, 1))
	if err != nil {
		t.Fatal(err)
	}
	b := f.bodyMap(t)
	v0 := dig(b, "vertices", 0)
	if d.ID != b["jid"] || string(d.State) != b["state"] || d.Name != b["name"] || !d.StartTime.Equal(ms(b["start-time"])) ||
		len(d.Vertices) != len(dig(b, "vertices").([]any)) || d.Vertices[0].ID != dig(v0, "id") ||
		int64(d.Vertices[0].Parallelism) != num(dig(v0, "parallelism")) || d.Vertices[0].Status != dig(v0, "status") {
		t.Errorf("job = %+v, body %v", d, b)
	}
	return d
}

func checkpointsCase(t *testing.T, c *Client, f fixture) Checkpoints {
	cp, err := c.Checkpoints(ctx(t), seg(f, 1))
	if err != nil {
		t.Fatal(err)
	}
	b := f.bodyMap(t)
	if cp.Counts.Completed != num(dig(b, "counts", "completed")) || cp.Counts.InProgress != num(dig(b, "counts", "in_progress")) ||
		cp.Counts.Restored != num(dig(b, "counts", "restored")) || len(cp.History) != len(dig(b, "history").([]any)) {
		t.Errorf("counts = %+v, body %v", cp.Counts, dig(b, "counts"))
	}
	if l := cp.LatestCompleted; l != nil && (l.ExternalPath != dig(b, "latest", "completed", "external_path") || l.ID != num(dig(b, "latest", "completed", "id"))) {
		t.Errorf("latest completed = %+v, body %v", l, dig(b, "latest", "completed"))
	}
	if l := cp.LatestSavepoint; l != nil && l.ExternalPath != dig(b, "latest", "savepoint", "external_path") {
		t.Errorf("latest savepoint = %+v, body %v", l, dig(b, "latest", "savepoint"))
	}
	if r := cp.Restored; r != nil && r.ExternalPath != dig(b, "latest", "restored", "external_path") {
		t.Errorf("restored = %+v, body %v", r, dig(b, "latest", "restored"))
	}
	if cp.InProgress() != (cp.Counts.InProgress > 0) {
		t.Error("InProgress disagrees with counts")
	}
	return cp
}

func savepointTriggerCase(t *testing.T, c *Client, f fixture) {
	opts := SavepointOptions{
		TargetDir:  str(reqField(t, f, "target-directory")),
		TriggerID:  str(reqField(t, f, "triggerId")),
		FormatType: SavepointFormat(str(reqField(t, f, "formatType"))),
		Cancel:     reqField(t, f, "cancel-job") == true,
	}
	id, err := c.TriggerSavepoint(ctx(t), seg(f, 1), opts)
	if err != nil || id != f.bodyMap(t)["request-id"] || id != opts.TriggerID {
		t.Errorf("trigger = %q, %v", id, err)
	}
}

func stopTriggerCase(t *testing.T, c *Client, f fixture) {
	opts := StopOptions{
		TargetDir:  str(reqField(t, f, "targetDirectory")),
		TriggerID:  str(reqField(t, f, "triggerId")),
		FormatType: SavepointFormat(str(reqField(t, f, "formatType"))),
		Drain:      reqField(t, f, "drain") == true,
	}
	id, err := c.StopWithSavepoint(ctx(t), seg(f, 1), opts)
	if err != nil || id != f.bodyMap(t)["request-id"] || id != opts.TriggerID {
		t.Errorf("stop = %q, %v", id, err)
	}
}

func savepointDoneCase(t *testing.T, c *Client, f fixture) {
	op, err := c.SavepointStatus(ctx(t), seg(f, 1), seg(f, 3))
	want := str(dig(f.bodyMap(t), "operation", "location"))
	if err != nil || op.Status != Completed || op.Err() != nil || op.Location != want || want == "" {
		t.Errorf("status = %+v, %v; want location %q", op, err, want)
	}
}

// TestUploadSendsJarfilePart checks the multipart shape Flink requires.
func TestUploadSendsJarfilePart(t *testing.T) {
	t.Parallel()
	var f fixture
	f.Status = 200
	f.Body = json.RawMessage(`{"filename":"/tmp/flink-web-x/flink-web-upload/1f2e_job.jar","status":"success"}`)
	c, seen := replay(t, f)
	id, err := c.UploadJarFrom(ctx(t), "job.jar", strings.NewReader("jar bytes"))
	if err != nil || id != "1f2e_job.jar" {
		t.Fatalf("upload = %q, %v", id, err)
	}
	s := (*seen)[0]
	if s.Method != "POST" || pathOf(s) != "/jars/upload" {
		t.Errorf("sent %s %s", s.Method, s.Path)
	}
	mt, params, err := mime.ParseMediaType(s.ContentType)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q: %v", s.ContentType, err)
	}
	part, err := multipart.NewReader(bytes.NewReader(s.Body), params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if part.FormName() != "jarfile" || part.FileName() != "job.jar" || part.Header.Get("Content-Type") != "application/x-java-archive" {
		t.Errorf("part %q file %q type %q", part.FormName(), part.FileName(), part.Header.Get("Content-Type"))
	}
}

// TestListJarsBounded: a listing is capped in entries and in bytes read.
func TestListJarsBounded(t *testing.T) {
	t.Parallel()
	entry := `{"id":"%d_x.jar","name":"x.jar","uploaded":1,"entry":[]}`
	var sb strings.Builder
	sb.WriteString(`{"address":"http://jm","files":[`)
	for i := 0; i < MaxListedJars+5; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, entry, i)
	}
	sb.WriteString("]}")
	var f fixture
	f.Status = 200
	f.Body = json.RawMessage(sb.String())
	c, _ := replay(t, f)
	jars, err := c.ListJars(ctx(t))
	if err != nil || len(jars) != MaxListedJars || jars[0].ID != "0_x.jar" {
		t.Fatalf("ListJars: %d jars, %v", len(jars), err)
	}

	huge := `{"files":[{"id":"a_x.jar","name":"x.jar","uploaded":1,"entry":[{"name":"` + strings.Repeat("A", maxJarListBytes) + `"}]}]}`
	f.Body = json.RawMessage(huge)
	c, _ = replay(t, f)
	_, err = c.ListJars(ctx(t))
	wantKind(t, err, KindServer, "larger than")
}
