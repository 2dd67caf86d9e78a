package flinkclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunJarClaimModeField checks that the claim mode goes out as
// restoreMode to Flink before 1.20 and as claimMode from 1.20 on, with the version
// detected from /config on first use.
func TestRunJarClaimModeField(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ version, field string }{{"1.19.1", "restoreMode"}, {"1.20.3", "claimMode"}, {"2.2.0", "claimMode"}} {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			var configCalls atomic.Int32
			var runBody map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/p/config":
					configCalls.Add(1)
					_, _ = w.Write([]byte(`{"flink-version":"` + tt.version + `","features":{"web-submit":true}}`))
				case strings.HasSuffix(r.URL.Path, "/run"):
					_ = json.NewDecoder(r.Body).Decode(&runBody)
					_, _ = w.Write([]byte(`{"jobid":"` + runBody["jobId"].(string) + `"}`))
				default:
					w.WriteHeader(404)
				}
			}))
			defer srv.Close()
			c := New(srv.URL + "/p")
			job := NewJobID()
			for range 2 {
				got, err := c.RunJar(context.Background(), "abc_job.jar", JarRunRequest{
					JobID: job, SavepointPath: "file:/sp/savepoint-1", ClaimMode: ClaimNoClaim, Args: []string{"--a", "b c"}, Parallelism: 2,
				})
				if err != nil || got != job {
					t.Fatalf("RunJar = %q, %v", got, err)
				}
			}
			if n := configCalls.Load(); n != 1 {
				t.Errorf("/config asked %d times, want once", n)
			}
			other := map[string]string{"restoreMode": "claimMode", "claimMode": "restoreMode"}[tt.field]
			if runBody[tt.field] != "NO_CLAIM" || runBody[other] != nil {
				t.Errorf("body %v: want %s=NO_CLAIM and no %s", runBody, tt.field, other)
			}
			if runBody["savepointPath"] != "file:/sp/savepoint-1" || runBody["parallelism"] != 2.0 ||
				len(runBody["programArgsList"].([]any)) != 2 || runBody["programArgs"] != nil {
				t.Errorf("body %v", runBody)
			}
		})
	}
}

func TestAwait(t *testing.T) {
	t.Parallel()
	n := 0
	op, err := Await(context.Background(), time.Millisecond, func(context.Context) (Operation, error) {
		n++
		switch n {
		case 1:
			return Operation{}, &Error{Kind: KindNotReachable}
		case 2:
			return Operation{Status: InProgress}, nil
		}
		return Operation{Status: Completed, Location: "file:/sp/1"}, nil
	})
	if err != nil || op.Location != "file:/sp/1" || n != 3 {
		t.Errorf("Await = %+v, %v after %d polls", op, err, n)
	}

	failed := &Error{Kind: KindOperationFailed, Message: "IOException: disk full"}
	_, err = Await(context.Background(), time.Millisecond, func(context.Context) (Operation, error) {
		return Operation{Status: Completed, FailureCause: failed}, nil
	})
	if !errors.Is(err, ErrOperationFailed) {
		t.Errorf("failed op: %v", err)
	}

	_, err = Await(context.Background(), time.Millisecond, func(context.Context) (Operation, error) {
		return Operation{}, &Error{Kind: KindNotFound}
	})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("not found: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = Await(ctx, time.Millisecond, func(context.Context) (Operation, error) {
		return Operation{Status: InProgress}, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

func TestJobStatusTerminal(t *testing.T) {
	t.Parallel()
	for s, want := range map[JobStatus][2]bool{
		JobRunning: {false, false}, JobFinished: {true, true}, JobCanceled: {true, true}, JobFailed: {true, true},
		JobSuspended: {false, true}, JobRestarting: {false, false}, JobCancelling: {false, false},
	} {
		if s.GloballyTerminal() != want[0] || s.Terminal() != want[1] {
			t.Errorf("%s: GloballyTerminal %v Terminal %v, want %v", s, s.GloballyTerminal(), s.Terminal(), want)
		}
	}
}
