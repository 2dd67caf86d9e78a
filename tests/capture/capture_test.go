package capture

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecorderSavesSanitizedExchange(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"target-directory":"/tmp/TestX123/sp"}` {
			t.Errorf("server got body %q", b)
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"request-id":"abc","where":"/tmp/TestX123/sp/savepoint-1","err":"<Exception on server side:>","failure-cause":{"serialized-throwable":"rO0ABXNy+/="}}`))
	}))
	defer srv.Close()

	dir := t.TempDir()
	rec := New(dir, "2.2.0")
	rec.PathPrefix = "/ns/app"
	rec.Replace("/tmp/TestX123", "/flink")
	hc := &http.Client{Transport: rec}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ns/app/jobs/j1/savepoints?x=1", strings.NewReader(`{"target-directory":"/tmp/TestX123/sp"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "/tmp/TestX123/sp/savepoint-1") {
		t.Errorf("caller must see the unsanitized answer, got %s", b)
	}
	if err := rec.Save("savepoint_trigger"); err != nil {
		t.Fatal(err)
	}
	if err := rec.Save("again"); err == nil {
		t.Error("second Save without a new exchange must fail")
	}

	raw, err := os.ReadFile(filepath.Join(dir, "savepoint_trigger.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "TestX123") || !strings.Contains(string(raw), "<Exception on server side:>") ||
		strings.Contains(string(raw), "rO0ABXNy") {
		t.Errorf("fixture not sanitized or HTML-escaped:\n%s", raw)
	}
	var x Exchange
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatal(err)
	}
	if x.FlinkVersion != "2.2.0" || x.Status != 202 || x.Request.Method != "POST" ||
		x.Request.Path != "/jobs/j1/savepoints" || x.Request.Query != "x=1" ||
		compact(t, x.Request.Body) != `{"target-directory":"/flink/sp"}` {
		t.Errorf("unexpected exchange: %+v (request body %s)", x, x.Request.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(x.Body, &body); err != nil || body["where"] != "/flink/sp/savepoint-1" {
		t.Errorf("body = %v, %v", body, err)
	}
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
