package flinktb

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeREST serves the few REST resources JobProgress reads, shaped like
// Flink 1.20 / 2.2 answers.
func fakeREST(t *testing.T, counter string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/jobs/j1", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"jid":"j1","state":"RUNNING","vertices":[
			{"id":"v-src","name":"Source: datagen","parallelism":2},
			{"id":"v-cnt","name":"counter -> discard: Writer","parallelism":2}]}`))
	})
	mux.HandleFunc("/jobs/j1/vertices/v-src/subtasks/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id":"numRecordsOut"}]`))
	})
	mux.HandleFunc("/jobs/j1/vertices/v-cnt/subtasks/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("get") == "" {
			w.Write([]byte(`[{"id":"numRecordsIn"},{"id":"counter.flinkGitopsCounter"}]`))
			return
		}
		if r.URL.Query().Get("get") != "counter.flinkGitopsCounter" || r.URL.Query().Get("agg") != "max" {
			http.Error(w, "unexpected query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		w.Write([]byte(`[{"id":"counter.flinkGitopsCounter"` + counter + `}]`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestJobProgress(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv := fakeREST(t, `,"max":42.0`)
	got, err := JobProgress(ctx, srv.URL, "j1")
	if err != nil || got != 42 {
		t.Fatalf("JobProgress = %d, %v; want 42", got, err)
	}
	if got, err := WaitProgress(ctx, srv.URL, "j1", 40); err != nil || got != 42 {
		t.Fatalf("WaitProgress = %d, %v; want 42", got, err)
	}

	empty := fakeREST(t, "")
	if _, err := JobProgress(ctx, empty.URL, "j1"); !errors.Is(err, ErrNoProgress) {
		t.Fatalf("no value yet: err = %v, want ErrNoProgress", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancelShort()
	if _, err := WaitProgress(short, srv.URL, "j1", 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitProgress below target: err = %v, want deadline exceeded", err)
	}
	if _, err := JobProgress(ctx, srv.URL, "nope"); err == nil {
		t.Fatal("unknown job: want an error")
	}
}

func TestProgressFromFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "progress")
	if _, err := ProgressFromFiles(p); !errors.Is(err, ErrNoProgress) {
		t.Fatalf("no files: err = %v, want ErrNoProgress", err)
	}
	for name, v := range map[string]string{"progress.0": "12\n", "progress.1": "30\n", "progress.1.tmp": "99\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := ProgressFromFiles(p); err != nil || got != 30 {
		t.Fatalf("ProgressFromFiles = %d, %v; want 30", got, err)
	}
}
