package sync

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	gosync "sync"
	"time"
)

// Webhook providers a request can be authenticated as.
const (
	ProviderGitHub  = "github"
	ProviderGitea   = "gitea"
	ProviderGitLab  = "gitlab"
	ProviderGeneric = "generic"
)

// Event types the handler understands; any other type is passed to
// callbacks registered for it (or for "*") and otherwise ignored.
const (
	EventPush        = "push"
	EventPullRequest = "pull_request"
	EventPing        = "ping"
)

// WebhookOptions configures a WebhookHandler.
type WebhookOptions struct {
	// Secret is the shared webhook secret: the HMAC key for GitHub, Gitea and
	// generic requests, the token for GitLab. Required.
	Secret []byte
	// Branch is the watched branch; only a push to it wakes the poller.
	Branch string
	// GenericHeader is the header of the generic provider, holding
	// "sha256=<hex HMAC-SHA256 of the body>" or just the hex
	// (default "X-Signature-256").
	GenericHeader string
	// MaxBodyBytes caps the request body (default 1 MiB); larger → 413.
	MaxBodyBytes int64
	// RatePerSecond and Burst rate-limit requests (default 1/s, burst 10);
	// over the limit → 429.
	RatePerSecond float64
	Burst         int
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Event is an authenticated webhook delivery.
type Event struct {
	// Provider is ProviderGitHub, ProviderGitea, ProviderGitLab or ProviderGeneric.
	Provider string
	// Type is EventPush, EventPullRequest, EventPing, or the provider's own
	// name for other events.
	Type string
	// Ref is the pushed ref for push events (e.g. refs/heads/main).
	Ref string
	// After is the pushed head commit for push events, if the payload says.
	After string
	// Delivery is the provider's delivery id, if any.
	Delivery string
	// Body is the raw JSON payload, for callbacks that need more fields.
	Body []byte
}

// WebhookHandler is an http.Handler for forge webhooks. It authenticates
// each request (HMAC or token, compared in constant time), caps its size,
// rate-limits, and on a push to the watched branch calls wake — it never
// decides what changed; the poll does. Callbacks registered with On receive
// other authenticated events (e.g. pull requests for a PR reporter).
type WebhookHandler struct {
	opts    WebhookOptions
	wake    func()
	limiter *tokenBucket

	mu        gosync.RWMutex
	callbacks map[string][]func(Event)
}

// NewWebhookHandler returns a handler that calls wake (usually
// Source.Wake) on every authenticated push to opts.Branch.
func NewWebhookHandler(opts WebhookOptions, wake func()) (*WebhookHandler, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("webhook: a secret is required")
	}
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.GenericHeader == "" {
		opts.GenericHeader = "X-Signature-256"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.RatePerSecond <= 0 {
		opts.RatePerSecond = 1
	}
	if opts.Burst <= 0 {
		opts.Burst = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if wake == nil {
		wake = func() {}
	}
	return &WebhookHandler{
		opts:      opts,
		wake:      wake,
		limiter:   newTokenBucket(opts.RatePerSecond, opts.Burst, time.Now),
		callbacks: map[string][]func(Event){},
	}, nil
}

// On registers fn for authenticated events of type eventType ("*" for all).
// Callbacks run synchronously in the request; they should hand work off.
func (h *WebhookHandler) On(eventType string, fn func(Event)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.callbacks[eventType] = append(h.callbacks[eventType], fn)
}

// ServeHTTP answers 405 for non-POST, 429 over the rate limit, 413 for a
// body over the cap, 401 without credentials, 403 for a wrong signature or
// token, 415 for a payload that is not JSON, 400 for malformed JSON, 202 for
// a push to the watched branch (the poller is woken), and 200 for anything
// else that was authenticated (ignored or handed to callbacks).
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if ok, retry := h.limiter.take(); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	provider, status := h.authenticate(r.Header, body)
	if status != 0 {
		h.opts.Logger.Warn("webhook refused", "status", status, "provider", provider, "remote", r.RemoteAddr)
		http.Error(w, http.StatusText(status), status)
		return
	}
	payload, err := jsonPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	ev, err := parseEvent(provider, r.Header, payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	woke := ev.Type == EventPush && ev.Ref == "refs/heads/"+h.opts.Branch
	if woke {
		h.wake()
	}
	h.dispatch(ev)
	h.opts.Logger.Info("webhook", "provider", ev.Provider, "event", ev.Type, "ref", ev.Ref, "after", ev.After, "delivery", ev.Delivery, "wake", woke)
	if woke {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "poll scheduled\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (h *WebhookHandler) dispatch(ev Event) {
	h.mu.RLock()
	fns := append(append([]func(Event){}, h.callbacks[ev.Type]...), h.callbacks["*"]...)
	h.mu.RUnlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// authenticate finds the provider from the headers and checks the request
// against the secret. It returns 0 when the request is authentic, else the
// status code to answer.
func (h *WebhookHandler) authenticate(hdr http.Header, body []byte) (string, int) {
	switch {
	case hdr.Get("X-Gitlab-Token") != "":
		return ProviderGitLab, compareOrForbid(hdr.Get("X-Gitlab-Token"), string(h.opts.Secret))
	case hdr.Get("X-Gitea-Signature") != "":
		// Gitea sends the bare hex HMAC-SHA256.
		return ProviderGitea, h.checkHMAC(hdr.Get("X-Gitea-Signature"), body)
	case hdr.Get("X-Hub-Signature-256") != "":
		sig, ok := strings.CutPrefix(hdr.Get("X-Hub-Signature-256"), "sha256=")
		if !ok {
			return ProviderGitHub, http.StatusForbidden
		}
		return ProviderGitHub, h.checkHMAC(sig, body)
	case hdr.Get(h.opts.GenericHeader) != "":
		sig := strings.TrimPrefix(hdr.Get(h.opts.GenericHeader), "sha256=")
		return ProviderGeneric, h.checkHMAC(sig, body)
	}
	return "", http.StatusUnauthorized
}

func (h *WebhookHandler) checkHMAC(hexSig string, body []byte) int {
	got, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil {
		return http.StatusForbidden
	}
	mac := hmac.New(sha256.New, h.opts.Secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return http.StatusForbidden
	}
	return 0
}

func compareOrForbid(got, want string) int {
	// Hash both so the comparison time does not depend on the lengths.
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(g[:], w[:]) != 1 {
		return http.StatusForbidden
	}
	return 0
}

// jsonPayload returns the JSON document of a delivery: the body itself, or
// the "payload" field of a form-encoded body (GitHub's other content type).
func jsonPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "", "application/json":
		return body, nil
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil || v.Get("payload") == "" {
			return nil, errors.New("form-encoded webhook without a payload field")
		}
		return []byte(v.Get("payload")), nil
	}
	return nil, fmt.Errorf("unsupported content type %q: send application/json", mt)
}

// parseEvent reads the event type and, for pushes, the ref and head.
func parseEvent(provider string, hdr http.Header, payload []byte) (Event, error) {
	ev := Event{Provider: provider, Body: payload}
	switch provider {
	case ProviderGitHub:
		ev.Type, ev.Delivery = hdr.Get("X-GitHub-Event"), hdr.Get("X-GitHub-Delivery")
	case ProviderGitea:
		ev.Type, ev.Delivery = hdr.Get("X-Gitea-Event"), hdr.Get("X-Gitea-Delivery")
	case ProviderGitLab:
		ev.Type, ev.Delivery = gitlabEventType(hdr.Get("X-Gitlab-Event")), hdr.Get("X-Gitlab-Event-UUID")
	default:
		ev.Type = hdr.Get("X-Event")
	}
	var p struct {
		Ref        string `json:"ref"`
		After      string `json:"after"`
		ObjectKind string `json:"object_kind"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return ev, fmt.Errorf("malformed JSON payload: %v", err)
	}
	if ev.Type == "" {
		// Generic senders may omit the type: a payload with a ref is a push.
		if p.ObjectKind == "push" || p.Ref != "" {
			ev.Type = EventPush
		} else {
			ev.Type = "unknown"
		}
	}
	if ev.Type == EventPush {
		ev.Ref, ev.After = p.Ref, p.After
		if ev.Ref == "" {
			return ev, errors.New("push event without a ref")
		}
	}
	return ev, nil
}

// gitlabEventType maps GitLab's "Push Hook" names onto ours.
func gitlabEventType(s string) string {
	switch s {
	case "Push Hook":
		return EventPush
	case "Merge Request Hook":
		return EventPullRequest
	case "":
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(s, " Hook"), " ", "_"))
}

// tokenBucket is a small rate limiter: rate tokens per second, up to burst.
type tokenBucket struct {
	mu     gosync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate float64, burst int, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// take consumes a token if one is left; otherwise it says how long until one is.
func (b *tokenBucket) take() (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
