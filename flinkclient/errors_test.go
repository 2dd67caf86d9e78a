package flinkclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestReadableCause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain message", "Job could not be found.", "Job could not be found."},
		{"not found route", "Not found: /jobs/abc", "Not found: /jobs/abc"},
		{
			"nested completion exceptions, root cause wins",
			"java.util.concurrent.CompletionException: java.util.concurrent.CompletionException: org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint.\n" +
				"\tat org.apache.flink.runtime.scheduler.SchedulerBase.lambda$triggerSavepoint$1(SchedulerBase.java:1034)\n" +
				"\tat java.base/java.lang.Thread.run(Thread.java:829)\n" +
				"Caused by: java.util.concurrent.CompletionException: org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint.\n" +
				"\t... 10 more\n" +
				"Caused by: org.apache.flink.runtime.checkpoint.CheckpointException: Failure to finalize checkpoint.\n" +
				"\tat org.apache.flink.runtime.checkpoint.CheckpointCoordinator.finalizeCheckpoint(CheckpointCoordinator.java:1417)\n" +
				"Caused by: java.nio.file.AccessDeniedException: /sp/savepoint-0a1b2c-3d4e5f6a7b8c\n" +
				"\tat java.base/sun.nio.fs.UnixException.translateToIOException(UnixException.java:90)\n" +
				"\t... 14 more\n",
			"AccessDeniedException: /sp/savepoint-0a1b2c-3d4e5f6a7b8c",
		},
		{
			"server side wrapper",
			"<Exception on server side:\norg.apache.flink.runtime.rest.handler.RestHandlerException: Job cancellation failed because the job has already reached another terminal state (FINISHED).\n" +
				"\tat org.apache.flink.runtime.rest.handler.job.JobCancellationHandler.lambda$handleRequest$0(JobCancellationHandler.java:128)\n\nEnd of exception on server side>",
			"Job cancellation failed because the job has already reached another terminal state (FINISHED).",
		},
		{
			"suppressed exceptions are skipped",
			"java.lang.RuntimeException: boom\n\tat a.B.c(B.java:1)\n\tSuppressed: java.io.IOException: close failed\n\t\tat a.B.d(B.java:2)\n",
			"RuntimeException: boom",
		},
		{"class without message", "java.lang.NullPointerException\n\tat a.B.c(B.java:1)", "NullPointerException"},
		{"empty", "  ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ReadableCause(tt.in); got != tt.want {
				t.Errorf("ReadableCause() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStatusErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   int
		body     string
		want     error
		wantKind Kind
		wantMsg  string
	}{
		{404, `{"errors":["Job could not be found."]}`, ErrNotFound, KindNotFound, "Job could not be found."},
		{400, `{"errors":["Request did not match expected format SavepointTriggerRequestBody."]}`, ErrBadRequest, KindBadRequest, "Request did not match expected format SavepointTriggerRequestBody."},
		{409, `{"errors":["Job cancellation failed because the job has already reached another terminal state (CANCELED)."]}`, ErrConflict, KindConflict, "Job cancellation failed because the job has already reached another terminal state (CANCELED)."},
		{503, `{"errors":["Service temporarily unavailable due to an ongoing leader election. Please refresh."]}`, ErrNotReachable, KindNotReachable, "Service temporarily unavailable due to an ongoing leader election. Please refresh."},
		{502, `<html>bad gateway</html>`, ErrNotReachable, KindNotReachable, "<html>bad gateway</html>"},
		{500, `{"errors":["Internal server error.","<Exception on server side:\norg.apache.flink.util.FlinkException: something\n\tat x.Y.z(Y.java:1)\n\nEnd of exception on server side>"]}`, ErrServer, KindServer, "Internal server error.: FlinkException: something"},
		{500, `{"errors":["Internal server error.","<Exception on server side:\norg.apache.flink.runtime.client.DuplicateJobSubmissionException: Job has already been submitted.\n\tat x.Y.z(Y.java:1)\n\nEnd of exception on server side>"]}`, ErrConflict, KindConflict, "Internal server error.: DuplicateJobSubmissionException: Job has already been submitted."},
		{400, `{"errors":["org.apache.flink.runtime.client.DuplicateApplicationSubmissionException: Application has already been submitted."]}`, ErrConflict, KindConflict, "DuplicateApplicationSubmissionException: Application has already been submitted."},
		{500, ``, ErrServer, KindServer, "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			_, err := New(srv.URL).Job(context.Background(), "0123456789abcdef0123456789abcdef")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.want)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("err %T is not *Error", err)
			}
			if fe.Kind != tt.wantKind || fe.StatusCode != tt.status || fe.Message != tt.wantMsg {
				t.Errorf("got kind %v status %d message %q; want %v %d %q", fe.Kind, fe.StatusCode, fe.Message, tt.wantKind, tt.status, tt.wantMsg)
			}
			if fe.Op != "get job 0123456789abcdef0123456789abcdef" {
				t.Errorf("Op = %q", fe.Op)
			}
		})
	}
}

