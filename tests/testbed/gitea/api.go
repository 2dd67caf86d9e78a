package gitea

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Comment is an issue comment on a pull request.
type Comment struct {
	ID               int64
	Body             string
	User             string
	Created, Updated time.Time
}

// PullRequest is the part of Gitea's pull request the test bed reads.
type PullRequest struct {
	Number         int    `json:"number"`
	State          string `json:"state"`
	Merged         bool   `json:"merged"`
	Mergeable      bool   `json:"mergeable"`
	MergeCommitSHA string `json:"merge_commit_sha"`
	Head           struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

// APIError is a non-2xx answer of the REST API.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("gitea %s %s: %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Token returns an API token of the admin with all scopes, created on the
// first call (with basic auth) and cached.
func (s *Server) Token(ctx context.Context) (string, error) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	if s.token != "" {
		return s.token, nil
	}
	var out struct {
		SHA1 string `json:"sha1"`
	}
	in := map[string]any{"name": "testbed-" + randomHex(4), "scopes": []string{"all"}}
	err := s.do(ctx, http.MethodPost, "/users/"+adminUser+"/tokens", in, &out, func(r *http.Request) {
		r.SetBasicAuth(adminUser, s.password)
	})
	if err != nil {
		return "", fmt.Errorf("create admin token: %w", err)
	}
	if out.SHA1 == "" {
		return "", errors.New("create admin token: answer has no token")
	}
	s.token = out.SHA1
	return s.token, nil
}

// CreateRepo creates an empty public repository owned by the admin, default
// branch "main", and returns its HTTP clone URL.
func (s *Server) CreateRepo(ctx context.Context, name string) (cloneURL string, err error) {
	var out struct {
		CloneURL string `json:"clone_url"`
	}
	in := map[string]any{"name": name, "default_branch": "main", "private": false, "auto_init": false}
	if err := s.api(ctx, http.MethodPost, "/user/repos", in, &out); err != nil {
		return "", fmt.Errorf("create repo %s: %w", name, err)
	}
	return out.CloneURL, nil
}

// AddWebhook registers an active webhook of type "gitea" (JSON payloads
// signed with secret in X-Gitea-Signature) on the admin's repo for events
// such as "push" and "pull_request".
func (s *Server) AddWebhook(ctx context.Context, repo, targetURL, secret string, events []string) error {
	in := map[string]any{
		"type": "gitea",
		"config": map[string]string{
			"url":          targetURL,
			"content_type": "json",
			"secret":       secret,
		},
		"events":        events,
		"branch_filter": "*",
		"active":        true,
	}
	if err := s.api(ctx, http.MethodPost, s.repoPath(repo, "/hooks"), in, nil); err != nil {
		return fmt.Errorf("add webhook to %s: %w", repo, err)
	}
	return nil
}

// OpenPullRequest opens a pull request from branch head into base of the
// admin's repo and returns its number.
func (s *Server) OpenPullRequest(ctx context.Context, repo, head, base, title string) (number int, err error) {
	var out PullRequest
	in := map[string]any{"head": head, "base": base, "title": title}
	if err := s.api(ctx, http.MethodPost, s.repoPath(repo, "/pulls"), in, &out); err != nil {
		return 0, fmt.Errorf("open pull request %s→%s in %s: %w", head, base, repo, err)
	}
	return out.Number, nil
}

// PullRequest reads pull request number of the admin's repo.
func (s *Server) PullRequest(ctx context.Context, repo string, number int) (PullRequest, error) {
	var out PullRequest
	if err := s.api(ctx, http.MethodGet, s.repoPath(repo, fmt.Sprintf("/pulls/%d", number)), nil, &out); err != nil {
		return PullRequest{}, fmt.Errorf("read pull request %s#%d: %w", repo, number, err)
	}
	return out, nil
}

// mergeTimeout bounds MergePullRequest when ctx has no earlier deadline.
const mergeTimeout = 2 * time.Minute

