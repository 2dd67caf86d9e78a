package sync

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

func integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
}

// quietLogger discards logs unless -v is given.
func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// specRepo starts a git server with an empty repository "specs" and
// returns the server and a worktree of it.
func specRepo(t testing.TB) (*gitserver.Server, *gitserver.Worktree) {
	t.Helper()
	srv := gitserver.Start(t)
	srv.CreateRepo("specs")
	return srv, srv.Worktree(t, "specs")
}

// tokenFile writes the server's password to a file for Auth.TokenFile.
func tokenFile(t testing.TB, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestSource returns a Source on repo of srv with the server's credentials.
func newTestSource(t testing.TB, srv *gitserver.Server, repo string, mod func(*Options)) *Source {
	t.Helper()
	o := Options{
		URL:      srv.URL(repo),
		Branch:   "main",
		Auth:     Auth{Username: srv.User(), TokenFile: tokenFile(t, srv.Password())},
		Interval: time.Hour,
		Timeout:  20 * time.Second,
		Logger:   quietLogger(),
	}
	if mod != nil {
		mod(&o)
	}
	s, err := NewSource(o)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return s
}

func mustCommitPush(t testing.TB, w *gitserver.Worktree, files map[string]string, msg string) string {
	t.Helper()
	sha, err := w.CommitPush(context.Background(), files, msg)
	if err != nil {
		t.Fatalf("commit and push: %v", err)
	}
	return sha
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
