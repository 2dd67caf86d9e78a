package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v84/github"
)

// maxPages bounds how many pages of comments are read per pull request.
const maxPages = 20

type gitHub struct {
	c           *github.Client
	self        *selfCache
	owner, repo string
	timeout     time.Duration
}

func newGitHub(opts Options) (*gitHub, error) {
	tr := newETagTransport(opts.Transport, opts.OnRequest)
	tokens := &tokenSource{path: opts.TokenFile}
	hc := &http.Client{Transport: &authTransport{scheme: "Bearer", tokens: tokens, next: tr}}
	c := github.NewClient(hc)
	c.UserAgent = "flink-gitops"
	if opts.BaseURL != "" {
		u, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/") + "/")
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("forge: API base URL %q is not a URL", opts.BaseURL)
		}
		c.BaseURL = u
	}
	return &gitHub{c: c, self: &selfCache{tokens: tokens}, owner: opts.Owner, repo: opts.Repo, timeout: opts.Timeout}, nil
}

func (g *gitHub) PullRequests(ctx context.Context, base string) ([]PullRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	prs, _, err := g.c.PullRequests.List(ctx, g.owner, g.repo, &github.PullRequestListOptions{
		State: "all", Base: base, Sort: "updated", Direction: "desc", ListOptions: github.ListOptions{PerPage: 50},
	})
	if err != nil {
		return nil, githubErr("list pull requests", err)
	}
	out := make([]PullRequest, 0, len(prs))
	for _, p := range prs {
		out = append(out, fromGitHubPR(p))
	}
	return out, nil
}

func (g *gitHub) PullRequest(ctx context.Context, n int) (PullRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	p, _, err := g.c.PullRequests.Get(ctx, g.owner, g.repo, n)
	if err != nil {
		return PullRequest{}, githubErr(fmt.Sprintf("get pull request #%d", n), err)
	}
	return fromGitHubPR(p), nil
}

func fromGitHubPR(p *github.PullRequest) PullRequest {
	pr := PullRequest{
		Number: p.GetNumber(), Title: p.GetTitle(), URL: p.GetHTMLURL(),
		Base: p.GetBase().GetRef(), HeadSHA: p.GetHead().GetSHA(), State: p.GetState(),
		Merged: p.GetMerged() || p.MergedAt != nil, Updated: p.GetUpdatedAt().Time,
	}
	if pr.Merged {
		pr.MergeCommit = p.GetMergeCommitSHA()
	}
	return pr
}

func (g *gitHub) Comments(ctx context.Context, n int) ([]Comment, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	var out []Comment
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for page := 0; page < maxPages; page++ {
		cs, resp, err := g.c.Issues.ListComments(ctx, g.owner, g.repo, n, opts)
		if err != nil {
			return nil, githubErr(fmt.Sprintf("list comments of #%d", n), err)
		}
		for _, c := range cs {
			out = append(out, fromGitHubComment(c))
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

func (g *gitHub) CreateComment(ctx context.Context, n int, body string) (Comment, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, _, err := g.c.Issues.CreateComment(ctx, g.owner, g.repo, n, &github.IssueComment{Body: github.Ptr(body)})
	if err != nil {
		return Comment{}, githubErr(fmt.Sprintf("comment on #%d", n), err)
	}
	return fromGitHubComment(c), nil
}

func (g *gitHub) EditComment(ctx context.Context, id int64, body string) (Comment, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, _, err := g.c.Issues.EditComment(ctx, g.owner, g.repo, id, &github.IssueComment{Body: github.Ptr(body)})
	if err != nil {
		return Comment{}, githubErr(fmt.Sprintf("edit comment %d", id), err)
	}
	return fromGitHubComment(c), nil
}

func (g *gitHub) Self(ctx context.Context) (string, error) {
	return g.self.get(ctx, func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, g.timeout)
		defer cancel()
		u, _, err := g.c.Users.Get(ctx, "")
		if err != nil {
			return "", githubErr("get the authenticated user", err)
		}
		return u.GetLogin(), nil
	})
}

func fromGitHubComment(c *github.IssueComment) Comment {
	return Comment{ID: c.GetID(), Author: c.GetUser().GetLogin(), Body: c.GetBody(), URL: c.GetHTMLURL()}
}

// githubErr turns go-github's rate-limit errors into *RateLimitError and
// wraps the rest with what was being done.
func githubErr(op string, err error) error {
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		return fmt.Errorf("github: %s: %w", op, &RateLimitError{Until: rl.Rate.Reset.Time, Msg: rl.Message})
	}
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		until := time.Now().Add(time.Minute) // GitHub's advice without Retry-After
		if abuse.RetryAfter != nil {
			until = time.Now().Add(*abuse.RetryAfter)
		}
		return fmt.Errorf("github: %s: %w", op, &RateLimitError{Until: until, Msg: abuse.Message})
	}
	return fmt.Errorf("github: %s: %w", op, err)
}
