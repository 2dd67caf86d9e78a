package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// PullRequestRef is the ref GitHub and Gitea keep for the head of pull
// request n, fetchable even when the head branch lives in a fork.
func PullRequestRef(n int) string { return fmt.Sprintf("refs/pull/%d/head", n) }

// FetchRef fetches one ref of the remote (a full ref name such as
// refs/pull/7/head or refs/heads/feature) with depth 1 and returns an
// immutable snapshot of its commit. It uses the Source's credentials,
// timeout and snapshot size cap, and does not touch the Source's current
// snapshot or status; it may run concurrently with polls. The snapshot's
// Previous and ChangedPaths are relative to the Source's current snapshot
// (what the ref changes against the watched branch's head), and its blobs
// are shared with it. Commits fetched this way are not signature-checked:
// they are shown (e.g. planned in a pull request), never applied.
func (s *Source) FetchRef(ctx context.Context, ref string) (*Snapshot, error) {
	if !strings.HasPrefix(ref, "refs/") || strings.ContainsAny(ref, " :*?[\\^~") || strings.Contains(ref, "..") {
		return nil, fmt.Errorf("fetch ref: %q is not a full ref name (refs/…)", ref)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, fmt.Errorf("init in-memory repository: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}}); err != nil {
		return nil, fmt.Errorf("configure remote: %w", err)
	}
	local := plumbing.ReferenceName("refs/remotes/origin/fetched")
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec("+" + ref + ":" + local.String())},
		Depth:      1,
		Auth:       s.auth.method,
		CABundle:   s.auth.caBundle,
		Tags:       git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if strings.Contains(err.Error(), "couldn't find remote ref") {
			return nil, &Error{Kind: ErrBranchNotFound, Op: "fetch", Remote: redactURL(s.opts.URL), Msg: fmt.Sprintf("no ref %q", ref)}
		}
		return nil, s.auth.secrets.classify("fetch", s.opts.URL, err)
	}
	r, err := repo.Reference(local, true)
	if err != nil {
		return nil, &Error{Kind: ErrBranchNotFound, Op: "fetch", Remote: redactURL(s.opts.URL), Msg: fmt.Sprintf("no ref %q after fetch", ref)}
	}
	c, err := repo.CommitObject(r.Hash())
	if err != nil {
		return nil, fmt.Errorf("read fetched commit %s: %w", r.Hash(), err)
	}
	snap, err := newSnapshot(ref, c, s.Last(), s.opts.MaxSnapshotBytes)
	if errors.Is(err, errTooLarge) {
		return nil, &Error{Kind: ErrSnapshotTooLarge, Op: "snapshot", Remote: redactURL(s.opts.URL), Msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return snap, nil
}
