package forge

import (
	"bufio"
	"bytes"
	"container/list"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"strings"
	gosync "sync"
	"time"
)

// tokenSource reads the API token from a file, again only when the file's
// modification time or size changed.
type tokenSource struct {
	path string

	mu    gosync.Mutex
	token string
	mod   time.Time
	size  int64
}

func (t *tokenSource) get() (string, error) {
	if t.path == "" {
		return "", nil
	}
	fi, err := os.Stat(t.path)
	if err != nil {
		return "", fmt.Errorf("forge token file: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && fi.ModTime().Equal(t.mod) && fi.Size() == t.size {
		return t.token, nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return "", fmt.Errorf("forge token file: %w", err)
	}
	t.token, t.mod, t.size = strings.TrimSpace(string(b)), fi.ModTime(), fi.Size()
	if t.token == "" {
		return "", fmt.Errorf("forge token file %s is empty", t.path)
	}
	return t.token, nil
}

// authTransport sets the Authorization header from the token file.
type authTransport struct {
	scheme string // "Bearer" (GitHub) or "token" (Gitea)
	tokens *tokenSource
	next   http.RoundTripper
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := a.tokens.get()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	if tok != "" {
		req.Header.Set("Authorization", a.scheme+" "+tok)
	}
	return a.next.RoundTrip(req)
}

// etagTransport makes GET requests conditional: it remembers the ETag and
// the response of each URL and, when the server answers 304 Not Modified,
// hands the remembered response back as if it were new. GitHub does not
// count a 304 against the rate limit. The cache is keyed by URL and
// Authorization, bounded to maxEntries (least recently used goes first).
type etagTransport struct {
	next       http.RoundTripper
	maxEntries int
	onRequest  func(method, path string, status int, cached bool)

	mu      gosync.Mutex
	entries map[string]*list.Element
	lru     *list.List
}

type etagEntry struct {
	key  string
	etag string
	resp []byte // the whole response, as httputil.DumpResponse wrote it
}

func newETagTransport(next http.RoundTripper, onRequest func(string, string, int, bool)) *etagTransport {
	return &etagTransport{next: next, maxEntries: 256, onRequest: onRequest, entries: map[string]*list.Element{}, lru: list.New()}
}

func (t *etagTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		resp, err := t.next.RoundTrip(req)
		t.note(req, resp, false)
		return resp, err
	}
	key := req.URL.String() + "\x00" + req.Header.Get("Authorization")
	t.mu.Lock()
	var cached *etagEntry
	if el, ok := t.entries[key]; ok {
		cached = el.Value.(*etagEntry)
		t.lru.MoveToFront(el)
	}
	t.mu.Unlock()
	if cached != nil {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", cached.etag)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.note(req, nil, false)
		return nil, err
	}
	if resp.StatusCode == http.StatusNotModified && cached != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		old, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(cached.resp)), req)
		if err != nil {
			return nil, fmt.Errorf("read cached response: %w", err)
		}
		// Rate-limit headers of the 304 are the current ones.
		for _, h := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Used", "Date"} {
			if v := resp.Header.Get(h); v != "" {
				old.Header.Set(h, v)
			}
		}
		t.note(req, old, true)
		return old, nil
	}
	t.note(req, resp, false)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		return resp, nil
	}
	dump, err := httputil.DumpResponse(resp, true) // reads and restores the body
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[key]; ok {
		el.Value = &etagEntry{key: key, etag: etag, resp: dump}
		t.lru.MoveToFront(el)
		return resp, nil
	}
	t.entries[key] = t.lru.PushFront(&etagEntry{key: key, etag: etag, resp: dump})
	for t.lru.Len() > t.maxEntries {
		last := t.lru.Back()
		t.lru.Remove(last)
		delete(t.entries, last.Value.(*etagEntry).key)
	}
	return resp, nil
}

func (t *etagTransport) note(req *http.Request, resp *http.Response, cached bool) {
	if t.onRequest == nil {
		return
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.onRequest(req.Method, req.URL.Path, status, cached)
}

// retryAfter reads a Retry-After header (seconds) or X-RateLimit-Reset
// (Unix seconds); zero when neither is there.
func retryAfter(h http.Header, now time.Time) time.Time {
	var secs int64
	if _, err := fmt.Sscan(h.Get("Retry-After"), &secs); err == nil && secs >= 0 {
		return now.Add(time.Duration(secs) * time.Second)
	}
	if _, err := fmt.Sscan(h.Get("X-RateLimit-Reset"), &secs); err == nil && secs > 0 {
		return time.Unix(secs, 0)
	}
	return time.Time{}
}
