package gitserver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestPushAndCloneWithCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	s.CreateRepo("specs")

	w := s.Worktree(t, "specs")
	sha, err := w.CommitPush(ctx, map[string]string{"a/b.yaml": "x: 1\n"}, "first")
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c.ReceivePack == 0 {
		t.Fatalf("push did not reach git-receive-pack: %+v", c)
	}

	// A second clone sees the pushed commit; a force push replaces it.
	w2 := s.Worktree(t, "specs")
	head, err := w2.Head(ctx)
	if err != nil || head != sha {
		t.Fatalf("second clone HEAD = %q, %v; want %s", head, err, sha)
	}
	if _, err := w2.Git(ctx, "reset", "--quiet", "--hard", "HEAD"); err != nil {
		t.Fatal(err)
	}
	if err := w2.WriteFile("a/b.yaml", "x: 2\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Git(ctx, "add", "-A"); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Git(ctx, "commit", "--quiet", "--amend", "-m", "rewritten"); err != nil {
		t.Fatal(err)
	}
	if err := w2.Push(ctx); err == nil {
		t.Fatal("non-fast-forward push was accepted")
	}
	if err := w2.ForcePush(ctx); err != nil {
		t.Fatalf("force push: %v", err)
	}
	out, err := w.Git(ctx, "ls-remote", "origin", "refs/heads/main")
	if err != nil {
		t.Fatal(err)
	}
	newHead, _ := w2.Head(ctx)
	if !strings.HasPrefix(out, newHead) {
		t.Fatalf("ls-remote after force push = %q, want %s", out, newHead)
	}
}

func TestRefusesMissingOrWrongCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	s.CreateRepo("specs")
	good := s.Worktree(t, "specs")
	if _, err := good.CommitPush(ctx, map[string]string{"f": "1"}, "first"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, user, password string }{
		{"anonymous", "", ""},
		{"wrong password", s.User(), "wrong-password"},
		{"wrong user", "mallory", s.Password()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Counts().Unauthorized
			_, err := Clone(ctx, s.URL("specs"), filepath.Join(t.TempDir(), "wt"), Credentials{User: tc.user, Password: tc.password})
			if err == nil {
				t.Fatal("clone succeeded without valid credentials")
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Fatalf("error leaks the password: %v", err)
			}
			// Push from a good clone, but with bad credentials.
			bad := s.Worktree(t, "specs")
			bad.creds = Credentials{User: tc.user, Password: tc.password}
			if err := bad.WriteFile("g", "2"); err != nil {
				t.Fatal(err)
			}
			if _, err := bad.Commit(ctx, "should not land"); err != nil {
				t.Fatal(err)
			}
			if err := bad.Push(ctx); err == nil {
				t.Fatal("push succeeded without valid credentials")
			}
			if s.Counts().Unauthorized <= before {
				t.Fatal("server did not count the refused requests")
			}
		})
	}
}

func TestStopRestartSamePort(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	t.Parallel()
	ctx := context.Background()
	s := Start(t, WithoutAuth())
	s.CreateRepo("r")
	w := s.Worktree(t, "r")
	if _, err := w.CommitPush(ctx, map[string]string{"f": "1"}, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Git(ctx, "ls-remote", "origin"); err == nil {
		t.Fatal("ls-remote succeeded against a stopped server")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Git(ctx, "ls-remote", "origin"); err != nil {
		t.Fatalf("ls-remote after restart: %v", err)
	}
}

func TestSSHServerServesRepos(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	t.Parallel()
	ctx := context.Background()
	s := Start(t)
	s.CreateRepo("specs")
	w := s.Worktree(t, "specs")
	sha, err := w.CommitPush(ctx, map[string]string{"f": "1"}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	x := s.StartSSH(t)
	out, err := x.Check(ctx, "specs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, sha+"\trefs/heads/main") {
		t.Fatalf("ls-remote over ssh = %q, want %s", out, sha)
	}
}
