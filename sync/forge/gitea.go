package forge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
)

type giteaForge struct {
	url         string
	self        *selfCache
	hc          *http.Client
	owner, repo string
	timeout     time.Duration
}

func newGitea(opts Options) (*giteaForge, error) {
	u, err := url.Parse(opts.BaseURL)
	if opts.BaseURL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("forge: Gitea needs the server's URL (http(s)://host/), not %q", opts.BaseURL)
	}
	tr := newETagTransport(opts.Transport, opts.OnRequest)
	tokens := &tokenSource{path: opts.TokenFile}
	hc := &http.Client{Transport: &authTransport{scheme: "token", tokens: tokens, next: tr}}
	return &giteaForge{self: &selfCache{tokens: tokens}, url: strings.TrimSuffix(opts.BaseURL, "/"), hc: hc, owner: opts.Owner, repo: opts.Repo, timeout: opts.Timeout}, nil
}

// client returns an SDK client bound to ctx: the SDK takes its context per
// client, and a client is only a struct (SetGiteaVersion("") skips the
// version request, every supported Gitea is newer than the SDK's checks).
func (g *giteaForge) client(ctx context.Context) (*gitea.Client, error) {
	return gitea.NewClient(g.url, gitea.SetHTTPClient(g.hc), gitea.SetContext(ctx), gitea.SetGiteaVersion(""), gitea.SetUserAgent("flink-gitops"))
}

func (g *giteaForge) PullRequests(ctx context.Context, base string) ([]PullRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := g.client(ctx)
	if err != nil {
		return nil, err
	}
	prs, resp, err := c.ListRepoPullRequests(g.owner, g.repo, gitea.ListPullRequestsOptions{
		ListOptions: gitea.ListOptions{Page: 1, PageSize: 50}, State: gitea.StateAll, Sort: "recentupdate",
	})
	if err != nil {
		return nil, giteaErr("list pull requests", resp, err)
	}
	var out []PullRequest
	for _, p := range prs {
		if pr := fromGiteaPR(p); pr.Base == base {
			out = append(out, pr)
		}
	}
	return out, nil
}

func (g *giteaForge) PullRequest(ctx context.Context, n int) (PullRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := g.client(ctx)
	if err != nil {
		return PullRequest{}, err
	}
	p, resp, err := c.GetPullRequest(g.owner, g.repo, int64(n))
	if err != nil {
		return PullRequest{}, giteaErr(fmt.Sprintf("get pull request #%d", n), resp, err)
	}
	return fromGiteaPR(p), nil
}

func fromGiteaPR(p *gitea.PullRequest) PullRequest {
	pr := PullRequest{Number: int(p.Index), Title: p.Title, URL: p.HTMLURL, State: string(p.State), Merged: p.HasMerged}
	if p.Base != nil {
		pr.Base = p.Base.Ref
	}
	if p.Head != nil {
		pr.HeadSHA = p.Head.Sha
	}
	if p.Updated != nil {
		pr.Updated = *p.Updated
	}
	if p.HasMerged && p.MergedCommitID != nil {
		pr.MergeCommit = *p.MergedCommitID
	}
	return pr
}

func (g *giteaForge) Comments(ctx context.Context, n int) ([]Comment, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := g.client(ctx)
	if err != nil {
		return nil, err
	}
	var out []Comment
	for page := 1; page <= maxPages; page++ {
		cs, resp, err := c.ListIssueComments(g.owner, g.repo, int64(n), gitea.ListIssueCommentOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, giteaErr(fmt.Sprintf("list comments of #%d", n), resp, err)
		}
		for _, cm := range cs {
			out = append(out, fromGiteaComment(cm))
		}
		if resp == nil || resp.NextPage == 0 || len(cs) == 0 {
			break
		}
	}
	return out, nil
}

func (g *giteaForge) CreateComment(ctx context.Context, n int, body string) (Comment, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := g.client(ctx)
	if err != nil {
		return Comment{}, err
	}
	cm, resp, err := c.CreateIssueComment(g.owner, g.repo, int64(n), gitea.CreateIssueCommentOption{Body: body})
	if err != nil {
		return Comment{}, giteaErr(fmt.Sprintf("comment on #%d", n), resp, err)
	}
	return fromGiteaComment(cm), nil
}

func (g *giteaForge) EditComment(ctx context.Context, id int64, body string) (Comment, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	c, err := g.client(ctx)
	if err != nil {
		return Comment{}, err
	}
	cm, resp, err := c.EditIssueComment(g.owner, g.repo, id, gitea.EditIssueCommentOption{Body: body})
	if err != nil {
		return Comment{}, giteaErr(fmt.Sprintf("edit comment %d", id), resp, err)
	}
	return fromGiteaComment(cm), nil
}

func (g *giteaForge) Self(ctx context.Context) (string, error) {
	return g.self.get(ctx, func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, g.timeout)
		defer cancel()
		c, err := g.client(ctx)
		if err != nil {
			return "", err
		}
		u, resp, err := c.GetMyUserInfo()
		if err != nil {
			return "", giteaErr("get the authenticated user", resp, err)
		}
		return u.UserName, nil
	})
}

func fromGiteaComment(c *gitea.Comment) Comment {
	out := Comment{ID: c.ID, Body: c.Body, URL: c.HTMLURL}
	if c.Poster != nil {
		out.Author = c.Poster.UserName
	}
	return out
}

// giteaErr turns a 429 (Gitea itself has no API rate limit, a proxy in
// front of it may) into *RateLimitError and wraps the rest.
func giteaErr(op string, resp *gitea.Response, err error) error {
	if resp != nil && resp.Response != nil && (resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-RateLimit-Remaining") == "0") {
		until := retryAfter(resp.Header, time.Now())
		if until.IsZero() {
			until = time.Now().Add(time.Minute)
		}
		return fmt.Errorf("gitea: %s: %w", op, &RateLimitError{Until: until, Msg: err.Error()})
	}
	return fmt.Errorf("gitea: %s: %w", op, err)
}
