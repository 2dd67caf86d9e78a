package flinkclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	gosync "sync"
	"time"
)

// DefaultTimeout bounds each call unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// DefaultUploadTimeout bounds a jar upload unless WithUploadTimeout says otherwise.
const DefaultUploadTimeout = 5 * time.Minute

// maxErrorBody caps how much of an error body is read.
const maxErrorBody = 1 << 20

// Client talks to one Flink JobManager's REST API. It is safe for concurrent use.
type Client struct {
	base          *url.URL
	hc            *http.Client
	timeout       time.Duration
	uploadTimeout time.Duration
	userAgent     string
	log           *slog.Logger

	mu      gosync.Mutex
	version *Version // detected or configured Flink version
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a client with its own
// transport and no overall timeout; each call is bounded by WithTimeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds every call except jar upload (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUploadTimeout bounds a jar upload (default DefaultUploadTimeout).
func WithUploadTimeout(d time.Duration) Option { return func(c *Client) { c.uploadTimeout = d } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithLogger logs each request at debug level (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithVersion fixes the Flink version instead of detecting it from /config
// on the first call that depends on it.
func WithVersion(v Version) Option { return func(c *Client) { c.version = &v } }

// New returns a client for the REST API at baseURL, e.g.
// http://flink-rest.ns:8081 or http://127.0.0.1:9000/ns/name (a path prefix,
// as behind a proxy, is kept). An unparsable baseURL makes every call fail
// with KindBadRequest.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		timeout:       DefaultTimeout,
		uploadTimeout: DefaultUploadTimeout,
		userAgent:     "flink-gitops",
		log:           slog.New(slog.DiscardHandler),
	}
	if u, err := url.Parse(strings.TrimRight(baseURL, "/")); err == nil && u.Scheme != "" && u.Host != "" {
		c.base = u
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: NewTransport()}
	}
	return c
}

// NewTransport returns a new HTTP transport with net/http's default
// settings (proxy from the environment, 30 s dial, HTTP/2, 90 s idle
// connections), built without reading http.DefaultTransport: the
// flink-gitops binary replaces that with one that refuses every request.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the base URL the client was created with.
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// NewTriggerID returns a random 32-hex-digit id usable as a savepoint or
// checkpoint trigger id.
func NewTriggerID() string { return randomHex() }

// NewJobID returns a random 32-hex-digit id usable as a Flink job id.
func NewJobID() string { return randomHex() }

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether s is a 32-hex-digit Flink id (JobID, TriggerId).
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func checkID(op, what, id string) error {
	if !validID(id) {
		return &Error{Kind: KindBadRequest, Op: op, Message: fmt.Sprintf("%s %q is not a 32-digit hex id", what, id)}
	}
	return nil
}

// endpoint joins the base URL's path with the given path segments, each
// escaped, and adds the query.
func (c *Client) endpoint(query url.Values, segments ...string) (string, error) {
	if c.base == nil {
		return "", fmt.Errorf("invalid flink REST base URL")
	}
	u := *c.base
	esc := make([]string, len(segments))
	for i, s := range segments {
		esc[i] = url.PathEscape(s)
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	raw := prefix + "/" + strings.Join(esc, "/")
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", err
	}
	u.Path, u.RawPath = p, raw
	u.RawQuery = query.Encode()
	return u.String(), nil
}

// request describes one REST call.
type request struct {
	op          string
	method      string
	segments    []string
	query       url.Values
	body        any       // JSON-encoded when non-nil
	rawBody     io.Reader // sent as is when non-nil (with contentType)
	contentType string
	timeout     time.Duration
	okStatus    []int // accepted statuses; default 200 and 202
	maxBody     int64 // caps the decoded answer in bytes (0: no cap)
}

// do performs the call and decodes a successful JSON answer into out (if
// non-nil). Failures are *Error, except a cancelled or expired ctx of the
// caller, which is returned as ctx.Err() wrapped with the op.
func (c *Client) do(ctx context.Context, r request, out any) error {
	timeout := r.timeout
	if timeout == 0 {
		timeout = c.timeout
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	target, err := c.endpoint(r.query, r.segments...)
	if err != nil {
		return &Error{Kind: KindBadRequest, Op: r.op, Message: err.Error()}
	}
	var body io.Reader
	contentType := r.contentType
	switch {
	case r.rawBody != nil:
		body = r.rawBody
	case r.body != nil:
		b, err := json.Marshal(r.body)
		if err != nil {
			return &Error{Kind: KindBadRequest, Op: r.op, Message: "encode request: " + err.Error()}
		}
		body = bytes.NewReader(b)
		contentType = "application/json"
	}
	req, err := http.NewRequestWithContext(callCtx, r.method, target, body)
	if err != nil {
		return &Error{Kind: KindBadRequest, Op: r.op, Message: err.Error()}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", r.op, ctx.Err())
		}
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("no answer within %s", timeout)
		}
		c.log.Debug("flink rest call failed", "op", r.op, "method", r.method, "url", target, "error", err)
		return &Error{Kind: KindNotReachable, Op: r.op, Message: msg, Err: err}
	}
	defer resp.Body.Close()
	c.log.Debug("flink rest call", "op", r.op, "method", r.method, "url", target,
		"status", resp.StatusCode, "duration", time.Since(start))

	ok := r.okStatus
	if ok == nil {
		ok = []int{http.StatusOK, http.StatusAccepted}
	}
	for _, s := range ok {
		if resp.StatusCode != s {
			continue
		}
		if out == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			return nil
		}
		var rd io.Reader = resp.Body
		if r.maxBody > 0 {
			rd = io.LimitReader(resp.Body, r.maxBody)
		}
		if err := json.NewDecoder(rd).Decode(out); err != nil {
			if r.maxBody > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				return &Error{Kind: KindServer, Op: r.op, StatusCode: resp.StatusCode, Message: fmt.Sprintf("answer is larger than %d bytes", r.maxBody), Err: err}
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", r.op, ctx.Err())
			}
			if callCtx.Err() != nil {
				return &Error{Kind: KindNotReachable, Op: r.op, Message: "reading answer: " + err.Error(), Err: err}
			}
			return &Error{Kind: KindServer, Op: r.op, StatusCode: resp.StatusCode, Message: "decode answer: " + err.Error(), Err: err}
		}
		return nil
	}
	return c.statusError(r.op, resp)
}

// statusError builds the *Error for an unexpected HTTP status from Flink's
// {"errors": [...]} body.
func (c *Client) statusError(op string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Kind: kindForStatus(resp.StatusCode), StatusCode: resp.StatusCode, Op: op}
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Errors) > 0 {
		e.Message = readableErrors(body.Errors)
	} else if s := strings.TrimSpace(string(raw)); s != "" {
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		e.Message = s
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	// Flink reports a duplicate job id as "Could not execute application"
	// (400) or a server error with the cause deep in the trace; it is a
	// conflict, not our bug and not something a retry fixes. Flink 2.3 runs
	// a jar as an application and names it DuplicateApplicationSubmissionException
	// (400).
	if strings.Contains(string(raw), "DuplicateJobSubmissionException") || strings.Contains(string(raw), "DuplicateApplicationSubmissionException") {
		e.Kind = KindConflict
	}
	return e
}
