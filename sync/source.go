package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Options configures a Source.
type Options struct {
	// URL of the remote: https://…, http://…, ssh://user@host[:port]/path or
	// user@host:path.
	URL string
	// Branch is the watched branch (default "main").
	Branch string
	// Auth holds the credentials.
	Auth Auth
	// Interval between polls (default 1m).
	Interval time.Duration
	// Jitter spreads polls by ±Jitter×Interval so many daemons do not poll a
	// forge in lockstep (default 0.1; negative means none).
	Jitter float64
	// Timeout bounds each network operation (default 1m).
	Timeout time.Duration
	// MaxBackoff caps the delay between polls while the remote fails
	// (default 10×Interval). The delay doubles from Interval per failure.
	MaxBackoff time.Duration
	// MaxSnapshotBytes caps the total size of the files of one commit held
	// in memory (default 256 MiB). A larger head is rejected like an
	// untrusted one: the last good snapshot stays.
	MaxSnapshotBytes int64
	// MaxFetchBytes caps a fetch while it runs: the pack received and the
	// sizes its objects inflate to, checked before any object is inflated
	// (default MaxSnapshotBytes plus a quarter for commits and trees, at
	// least 1 MiB). A larger head is rejected like an oversized snapshot.
	MaxFetchBytes int64
	// Verify, when set, accepts a new head only if it is signed by a
	// trusted key.
	Verify *VerifyOptions
	// Logger receives one line per new snapshot and per failure (default:
	// slog.Default()).
	Logger *slog.Logger
	// OnPoll, if set, is called after every poll with its duration, whether
	// it fetched a new commit, and its error (for metrics).
	OnPoll func(took time.Duration, fetched bool, err error)
}

func (o *Options) setDefaults() {
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * o.Interval
	}
	if o.MaxBackoff < o.Interval {
		o.MaxBackoff = o.Interval
	}
	if o.MaxSnapshotBytes <= 0 {
		o.MaxSnapshotBytes = 256 << 20
	}
	if o.MaxFetchBytes <= 0 {
		o.MaxFetchBytes = max(o.MaxSnapshotBytes+o.MaxSnapshotBytes/4, 1<<20)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Status is what a Source knows about its remote after the last poll.
type Status struct {
	// Available is false while the remote cannot be reached or refuses us.
	Available bool
	// Err is the error of the last poll (redacted), nil if it succeeded.
	// An untrusted head leaves Available true and sets Err.
	Err error
	// Head is the remote head the last successful ls-remote saw.
	Head string
	// Commit is the commit of the current snapshot ("" before the first).
	Commit string
	// Rejected is the head commit refused by signature verification or the
	// size limit, if any; Err says why.
	Rejected string
	// LastPoll is when the last poll finished.
	LastPoll time.Time
	// Failures counts consecutive failed polls.
	Failures int
}

// Source polls one branch of a Git remote and keeps an immutable snapshot of
// its head. A poll whose ls-remote shows no new head does nothing else.
type Source struct {
	opts     Options
	auth     resolvedAuth
	verifier *verifier
	wake     chan struct{}

	pollMu gosync.Mutex // serializes polls

	mu          gosync.Mutex // guards the fields below
	last        *Snapshot
	status      Status
	rejectedErr error
}

// NewSource checks opts, loads credentials and trusted keys, and returns a
// Source that has not polled yet.
func NewSource(opts Options) (*Source, error) {
	if opts.URL == "" {
		return nil, errors.New("git source: URL is required")
	}
	opts.setDefaults()
	auth, err := opts.Auth.resolve(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", redactURL(opts.URL), err)
	}
	v, err := newVerifier(opts.Verify)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", redactURL(opts.URL), err)
	}
	return &Source{opts: opts, auth: auth, verifier: v, wake: make(chan struct{}, 1)}, nil
}

// Last returns the current snapshot, or nil before the first good poll.
func (s *Source) Last() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Status returns what the last poll found.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// SetInterval changes the poll interval (and the backoff cap, 10× the
// interval) from the next wait on, so a config reload applies live. The
// current wait is cut short.
func (s *Source) SetInterval(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	s.opts.Interval, s.opts.MaxBackoff = d, 10*d
	s.mu.Unlock()
	s.Wake()
}

