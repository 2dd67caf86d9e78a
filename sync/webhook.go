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
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
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

// WebhookSecrets are the shared secrets, one per provider. A provider
// whose secret is empty is refused: a delivery is only ever checked against
// the secret of the provider its headers name, so a GitHub HMAC key is never
// accepted as a GitLab token, nor the other way round.
type WebhookSecrets struct {
	// GitHub is the HMAC-SHA256 key of X-Hub-Signature-256.
	GitHub []byte
	// Gitea is the HMAC-SHA256 key of X-Gitea-Signature.
	Gitea []byte
	// GitLab is the plain token GitLab sends in X-Gitlab-Token.
	GitLab []byte
	// Generic is the HMAC-SHA256 key of the generic header.
	Generic []byte
}

// For returns the secret of provider (nil when none is set).
func (s WebhookSecrets) For(provider string) []byte {
	switch provider {
	case ProviderGitHub:
		return s.GitHub
	case ProviderGitea:
		return s.Gitea
	case ProviderGitLab:
		return s.GitLab
	case ProviderGeneric:
		return s.Generic
	}
	return nil
}

// empty says no provider has a secret.
func (s WebhookSecrets) empty() bool {
	return len(s.GitHub)+len(s.Gitea)+len(s.GitLab)+len(s.Generic) == 0
}

// StaticSecrets returns a WebhookOptions.Secrets function that always
// answers s.
func StaticSecrets(s WebhookSecrets) func() (WebhookSecrets, error) {
	return func() (WebhookSecrets, error) { return s, nil }
}

