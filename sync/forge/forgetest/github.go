// Package forgetest is a fake GitHub REST API for tests: the few endpoints
// the forge package uses (list and get pull requests, list, create and edit
// issue comments), answering with go-github's own types, honouring ETags
// (If-None-Match → 304), and able to answer with a primary rate limit.
package forgetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"
)

// Request is one request the fake served.
type Request struct {
	Method, Path string
	Status       int
}

// GitHub is a running fake.
type GitHub struct {
	Server      *httptest.Server
	Owner, Repo string
	// Token is the bearer token the fake accepts.
	Token string
	// Login is the user comments are created as.
	Login string

	mu          gosync.Mutex
	prs         map[int]*github.PullRequest
	comments    map[int][]*github.IssueComment
	nextID      int64
	requests    []Request
	limitedTill time.Time
}

// NewGitHub starts a fake for repository owner/repo; it is closed when
// the test ends.
func NewGitHub(t testing.TB, owner, repo string) *GitHub {
	g := &GitHub{Owner: owner, Repo: repo, Token: "test-token", Login: "flink-gitops-bot",
		prs: map[int]*github.PullRequest{}, comments: map[int][]*github.IssueComment{}, nextID: 1000}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Server.Close)
	return g
}

// URL is the API base URL (what forge.Options.BaseURL takes).
func (g *GitHub) URL() string { return g.Server.URL + "/" }

// SetPR adds or replaces pull request n.
func (g *GitHub) SetPR(n int, base, headSHA, state string, merged bool, mergeCommit string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := &github.PullRequest{
		Number: github.Ptr(n), Title: github.Ptr(fmt.Sprintf("PR %d", n)), State: github.Ptr(state),
		HTMLURL:   github.Ptr(fmt.Sprintf("https://github.example/%s/%s/pull/%d", g.Owner, g.Repo, n)),
		Base:      &github.PullRequestBranch{Ref: github.Ptr(base)},
		Head:      &github.PullRequestBranch{Ref: github.Ptr(fmt.Sprintf("feature-%d", n)), SHA: github.Ptr(headSHA)},
		UpdatedAt: &github.Timestamp{Time: time.Now()},
	}
	if merged {
		p.MergedAt = &github.Timestamp{Time: time.Now()}
		p.MergeCommitSHA = github.Ptr(mergeCommit)
	}
	g.prs[n] = p
}

// AddComment adds a comment by author to pull request n.
func (g *GitHub) AddComment(n int, author, body string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.addComment(n, author, body).GetID()
}

func (g *GitHub) addComment(n int, author, body string) *github.IssueComment {
	g.nextID++
	c := &github.IssueComment{ID: github.Ptr(g.nextID), Body: github.Ptr(body), User: &github.User{Login: github.Ptr(author)},
		HTMLURL: github.Ptr(fmt.Sprintf("https://github.example/%s/%s/pull/%d#issuecomment-%d", g.Owner, g.Repo, n, g.nextID))}
	g.comments[n] = append(g.comments[n], c)
	return c
}

// Comments returns the bodies of pull request n's comments by author
// ("" for all).
func (g *GitHub) Comments(n int, author string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, c := range g.comments[n] {
		if author == "" || c.GetUser().GetLogin() == author {
			out = append(out, c.GetBody())
		}
	}
	return out
}

// RateLimitUntil makes every request answer 403 with X-RateLimit-Remaining
// 0 until t.
func (g *GitHub) RateLimitUntil(t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limitedTill = t
}