// Wake makes Run poll now instead of at the next tick. It never blocks;
// wakes that arrive while a poll is pending collapse into one.
func (s *Source) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Poll asks the remote for the branch head and, only if it moved, fetches
// that commit (depth 1) and makes it the current snapshot. It returns the
// current snapshot (possibly the previous one, possibly nil), whether it
// changed, and the error of this poll. On error the last good snapshot stays.
func (s *Source) Poll(ctx context.Context) (*Snapshot, bool, error) {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()

	head, err := s.lsRemote(ctx)
	if err != nil {
		return s.fail(ctx, err)
	}
	s.mu.Lock()
	last, rejectedErr := s.last, s.rejectedErr
	s.status.Head = head
	if last != nil && last.Commit == head {
		s.status.Rejected, s.rejectedErr = "", nil
		s.succeed(nil)
		s.mu.Unlock()
		return last, false, nil
	}
	if s.status.Rejected == head && rejectedErr != nil {
		// Already refused this head; do not fetch it again.
		s.succeed(rejectedErr)
		s.mu.Unlock()
		return last, false, rejectedErr
	}
	s.mu.Unlock()

	c, err := s.fetch(ctx)
	if errors.Is(err, ErrSnapshotTooLarge) {
		return s.reject(last, head, err)
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	var signer string
	if s.verifier != nil {
		signer, err = s.verifier.verify(c)
		if err != nil {
			return s.reject(last, c.Hash.String(), &Error{Kind: ErrUntrustedCommit, Op: "verify", Remote: redactURL(s.opts.URL), Msg: err.Error()})
		}
	}
	snap, err := newSnapshot(s.opts.Branch, c, last, s.opts.MaxSnapshotBytes)
	if errors.Is(err, errTooLarge) {
		return s.reject(last, c.Hash.String(), &Error{Kind: ErrSnapshotTooLarge, Op: "snapshot", Remote: redactURL(s.opts.URL), Msg: err.Error()})
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	snap.Signer = signer
	s.mu.Lock()
	s.last = snap
	s.status.Commit = snap.Commit
	s.status.Rejected, s.rejectedErr = "", nil
	s.succeed(nil)
	s.mu.Unlock()
	s.opts.Logger.Info("git snapshot", "branch", s.opts.Branch, "commit", snap.Commit, "previous", snap.Previous, "changed", len(snap.ChangedPaths))
	return snap, true, nil
}

// reject records a head that was fetched but refused (untrusted or too
// large): the last snapshot stays, and the same head is not fetched again.
func (s *Source) reject(last *Snapshot, commit string, err error) (*Snapshot, bool, error) {
	s.mu.Lock()
	s.status.Rejected = commit
	s.rejectedErr = err
	s.succeed(err)
	s.mu.Unlock()
	s.opts.Logger.Warn("git head rejected", "branch", s.opts.Branch, "commit", commit, "err", err)
	return last, false, err
}

// succeed records a poll that reached the remote; s.mu must be held.
func (s *Source) succeed(err error) {
	s.status.Available = true
	s.status.Err = err
	s.status.Failures = 0
	s.status.LastPoll = time.Now()
}

// fail records a poll that could not reach or read the remote. A poll cut
// short by its caller's context (shutdown) is not held against the remote.
func (s *Source) fail(ctx context.Context, err error) (*Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return s.last, false, fmt.Errorf("poll cancelled: %w", ctx.Err())
	}
	s.status.Available = errors.Is(err, ErrBranchNotFound)
	s.status.Err = err
	s.status.Failures++
	s.status.LastPoll = time.Now()
	s.opts.Logger.Warn("git poll failed", "branch", s.opts.Branch, "failures", s.status.Failures, "err", err)
	return s.last, false, err
}

// lsRemote returns the remote head of the watched branch.
func (s *Source) lsRemote(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth.method, CABundle: s.auth.caBundle})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return "", &Error{Kind: ErrBranchNotFound, Op: "ls-remote", Remote: redactURL(s.opts.URL), Msg: "the repository is empty"}
	}
	if err != nil {
		return "", s.auth.secrets.classify("ls-remote", s.opts.URL, err)
	}
	want := plumbing.NewBranchReferenceName(s.opts.Branch)
	for _, r := range refs {
		if r.Name() == want {
			return r.Hash().String(), nil
		}
	}
	return "", &Error{Kind: ErrBranchNotFound, Op: "ls-remote", Remote: redactURL(s.opts.URL), Msg: fmt.Sprintf("no branch %q", s.opts.Branch)}
}

