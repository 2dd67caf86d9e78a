package sync

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const hookSecret = "hook-secret-123"

// sameSecrets gives every provider hookSecret.
var sameSecrets = StaticSecrets(WebhookSecrets{GitHub: []byte(hookSecret), Gitea: []byte(hookSecret), GitLab: []byte(hookSecret), Generic: []byte(hookSecret)})

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhookProviders(t *testing.T) {
	t.Parallel()
	push := `{"ref":"refs/heads/main","after":"abc123"}`
	other := `{"ref":"refs/heads/feature","after":"abc123"}`
	gitlabPush := `{"object_kind":"push","ref":"refs/heads/main","after":"abc123"}`
	for _, tc := range []struct {
		name    string
		method  string
		ctype   string
		body    string
		headers map[string]string
		code    int
		woke    bool
	}{
		{"github push", "POST", "application/json", push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, push)}, 202, true},
		{"github push other branch", "POST", "application/json", other, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, other)}, 200, false},
		{"github ping", "POST", "application/json", `{"zen":"x"}`, map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, `{"zen":"x"}`)}, 200, false},
		{"github wrong secret", "POST", "application/json", push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign("other", push)}, 403, false},
		{"github signature of other body", "POST", "application/json", push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, other)}, 403, false},
		{"github sha1 prefix", "POST", "application/json", push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha1=" + sign(hookSecret, push)}, 403, false},
		{"github form-encoded", "POST", "application/x-www-form-urlencoded", "payload=" + url.QueryEscape(push), map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, "payload="+url.QueryEscape(push))}, 202, true},
		{"gitea push", "POST", "application/json", push, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign(hookSecret, push)}, 202, true},
		{"gitea bad signature", "POST", "application/json", push, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign("nope", push)}, 403, false},
		{"gitea non-hex signature", "POST", "application/json", push, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": "zz"}, 403, false},
		{"gitlab push", "POST", "application/json", gitlabPush, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}, 202, true},
		{"gitlab wrong token", "POST", "application/json", gitlabPush, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "hook-secret-12"}, 403, false},
		{"generic push", "POST", "application/json", push, map[string]string{"X-Signature-256": "sha256=" + sign(hookSecret, push)}, 202, true},
		{"generic bare hex", "POST", "application/json", push, map[string]string{"X-Signature-256": sign(hookSecret, push)}, 202, true},
		{"generic bad", "POST", "application/json", push, map[string]string{"X-Signature-256": "sha256=" + sign("x", push)}, 403, false},
		{"no credentials", "POST", "application/json", push, map[string]string{"X-GitHub-Event": "push"}, 401, false},
		{"GET", "GET", "", "", nil, 405, false},
		{"not json", "POST", "text/plain", push, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, push)}, 415, false},
		{"malformed json", "POST", "application/json", "{", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(hookSecret, "{")}, 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var woke atomic.Int32
			h, err := NewWebhookHandler(WebhookOptions{Secrets: sameSecrets, Branch: "main", Logger: quietLogger()}, func() { woke.Add(1) })
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(tc.method, "/hook", strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.code)
			}
			if got := woke.Load() == 1; got != tc.woke {
				t.Fatalf("woke = %v, want %v", got, tc.woke)
			}
		})
	}
}

func TestWebhookBodyCapAndRateLimit(t *testing.T) {
	t.Parallel()
	h, err := NewWebhookHandler(WebhookOptions{Secrets: sameSecrets, MaxBodyBytes: 100, RatePerSecond: 0.001, Burst: 3, Logger: quietLogger()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 200) + `"}`
	do := func(body string, chunked bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
		if chunked {
			req.ContentLength = -1 // length unknown: the cap must still hold while reading
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", "sha256="+sign(hookSecret, body))
		req.Header.Set("X-GitHub-Event", "push")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(big, false); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body with length: %d", rec.Code)
	}
	if rec := do(big, true); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body without length: %d", rec.Code)
	}
	for i := range 3 {
		if rec := do(fmt.Sprintf(`{"ref":"refs/heads/main","n":%d}`, i), false); rec.Code != http.StatusAccepted {
			t.Fatalf("small body %d: %d", i, rec.Code)
		}
	}
	// Burst of 3 is used up; the next is refused with Retry-After.
	rec := do(`{"ref":"refs/heads/main","n":3}`, false)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("over the rate limit: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestTokenBucketRefills(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	b := newTokenBucket(2, 2, func() time.Time { return now })
	for i := range 2 {
		if ok, _ := b.take(); !ok {
			t.Fatalf("take %d refused within burst", i)
		}
	}
	if ok, wait := b.take(); ok || wait != 500*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%v", ok, wait)
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := b.take(); !ok {
		t.Fatal("bucket did not refill")
	}
}

func TestWebhookCallbacksGetPullRequests(t *testing.T) {
	t.Parallel()
	var woke atomic.Int32
	h, err := NewWebhookHandler(WebhookOptions{Secrets: sameSecrets, Logger: quietLogger()}, func() { woke.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	var got []Event
	h.On(EventPullRequest, func(e Event) { got = append(got, e) })
	body := `{"action":"opened","number":7}`
	req := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
	req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
	req.Header.Set("X-Gitlab-Token", hookSecret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || len(got) != 1 || got[0].Type != EventPullRequest || got[0].Provider != ProviderGitLab || !bytes.Equal(got[0].Body, []byte(body)) {
		t.Fatalf("code %d, events %+v", rec.Code, got)
	}
	if woke.Load() != 0 {
		t.Fatal("a pull request woke the poller")
	}
}

// TestWebhookWakesRun: with an hour-long interval, only the webhook can make
// Run notice a push quickly.
func TestWebhookWakesRun(t *testing.T) {
	integration(t)
	t.Parallel()
	srv, w := specRepo(t)
	c1 := mustCommitPush(t, w, map[string]string{"a.yaml": "1\n"}, "c1")
	src := newTestSource(t, srv, "specs", func(o *Options) { o.Interval = time.Hour })
	h, err := NewWebhookHandler(WebhookOptions{Secrets: sameSecrets, Branch: "main", Logger: quietLogger()}, src.Wake)
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	changes := make(chan *Snapshot, 10)
	go func() { done <- src.Run(ctx, func(s *Snapshot) { changes <- s }) }()
	t.Cleanup(func() { cancel(); <-done })
	if s := <-changes; s.Commit != c1 {
		t.Fatalf("first snapshot %s", s.Commit)
	}
	c2 := mustCommitPush(t, w, map[string]string{"a.yaml": "2\n"}, "c2")
	body := `{"ref":"refs/heads/main","after":"` + c2 + `"}`
	req, _ := http.NewRequest("POST", hook.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+sign(hookSecret, body))
	resp, err := hook.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook status %d", resp.StatusCode)
	}
	select {
	case s := <-changes:
		if s.Commit != c2 {
			t.Fatalf("snapshot after webhook %s, want %s", s.Commit, c2)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("webhook did not wake the poller")
	}
}