// Requests returns the requests served so far and forgets them.
func (g *GitHub) Requests() []Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.requests
	g.requests = nil
	return r
}

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	g.route(rec, r)
	g.requests = append(g.requests, Request{Method: r.Method, Path: r.URL.Path, Status: rec.status})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (g *GitHub) route(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-RateLimit-Limit", "5000")
	if r.Header.Get("Authorization") != "Bearer "+g.Token {
		writeJSON(w, r, http.StatusUnauthorized, &github.ErrorResponse{Message: "Bad credentials"})
		return
	}
	if time.Now().Before(g.limitedTill) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(g.limitedTill.Unix(), 10))
		writeJSON(w, r, http.StatusForbidden, &github.ErrorResponse{Message: "API rate limit exceeded for user ID 1."})
		return
	}
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	if r.Method == http.MethodGet && r.URL.Path == "/user" {
		writeJSON(w, r, http.StatusOK, &github.User{Login: github.Ptr(g.Login), ID: github.Ptr(int64(1))})
		return
	}
	prefix := "/repos/" + g.Owner + "/" + g.Repo + "/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		writeJSON(w, r, http.StatusNotFound, &github.ErrorResponse{Message: "Not Found"})
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case r.Method == http.MethodGet && rest == "pulls":
		g.listPRs(w, r)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "pulls":
		n, _ := strconv.Atoi(parts[1])
		p, ok := g.prs[n]
		if !ok {
			writeJSON(w, r, http.StatusNotFound, &github.ErrorResponse{Message: "Not Found"})
			return
		}
		cp := *p
		cp.Merged = github.Ptr(p.MergedAt != nil) // only the single-PR answer has "merged"
		writeJSON(w, r, http.StatusOK, &cp)
	case len(parts) == 3 && parts[0] == "issues" && parts[2] == "comments":
		n, _ := strconv.Atoi(parts[1])
		if _, ok := g.prs[n]; !ok {
			writeJSON(w, r, http.StatusNotFound, &github.ErrorResponse{Message: "Not Found"})
			return
		}
		switch r.Method {
		case http.MethodGet:
			g.listComments(w, r, n)
		case http.MethodPost:
			var in github.IssueComment
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
				writeJSON(w, r, http.StatusUnprocessableEntity, &github.ErrorResponse{Message: "Invalid request"})
				return
			}
			if len([]rune(in.GetBody())) > 65536 {
				writeJSON(w, r, http.StatusUnprocessableEntity, &github.ErrorResponse{Message: "Validation Failed: body is too long (maximum is 65536 characters)"})
				return
			}
			writeJSON(w, r, http.StatusCreated, g.addComment(n, g.Login, in.GetBody()))
		default:
			writeJSON(w, r, http.StatusMethodNotAllowed, &github.ErrorResponse{Message: "Method not allowed"})
		}
	case r.Method == http.MethodPatch && len(parts) == 3 && parts[0] == "issues" && parts[1] == "comments":
		id, _ := strconv.ParseInt(parts[2], 10, 64)
		var in github.IssueComment
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == nil {
			writeJSON(w, r, http.StatusUnprocessableEntity, &github.ErrorResponse{Message: "Invalid request"})
			return
		}
		if len([]rune(in.GetBody())) > 65536 {
			writeJSON(w, r, http.StatusUnprocessableEntity, &github.ErrorResponse{Message: "Validation Failed: body is too long (maximum is 65536 characters)"})
			return
		}
		for _, cs := range g.comments {
			for _, c := range cs {
				if c.GetID() == id {
					c.Body = in.Body
					c.UpdatedAt = &github.Timestamp{Time: time.Now()}
					writeJSON(w, r, http.StatusOK, c)
					return
				}
			}
		}
		writeJSON(w, r, http.StatusNotFound, &github.ErrorResponse{Message: "Not Found"})
	default:
		writeJSON(w, r, http.StatusNotFound, &github.ErrorResponse{Message: "Not Found"})
	}
}

func (g *GitHub) listPRs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out []*github.PullRequest
	for _, p := range g.prs {
		if b := q.Get("base"); b != "" && p.GetBase().GetRef() != b {
			continue
		}
		if s := q.Get("state"); s != "all" && p.GetState() != s && !(s == "" && p.GetState() == "open") {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetNumber() > out[j].GetNumber() })
	writeJSON(w, r, http.StatusOK, out)
}

func (g *GitHub) listComments(w http.ResponseWriter, r *http.Request, n int) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	all := g.comments[n]
	lo, hi := min((page-1)*per, len(all)), min(page*per, len(all))
	if hi < len(all) {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(page+1))
		u.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, u.RequestURI()))
	}
	page1 := all[lo:hi]
	if page1 == nil {
		page1 = []*github.IssueComment{}
	}
	writeJSON(w, r, http.StatusOK, page1)
}

// writeJSON answers v as JSON; a GET answer carries an ETag and becomes a
// 304 when the request's If-None-Match matches it.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.Method == http.MethodGet && status == http.StatusOK {
		sum := sha256.Sum256(b)
		etag := `W/"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
