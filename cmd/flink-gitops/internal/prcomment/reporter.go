// Package prcomment keeps one comment on each pull request that targets
// the watched branch: before the merge, the plan of the pull request's head
// against what is deployed (per resource: action, warnings, folded spec
// diff, validation errors); after the merge commit is reconciled, the
// result per resource (done with its savepoint, or the error), added to the
// same comment. It is triggered by pull-request webhooks and falls back to
// a slow poll.
package prcomment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	gosync "sync"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
	"github.com/flink-gitops/flink-gitops/sync/forge"
)

// State is the daemon's view the reporter reads. The reporter never
// changes it; records are treated as immutable.
type State struct {
	// Rendered are the watched branch's commits the daemon rendered
	// recently, oldest first; the last is the current one.
	Rendered []string
	// Records are the latest records by key (Kind/namespace/name).
	Records map[string]*lifecycle.Record
	// Problems are the validation problems per key of the current commit;
	// Failures the reconcile errors of keys that have no record.
	Problems map[string][]string
	Failures map[string]string
}

// Commit is the commit the daemon rendered last ("" before the first).
func (s State) Commit() string {
	if len(s.Rendered) == 0 {
		return ""
	}
	return s.Rendered[len(s.Rendered)-1]
}

// Options configure a Reporter.
type Options struct {
	// Forge returns the forge client for the current configuration (nil
	// while pull-request comments are off).
	Forge func() (forge.Forge, error)
	// Branch is the watched branch; StatusBranch the status branch.
	Branch, StatusBranch string
	// Fetch fetches the head of pull request n: its commit and tree.
	Fetch func(ctx context.Context, n int) (string, render.Source, error)
	// Render renders a tree with the daemon's render options.
	Render func(ctx context.Context, tree render.Source) (*render.Result, error)
	// FlinkDefaults returns the daemon's flink.defaultConfiguration.
	FlinkDefaults func() map[string]string
	// DefaultMode returns the daemon's flink.defaultMode (nil: standalone).
	DefaultMode func() v1beta1.DeploymentMode
	// State reads the daemon's current state.
	State func() State
	// FileURL returns a web link to a file on the status branch, given a
	// pull request's URL ("" when unknown).
	FileURL func(prURL, branch, path string) string
	// ResultTimeout is how long after the merge commit was rendered the
	// result waits for operations in flight before it is written as it
	// stands (default 15m).
	ResultTimeout time.Duration
	// Preflight dry-runs a planned change against the cluster
	// (lifecycle.PreflightPlanned); nil when the daemon has no cluster
	// client. A *lifecycle.Rejection is shown in the plan.
	Preflight func(ctx context.Context, p lifecycle.Planned) error
	// Log (default slog.Default()).
	Log *slog.Logger
}

// Reporter keeps the pull-request comments. Run it only on the leader.
type Reporter struct {
	opts Options
	wake chan struct{}

	mu      gosync.Mutex
	pending map[int]bool // pull requests to look at now (webhooks)
	prs     map[int]*prMemo
	blocked time.Time // rate limited until
}

// prMemo is what the reporter remembers of one pull request.
type prMemo struct {
	comment int64 // id of the marked comment, 0 when none
	body    string
	st      state
	url     string
	// merge is the merge commit once merged; mergeSeen when the daemon
	// was first seen past it.
	merge     string
	mergeSeen time.Time
	closed    bool
	// retryAt holds Refresh back from a pull request whose last attempt
	// failed (e.g. its head ref is gone), so a failure is not retried
	// every tick.
	retryAt time.Time
}

// New returns a Reporter; nothing runs until Run.
func New(opts Options) *Reporter {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ResultTimeout <= 0 {
		opts.ResultTimeout = 15 * time.Minute
	}
	if opts.DefaultMode == nil {
		opts.DefaultMode = func() v1beta1.DeploymentMode { return "" }
	}
	if opts.FlinkDefaults == nil {
		opts.FlinkDefaults = func() map[string]string { return nil }
	}
	return &Reporter{opts: opts, wake: make(chan struct{}, 1), pending: map[int]bool{}, prs: map[int]*prMemo{}}
}

