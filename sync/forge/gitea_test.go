package forge_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gitsync "github.com/flink-gitops/flink-gitops/sync"
	"github.com/flink-gitops/flink-gitops/sync/forge"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitea"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

// TestGiteaContract runs the forge client against a real Gitea: list and
// read pull requests, one marked comment created then edited, the merge
// commit once merged, and the pull request's head fetched as a snapshot
// through refs/pull/N/head.
func TestGiteaContract(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	srv := gitea.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	token, err := srv.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cloneURL, err := srv.CreateRepo(ctx, "specs")
	if err != nil {
		t.Fatal(err)
	}
	w, err := gitserver.Clone(ctx, cloneURL, filepath.Join(t.TempDir(), "work"), srv.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CommitPush(ctx, map[string]string{"a.yaml": "a: 1\n"}, "base"); err != nil {
		t.Fatal(err)
	}
	w.Branch = "feature"
	head, err := w.CommitPush(ctx, map[string]string{"a.yaml": "a: 2\n"}, "change a")
	if err != nil {
		t.Fatal(err)
	}
	n, err := srv.OpenPullRequest(ctx, "specs", "feature", "main", "change a")
	if err != nil {
		t.Fatal(err)
	}
	var calls, cached int
	f, err := forge.New(forge.Options{Provider: forge.Gitea, BaseURL: srv.URL(), Owner: srv.AdminUser(), Repo: "specs",
		TokenFile: tokenFile(t, token), Timeout: 10 * time.Second,
		OnRequest: func(_, _ string, _ int, c bool) {
			calls++
			if c {
				cached++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}

	prs, err := f.PullRequests(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(prs) != 1 || prs[0].Number != n || prs[0].HeadSHA != head || prs[0].State != "open" || prs[0].Merged || prs[0].URL == "" {
		t.Fatalf("PullRequests(main) = %+v, want #%d open at %s", prs, n, head)
	}
	if other, err := f.PullRequests(ctx, "release"); err != nil || len(other) != 0 {
		t.Errorf("PullRequests(release) = %+v, %v; want none", other, err)
	}

	if _, err := srv.CreateComment(ctx, "specs", n, "a reviewer's comment"); err != nil {
		t.Fatal(err)
	}
	c1, wrote, err := forge.Upsert(ctx, f, n, forge.Marker+"\nplan 1\n")
	if err != nil || !wrote {
		t.Fatalf("Upsert: wrote=%v err=%v", wrote, err)
	}
	c2, wrote, err := forge.Upsert(ctx, f, n, forge.Marker+"\nplan 2\n")
	if err != nil || !wrote || c2.ID != c1.ID {
		t.Fatalf("second Upsert: %+v wrote=%v err=%v; want an edit of comment %d", c2, wrote, err, c1.ID)
	}
	if _, wrote, err := forge.Upsert(ctx, f, n, forge.Marker+"\nplan 2\n"); err != nil || wrote {
		t.Errorf("Upsert of the same body: wrote=%v err=%v", wrote, err)
	}
	all, err := srv.Comments(ctx, "specs", n)
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, c := range all {
		if strings.Contains(c.Body, forge.Marker) {
			marked++
			if c.Body != forge.Marker+"\nplan 2\n" {
				t.Errorf("marked comment body %q", c.Body)
			}
		}
	}
	if len(all) != 2 || marked != 1 {
		t.Errorf("%d comments, %d marked; want 2 and 1", len(all), marked)
	}

	// The pull request head, fetched as Gitea serves it.
	src, err := gitsync.NewSource(gitsync.Options{URL: cloneURL, Branch: "main", Timeout: 20 * time.Second,
		Auth:   gitsync.Auth{Username: srv.AdminUser(), TokenFile: tokenFile(t, srv.AdminPassword())},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := src.FetchRef(ctx, gitsync.PullRequestRef(n))
	if err != nil {
		t.Fatalf("FetchRef(%s): %v", gitsync.PullRequestRef(n), err)
	}
	if b, _ := snap.ReadFile("a.yaml"); snap.Commit != head || string(b) != "a: 2\n" {
		t.Errorf("head snapshot %s with a.yaml %q, want %s with a: 2", snap.Commit, b, head)
	}

	merge, err := srv.MergePullRequest(ctx, "specs", n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.PullRequest(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Merged || p.MergeCommit != merge || p.State != "closed" {
		t.Errorf("after the merge: %+v, want merged as %s", p, merge)
	}
	t.Logf("%d API calls, %d answered from the ETag cache", calls, cached)

	// A wrong token is an error that does not show it.
	bad, _ := forge.New(forge.Options{Provider: forge.Gitea, BaseURL: srv.URL(), Owner: srv.AdminUser(), Repo: "specs", TokenFile: tokenFile(t, "not-a-token")})
	_, err = bad.PullRequest(ctx, n)
	var rl *forge.RateLimitError
	if err == nil || errors.As(err, &rl) || strings.Contains(err.Error(), "not-a-token") {
		t.Errorf("wrong token: err = %v", err)
	}
}