// WebhookOptions configures a WebhookHandler.
type WebhookOptions struct {
	// Secrets returns the current secrets. It is called for every delivery,
	// so a rotated secret applies at once (the daemon re-reads its secret
	// files when they change). Required.
	Secrets func() (WebhookSecrets, error)
	// Branch is the watched branch; only a push to it wakes the poller.
	Branch string
	// GenericHeader is the header of the generic provider, holding
	// "sha256=<hex HMAC-SHA256 of the body>" or just the hex
	// (default "X-Signature-256").
	GenericHeader string
	// MaxBodyBytes caps the request body (default 1 MiB); larger → 413.
	// SetMaxBodyBytes changes it on a running handler.
	MaxBodyBytes int64
	// BodyTimeout bounds reading the body once the headers are in
	// (default 10s); a slower sender gets 408.
	BodyTimeout time.Duration
	// MaxInFlight bounds the bodies being read at once (default 16), so
	// memory stays below MaxInFlight × MaxBodyBytes; over it → 503.
	MaxInFlight int
	// ReplayWindow is how long a delivery id (and the hash of a forge's
	// payload) is remembered (default 1h); a delivery seen within it is
	// answered 200 and ignored. MaxSeen bounds the remembered entries
	// (default 10000; the oldest go first).
	ReplayWindow time.Duration
	MaxSeen      int
	// RatePerSecond and Burst rate-limit authenticated deliveries (default
	// 1/s, burst 10); over the limit → 429. Unauthenticated requests never
	// use up the budget of genuine ones.
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

// WebhookHandler is an http.Handler for forge webhooks. It picks the
// provider from the delivery's headers, authenticates the request with that
// provider's secret only (HMAC or token, compared in constant time), reads
// the body under a size cap and a deadline, ignores replayed deliveries,
// rate-limits authenticated ones, and on a push to the watched branch calls
// wake — it never decides what changed; the poll does. Callbacks registered
// with On receive other authenticated events (e.g. pull requests).
type WebhookHandler struct {
	opts     WebhookOptions
	wake     func()
	limiter  *tokenBucket
	refusals *tokenBucket // bounds the log lines of refused requests
	seen     *seenSet
	inFlight chan struct{}
	maxBody  atomic.Int64

	mu        gosync.RWMutex
	callbacks map[string][]func(Event)
}

// NewWebhookHandler returns a handler that calls wake (usually
// Source.Wake) on every authenticated push to opts.Branch.
func NewWebhookHandler(opts WebhookOptions, wake func()) (*WebhookHandler, error) {
	if opts.Secrets == nil {
		return nil, errors.New("webhook: a secret is required (set webhook.secrets.*File)")
	}
	s, err := opts.Secrets()
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if s.empty() {
		return nil, errors.New("webhook: a secret is required (set webhook.secrets.*File)")
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
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 10 * time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = time.Hour
	}
	if opts.MaxSeen <= 0 {
		opts.MaxSeen = 10000
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
	h := &WebhookHandler{
		opts:      opts,
		wake:      wake,
		limiter:   newTokenBucket(opts.RatePerSecond, opts.Burst, time.Now),
		refusals:  newTokenBucket(1, 20, time.Now),
		seen:      newSeenSet(opts.ReplayWindow, opts.MaxSeen, time.Now),
		inFlight:  make(chan struct{}, opts.MaxInFlight),
		callbacks: map[string][]func(Event){},
	}
	h.maxBody.Store(opts.MaxBodyBytes)
	return h, nil
}

// SetMaxBodyBytes changes the body cap for the next deliveries (n <= 0
// keeps the current one).
func (h *WebhookHandler) SetMaxBodyBytes(n int64) {
	if n > 0 {
		h.maxBody.Store(n)
	}
}

// On registers fn for authenticated events of type eventType ("*" for all).
// Callbacks run synchronously in the request; they should hand work off.
func (h *WebhookHandler) On(eventType string, fn func(Event)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.callbacks[eventType] = append(h.callbacks[eventType], fn)
}

// ServeHTTP answers 405 for non-POST; 401 when the headers name no
// provider or a provider without a configured secret, or lack its
// credential; 503 when too many bodies are being read; 413 for a body over
// the cap; 408 for a body not sent within the body timeout; 403 for a wrong
// signature or token; 415 for a payload that is not JSON; 400 for
// malformed JSON; 200 for a replayed delivery (ignored); 429 over the rate
// limit (authenticated deliveries only); 202 for a push to the watched
// branch (the poller is woken); and 200 for anything else that was
// authenticated (ignored or handed to callbacks).
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	provider := detectProvider(r.Header, h.opts.GenericHeader)
	if provider == "" {
		h.refuse(w, r, "", http.StatusUnauthorized, "no webhook credentials: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea), X-Gitlab-Token (GitLab) or "+h.opts.GenericHeader)
		return
	}
	secrets, err := h.opts.Secrets()
	if err != nil {
		h.opts.Logger.Error("webhook secrets unreadable", "err", err)
		http.Error(w, "webhook secrets unavailable", http.StatusInternalServerError)
		return
	}
	secret := secrets.For(provider)
	if len(secret) == 0 {
		h.refuse(w, r, provider, http.StatusUnauthorized, "no secret is configured for "+provider+" deliveries")
		return
	}
	if credential(provider, r.Header, h.opts.GenericHeader) == "" {
		h.refuse(w, r, provider, http.StatusUnauthorized, "missing "+credentialHeader(provider, h.opts.GenericHeader))
		return
	}
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		h.refuse(w, r, provider, http.StatusServiceUnavailable, "too many deliveries in flight")
		return
	}
	body, status := h.readBody(w, r)
	if status != 0 {
		h.refuse(w, r, provider, status, http.StatusText(status))
		return
	}
	if !authentic(provider, secret, credential(provider, r.Header, h.opts.GenericHeader), body) {
		h.refuse(w, r, provider, http.StatusForbidden, "signature or token does not match")
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
	keys := replayKeys(provider, ev.Delivery, body)
	if h.seen.has(keys) {
		h.opts.Logger.Info("webhook replay ignored", "provider", provider, "event", ev.Type, "delivery", ev.Delivery)
		_, _ = io.WriteString(w, "duplicate delivery ignored\n")
		return
	}
	if ok, retry := h.limiter.take(); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	if !h.seen.add(keys) {
		_, _ = io.WriteString(w, "duplicate delivery ignored\n")
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

// refuse answers status with msg and logs it, at most about once a second
// so a flood of junk requests does not flood the log.
func (h *WebhookHandler) refuse(w http.ResponseWriter, r *http.Request, provider string, status int, msg string) {
	if ok, _ := h.refusals.take(); ok {
		h.opts.Logger.Warn("webhook refused", "status", status, "provider", provider, "reason", msg, "remote", r.RemoteAddr)
	}
	http.Error(w, msg, status)
}

// readBody reads the body under the size cap and the body deadline. It
// returns 0 or the status to answer.
func (h *WebhookHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int) {
	limit := h.maxBody.Load()
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge
	}
	// The deadline ends a slow sender's read (slowloris). A server without
	// deadline support (a ResponseRecorder) has none.
	// After a failed read the deadline stays, so the server's drain of the
	// unread body cannot block either.
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(h.opts.BodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		if deadline {
			_ = rc.SetReadDeadline(time.Time{})
		}
		return body, 0
	}
	var tooBig *http.MaxBytesError
	var nerr net.Error
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return nil, http.StatusRequestTimeout
	}
	return nil, http.StatusBadRequest
}

func (h *WebhookHandler) dispatch(ev Event) {
	h.mu.RLock()
	fns := append(append([]func(Event){}, h.callbacks[ev.Type]...), h.callbacks["*"]...)
	h.mu.RUnlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// detectProvider names the provider a delivery's headers claim. Gitea also
// sends GitHub's headers, so its own come first; a delivery naming no
// provider gives "".
func detectProvider(hdr http.Header, genericHeader string) string {
	switch {
	case hdr.Get("X-Gitea-Signature") != "" || hdr.Get("X-Gitea-Event") != "":
		return ProviderGitea
	case hdr.Get("X-Gitlab-Token") != "" || hdr.Get("X-Gitlab-Event") != "":
		return ProviderGitLab
	case hdr.Get("X-Hub-Signature-256") != "" || hdr.Get("X-GitHub-Event") != "":
		return ProviderGitHub
	case hdr.Get(genericHeader) != "":
		return ProviderGeneric
	}
	return ""
}

// credentialHeader is the header that carries provider's signature or token.
func credentialHeader(provider, genericHeader string) string {
	switch provider {
	case ProviderGitHub:
		return "X-Hub-Signature-256"
	case ProviderGitea:
		return "X-Gitea-Signature"
	case ProviderGitLab:
		return "X-Gitlab-Token"
	}
	return genericHeader
}

func credential(provider string, hdr http.Header, genericHeader string) string {
	return hdr.Get(credentialHeader(provider, genericHeader))
}

// authentic checks a delivery's credential against its provider's secret:
// GitHub "sha256=<hex>", Gitea bare hex, generic either, GitLab the token.
func authentic(provider string, secret []byte, cred string, body []byte) bool {
	switch provider {
	case ProviderGitLab:
		return equalToken(cred, secret)
	case ProviderGitHub:
		sig, ok := strings.CutPrefix(cred, "sha256=")
		return ok && validHMAC(sig, secret, body)
	case ProviderGitea:
		return validHMAC(cred, secret, body)
	}
	return validHMAC(strings.TrimPrefix(cred, "sha256="), secret, body)
}

func validHMAC(hexSig string, secret, body []byte) bool {
	got, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func equalToken(got string, want []byte) bool {
	// Hash both so the comparison time does not depend on the lengths.
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// replayKeys are the keys a delivery is remembered by: its delivery id,
// and for the forges (whose payloads carry commits, times or both) the
// hash of its body, since the signature covers the body but not the
// delivery-id header. Generic senders may post the same body for every
// push, so only their delivery id counts.
func replayKeys(provider, delivery string, body []byte) []string {
	var keys []string
	if delivery != "" {
		keys = append(keys, provider+"/id/"+delivery)
	}
	if provider != ProviderGeneric {
		sum := sha256.Sum256(body)
		keys = append(keys, provider+"/body/"+hex.EncodeToString(sum[:]))
	}
	return keys
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
		// Idempotency-Key stays the same when GitLab retries a delivery.
		ev.Type, ev.Delivery = gitlabEventType(hdr.Get("X-Gitlab-Event")), hdr.Get("Idempotency-Key")
		if ev.Delivery == "" {
			ev.Delivery = hdr.Get("X-Gitlab-Event-UUID")
		}
	default:
		ev.Type, ev.Delivery = hdr.Get("X-Event"), hdr.Get("Idempotency-Key")
	}
	if len(ev.Delivery) > 200 {
		return ev, errors.New("delivery id longer than 200 bytes")
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

// seenSet remembers keys for a window, at most max of them (the oldest
// are forgotten first), so its memory is bounded whatever is sent.
type seenSet struct {
	mu     gosync.Mutex
	window time.Duration
	max    int
	now    func() time.Time
	at     map[string]time.Time
	order  []seenEntry // oldest first; order[head:] are live
	head   int
}

type seenEntry struct {
	key string
	at  time.Time
}

func newSeenSet(window time.Duration, max int, now func() time.Time) *seenSet {
	return &seenSet{window: window, max: max, now: now, at: map[string]time.Time{}}
}

// has says whether any of keys was added within the window.
func (s *seenSet) has(keys []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune()
	for _, k := range keys {
		if _, ok := s.at[k]; ok {
			return true
		}
	}
	return false
}

// add remembers keys; it returns false (adding nothing) when one of them
// is already remembered.
func (s *seenSet) add(keys []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune()
	for _, k := range keys {
		if _, ok := s.at[k]; ok {
			return false
		}
	}
	now := s.now()
	for _, k := range keys {
		s.at[k] = now
		s.order = append(s.order, seenEntry{k, now})
	}
	for len(s.at) > s.max {
		s.pop()
	}
	return true
}

// prune forgets the keys older than the window.
func (s *seenSet) prune() {
	cutoff := s.now().Add(-s.window)
	for s.head < len(s.order) && !s.order[s.head].at.After(cutoff) {
		s.pop()
	}
}

func (s *seenSet) pop() {
	e := s.order[s.head]
	s.order[s.head] = seenEntry{}
	s.head++
	if at, ok := s.at[e.key]; ok && at.Equal(e.at) {
		delete(s.at, e.key)
	}
	if s.head > len(s.order)/2 && s.head > 64 {
		s.order = append([]seenEntry(nil), s.order[s.head:]...)
		s.head = 0
	}
}

func (s *seenSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
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
