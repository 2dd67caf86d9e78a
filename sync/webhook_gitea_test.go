package sync

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitea"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

// seenDelivery is one request a handler answered.
type seenDelivery struct {
	path, event string
	status      int
	header      http.Header
	body        []byte
}

// recordingMux serves handlers by path and records every answer.
type recordingMux struct {
	mu      gosync.Mutex
	got     []seenDelivery
	changed chan struct{}
	mux     *http.ServeMux
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(c int) { s.status = c; s.ResponseWriter.WriteHeader(c) }

// Unwrap lets http.ResponseController reach the connection (read deadline).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *recordingMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	m.mux.ServeHTTP(sw, r)
	m.mu.Lock()
	m.got = append(m.got, seenDelivery{path: r.URL.Path, event: r.Header.Get("X-Gitea-Event"), status: sw.status, header: r.Header.Clone(), body: body})
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// wait returns the first recorded answer that matches, within 60s.
func (m *recordingMux) wait(t *testing.T, what string, match func(seenDelivery) bool) seenDelivery {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		m.mu.Lock()
		for _, d := range m.got {
			if match(d) {
				m.mu.Unlock()
				return d
			}
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no delivery of %s within 60s", what)
		}
	}
}

// TestWebhookWithRealGitea: Gitea's own signed deliveries (which carry
// X-Gitea-Signature and also GitHub's X-Hub-Signature-256 with the same
// key) are accepted with the Gitea secret, refused with a wrong one,
// refused when only a GitHub secret is configured, and a replay of a
// genuine delivery is ignored.
func TestWebhookWithRealGitea(t *testing.T) {
	integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g := gitea.Start(t)
	const repo, secret = "specs", "gitea-hook-secret"
	cloneURL, err := g.CreateRepo(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	w, err := gitserver.Clone(ctx, cloneURL, filepath.Join(t.TempDir(), "wt"), g.Credentials())
	if err != nil {
		t.Fatal(err)
	}

	var woke, wokeWrong, wokeGitHubOnly atomic.Int32
	var prs atomic.Int32
	mk := func(s WebhookSecrets, counter *atomic.Int32) *WebhookHandler {
		h, err := NewWebhookHandler(WebhookOptions{Secrets: StaticSecrets(s), Branch: "main", Logger: quietLogger()}, func() { counter.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	good := mk(WebhookSecrets{Gitea: []byte(secret)}, &woke)
	good.On(EventPullRequest, func(Event) { prs.Add(1) })
	rec := &recordingMux{changed: make(chan struct{}), mux: http.NewServeMux()}
	rec.mux.Handle("/good", good)
	rec.mux.Handle("/wrong", mk(WebhookSecrets{Gitea: []byte("not-the-secret")}, &wokeWrong))
	rec.mux.Handle("/github-only", mk(WebhookSecrets{GitHub: []byte(secret)}, &wokeGitHubOnly))
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	for _, p := range []string{"/good", "/wrong", "/github-only"} {
		if err := g.AddWebhook(ctx, repo, srv.URL+p, secret, []string{"push", "pull_request"}); err != nil {
			t.Fatal(err)
		}
	}
	// The "wrong" hook is registered with the right secret on Gitea's side
	// but its handler expects another; the "github-only" handler has the
	// right key, but as a GitHub secret.

	// The first push; Gitea delivers asynchronously, so wait for it before
	// counting wakes.
	c1, err := w.CommitPush(ctx, map[string]string{"README.md": "specs\n"}, "initial")
	if err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the first push to /good", func(d seenDelivery) bool {
		return d.path == "/good" && d.event == "push" && bytes.Contains(d.body, []byte(c1))
	})
	if woke.Load() != 1 {
		t.Fatalf("first push woke %d times", woke.Load())
	}

	c2, err := w.CommitPush(ctx, map[string]string{"a.yaml": "1\n"}, "push to main")
	if err != nil {
		t.Fatal(err)
	}
	isPush := func(path string) func(seenDelivery) bool {
		return func(d seenDelivery) bool {
			return d.path == path && d.event == "push" && bytes.Contains(d.body, []byte(c2))
		}
	}
	genuine := rec.wait(t, "the push to /good", isPush("/good"))
	if genuine.status != http.StatusAccepted || woke.Load() != 2 {
		t.Fatalf("genuine Gitea push: status %d, woke %d; want 202, 2", genuine.status, woke.Load())
	}
	if genuine.header.Get("X-Hub-Signature-256") == "" {
		t.Log("note: this Gitea sends no X-Hub-Signature-256")
	}
	if d := rec.wait(t, "the push to /wrong", isPush("/wrong")); d.status != http.StatusForbidden || wokeWrong.Load() != 0 {
		t.Fatalf("Gitea push checked against a wrong secret: status %d, woke %d; want 403, 0", d.status, wokeWrong.Load())
	}
	if d := rec.wait(t, "the push to /github-only", isPush("/github-only")); d.status != http.StatusUnauthorized || wokeGitHubOnly.Load() != 0 {
		t.Fatalf("Gitea push with only a GitHub secret configured: status %d, woke %d; want 401, 0", d.status, wokeGitHubOnly.Load())
	}

	// Replay the genuine delivery byte for byte: ignored.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/good", bytes.NewReader(genuine.body))
	for k, v := range genuine.header {
		if k != "Content-Length" {
			req.Header[k] = v
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || woke.Load() != 2 {
		t.Fatalf("replayed Gitea delivery: status %d, woke %d; want 200 (ignored), 2", resp.StatusCode, woke.Load())
	}
	// The same body under a new delivery id is still a replay.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/good", bytes.NewReader(genuine.body))
	for k, v := range genuine.header {
		if k != "Content-Length" {
			req.Header[k] = v
		}
	}
	req.Header.Set("X-Gitea-Delivery", "a-forged-id")
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || woke.Load() != 2 {
		t.Fatalf("replay with a new delivery id: status %d, woke %d; want 200 (ignored), 2", resp.StatusCode, woke.Load())
	}

	// A pull request reaches the callback.
	w.Branch = "feature"
	if _, err := w.CommitPush(ctx, map[string]string{"a.yaml": "2\n"}, "feature"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.OpenPullRequest(ctx, repo, "feature", "main", "feature"); err != nil {
		t.Fatal(err)
	}
	d := rec.wait(t, "pull_request to /good", func(d seenDelivery) bool { return d.path == "/good" && d.event == "pull_request" })
	if d.status != http.StatusOK || prs.Load() < 1 {
		t.Fatalf("pull_request delivery: status %d, callbacks %d", d.status, prs.Load())
	}
	if woke.Load() != 2 {
		t.Fatalf("a push to another branch or a pull request woke the poller (%d)", woke.Load())
	}
}
