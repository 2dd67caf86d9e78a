package sync

import (
	"context"
	"errors"
	"testing"
)

func TestFetchRefSnapshotsAPullRequestHead(t *testing.T) {
	integration(t)
	srv, w := specRepo(t)
	ctx := context.Background()
	mustCommitPush(t, w, map[string]string{"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"}, "base")
	s := newTestSource(t, srv, "specs", nil)
	if _, _, err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	// A pull request head the way a forge keeps it: refs/pull/1/head.
	if err := w.WriteFile("b.yaml", "b: 2\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Git(ctx, "checkout", "--quiet", "-b", "feature"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Git(ctx, "add", "--all"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Git(ctx, "commit", "--quiet", "--no-gpg-sign", "-m", "change b"); err != nil {
		t.Fatal(err)
	}
	head, err := w.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Git(ctx, "push", "--quiet", "origin", "HEAD:"+PullRequestRef(1)); err != nil {
		t.Fatal(err)
	}

	snap, err := s.FetchRef(ctx, PullRequestRef(1))
	if err != nil {
		t.Fatalf("FetchRef: %v", err)
	}
	if snap.Commit != head || snap.Branch != "refs/pull/1/head" {
		t.Errorf("snapshot of %s at %s, want refs/pull/1/head at %s", snap.Branch, snap.Commit, head)
	}
	if b, _ := snap.ReadFile("b.yaml"); string(b) != "b: 2\n" {
		t.Errorf("b.yaml = %q", b)
	}
	if got := snap.ChangedPaths; len(got) != 1 || got[0] != "b.yaml" {
		t.Errorf("ChangedPaths against the watched head = %v, want [b.yaml]", got)
	}
	if s.Last().Commit == head {
		t.Error("FetchRef replaced the source's current snapshot")
	}

	_, err = s.FetchRef(ctx, PullRequestRef(2))
	if !errors.Is(err, ErrBranchNotFound) {
		t.Errorf("missing ref: err = %v, want ErrBranchNotFound", err)
	}
	if _, err := s.FetchRef(ctx, "main"); err == nil {
		t.Error("a short ref name was accepted")
	}
}
