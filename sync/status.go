package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// StatusWriterOptions configures a StatusWriter.
type StatusWriterOptions struct {
	// URL of the remote (the same repository as the watched branch, usually).
	URL string
	// Branch is the status branch (default "flink-gitops-status"). It is an
	// orphan branch, created by the first write. It must not be the watched
	// branch: the daemon passes both and NewStatusWriter refuses equal ones.
	Branch string
	// WatchedBranch is the branch the daemon reads specs from; never written.
	WatchedBranch string
	// Auth holds the credentials (they need push rights).
	Auth Auth
	// Author of the status commits (default "flink-gitops <flink-gitops@localhost>").
	Author Signature
	// Timeout bounds each network operation (default 1m).
	Timeout time.Duration
	// MaxAttempts bounds the fetch-commit-push attempts of one Write when the
	// branch keeps moving under it (default 8).
	MaxAttempts int
	// Backoff is the first wait after a rejected push; it doubles per
	// attempt with jitter, up to 5s (default 50ms).
	Backoff time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// StatusWriter commits files to the status branch, one commit per Write.
//
// Files are merged per path into the branch's current tree: a path in the
// map gets the given content, a path mapped to nil is deleted, and every
// other file stays as it is. So several daemons (or cycles) writing
// different resources never remove each other's files, and a daemon deletes
// the file of a resource that went away by mapping its path to nil.
//
// A Write that would not change the tree makes no commit. A push is never
// forced: when another writer moved the branch first, the push is rejected,
// and Write fetches the new tip, re-applies the same files on top of it, and
// pushes again, with bounded backoff.
type StatusWriter struct {
	opts StatusWriterOptions
	auth resolvedAuth

	// beforePush, when set (tests only), runs between building the commit
	// and pushing it.
	beforePush func(attempt int)
}

// WriteResult says what a Write did.
type WriteResult struct {
	// Commit is the status branch tip after the write: the new commit, or
	// the unchanged tip when nothing changed ("" if the branch does not
	// exist and nothing was written).
	Commit string
	// Changed is false when the files were already there and no commit was made.
	Changed bool
	// Attempts is how many fetch-commit-push rounds it took.
	Attempts int
}

// NewStatusWriter checks opts and loads the credentials.
func NewStatusWriter(opts StatusWriterOptions) (*StatusWriter, error) {
	if opts.URL == "" {
		return nil, errors.New("status writer: URL is required")
	}
	if opts.Branch == "" {
		opts.Branch = "flink-gitops-status"
	}
	if opts.WatchedBranch != "" && opts.WatchedBranch == opts.Branch {
		return nil, fmt.Errorf("status writer: the status branch %q is the watched branch; choose another", opts.Branch)
	}
	if opts.Author.Name == "" {
		opts.Author.Name = "flink-gitops"
	}
	if opts.Author.Email == "" {
		opts.Author.Email = "flink-gitops@localhost"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	auth, err := opts.Auth.resolve(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("status writer %s: %w", redactURL(opts.URL), err)
	}
	return &StatusWriter{opts: opts, auth: auth}, nil
}

// Write merges files (path → content; nil content deletes the path) into
// the status branch as one commit whose message names sourceCommit.
func (w *StatusWriter) Write(ctx context.Context, files map[string][]byte, sourceCommit string) (WriteResult, error) {
	return w.WriteMessage(ctx, files, sourceCommit, "")
}

// WriteMessage is Write with a caller's commit subject (the body still
// names the source commit); an empty subject means the default one.
func (w *StatusWriter) WriteMessage(ctx context.Context, files map[string][]byte, sourceCommit, subject string) (WriteResult, error) {
	for p := range files {
		if err := validStatusPath(p); err != nil {
			return WriteResult{}, err
		}
	}
	var lastErr error
	wait := w.opts.Backoff
	for attempt := 1; attempt <= w.opts.MaxAttempts; attempt++ {
		res, err := w.attempt(ctx, files, sourceCommit, subject, attempt)
		res.Attempts = attempt
		if err == nil {
			if res.Changed {
				w.opts.Logger.Info("status committed", "branch", w.opts.Branch, "commit", res.Commit, "source", sourceCommit, "attempts", attempt)
			}
			return res, nil
		}
		if errors.Is(err, ErrAuth) || ctx.Err() != nil {
			return res, err
		}
		lastErr = err
		w.opts.Logger.Debug("status push retry", "branch", w.opts.Branch, "attempt", attempt, "err", err)
		// Jittered backoff so racing writers do not collide again in step.
		d := time.Duration(float64(wait) * (0.5 + rand.Float64()))
		wait = min(2*wait, 5*time.Second)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return WriteResult{Attempts: attempt}, ctx.Err()
		case <-t.C:
		}
	}
	if errors.Is(lastErr, ErrUnavailable) && !isConflict(lastErr) {
		return WriteResult{Attempts: w.opts.MaxAttempts}, lastErr
	}
	return WriteResult{Attempts: w.opts.MaxAttempts}, &Error{Kind: ErrConflict, Op: "push", Remote: redactURL(w.opts.URL),
		Msg: fmt.Sprintf("branch %s kept moving for %d attempts; last: %v", w.opts.Branch, w.opts.MaxAttempts, lastErr)}
}

// isConflict reports whether a push error means the branch moved under us.
func isConflict(err error) bool {
	s := err.Error()
	for _, m := range []string{"required to be", "non-fast-forward", "failed to update ref", "fetch first", "cannot lock", "failed to lock", "object not found", "stale info"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// attempt is one round: read the tip, build the commit, push it.
func (w *StatusWriter) attempt(ctx context.Context, files map[string][]byte, sourceCommit, subject string, n int) (WriteResult, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	branch := plumbing.NewBranchReferenceName(w.opts.Branch)

	st := memory.NewStorage()
	repo, err := git.Init(st, nil)
	if err != nil {
		return WriteResult{}, fmt.Errorf("init in-memory repository: %w", err)
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{w.opts.URL}})
	if err != nil {
		return WriteResult{}, fmt.Errorf("configure remote: %w", err)
	}
	tip, err := remoteHead(ctx, remote, branch, w.auth)
	if err != nil {
		return WriteResult{}, w.auth.secrets.classify("ls-remote", w.opts.URL, err)
	}

	current := map[string]object.TreeEntry{}
	var parentTree plumbing.Hash
	var parents []plumbing.Hash
	if !tip.IsZero() {
		err := repo.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin",
			RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", branch, branch))},
			Depth:      1,
			Auth:       w.auth.method,
			CABundle:   w.auth.caBundle,
			Tags:       git.NoTags,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return WriteResult{}, w.auth.secrets.classify("fetch", w.opts.URL, err)
		}
		ref, err := repo.Reference(branch, true)
		if err != nil {
			return WriteResult{}, fmt.Errorf("fetched status branch is missing: %w", err)
		}
		tip = ref.Hash() // the branch may have moved since ls-remote
		c, err := repo.CommitObject(tip)
		if err != nil {
			return WriteResult{}, fmt.Errorf("read status branch tip %s: %w", tip, err)
		}
		tree, err := c.Tree()
		if err != nil {
			return WriteResult{}, fmt.Errorf("read status branch tree: %w", err)
		}
		if current, err = flattenTree(tree); err != nil {
			return WriteResult{}, err
		}
		parentTree = c.TreeHash
		parents = []plumbing.Hash{tip}
	}

	for p, content := range files {
		if content == nil {
			delete(current, p)
			continue
		}
		h, err := storeBlob(st, content)
		if err != nil {
			return WriteResult{}, err
		}
		current[p] = object.TreeEntry{Name: path.Base(p), Mode: filemode.Regular, Hash: h}
	}
	treeHash, err := buildTree(st, current)
	if err != nil {
		return WriteResult{}, err
	}
	if treeHash == parentTree || (tip.IsZero() && len(current) == 0) {
		commit := ""
		if !tip.IsZero() {
			commit = tip.String()
		}
		return WriteResult{Commit: commit}, nil
	}

	now := time.Now()
	sig := object.Signature{Name: w.opts.Author.Name, Email: w.opts.Author.Email, When: now}
	commit := &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      statusMessage(sourceCommit, subject, len(files)),
		TreeHash:     treeHash,
		ParentHashes: parents,
	}
	obj := st.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return WriteResult{}, fmt.Errorf("encode status commit: %w", err)
	}
	commitHash, err := st.SetEncodedObject(obj)
	if err != nil {
		return WriteResult{}, fmt.Errorf("store status commit: %w", err)
	}
	if err := st.SetReference(plumbing.NewHashReference(branch, commitHash)); err != nil {
		return WriteResult{}, fmt.Errorf("set status branch: %w", err)
	}
	push := &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", branch, branch))},
		Auth:       w.auth.method,
		CABundle:   w.auth.caBundle,
	}
	if !tip.IsZero() {
		// Compare-and-swap: push only if the remote is still at the tip we
		// built on (the server checks the old value again atomically).
		push.RequireRemoteRefs = []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", tip, branch))}
	}
	if w.beforePush != nil {
		w.beforePush(n)
	}
	if err := remote.PushContext(ctx, push); err != nil {
		return WriteResult{}, w.auth.secrets.classify("push", w.opts.URL, err)
	}
	return WriteResult{Commit: commitHash.String(), Changed: true}, nil
}

