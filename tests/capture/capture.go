// Package capture records Flink REST exchanges as JSON fixtures for the
// flinkclient unit tests.
//
// A Recorder is an http.RoundTripper placed under a flinkclient.Client that
// talks to a real cluster (the flinkclient contract tests do this when
// FLINK_CAPTURE=1). After each call the test names the exchange with Save,
// which writes flinkclient/testdata/<version>/<name>.json:
//
//	{"flinkVersion": "1.20.3",
//	 "request": {"method": "POST", "path": "/jobs/<id>/savepoints", "body": {...}},
//	 "status": 202,
//	 "body": {"request-id": "..."}}
//
// Paths are sanitized: the request path loses the base URL's prefix, and
// local directories (temp dirs, the home directory) are replaced by stable
// placeholders so fixtures do not change with the machine that captured them;
// Java-serialized exceptions ("serialized-throwable") are omitted.
package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	gosync "sync"
)

// Exchange is one recorded request and its answer.
type Exchange struct {
	FlinkVersion string  `json:"flinkVersion"`
	Request      Request `json:"request"`
	Status       int     `json:"status"`
	// Body is the answer as Flink sent it (sanitized), JSON when Flink sent JSON.
	Body json.RawMessage `json:"body"`
}

// Request is the recorded request.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
	// Body is the JSON request body; omitted for non-JSON bodies (jar uploads).
	Body json.RawMessage `json:"body,omitempty"`
}

// Recorder records the last exchange made through it.
type Recorder struct {
	// Dir is where Save writes, e.g. flinkclient/testdata/1.20.
	Dir string
	// FlinkVersion is written into every fixture.
	FlinkVersion string
	// PathPrefix is stripped from request paths (the base URL's path).
	PathPrefix string
	// Next performs the requests (default http.DefaultTransport).
	Next http.RoundTripper

	mu          gosync.Mutex
	last        *Exchange
	replacement [][2]string
}

// New returns a Recorder writing to dir.
func New(dir, flinkVersion string) *Recorder {
	return &Recorder{Dir: dir, FlinkVersion: flinkVersion}
}

// Replace makes Save replace every occurrence of old by placeholder, in
// request and answer. Longer strings are replaced first.
func (r *Recorder) Replace(old, placeholder string) {
	if old == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replacement = append(r.replacement, [2]string{old, placeholder})
	sort.SliceStable(r.replacement, func(i, j int) bool { return len(r.replacement[i][0]) > len(r.replacement[j][0]) })
}

// RoundTrip performs the request and records it with its answer.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	var reqBody []byte
	if req.Body != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	x := &Exchange{
		FlinkVersion: r.FlinkVersion,
		Request: Request{
			Method: req.Method,
			Path:   strings.TrimPrefix(req.URL.EscapedPath(), strings.TrimRight(r.PathPrefix, "/")),
			Query:  req.URL.RawQuery,
		},
		Status: resp.StatusCode,
	}
	if json.Valid(reqBody) && len(reqBody) > 0 {
		x.Request.Body = reqBody
	}
	if json.Valid(body) {
		x.Body = body
	} else {
		// Keep non-JSON answers (a proxy's error page) as a JSON string.
		x.Body, _ = json.Marshal(string(body))
	}
	r.mu.Lock()
	r.last = x
	r.mu.Unlock()
	return resp, nil
}

// Save writes the last recorded exchange to Dir/name.json. It is an error if
// nothing was recorded since the previous Save.
func (r *Recorder) Save(name string) error {
	r.mu.Lock()
	x := r.last
	r.last = nil
	repl := r.replacement
	r.mu.Unlock()
	if x == nil {
		return fmt.Errorf("capture %s: no exchange recorded", name)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep Flink's "<Exception on server side: …>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(x); err != nil {
		return fmt.Errorf("capture %s: %w", name, err)
	}
	// The Java-serialized exception is opaque bytes holding unsanitized
	// local paths; the readable "stack-trace" next to it has the same content.
	s := serializedThrowable.ReplaceAllString(buf.String(), `"serialized-throwable": "<omitted by tests/capture>"`)
	for _, p := range repl {
		s = strings.ReplaceAll(s, jsonEscape(p[0]), jsonEscape(p[1]))
	}
	if !json.Valid([]byte(s)) {
		return fmt.Errorf("capture %s: sanitized JSON is invalid", name)
	}
	out := bytes.NewBufferString(s)
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("capture %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, name+".json"), out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("capture %s: %w", name, err)
	}
	return nil
}

var serializedThrowable = regexp.MustCompile(`"serialized-throwable": "[^"]*"`)

// jsonEscape returns s as it appears inside a JSON string.
func jsonEscape(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b := bytes.TrimSpace(buf.Bytes())
	return string(b[1 : len(b)-1])
}
