package flinktb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Plain net/http calls to the JobManager REST API for the acceptance tests
// (the typed flinkclient package is separate and not used here).

func restDo(ctx context.Context, t testing.TB, method, url, contentType string, body io.Reader, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, data, err)
		}
	}
}

func restJSON(ctx context.Context, t testing.TB, method, url string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	restDo(ctx, t, method, url, "application/json", body, out)
}

// uploadJar posts the jar as multipart part "jarfile" and returns its jar id.
func uploadJar(ctx context.Context, t testing.TB, restURL, jar string) string {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part, err := mw.CreatePart(map[string][]string{
		"Content-Disposition": {fmt.Sprintf(`form-data; name="jarfile"; filename=%q`, filepath.Base(jar))},
		"Content-Type":        {"application/x-java-archive"},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(jar)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	mw.Close()
	var resp struct {
		Filename string `json:"filename"`
		Status   string `json:"status"`
	}
	restDo(ctx, t, http.MethodPost, restURL+"/jars/upload", mw.FormDataContentType(), &buf, &resp)
	if resp.Status != "success" {
		t.Fatalf("upload %s: status %q", jar, resp.Status)
	}
	return filepath.Base(resp.Filename)
}

type runRequest struct {
	EntryClass            string   `json:"entryClass,omitempty"`
	ProgramArgsList       []string `json:"programArgsList,omitempty"`
	Parallelism           int      `json:"parallelism,omitempty"`
	SavepointPath         string   `json:"savepointPath,omitempty"`
	AllowNonRestoredState bool     `json:"allowNonRestoredState,omitempty"`
	JobID                 string   `json:"jobId,omitempty"`
}

// runJar runs an uploaded jar and returns the job id.
func runJar(ctx context.Context, t testing.TB, restURL, jarID string, req runRequest) string {
	t.Helper()
	var resp struct {
		JobID string `json:"jobid"`
	}
	restJSON(ctx, t, http.MethodPost, restURL+"/jars/"+jarID+"/run", req, &resp)
	if resp.JobID == "" {
		t.Fatalf("run jar %s: no job id", jarID)
	}
	return resp.JobID
}

// triggerSavepoint starts a savepoint of the job and returns the trigger id.
func triggerSavepoint(ctx context.Context, t testing.TB, restURL, jobID, dir string, cancelJob bool) string {
	t.Helper()
	var resp struct {
		RequestID string `json:"request-id"`
	}
	body := map[string]any{"cancel-job": cancelJob}
	if dir != "" { // else the configured default savepoint directory
		body["target-directory"] = dir
	}
	restJSON(ctx, t, http.MethodPost, restURL+"/jobs/"+jobID+"/savepoints", body, &resp)
	return resp.RequestID
}

// stopWithSavepoint stops the job with a savepoint and returns the trigger id.
func stopWithSavepoint(ctx context.Context, t testing.TB, restURL, jobID, dir string) string {
	t.Helper()
	var resp struct {
		RequestID string `json:"request-id"`
	}
	restJSON(ctx, t, http.MethodPost, restURL+"/jobs/"+jobID+"/stop",
		map[string]any{"targetDirectory": dir, "drain": false}, &resp)
	return resp.RequestID
}

// waitSavepoint polls the savepoint operation until it completes and returns
// the savepoint location.
func waitSavepoint(ctx context.Context, t testing.TB, restURL, jobID, triggerID string) string {
	t.Helper()
	for {
		var st struct {
			Status struct {
				ID string `json:"id"`
			} `json:"status"`
			Operation struct {
				Location     string          `json:"location"`
				FailureCause json.RawMessage `json:"failure-cause"`
			} `json:"operation"`
		}
		restJSON(ctx, t, http.MethodGet, restURL+"/jobs/"+jobID+"/savepoints/"+triggerID, nil, &st)
		if st.Status.ID == "COMPLETED" {
			if st.Operation.Location == "" {
				t.Fatalf("savepoint %s of job %s failed: %s", triggerID, jobID, st.Operation.FailureCause)
			}
			return st.Operation.Location
		}
		select {
		case <-ctx.Done():
			t.Fatalf("savepoint %s of job %s: %v", triggerID, jobID, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func jobState(ctx context.Context, t testing.TB, restURL, jobID string) string {
	t.Helper()
	var job struct {
		State string `json:"state"`
	}
	restJSON(ctx, t, http.MethodGet, restURL+"/jobs/"+jobID, nil, &job)
	return job.State
}

func waitJobState(ctx context.Context, t testing.TB, restURL, jobID, want string) {
	t.Helper()
	for {
		got := jobState(ctx, t, restURL, jobID)
		if got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s: want state %s, have %s: %v", jobID, want, got, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func cancelJob(ctx context.Context, t testing.TB, restURL, jobID string) {
	t.Helper()
	restDo(ctx, t, http.MethodPatch, restURL+"/jobs/"+jobID+"?mode=cancel", "", nil, nil)
	waitJobState(ctx, t, restURL, jobID, "CANCELED")
}

// waitCompletedCheckpoint waits until the job has completed a checkpoint
// with an id above after, and returns its id and external path.
func waitCompletedCheckpoint(ctx context.Context, t testing.TB, restURL, jobID string, after int64) (int64, string) {
	t.Helper()
	for {
		var cp struct {
			Latest struct {
				Completed *struct {
					ID           int64  `json:"id"`
					ExternalPath string `json:"external_path"`
				} `json:"completed"`
			} `json:"latest"`
		}
		restJSON(ctx, t, http.MethodGet, restURL+"/jobs/"+jobID+"/checkpoints", nil, &cp)
		if c := cp.Latest.Completed; c != nil && c.ID > after && c.ExternalPath != "" {
			return c.ID, c.ExternalPath
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s: no completed checkpoint after %d: %v", jobID, after, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