// MergePullRequest merges pull request number with a merge commit and
// returns its SHA. Gitea checks mergeability asynchronously after every
// push, so the merge is retried while Gitea says "try again later", and the
// pull request is polled until it reports the merge commit.
func (s *Server) MergePullRequest(ctx context.Context, repo string, number int) (mergeCommit string, err error) {
	ctx, cancel := context.WithTimeout(ctx, mergeTimeout)
	defer cancel()
	path := s.repoPath(repo, fmt.Sprintf("/pulls/%d/merge", number))
	in := map[string]any{"Do": "merge"}
	var notYet error
	err = poll(ctx, func() (bool, error) {
		err := s.api(ctx, http.MethodPost, path, in, nil)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusMethodNotAllowed && strings.Contains(ae.Body, "try again later") {
			notYet = err // still checking, or in conflict: only time tells
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		if notYet != nil {
			err = fmt.Errorf("%w (last answer: %v)", err, notYet)
		}
		return "", fmt.Errorf("merge pull request %s#%d: %w", repo, number, err)
	}
	err = poll(ctx, func() (bool, error) {
		pr, err := s.PullRequest(ctx, repo, number)
		mergeCommit = pr.MergeCommitSHA
		return err == nil && pr.Merged && mergeCommit != "", err
	})
	if err != nil {
		return "", fmt.Errorf("wait for pull request %s#%d to be merged: %w", repo, number, err)
	}
	return mergeCommit, nil
}

// CreateComment adds an issue comment to pull request number and returns it.
func (s *Server) CreateComment(ctx context.Context, repo string, number int, body string) (Comment, error) {
	var out apiComment
	in := map[string]string{"body": body}
	if err := s.api(ctx, http.MethodPost, s.repoPath(repo, fmt.Sprintf("/issues/%d/comments", number)), in, &out); err != nil {
		return Comment{}, fmt.Errorf("comment on %s#%d: %w", repo, number, err)
	}
	return out.comment(), nil
}

// Comments returns the issue comments of pull request number, oldest first.
func (s *Server) Comments(ctx context.Context, repo string, number int) ([]Comment, error) {
	var all []Comment
	for page := 1; ; page++ {
		var out []apiComment
		path := s.repoPath(repo, fmt.Sprintf("/issues/%d/comments?page=%d&limit=50", number, page))
		if err := s.api(ctx, http.MethodGet, path, nil, &out); err != nil {
			return nil, fmt.Errorf("list comments of %s#%d: %w", repo, number, err)
		}
		for _, c := range out {
			all = append(all, c.comment())
		}
		if len(out) < 50 {
			return all, nil
		}
	}
}

type apiComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
	Created time.Time `json:"created_at"`
	Updated time.Time `json:"updated_at"`
}

func (c apiComment) comment() Comment {
	return Comment{ID: c.ID, Body: c.Body, User: c.User.Login, Created: c.Created, Updated: c.Updated}
}

func (s *Server) repoPath(repo, rest string) string {
	return "/repos/" + adminUser + "/" + url.PathEscape(repo) + rest
}

// api calls the REST API as the admin with its token.
func (s *Server) api(ctx context.Context, method, path string, in, out any) error {
	token, err := s.Token(ctx)
	if err != nil {
		return err
	}
	return s.do(ctx, method, path, in, out, func(r *http.Request) {
		r.Header.Set("Authorization", "token "+token)
	})
}

// do sends in as JSON to /api/v1+path and decodes a 2xx answer into out.
func (s *Server) do(ctx context.Context, method, path string, in, out any, auth func(*http.Request)) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.url, "/")+"/api/v1"+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	auth(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// poll calls cond every 100ms until it reports done, fails, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := cond()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CreateUser creates a plain (non-admin) user and returns its password.
// Anyone can comment on the admin's public repositories, as a pull
// request's author or reviewer would.
func (s *Server) CreateUser(ctx context.Context, name string) (password string, err error) {
	password = "pw-" + randomHex(12)
	in := map[string]any{"username": name, "email": name + "@example.invalid", "password": password, "must_change_password": false}
	if err := s.api(ctx, http.MethodPost, "/admin/users", in, nil); err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	return password, nil
}

// CommentAs adds an issue comment to pull request number as user (basic
// auth with password) and returns it.
func (s *Server) CommentAs(ctx context.Context, user, password, repo string, number int, body string) (Comment, error) {
	var out apiComment
	in := map[string]string{"body": body}
	err := s.do(ctx, http.MethodPost, s.repoPath(repo, fmt.Sprintf("/issues/%d/comments", number)), in, &out, func(r *http.Request) {
		r.SetBasicAuth(user, password)
	})
	if err != nil {
		return Comment{}, fmt.Errorf("comment on %s#%d as %s: %w", repo, number, user, err)
	}
	return out.comment(), nil
}
