package flinkclient

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is one recorded REST exchange, as tests/capture writes it to
// testdata/<version>/<call>.json.
type fixture struct {
	FlinkVersion string `json:"flinkVersion"`
	Request      struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Query  string          `json:"query,omitempty"`
		Body   json.RawMessage `json:"body,omitempty"`
	} `json:"request"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// fixtureVersions are the Flink versions whose captured answers the unit
// tests replay.
var fixtureVersions = []string{"1.18", "1.20", "2.2", "2.3"}

func loadFixture(t *testing.T, version, name string) fixture {
	t.Helper()
	p := filepath.Join("testdata", version, name+".json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("parse fixture %s: %v", p, err)
	}
	return f
}

// body decodes the fixture's response body into a generic map for
// comparing the client's typed result against the raw JSON.
func (f fixture) bodyMap(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Body, &m); err != nil {
		t.Fatalf("fixture body is not an object: %v", err)
	}
	return m
}

// seenRequest is what the replay server received.
type seenRequest struct {
	Method, Path, Query, ContentType string
	Body                             []byte
}

// replay starts a server that answers every request with the fixture and
// records what it received. The base URL carries a path prefix, as behind
// the test bed's proxy, to check path joining.
func replay(t *testing.T, fixtures ...fixture) (*Client, *[]seenRequest) {
	t.Helper()
	var seen []seenRequest
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, seenRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Content-Type"), b})
		if !strings.HasPrefix(r.URL.Path, "/ns/app/") {
			http.Error(w, `{"errors":["Not found: `+r.URL.Path+`"]}`, http.StatusNotFound)
			return
		}
		f := fixtures[min(i, len(fixtures)-1)]
		i++
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(f.Status)
		_, _ = w.Write(f.Body)
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL + "/ns/app/"), &seen
}

// pathOf strips the proxy prefix the replay server adds.
func pathOf(s seenRequest) string { return strings.TrimPrefix(s.Path, "/ns/app") }