func TestNotReachable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = New("http://" + addr).Overview(context.Background())
	if !errors.Is(err, ErrNotReachable) || !Retryable(err) {
		t.Fatalf("err = %v, want ErrNotReachable and retryable", err)
	}
}

func TestPerCallTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	_, err := New(srv.URL, WithTimeout(100*time.Millisecond)).Overview(context.Background())
	if !errors.Is(err, ErrNotReachable) {
		t.Fatalf("err = %v, want ErrNotReachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call took %s despite a 100ms timeout", d)
	}
}

func TestCallerCancelIsNotClassified(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err := New(srv.URL).Overview(ctx)
	if !errors.Is(err, context.Canceled) || KindOf(err) != KindUnknown {
		t.Fatalf("err = %v (kind %v), want context.Canceled and no kind", err, KindOf(err))
	}
}

func TestInvalidIDsAreBadRequestsWithoutACall(t *testing.T) {
	t.Parallel()
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	c := New(srv.URL)
	ctx := context.Background()
	job := "0123456789abcdef0123456789abcdef"
	errs := []error{
		func() error { _, err := c.Job(ctx, "nope"); return err }(),
		func() error {
			_, err := c.TriggerSavepoint(ctx, job, SavepointOptions{TriggerID: "short"})
			return err
		}(),
		func() error { _, err := c.SavepointStatus(ctx, job, "xyz"); return err }(),
		func() error { _, err := c.RunJar(ctx, "a.jar", JarRunRequest{JobID: "g123"}); return err }(),
		func() error { _, err := c.DisposeSavepoint(ctx, ""); return err }(),
	}
	for i, err := range errs {
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("case %d: err = %v, want ErrBadRequest", i, err)
		}
	}
	if calls != 0 {
		t.Errorf("server saw %d calls, want 0", calls)
	}
}

func TestOperationErr(t *testing.T) {
	t.Parallel()
	if err := (Operation{Status: InProgress}).Err(); !errors.Is(err, ErrInProgress) || !Retryable(err) {
		t.Errorf("in progress: %v", err)
	}
	if err := (Operation{Status: Completed, Location: "file:/sp"}).Err(); err != nil {
		t.Errorf("completed: %v", err)
	}
	failed := &Error{Kind: KindOperationFailed, Message: "x"}
	if err := (Operation{Status: Completed, FailureCause: failed}).Err(); !errors.Is(err, ErrOperationFailed) || Retryable(err) {
		t.Errorf("failed: %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"1.20.3", 1, 20, true},
		{"2.2.0", 2, 2, true},
		{"2.1-SNAPSHOT", 2, 1, true},
		{"1.20", 1, 20, true},
		{"<unknown>", 0, 0, false},
		{"2", 0, 0, false},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (v.Major != tt.major || v.Minor != tt.minor)) {
			t.Errorf("ParseVersion(%q) = %+v, %v", tt.in, v, err)
		}
	}
	if v, _ := ParseVersion("1.20.3"); !v.AtLeast(1, 17) || v.AtLeast(2, 0) {
		t.Errorf("AtLeast wrong for %v", v)
	}
}

func TestEndpointJoinsPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, want string }{
		{"http://h:8081", "http://h:8081/jobs/ab/savepoints"},
		{"http://h:8081/", "http://h:8081/jobs/ab/savepoints"},
		{"http://127.0.0.1:9/ns/name", "http://127.0.0.1:9/ns/name/jobs/ab/savepoints"},
		{"http://127.0.0.1:9/ns/name/", "http://127.0.0.1:9/ns/name/jobs/ab/savepoints"},
	}
	for _, tt := range tests {
		got, err := New(tt.base).endpoint(nil, "jobs", "ab", "savepoints")
		if err != nil || got != tt.want {
			t.Errorf("base %q: got %q, %v; want %q", tt.base, got, err, tt.want)
		}
	}
	got, _ := New("http://h/p").endpoint(nil, "jars", "a b/c.jar", "run")
	if got != "http://h/p/jars/a%20b%2Fc.jar/run" {
		t.Errorf("escaping: got %q", got)
	}
	if _, err := New("not a url").Overview(context.Background()); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad base URL: err = %v, want ErrBadRequest", err)
	}
}

func TestCheckpointsDisabledIsNotJobNotFound(t *testing.T) {
	t.Parallel()
	body := `{"errors":["org.apache.flink.runtime.rest.handler.RestHandlerException: Checkpointing has not been enabled.\n\tat org.apache.flink.runtime.rest.handler.job.checkpoints.CheckpointingStatisticsHandler.createCheckpointingStatistics(CheckpointingStatisticsHandler.java:107)\n"]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	cp, err := New(srv.URL).Checkpoints(context.Background(), "0123456789abcdef0123456789abcdef")
	if err != nil || !cp.Disabled || cp.LatestCompleted != nil {
		t.Fatalf("Checkpoints = %+v, %v; want Disabled", cp, err)
	}
	body = `{"errors":["org.apache.flink.runtime.rest.NotFoundException: Job 0123456789abcdef0123456789abcdef not found"]}`
	_, err = New(srv.URL).Checkpoints(context.Background(), "0123456789abcdef0123456789abcdef")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown job: err = %v, want ErrNotFound", err)
	}
}
