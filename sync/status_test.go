package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"testing"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
	"github.com/google/go-cmp/cmp"
)

func newTestStatusWriter(t testing.TB, srv *gitserver.Server, repo string, mod func(*StatusWriterOptions)) *StatusWriter {
	t.Helper()
	o := StatusWriterOptions{
		URL:           srv.URL(repo),
		Branch:        "status",
		WatchedBranch: "main",
		Auth:          Auth{Username: srv.User(), TokenFile: tokenFile(t, srv.Password())},
		Author:        Signature{Name: "Status Bot", Email: "bot@example.com"},
		Logger:        quietLogger(),
	}
	if mod != nil {
		mod(&o)
	}
	w, err := NewStatusWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// statusTree lists path → content of the status branch, read with the git CLI.
func statusTree(t testing.TB, w *gitserver.Worktree, branch string) map[string]string {
	t.Helper()
	ctx := context.Background()
	if _, err := w.Git(ctx, "fetch", "--quiet", "origin", "+refs/heads/"+branch+":refs/remotes/origin/"+branch); err != nil {
		t.Fatal(err)
	}
	out, err := w.Git(ctx, "ls-tree", "-r", "--name-only", "origin/"+branch)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, p := range strings.Fields(out) {
		c, err := w.Git(ctx, "show", "origin/"+branch+":"+p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = c
	}
	return files
}

func TestStatusWriterOrphanBranchMergeAndSkip(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, wt := specRepo(t)
	mainHead := mustCommitPush(t, wt, map[string]string{"apps/a.yaml": "a\n"}, "specs")

	if _, err := NewStatusWriter(StatusWriterOptions{URL: srv.URL("specs"), Branch: "main", WatchedBranch: "main"}); err == nil {
		t.Fatal("a status writer on the watched branch was accepted")
	}

	sw := newTestStatusWriter(t, srv, "specs", nil)
	res, err := sw.Write(ctx, map[string][]byte{
		"README.md":                   []byte("# status\n"),
		"ns1/FlinkDeployment/a.yaml":  []byte("state: RUNNING\n"),
		"ns1/FlinkDeployment/b.yaml":  []byte("state: DEPLOYING\n"),
		"ns2/FlinkSessionJob/j1.yaml": []byte("state: RUNNING\n"),
	}, mainHead)
	if err != nil || !res.Changed || res.Commit == "" {
		t.Fatalf("first write: %+v, %v", res, err)
	}
	// Orphan: a root commit, unrelated to main; main untouched.
	if out, err := wt.Git(ctx, "fetch", "--quiet", "origin", "status"); err != nil {
		t.Fatal(out, err)
	}
	if out, _ := wt.Git(ctx, "rev-list", "--max-parents=0", "FETCH_HEAD"); strings.TrimSpace(out) != res.Commit {
		t.Fatalf("status branch is not an orphan: roots %q", out)
	}
	if out, _ := wt.Git(ctx, "ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(out, mainHead) {
		t.Fatalf("watched branch moved: %q", out)
	}
	msg, _ := wt.Git(ctx, "log", "-1", "--format=%an <%ae>%n%B", "FETCH_HEAD")
	if !strings.Contains(msg, "Status Bot <bot@example.com>") || !strings.Contains(msg, mainHead) {
		t.Fatalf("status commit author/message = %q", msg)
	}

	// Same content again: no commit, no push.
	pushes := srv.Counts().ReceivePack
	res2, err := sw.Write(ctx, map[string][]byte{"ns1/FlinkDeployment/a.yaml": []byte("state: RUNNING\n")}, mainHead)
	if err != nil || res2.Changed || res2.Commit != res.Commit {
		t.Fatalf("unchanged write: %+v, %v", res2, err)
	}
	if srv.Counts().ReceivePack != pushes {
		t.Fatal("an unchanged write pushed")
	}

	// Merge per path: update one, delete one (nil), keep the rest.
	res3, err := sw.Write(ctx, map[string][]byte{
		"ns1/FlinkDeployment/a.yaml": []byte("state: SUSPENDED\n"),
		"ns1/FlinkDeployment/b.yaml": nil,
		"ns1/FlinkDeployment/x.yaml": nil, // deleting a missing file is fine
	}, "feedbeef")
	if err != nil || !res3.Changed {
		t.Fatalf("merge write: %+v, %v", res3, err)
	}
	want := map[string]string{
		"README.md":                   "# status\n",
		"ns1/FlinkDeployment/a.yaml":  "state: SUSPENDED\n",
		"ns2/FlinkSessionJob/j1.yaml": "state: RUNNING\n",
	}
	if diff := cmp.Diff(want, statusTree(t, wt, "status")); diff != "" {
		t.Fatalf("status tree (-want +got):\n%s", diff)
	}
	if out, _ := wt.Git(ctx, "rev-list", "--count", "origin/status"); strings.TrimSpace(out) != "2" {
		t.Fatalf("status branch has %s commits, want 2", out)
	}
	// git fsck agrees the trees we built are well-formed.
	if out, err := wt.Git(ctx, "fsck", "--strict", "--no-dangling"); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out)
	}

	for _, bad := range []string{"../x", "/abs", "a//b", ".git/config", "a/.git/x", ""} {
		if _, err := sw.Write(ctx, map[string][]byte{bad: []byte("x")}, mainHead); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

// TestStatusWritersRaceWithoutLostUpdates: two writers (two daemons) commit
// different resources at the same time; every update survives.
func TestStatusWritersRaceWithoutLostUpdates(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, wt := specRepo(t)
	mustCommitPush(t, wt, map[string]string{"a.yaml": "a\n"}, "specs")

	const writers, writes = 2, 8
	var wg gosync.WaitGroup
	errs := make(chan error, writers*writes)
	retried := make(chan int, writers*writes)
	for i := range writers {
		sw := newTestStatusWriter(t, srv, "specs", func(o *StatusWriterOptions) { o.MaxAttempts = 50 })
		wg.Go(func() {
			for j := range writes {
				res, err := sw.Write(ctx, map[string][]byte{
					fmt.Sprintf("ns/FlinkDeployment/d%d-%d.yaml", i, j): fmt.Appendf(nil, "writer %d write %d\n", i, j),
					fmt.Sprintf("ns/FlinkDeployment/last-%d.yaml", i):   fmt.Appendf(nil, "%d\n", j),
				}, fmt.Sprintf("src%d", j))
				if err != nil {
					errs <- err
					return
				}
				retried <- res.Attempts
			}
		})
	}
	wg.Wait()
	close(errs)
	close(retried)
	for err := range errs {
		t.Fatalf("write failed: %v", err)
	}
	maxAttempts := 0
	for a := range retried {
		maxAttempts = max(maxAttempts, a)
	}
	t.Logf("max attempts for one write: %d", maxAttempts)

	got := statusTree(t, wt, "status")
	for i := range writers {
		for j := range writes {
			p := fmt.Sprintf("ns/FlinkDeployment/d%d-%d.yaml", i, j)
			if got[p] != fmt.Sprintf("writer %d write %d\n", i, j) {
				t.Errorf("lost update: %s = %q", p, got[p])
			}
		}
		if p := fmt.Sprintf("ns/FlinkDeployment/last-%d.yaml", i); got[p] != fmt.Sprintf("%d\n", writes-1) {
			t.Errorf("%s = %q, want the last write", p, got[p])
		}
	}
	if out, _ := wt.Git(ctx, "rev-list", "--count", "origin/status"); strings.TrimSpace(out) != fmt.Sprint(writers*writes) {
		t.Errorf("status branch has %s commits, want one per write (%d)", strings.TrimSpace(out), writers*writes)
	}
}

func TestStatusWriterWrongCredentials(t *testing.T) {
	integration(t)
	t.Parallel()
	srv := gitserver.Start(t)
	srv.CreateRepo("specs")
	const wrong = "bad-token-QQ77"
	sw := newTestStatusWriter(t, srv, "specs", func(o *StatusWriterOptions) {
		o.Auth = Auth{Username: srv.User(), TokenFile: tokenFile(t, wrong)}
	})
	res, err := sw.Write(context.Background(), map[string][]byte{"README.md": []byte("x")}, "abc")
	if !errors.Is(err, ErrAuth) || res.Attempts != 1 {
		t.Fatalf("write with a wrong token: attempts %d, err %v", res.Attempts, err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("error leaks the token: %v", err)
	}
}

// TestStatusWriterRetriesOnTheNewTip makes the conflict happen for sure:
// another writer commits between this writer's fetch and its push.
func TestStatusWriterRetriesOnTheNewTip(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, wt := specRepo(t)
	mustCommitPush(t, wt, map[string]string{"a.yaml": "a\n"}, "specs")

	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("branch exists=%v", existing), func(t *testing.T) {
			branch := fmt.Sprintf("status-%v", existing)
			opts := func(o *StatusWriterOptions) { o.Branch = branch }
			a := newTestStatusWriter(t, srv, "specs", opts)
			b := newTestStatusWriter(t, srv, "specs", opts)
			if existing {
				if _, err := b.Write(ctx, map[string][]byte{"README.md": []byte("readme\n")}, "s0"); err != nil {
					t.Fatal(err)
				}
			}
			a.beforePush = func(attempt int) {
				if attempt == 1 {
					if _, err := b.Write(ctx, map[string][]byte{"ns/FlinkDeployment/b.yaml": []byte("b\n")}, "sb"); err != nil {
						t.Errorf("interleaved write: %v", err)
					}
				}
			}
			res, err := a.Write(ctx, map[string][]byte{"ns/FlinkDeployment/a.yaml": []byte("a\n")}, "sa")
			if err != nil || res.Attempts != 2 || !res.Changed {
				t.Fatalf("write: %+v, %v (want success on the 2nd attempt)", res, err)
			}
			got := statusTree(t, wt, branch)
			if got["ns/FlinkDeployment/a.yaml"] != "a\n" || got["ns/FlinkDeployment/b.yaml"] != "b\n" {
				t.Fatalf("lost update: %v", got)
			}
			if existing && got["README.md"] != "readme\n" {
				t.Fatalf("lost README: %v", got)
			}
		})
	}
}
