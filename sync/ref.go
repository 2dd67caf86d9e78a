package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
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
	c, err := s.fetchCommit(ctx, plumbing.ReferenceName(ref), fmt.Sprintf("ref %q", ref))
	if err != nil {
		return nil, err
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
