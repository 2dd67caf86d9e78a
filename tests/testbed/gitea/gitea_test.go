package gitea

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

func TestBinaryMissingSaysHowToBuild(t *testing.T) {
	t.Setenv("FLINK_GITOPS_CACHE", t.TempDir())
	_, _, err := Binary()
	if err == nil || !strings.Contains(err.Error(), "tests/scripts/build-gitea.sh") {
		t.Fatalf("Binary() with an empty cache = %v, want an error naming the build script", err)
	}
}

// delivery is one webhook request as the receiver saw it.
type delivery struct {
	event, eventType, signature string
	body                        []byte
	at                          time.Time
	payload                     struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		Ref         string `json:"ref"`
		After       string `json:"after"`
		PullRequest struct {
			Merged         bool   `json:"merged"`
			MergeCommitSHA string `json:"merge_commit_sha"`
			Head           struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
	}
}

// receiver records webhook deliveries on a loopback HTTP server.
type receiver struct {
	srv     *httptest.Server
	mu      gosync.Mutex
	got     []delivery
	changed chan struct{} // closed and replaced on every delivery
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d := delivery{
			event:     req.Header.Get("X-Gitea-Event"),
			eventType: req.Header.Get("X-Gitea-Event-Type"),
			signature: req.Header.Get("X-Gitea-Signature"),
			body:      body,
			at:        time.Now(),
		}
		if err := json.Unmarshal(body, &d.payload); err != nil {
			t.Errorf("webhook body is not JSON: %v: %.200s", err, body)
		}
		r.mu.Lock()
		r.got = append(r.got, d)
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait returns the first delivery that matches, waiting up to 30s for it.
func (r *receiver) wait(t *testing.T, what string, match func(delivery) bool) delivery {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		for _, d := range r.got {
			if match(d) {
				r.mu.Unlock()
				return d
			}
		}
		changed := r.changed
		seen := make([]string, 0, len(r.got))
		for _, d := range r.got {
			seen = append(seen, d.eventType+"/"+d.payload.Action)
		}
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no webhook delivery of %s within 30s; got %v", what, seen)
		}
	}
}

func checkSignature(t *testing.T, d delivery, secret string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(d.body)
	want := hex.EncodeToString(mac.Sum(nil))
	if d.signature == "" || !hmac.Equal([]byte(d.signature), []byte(want)) {
		t.Errorf("X-Gitea-Signature of %s/%s = %q, want HMAC-SHA256 %q", d.event, d.payload.Action, d.signature, want)
	}
}

func TestPullRequestLifecycleWithWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t0 := time.Now()
	s := Start(t)
	t.Logf("gitea %s started at %s in %v", Version, s.URL(), time.Since(t0).Round(time.Millisecond))

	cloneURL, err := s.CreateRepo(ctx, "specs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cloneURL, s.URL()) {
		t.Errorf("clone URL %s is not under ROOT_URL %s", cloneURL, s.URL())
	}
	w, err := gitserver.Clone(ctx, cloneURL, filepath.Join(t.TempDir(), "wt"), s.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CommitPush(ctx, map[string]string{"README.md": "specs\n"}, "initial"); err != nil {
		t.Fatalf("push main: %v", err)
	}

	const secret = "hook-secret"
	rcv := newReceiver(t)
	if err := s.AddWebhook(ctx, "specs", rcv.srv.URL+"/hook", secret, []string{"push", "pull_request"}); err != nil {
		t.Fatal(err)
	}

	w.Branch = "feature"
	first, err := w.CommitPush(ctx, map[string]string{"app.yaml": "parallelism: 1\n"}, "feature: first")
	if err != nil {
		t.Fatalf("push feature: %v", err)
	}
	pushed := time.Now()
	d := rcv.wait(t, "push of feature", func(d delivery) bool {
		return d.event == "push" && d.payload.Ref == "refs/heads/feature" && d.payload.After == first
	})
	checkSignature(t, d, secret)
	t.Logf("push delivery after %v", d.at.Sub(pushed).Round(time.Millisecond))

	opened := time.Now()
	number, err := s.OpenPullRequest(ctx, "specs", "feature", "main", "Scale up")
	if err != nil {
		t.Fatal(err)
	}
	d = rcv.wait(t, "pull_request opened", func(d delivery) bool {
		return d.event == "pull_request" && d.payload.Action == "opened" && d.payload.Number == number
	})
	checkSignature(t, d, secret)
	if d.payload.PullRequest.Head.SHA != first {
		t.Errorf("opened: head sha %s, want %s", d.payload.PullRequest.Head.SHA, first)
	}
	t.Logf("pull_request opened delivery after %v", d.at.Sub(opened).Round(time.Millisecond))

	second, err := w.CommitPush(ctx, map[string]string{"app.yaml": "parallelism: 2\n"}, "feature: second")
	if err != nil {
		t.Fatalf("push feature again: %v", err)
	}
	pushed = time.Now()
	d = rcv.wait(t, "pull_request synchronized", func(d delivery) bool {
		return d.event == "pull_request" && d.payload.Action == "synchronized" && d.payload.PullRequest.Head.SHA == second
	})
	checkSignature(t, d, secret)
	if d.payload.Number != number {
		t.Errorf("synchronized: number %d, want %d", d.payload.Number, number)
	}
	t.Logf("pull_request synchronized delivery after %v (X-Gitea-Event-Type %s)", d.at.Sub(pushed).Round(time.Millisecond), d.eventType)

	c, err := s.CreateComment(ctx, "specs", number, "flink-gitops: planned **2** changes")
	if err != nil {
		t.Fatal(err)
	}
	comments, err := s.Comments(ctx, "specs", number)
	if err != nil {
		t.Fatal(err)
	}
	if len(comments) != 1 || comments[0].ID != c.ID || comments[0].Body != "flink-gitops: planned **2** changes" ||
		comments[0].User != s.AdminUser() || comments[0].Created.IsZero() || comments[0].Updated.Before(comments[0].Created) {
		t.Errorf("Comments = %+v, want the one comment %+v by %s", comments, c, s.AdminUser())
	}

	merging := time.Now()
	merge, err := s.MergePullRequest(ctx, "specs", number)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("merged as %s in %v", merge, time.Since(merging).Round(time.Millisecond))
	d = rcv.wait(t, "pull_request closed (merged)", func(d delivery) bool {
		return d.event == "pull_request" && d.payload.Action == "closed" && d.payload.Number == number
	})
	checkSignature(t, d, secret)
	if !d.payload.PullRequest.Merged || d.payload.PullRequest.MergeCommitSHA != merge {
		t.Errorf("closed: merged=%v merge_commit_sha=%s, want merged=true %s",
			d.payload.PullRequest.Merged, d.payload.PullRequest.MergeCommitSHA, merge)
	}
	t.Logf("pull_request closed delivery %v after the merge was requested", d.at.Sub(merging).Round(time.Millisecond))

	// The merge commit is on main, with the second feature commit as a parent.
	if _, err := w.Git(ctx, "fetch", "--quiet", "origin", "main"); err != nil {
		t.Fatal(err)
	}
	parents, err := w.Git(ctx, "rev-list", "--parents", "-n", "1", "origin/main")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(parents); len(f) != 3 || f[0] != merge || f[2] != second {
		t.Errorf("origin/main = %q, want merge commit %s with parents (old main, %s)", parents, merge, second)
	}
}