// Trigger asks for pull request n to be looked at now. It never blocks.
func (r *Reporter) Trigger(n int) {
	r.mu.Lock()
	r.pending[n] = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// OnWebhook handles an authenticated pull_request delivery (GitHub's and
// Gitea's payloads share the fields read here): opened, reopened,
// synchronize(d), edited and closed events for the watched branch trigger
// that pull request.
func (r *Reporter) OnWebhook(ev gitsync.Event) {
	if ev.Type != gitsync.EventPullRequest {
		return
	}
	var p struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		PullRequest struct {
			Number int `json:"number"`
			Base   struct {
				Ref string `json:"ref"`
			} `json:"base"`
		} `json:"pull_request"`
	}
	if err := json.Unmarshal(ev.Body, &p); err != nil {
		r.opts.Log.Warn("pull_request webhook: malformed payload", "err", err)
		return
	}
	n := p.Number
	if n == 0 {
		n = p.PullRequest.Number
	}
	if n == 0 || p.PullRequest.Base.Ref != "" && p.PullRequest.Base.Ref != r.opts.Branch {
		return
	}
	switch p.Action {
	case "opened", "reopened", "synchronize", "synchronized", "edited", "closed", "ready_for_review":
		r.opts.Log.Info("pull request event", "pr", n, "action", p.Action, "delivery", ev.Delivery)
		r.Trigger(n)
	}
}

// Run reports until ctx is done: every pull request at once, then on
// webhooks, on a poll every pollInterval() (missed webhooks), and every
// few seconds for merged pull requests whose result is still to come and
// for open ones when the deployed state they are planned against changed.
func (r *Reporter) Run(ctx context.Context, pollInterval func() time.Duration) {
	nextPoll := time.Now()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		if time.Now().After(nextPoll) {
			if err := r.Poll(ctx); err != nil && ctx.Err() == nil {
				r.opts.Log.Warn("pull-request poll failed", "err", err)
			}
			nextPoll = time.Now().Add(pollInterval())
		}
		r.mu.Lock()
		var ns []int
		for n := range r.pending {
			ns = append(ns, n)
		}
		r.mu.Unlock()
		sort.Ints(ns)
		for _, n := range ns {
			err := r.Report(ctx, n)
			if err != nil && ctx.Err() == nil {
				r.opts.Log.Warn("pull-request comment failed; will retry", "pr", n, "err", err)
			}
			if err == nil || !r.retryable(err) {
				r.mu.Lock()
				delete(r.pending, n)
				r.mu.Unlock()
			}
		}
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			r.opts.Log.Warn("pull-request refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-tick.C:
		}
	}
}

func (r *Reporter) retryable(err error) bool {
	var rl *forge.RateLimitError
	return errors.As(err, &rl) || errors.Is(err, context.DeadlineExceeded)
}

// forge returns the client unless reporting is off or rate limited.
func (r *Reporter) forge() (forge.Forge, error) {
	r.mu.Lock()
	blocked := r.blocked
	r.mu.Unlock()
	if time.Now().Before(blocked) {
		return nil, &forge.RateLimitError{Until: blocked, Msg: "waiting for the rate limit to reset"}
	}
	return r.opts.Forge()
}

// note remembers a rate limit so no call is made until it resets.
func (r *Reporter) note(err error) error {
	var rl *forge.RateLimitError
	if errors.As(err, &rl) {
		r.mu.Lock()
		r.blocked = rl.Until
		r.mu.Unlock()
	}
	return err
}

// Poll lists the pull requests targeting the watched branch (one call,
// usually a 304) and reports those whose head changed since their last
// report, and merged ones whose result is still to come.
func (r *Reporter) Poll(ctx context.Context) error {
	f, err := r.forge()
	if f == nil || err != nil {
		return err
	}
	prs, err := f.PullRequests(ctx, r.opts.Branch)
	if err != nil {
		return r.note(err)
	}
	for _, pr := range prs {
		r.mu.Lock()
		m := r.prs[pr.Number]
		r.mu.Unlock()
		switch {
		case pr.State == "open" && (m == nil || m.st.Head != pr.HeadSHA):
		case pr.Merged && time.Since(pr.Updated) < 24*time.Hour && (m == nil || m.st.Merge == "" && m.comment != 0):
		default:
			continue
		}
		if err := r.report(ctx, f, pr); err != nil {
			if r.retryable(err) {
				return err
			}
			r.opts.Log.Warn("pull-request comment failed", "pr", pr.Number, "err", err)
		}
	}
	return nil
}