// fetch fetches the watched branch's head with depth 1 into fresh in-memory
// storage and returns the commit. Fresh storage keeps every snapshot
// independent of history, so a force push is just another head.
func (s *Source) fetch(ctx context.Context) (*object.Commit, error) {
	return s.fetchCommit(ctx, plumbing.NewBranchReferenceName(s.opts.Branch), fmt.Sprintf("branch %q", s.opts.Branch))
}

// fetchCommit fetches the commit remote ref points at, with depth 1, into
// fresh in-memory storage; what names the ref in errors.
func (s *Source) fetchCommit(ctx context.Context, ref plumbing.ReferenceName, what string) (*object.Commit, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	repo, err := git.Init(newCappedStorage(s.opts.MaxFetchBytes), nil)
	if err != nil {
		return nil, fmt.Errorf("init in-memory repository: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}}); err != nil {
		return nil, fmt.Errorf("configure remote: %w", err)
	}
	local := plumbing.ReferenceName("refs/remotes/origin/fetched")
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec("+" + ref.String() + ":" + local.String())},
		Depth:      1,
		Auth:       s.auth.method,
		CABundle:   s.auth.caBundle,
		Tags:       git.NoTags,
	})
	if errors.Is(err, errFetchTooLarge) {
		return nil, &Error{Kind: ErrSnapshotTooLarge, Op: "fetch", Remote: redactURL(s.opts.URL),
			Msg: fmt.Sprintf("%s refused: %v; move large files out of the repository", what, err)}
	}
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if strings.Contains(err.Error(), "couldn't find remote ref") {
			return nil, &Error{Kind: ErrBranchNotFound, Op: "fetch", Remote: redactURL(s.opts.URL), Msg: "no " + what}
		}
		return nil, s.auth.secrets.classify("fetch", s.opts.URL, err)
	}
	r, err := repo.Reference(local, true)
	if err != nil {
		return nil, &Error{Kind: ErrBranchNotFound, Op: "fetch", Remote: redactURL(s.opts.URL), Msg: "no " + what + " after fetch"}
	}
	c, err := repo.CommitObject(r.Hash())
	if err != nil {
		return nil, fmt.Errorf("read fetched commit %s: %w", r.Hash(), err)
	}
	return c, nil
}

// Run polls until ctx is done: at once, then every Interval (with jitter),
// sooner when Wake is called, later (doubling up to MaxBackoff) while the
// remote fails. It calls onChange with every new snapshot, from Run's
// goroutine. It returns ctx.Err().
func (s *Source) Run(ctx context.Context, onChange func(*Snapshot)) error {
	for {
		start := time.Now()
		snap, changed, err := s.Poll(ctx)
		if s.opts.OnPoll != nil && ctx.Err() == nil {
			s.opts.OnPoll(time.Since(start), changed, err)
		}
		if changed && onChange != nil {
			onChange(snap)
		}
		timer := time.NewTimer(s.nextDelay())
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-s.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// nextDelay is the wait before the next poll: the interval with jitter, or
// an exponential backoff while polls fail.
func (s *Source) nextDelay() time.Duration {
	s.mu.Lock()
	failures := s.status.Failures
	interval, maxBackoff := s.opts.Interval, s.opts.MaxBackoff
	s.mu.Unlock()
	return delay(interval, maxBackoff, s.opts.Jitter, failures, rand.Float64())
}

// delay computes the poll delay; r is uniform in [0,1).
func delay(interval, maxBackoff time.Duration, jitter float64, failures int, r float64) time.Duration {
	d := interval
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff {
		d = maxBackoff
	}
	return time.Duration(float64(d) * (1 + jitter*(2*r-1)))
}
