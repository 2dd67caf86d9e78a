package flinkclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestJobMetrics(t *testing.T) {
	const job = "0123456789abcdef0123456789abcdef"
	var gotPath, gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotQuery = r.URL.Path, r.URL.Query().Get("get")
		if r.URL.Path != "/jobs/"+job+"/metrics" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":["Job could not be found."]}`))
			return
		}
		_, _ = w.Write([]byte(`[{"id":"numRestarts","value":"3"},{"id":"numberOfCompletedCheckpoints","value":"12"}]`))
	}))
	defer srv.Close()
	c := New(srv.URL)
	m, err := c.JobMetrics(context.Background(), job, "numRestarts", "numberOfCompletedCheckpoints", "fullRestarts")
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != "/jobs/"+job+"/metrics" || gotQuery != "numRestarts,numberOfCompletedCheckpoints,fullRestarts" {
		t.Errorf("asked %s?get=%s", gotPath, gotQuery)
	}
	if m["numRestarts"] != "3" || m["numberOfCompletedCheckpoints"] != "12" {
		t.Errorf("metrics %v", m)
	}
	if _, ok := m["fullRestarts"]; ok {
		t.Errorf("a metric Flink did not return is present: %v", m)
	}
	if _, err := c.JobMetrics(context.Background(), "nope", "numRestarts"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad job id: %v, want ErrBadRequest", err)
	}
	if _, err := c.JobMetrics(context.Background(), "fedcba9876543210fedcba9876543210", "numRestarts"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown job: %v, want ErrNotFound", err)
	}
}