// Report looks at pull request n now: plans its head when open, writes the
// result when merged and reconciled.
func (r *Reporter) Report(ctx context.Context, n int) error {
	f, err := r.forge()
	if f == nil || err != nil {
		return err
	}
	pr, err := f.PullRequest(ctx, n)
	if err != nil {
		return r.note(err)
	}
	return r.report(ctx, f, pr)
}

func (r *Reporter) report(ctx context.Context, f forge.Forge, pr forge.PullRequest) error {
	if pr.Base != r.opts.Branch {
		return nil
	}
	m, err := r.memo(ctx, f, pr)
	if err != nil {
		return err
	}
	switch {
	case pr.State == "open":
		m.closed = false
		return r.plan(ctx, f, pr.Number, m, pr.HeadSHA)
	case pr.Merged:
		m.closed = true
		if m.comment == 0 || m.st.Merge != "" {
			return nil // never planned here, or the result is written
		}
		m.merge = pr.MergeCommit
		return r.result(ctx, f, pr.Number, m)
	default:
		m.closed = true
		return nil
	}
}

// memo returns what is known of pull request n, reading its comments once
// to find the marked one (and its hidden state).
func (r *Reporter) memo(ctx context.Context, f forge.Forge, pr forge.PullRequest) (*prMemo, error) {
	r.mu.Lock()
	m := r.prs[pr.Number]
	r.mu.Unlock()
	if m != nil {
		m.url = pr.URL
		return m, nil
	}
	self, err := f.Self(ctx)
	if err != nil {
		return nil, r.note(err)
	}
	cs, err := f.Comments(ctx, pr.Number)
	if err != nil {
		return nil, r.note(err)
	}
	m = &prMemo{url: pr.URL}
	// Only the daemon's own comment is found and its hidden state trusted.
	if c, ok := forge.FindMarked(cs, self); ok {
		m.comment, m.body = c.ID, c.Body
		m.st, _ = parseState(c.Body)
	}
	r.mu.Lock()
	r.prs[pr.Number] = m
	r.mu.Unlock()
	return m, nil
}