func statusMessage(sourceCommit, subject string, n int) string {
	short := sourceCommit
	if len(short) > 12 {
		short = short[:12]
	}
	if short == "" {
		short = "(none)"
	}
	if subject == "" {
		subject = "status: source " + short
	}
	return fmt.Sprintf("%s\n\n%d file(s) written.\n\nSource-Commit: %s\n", subject, n, sourceCommit)
}

// remoteHead returns the hash of ref on the remote, or the zero hash if the
// remote has no such ref (or no refs at all).
func remoteHead(ctx context.Context, remote *git.Remote, ref plumbing.ReferenceName, auth resolvedAuth) (plumbing.Hash, error) {
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth.method, CABundle: auth.caBundle})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, r := range refs {
		if r.Name() == ref {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// validStatusPath accepts slash-separated relative paths without "..",
// empty or ".git" elements.
func validStatusPath(p string) error {
	if !fs.ValidPath(p) || p == "." {
		return fmt.Errorf("status file path %q is not a clean relative path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if strings.EqualFold(el, ".git") {
			return fmt.Errorf("status file path %q contains .git", p)
		}
	}
	return nil
}

// flattenTree lists every non-tree entry of t by full path.
func flattenTree(t *object.Tree) (map[string]object.TreeEntry, error) {
	out := map[string]object.TreeEntry{}
	walker := object.NewTreeWalker(t, true, nil)
	defer walker.Close()
	for {
		name, e, err := walker.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("walk status tree: %w", err)
		}
		if e.Mode == filemode.Dir {
			continue
		}
		out[name] = e
	}
}

func storeBlob(st storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	wr, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := wr.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// buildTree writes the tree objects for files (full path → entry) and
// returns the root tree's hash.
func buildTree(st storer.EncodedObjectStorer, files map[string]object.TreeEntry) (plumbing.Hash, error) {
	type dir struct {
		entries map[string]object.TreeEntry
		subdirs map[string]bool
	}
	dirs := map[string]*dir{"": {entries: map[string]object.TreeEntry{}, subdirs: map[string]bool{}}}
	get := func(d string) *dir {
		if x, ok := dirs[d]; ok {
			return x
		}
		x := &dir{entries: map[string]object.TreeEntry{}, subdirs: map[string]bool{}}
		dirs[d] = x
		return x
	}
	for p, e := range files {
		d, base := path.Split(p)
		d = strings.TrimSuffix(d, "/")
		e.Name = base
		get(d).entries[base] = e
		for d != "" {
			parent, name := path.Split(d)
			parent = strings.TrimSuffix(parent, "/")
			get(parent).subdirs[name] = true
			d = parent
		}
	}
	var write func(d string) (plumbing.Hash, error)
	write = func(d string) (plumbing.Hash, error) {
		x := dirs[d]
		var entries []object.TreeEntry
		for _, e := range x.entries {
			entries = append(entries, e)
		}
		for name := range x.subdirs {
			sub := name
			if d != "" {
				sub = d + "/" + name
			}
			h, err := write(sub)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
		// Git orders tree entries by name, with directories compared as if
		// their name ended in "/".
		key := func(e object.TreeEntry) string {
			if e.Mode == filemode.Dir {
				return e.Name + "/"
			}
			return e.Name
		}
		sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
		obj := st.NewEncodedObject()
		if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("encode tree %q: %w", d, err)
		}
		return st.SetEncodedObject(obj)
	}
	return write("")
}

// Read returns the files on the status branch and its tip commit; an
// absent branch is no files and "".
func (w *StatusWriter) Read(ctx context.Context) (map[string][]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	branch := plumbing.NewBranchReferenceName(w.opts.Branch)
	st := memory.NewStorage()
	repo, err := git.Init(st, nil)
	if err != nil {
		return nil, "", fmt.Errorf("init in-memory repository: %w", err)
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{w.opts.URL}})
	if err != nil {
		return nil, "", fmt.Errorf("configure remote: %w", err)
	}
	tip, err := remoteHead(ctx, remote, branch, w.auth)
	if err != nil {
		return nil, "", w.auth.secrets.classify("ls-remote", w.opts.URL, err)
	}
	if tip.IsZero() {
		return map[string][]byte{}, "", nil
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", branch, branch))},
		Depth:      1, Auth: w.auth.method, CABundle: w.auth.caBundle, Tags: git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, "", w.auth.secrets.classify("fetch", w.opts.URL, err)
	}
	ref, err := repo.Reference(branch, true)
	if err != nil {
		return nil, "", fmt.Errorf("fetched status branch is missing: %w", err)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, "", fmt.Errorf("read status branch tip: %w", err)
	}
	files := map[string][]byte{}
	iter, err := c.Files()
	if err != nil {
		return nil, "", err
	}
	err = iter.ForEach(func(f *object.File) error {
		s, err := f.Contents()
		if err != nil {
			return err
		}
		files[f.Name] = []byte(s)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("read status branch files: %w", err)
	}
	return files, ref.Hash().String(), nil
}
