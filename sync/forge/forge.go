// Package forge talks to the pull requests of a Git forge (GitHub or
// Gitea): it lists the pull requests targeting a branch, reads one, and
// keeps one comment per pull request, found again by a hidden marker and
// edited in place.
//
// Clients read their token from a file (re-read when the file changes, so
// a rotated Secret applies without a restart), bound every call with a
// timeout, make conditional GET requests with ETags (a 304 does not count
// against GitHub's rate limit), and turn rate-limit answers into a
// *RateLimitError that says when to try again.
package forge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	gosync "sync"
	"time"
)

// Providers.
const (
	GitHub = "github"
	Gitea  = "gitea"
)

// Marker is the hidden HTML comment that identifies the comment this
// daemon owns on a pull request.
const Marker = "<!-- flink-gitops:pr-comment -->"

// MaxCommentChars is the longest comment body GitHub accepts (65536
// characters); Gitea gets the same bound.
const MaxCommentChars = 65536

// PullRequest is what the reporter needs of one pull request.
type PullRequest struct {
	Number int
	Title  string
	// URL is the pull request's web page.
	URL string
	// Base is the target branch; HeadSHA the head commit.
	Base    string
	HeadSHA string
	// State is "open" or "closed".
	State string
	// Merged is true once merged; MergeCommit is then the commit the merge
	// made on Base (for a fast-forward or rebase merge, the last one).
	Merged      bool
	MergeCommit string
	// Updated is when the pull request last changed.
	Updated time.Time
}

// Comment is one comment on a pull request's conversation.
type Comment struct {
	ID     int64
	Author string
	Body   string
	URL    string
}

// Forge is the API the reporter uses. Implementations are safe for
// concurrent use.
type Forge interface {
	// PullRequests lists the pull requests targeting base, open and
	// recently closed, most recently updated first (one page).
	PullRequests(ctx context.Context, base string) ([]PullRequest, error)
	// PullRequest reads pull request n.
	PullRequest(ctx context.Context, n int) (PullRequest, error)
	// Comments lists the comments of pull request n, oldest first.
	Comments(ctx context.Context, n int) ([]Comment, error)
	// CreateComment adds a comment to pull request n.
	CreateComment(ctx context.Context, n int, body string) (Comment, error)
	// EditComment replaces the body of comment id.
	EditComment(ctx context.Context, id int64, body string) (Comment, error)
	// Self is the login of the identity the token belongs to (GET /user,
	// asked once per token). Only its comments are ever found or edited.
	Self(ctx context.Context) (string, error)
}

// Options configure a forge client.
type Options struct {
	// Provider is GitHub or Gitea.
	Provider string
	// BaseURL of the API: for GitHub https://api.github.com/ (default) or
	// https://HOST/api/v3/ for GitHub Enterprise; for Gitea the server's
	// root URL, e.g. https://gitea.example.com/.
	BaseURL string
	// Owner and Repo name the repository.
	Owner, Repo string
	// TokenFile holds the API token; it is re-read when it changes.
	TokenFile string
	// Timeout bounds one API call (default 20s).
	Timeout time.Duration
	// Transport is the HTTP transport (default: net/http's default
	// transport as it was when the program started; the flink-gitops
	// binary then replaces http.DefaultTransport with one that refuses).
	Transport http.RoundTripper
	// OnRequest, if set, is called after every HTTP exchange with the
	// method, the URL path, the status code (0 on a transport error) and
	// whether the answer came from the ETag cache (a 304).
	OnRequest func(method, path string, status int, cached bool)
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// startTransport is http.DefaultTransport as package initialisation found it.
var startTransport = http.DefaultTransport

// New returns a client for opts.Provider. It makes no request.
func New(opts Options) (Forge, error) {
	if opts.Owner == "" || opts.Repo == "" {
		return nil, errors.New("forge: repository owner and name are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 20 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = startTransport
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch opts.Provider {
	case GitHub:
		return newGitHub(opts)
	case Gitea:
		return newGitea(opts)
	}
	return nil, fmt.Errorf("forge: unknown provider %q (use %s or %s)", opts.Provider, GitHub, Gitea)
}

// RateLimitError says the forge refused a call for its rate limit; retry
// after Until.
type RateLimitError struct {
	Until time.Time
	Msg   string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("forge rate limit: %s (retry after %s)", e.Msg, e.Until.UTC().Format(time.RFC3339))
}

// FindMarked returns the first comment carrying Marker written by author
// (the daemon's own login, see Forge.Self). A marked comment by anyone
// else — e.g. a pull request's author copying the marker and a hidden
// state — is neither found nor trusted.
func FindMarked(comments []Comment, author string) (Comment, bool) {
	if author == "" {
		return Comment{}, false
	}
	for _, c := range comments {
		if strings.EqualFold(c.Author, author) && strings.Contains(c.Body, Marker) {
			return c, true
		}
	}
	return Comment{}, false
}

// Upsert makes body (which must carry Marker) the marked comment of pull
// request n: it edits the daemon's own marked comment when its body
// differs, or creates one. Comments by others are never edited. It returns
// the comment and whether anything was written.
func Upsert(ctx context.Context, f Forge, n int, body string) (Comment, bool, error) {
	if !strings.Contains(body, Marker) {
		return Comment{}, false, errors.New("forge: comment body lacks the marker")
	}
	self, err := f.Self(ctx)
	if err != nil {
		return Comment{}, false, err
	}
	comments, err := f.Comments(ctx, n)
	if err != nil {
		return Comment{}, false, err
	}
	if c, ok := FindMarked(comments, self); ok {
		if c.Body == body {
			return c, false, nil
		}
		c, err := f.EditComment(ctx, c.ID, body)
		return c, err == nil, err
	}
	c, err := f.CreateComment(ctx, n, body)
	return c, err == nil, err
}

// selfCache remembers the login of a token: GET /user is asked once per
// token (a rotated token may belong to another identity).
type selfCache struct {
	tokens *tokenSource

	mu    gosync.Mutex
	token string
	login string
}

func (s *selfCache) get(ctx context.Context, ask func(context.Context) (string, error)) (string, error) {
	tok, err := s.tokens.get()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.login != "" && s.token == tok {
		return s.login, nil
	}
	login, err := ask(ctx)
	if err != nil {
		return "", fmt.Errorf("forge: who am I (GET /user): %w", err)
	}
	if login == "" {
		return "", errors.New("forge: GET /user answered no login: check the token")
	}
	s.token, s.login = tok, login
	return login, nil
}

// FileURL returns the web address of path on branch in the repository of
// a pull request, given the pull request's web address (GitHub:
// …/owner/repo/pull/N, Gitea: …/owner/repo/pulls/N); "" for any other form.
func FileURL(provider, prURL, branch, path string) string {
	seg := "/pull/"
	view := "/blob/"
	if provider == Gitea {
		seg, view = "/pulls/", "/src/branch/"
	}
	i := strings.LastIndex(prURL, seg)
	if i < 0 {
		return ""
	}
	return prURL[:i] + view + branch + "/" + strings.TrimPrefix(path, "/")
}