// plan renders the head of pull request n and writes the plan, unless the
// head and the deployed state are what the comment already shows.
func (r *Reporter) plan(ctx context.Context, f forge.Forge, n int, m *prMemo, head string) error {
	s := r.opts.State()
	if s.Commit() == "" {
		return nil // the daemon has not rendered yet: nothing to plan against
	}
	fp := fingerprint(s.Records)
	if head != "" && m.st.Head == head && m.st.Records == fp {
		return nil
	}
	start := time.Now()
	commit, tree, err := r.opts.Fetch(ctx, n)
	if err != nil {
		return fmt.Errorf("fetch head of #%d: %w", n, err)
	}
	if m.st.Head == commit && m.st.Records == fp {
		return nil
	}
	res, err := r.opts.Render(ctx, tree)
	if err != nil {
		return fmt.Errorf("render head of #%d: %w", n, err)
	}
	planned := lifecycle.PlanRender(res, s.Records, lifecycle.PlanOptions{FlinkDefaults: r.opts.FlinkDefaults(), DefaultMode: r.opts.DefaultMode(),
		HasDir: func(dir string) bool { return hasDir(tree, dir) }})
	r.preflight(ctx, planned)
	st := state{Head: commit, Records: fp, Planned: map[string]string{}}
	for _, p := range planned {
		if p.Action.Kind != lifecycle.ActionNone {
			st.Planned[p.Key] = p.Action.String()
		}
	}
	if m.comment == 0 && len(st.Planned) == 0 && len(res.Problems) == 0 {
		// Nothing to review (e.g. a change to docs): no comment until a
		// push makes one worth reading.
		m.st = st
		r.opts.Log.Info("pull request changes no resource; not commenting", "pr", n, "head", commit)
		return nil
	}
	body := FormatPlan(Plan{Number: n, Head: commit, Base: r.opts.Branch, BaseCommit: s.Commit(), Resources: planned,
		Problems: res.Problems, Warnings: res.Warnings}, st, r.links(m))
	if err := r.write(ctx, f, n, m, body); err != nil {
		return err
	}
	m.st = st
	r.opts.Log.Info("pull-request plan written", "pr", n, "head", commit, "resources", len(planned), "changes", len(st.Planned),
		"problems", len(res.Problems), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// result writes the outcome of a merged pull request once the daemon has
// rendered its merge commit and every planned resource has settled (or
// ResultTimeout passed).
func (r *Reporter) result(ctx context.Context, f forge.Forge, n int, m *prMemo) error {
	s := r.opts.State()
	idx := slices.Index(s.Rendered, m.merge)
	if idx < 0 {
		return nil // not rendered yet; Refresh comes back
	}
	if m.mergeSeen.IsZero() {
		m.mergeSeen = time.Now()
	}
	after := s.Rendered[idx:]
	var outcomes []Outcome
	settled := true
	for _, key := range sortedKeys(m.st.Planned) {
		o := outcome(key, m.st.Planned[key], s, after)
		settled = settled && !o.Pending
		outcomes = append(outcomes, o)
	}
	if !settled && time.Since(m.mergeSeen) < r.opts.ResultTimeout {
		return nil
	}
	st := m.st
	st.Merge = m.merge
	body := FormatResult(m.body, st, m.merge, outcomes, r.links(m))
	if err := r.write(ctx, f, n, m, body); err != nil {
		return err
	}
	m.st = st
	r.opts.Log.Info("pull-request result written", "pr", n, "merge", m.merge, "resources", len(outcomes), "settled", settled)
	return nil
}

// outcome is one planned resource's result: rendered is the merge commit
// and the commits after it.
func outcome(key, action string, s State, rendered []string) Outcome {
	o := Outcome{Key: key, Action: action}
	if ps := s.Problems[key]; len(ps) > 0 {
		o.Err = "not applied: " + ps[0]
		return o
	}
	rec := s.Records[key]
	if rec == nil {
		if msg := s.Failures[key]; msg != "" {
			o.Err = msg
			return o
		}
		o.Pending = true
		return o
	}
	c := rec.Common()
	o.State = string(c.LifecycleState)
	if js := c.JobStatus.State; js != "" {
		o.State += ", job " + string(js)
	}
	if rec.Operation != nil {
		o.Pending = true
		o.State += " (" + string(rec.Operation.Kind) + ": " + string(rec.Operation.Phase) + ")"
		return o
	}
	if c.Error != "" || c.LifecycleState == v1beta1.LifecycleFailed {
		o.Err = c.Error
		if o.Err == "" {
			o.Err = "FAILED"
		}
		return o
	}
	switch c.LifecycleState {
	case v1beta1.LifecycleDeleted:
		o.Done = true
		return o
	case v1beta1.LifecycleRolledBack:
		o.Err = "rolled back to the last stable spec: the new spec did not become stable"
		return o
	case v1beta1.LifecycleStable, v1beta1.LifecycleSuspended:
	default:
		// CREATED, DEPLOYED (not yet stable), UPGRADING, ROLLING_BACK, DELETING
		o.Pending = true
		return o
	}
	if c.Source == nil || !slices.Contains(rendered, c.Source.Commit) {
		o.Pending = true
		return o
	}
	o.Done = true
	o.Savepoint = c.JobStatus.UpgradeSavepointPath
	if si := c.JobStatus.SavepointInfo; si != nil && len(si.SavepointHistory) > 0 {
		if last := si.SavepointHistory[len(si.SavepointHistory)-1]; slices.Contains(rendered, last.Commit) || o.Savepoint == "" {
			o.Savepoint = last.Location
		}
	}
	return o
}

// Refresh comes back to the pull requests the reporter knows: merged ones
// whose result is due, open ones when the deployed state changed.
func (r *Reporter) Refresh(ctx context.Context) error {
	r.mu.Lock()
	var todo []int
	now := time.Now()
	for n, m := range r.prs {
		if now.Before(m.retryAt) {
			continue
		}
		if m.closed && m.comment != 0 && m.merge != "" && m.st.Merge == "" || !m.closed && m.st.Head != "" {
			todo = append(todo, n)
		}
	}
	r.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	sort.Ints(todo)
	var fp string
	for _, n := range todo {
		r.mu.Lock()
		m := r.prs[n]
		r.mu.Unlock()
		if !m.closed {
			if fp == "" {
				fp = fingerprint(r.opts.State().Records)
			}
			if m.st.Records == fp {
				continue
			}
		}
		f, err := r.forge()
		if f == nil || err != nil {
			return err
		}
		if m.closed {
			err = r.result(ctx, f, n, m)
		} else {
			err = r.plan(ctx, f, n, m, m.st.Head)
		}
		if err != nil {
			m.retryAt = time.Now().Add(refreshBackoff)
			return fmt.Errorf("#%d: %w", n, err)
		}
	}
	return nil
}

// refreshBackoff is how long Refresh leaves a pull request alone after a
// failed attempt (webhooks and polls still look at it).
const refreshBackoff = time.Minute

// write edits the marked comment, or creates it.
func (r *Reporter) write(ctx context.Context, f forge.Forge, n int, m *prMemo, body string) error {
	if m.comment != 0 && m.body == body {
		return nil
	}
	if m.comment != 0 {
		c, err := f.EditComment(ctx, m.comment, body)
		if err == nil {
			m.body = c.Body
			if m.body == "" {
				m.body = body
			}
			return nil
		}
		var rl *forge.RateLimitError
		if errors.As(err, &rl) {
			return r.note(err)
		}
		// The comment may have been deleted: look again.
		r.opts.Log.Warn("editing the pull-request comment failed; looking for it again", "pr", n, "err", err)
	}
	var c forge.Comment
	var err error
	if m.comment == 0 {
		// memo listed the comments: none is marked.
		c, err = f.CreateComment(ctx, n, body)
	} else {
		c, _, err = forge.Upsert(ctx, f, n, body)
	}
	if err != nil {
		return r.note(err)
	}
	m.comment, m.body = c.ID, body
	return nil
}

func (r *Reporter) links(m *prMemo) Links {
	l := Links{StatusBranch: r.opts.StatusBranch}
	if r.opts.FileURL != nil && m.url != "" {
		u, b := m.url, r.opts.StatusBranch
		l.File = func(path string) string { return r.opts.FileURL(u, b, path) }
	}
	return l
}

// fingerprint summarizes what a plan depends on in the records: the last
// reconciled spec, whether deleted, and the nonces acted on.
func fingerprint(recs map[string]*lifecycle.Record) string {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		rec := recs[k]
		c := rec.Common()
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00%s\x00%s\x00", k, rec.Reconciliation().LastReconciledSpec, c.LifecycleState == v1beta1.LifecycleDeleted,
			nonce(rec.LastRestartNonce), nonce(rec.LastSavepointNonce))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func nonce(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func hasDir(tree render.Source, dir string) bool {
	if dir == "" {
		return false
	}
	prefix := dir + "/"
	for _, p := range tree.Paths() {
		if len(p) > len(prefix) && p[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// preflight adds what the apiserver would refuse of each planned change
// (a server-side dry-run of its objects, Pod Security, ResourceQuota) to
// the change's warnings. A cluster that cannot be asked adds nothing.
func (r *Reporter) preflight(ctx context.Context, planned []lifecycle.Planned) {
	if r.opts.Preflight == nil {
		return
	}
	for i := range planned {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.opts.Preflight(ctx, planned[i])
		cancel()
		var rj *lifecycle.Rejection
		switch {
		case errors.As(err, &rj):
			planned[i].Action.Warnings = append(planned[i].Action.Warnings, "the apiserver would reject this: "+rj.Error())
		case err != nil:
			r.opts.Log.Warn("pull-request plan: pre-flight could not ask the cluster", "resource", planned[i].Key, "err", err)
		}
	}
}
