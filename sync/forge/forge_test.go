package forge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flink-gitops/flink-gitops/sync/forge"
	"github.com/flink-gitops/flink-gitops/sync/forge/forgetest"
)

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type counter struct {
	mu     gosync.Mutex
	calls  int
	cached int
}

func (c *counter) note(_, _ string, _ int, cached bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if cached {
		c.cached++
	}
}

func newGitHub(t *testing.T) (*forgetest.GitHub, forge.Forge, *counter) {
	t.Helper()
	fake := forgetest.NewGitHub(t, "acme", "flink-specs")
	var n counter
	f, err := forge.New(forge.Options{Provider: forge.GitHub, BaseURL: fake.URL(), Owner: "acme", Repo: "flink-specs",
		TokenFile: tokenFile(t, fake.Token), Timeout: 5 * time.Second, OnRequest: n.note})
	if err != nil {
		t.Fatal(err)
	}
	return fake, f, &n
}

func TestGitHubPullRequests(t *testing.T) {
	t.Parallel()
	fake, f, _ := newGitHub(t)
	fake.SetPR(1, "main", "aaa", "open", false, "")
	fake.SetPR(2, "main", "bbb", "closed", true, "mmm")
	fake.SetPR(3, "release", "ccc", "open", false, "")
	ctx := context.Background()

	prs, err := f.PullRequests(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]forge.PullRequest{}
	for _, p := range prs {
		got[p.Number] = p
	}
	if len(got) != 2 || got[1].HeadSHA != "aaa" || got[1].Merged || got[2].MergeCommit != "mmm" || !got[2].Merged || got[2].State != "closed" {
		t.Errorf("PullRequests(main) = %+v", prs)
	}
	p, err := f.PullRequest(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Merged || p.MergeCommit != "mmm" || p.Base != "main" || p.URL == "" {
		t.Errorf("PullRequest(2) = %+v", p)
	}
	if _, err := f.PullRequest(ctx, 9); err == nil {
		t.Error("PullRequest of a missing PR: no error")
	}
}

func TestUpsertCreatesOnceThenEditsTheMarkedComment(t *testing.T) {
	t.Parallel()
	fake, f, _ := newGitHub(t)
	fake.SetPR(7, "main", "aaa", "open", false, "")
	fake.AddComment(7, "alice", "looks good")
	fake.AddComment(7, "bob", "a comment quoting the marker in prose is still not ours? "+"no marker here")
	ctx := context.Background()

	body1 := forge.Marker + "\nplan 1\n"
	c1, wrote, err := forge.Upsert(ctx, f, 7, body1)
	if err != nil || !wrote {
		t.Fatalf("first Upsert: wrote=%v err=%v", wrote, err)
	}
	c2, wrote, err := forge.Upsert(ctx, f, 7, forge.Marker+"\nplan 2\n")
	if err != nil || !wrote {
		t.Fatalf("second Upsert: wrote=%v err=%v", wrote, err)
	}
	if c1.ID != c2.ID {
		t.Errorf("second Upsert made comment %d, want an edit of %d", c2.ID, c1.ID)
	}
	if _, wrote, err := forge.Upsert(ctx, f, 7, forge.Marker+"\nplan 2\n"); err != nil || wrote {
		t.Errorf("Upsert of the same body: wrote=%v err=%v, want no write", wrote, err)
	}
	bot := fake.Comments(7, fake.Login)
	if len(bot) != 1 || bot[0] != forge.Marker+"\nplan 2\n" {
		t.Errorf("bot comments = %q, want exactly the edited one", bot)
	}
	if all := fake.Comments(7, ""); len(all) != 3 {
		t.Errorf("%d comments in all, want 3 (others untouched)", len(all))
	}
	if _, _, err := forge.Upsert(ctx, f, 7, "no marker"); err == nil {
		t.Error("Upsert accepted a body without the marker")
	}
}

func TestCommentsFollowPages(t *testing.T) {
	t.Parallel()
	fake, f, _ := newGitHub(t)
	fake.SetPR(1, "main", "aaa", "open", false, "")
	for i := 0; i < 230; i++ {
		fake.AddComment(1, "alice", fmt.Sprintf("comment %d", i))
	}
	fake.AddComment(1, fake.Login, forge.Marker+"\nours")
	cs, err := f.Comments(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 231 {
		t.Fatalf("%d comments, want 231", len(cs))
	}
	if c, ok := forge.FindMarked(cs, fake.Login); !ok || c.Author != fake.Login {
		t.Errorf("marked comment on page 3 not found: %+v", c)
	}
}

func TestConditionalRequestsUseETags(t *testing.T) {
	t.Parallel()
	fake, f, n := newGitHub(t)
	fake.SetPR(1, "main", "aaa", "open", false, "")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		prs, err := f.PullRequests(ctx, "main")
		if err != nil || len(prs) != 1 || prs[0].HeadSHA != "aaa" {
			t.Fatalf("poll %d: %v %+v", i, err, prs)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 3 || reqs[0].Status != 200 || reqs[1].Status != 304 || reqs[2].Status != 304 {
		t.Errorf("requests = %+v, want 200 then two 304s", reqs)
	}
	if n.calls != 3 || n.cached != 2 {
		t.Errorf("OnRequest saw %d calls, %d cached; want 3 and 2", n.calls, n.cached)
	}
	// A change is seen at once: the ETag no longer matches.
	fake.SetPR(1, "main", "bbb", "open", false, "")
	prs, err := f.PullRequests(ctx, "main")
	if err != nil || prs[0].HeadSHA != "bbb" {
		t.Errorf("after a push: %v %+v", err, prs)
	}
	if r := fake.Requests(); len(r) != 1 || r[0].Status != 200 {
		t.Errorf("requests = %+v, want one 200", r)
	}
}

func TestRateLimitIsTypedWithItsReset(t *testing.T) {
	t.Parallel()
	fake, f, _ := newGitHub(t)
	fake.SetPR(1, "main", "aaa", "open", false, "")
	reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	fake.RateLimitUntil(reset)
	ctx := context.Background()
	_, err := f.PullRequests(ctx, "main")
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("err = %v, want a *forge.RateLimitError", err)
	}
	if !rl.Until.Equal(reset) {
		t.Errorf("Until = %s, want the X-RateLimit-Reset %s", rl.Until, reset)
	}
	// go-github remembers the limit: the next call does not reach the
	// server until the reset.
	fake.Requests()
	if _, err := f.PullRequest(ctx, 1); !errors.As(err, &rl) {
		t.Errorf("second call: err = %v, want a *forge.RateLimitError", err)
	}
	if r := fake.Requests(); len(r) != 0 {
		t.Errorf("%d requests during the known limit, want none", len(r))
	}
}

func TestTokenFileIsReadAgainWhenItChanges(t *testing.T) {
	t.Parallel()
	fake := forgetest.NewGitHub(t, "acme", "r")
	fake.SetPR(1, "main", "aaa", "open", false, "")
	tf := tokenFile(t, "old-token")
	f, err := forge.New(forge.Options{Provider: forge.GitHub, BaseURL: fake.URL(), Owner: "acme", Repo: "r", TokenFile: tf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = f.PullRequest(ctx, 1)
	if err == nil || strings.Contains(err.Error(), "old-token") {
		t.Fatalf("wrong token: err = %v (want a 401 that does not show the token)", err)
	}
	if err := os.WriteFile(tf, []byte(fake.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.PullRequest(ctx, 1); err != nil {
		t.Errorf("after rotating the token file: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []forge.Options{
		{Provider: "gitlab", Owner: "a", Repo: "b"},
		{Provider: forge.GitHub, Repo: "b"},
		{Provider: forge.Gitea, Owner: "a", Repo: "b"},
		{Provider: forge.Gitea, Owner: "a", Repo: "b", BaseURL: "gitea.local"},
	} {
		if _, err := forge.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	short := forge.Marker + "\nshort\n"
	if got := forge.Fit(short, 100, "see X"); got != short {
		t.Errorf("short body changed: %q", got)
	}
	var b strings.Builder
	b.WriteString(forge.Marker + "\n## Plan\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "<details><summary>resource %d</summary>\n\n```diff\n", i)
		for j := 0; j < 20; j++ {
			fmt.Fprintf(&b, "- spec.flinkConfiguration[\"k%d\"]: \"ä-old\" -> \"new\"\n", j)
		}
		b.WriteString("```\n</details>\n")
	}
	long := b.String()
	note := "_Truncated: the full plan is on the status branch._"
	for _, limit := range []int{65536, 5000, 400} {
		got := forge.Fit(long, limit, note)
		if n := utf8.RuneCountInString(got); n > limit {
			t.Errorf("limit %d: %d characters", limit, n)
		}
		if !strings.HasPrefix(got, forge.Marker) || !strings.HasSuffix(got, note+"\n") {
			t.Errorf("limit %d: marker or note missing", limit)
		}
		if strings.Count(got, "```")%2 != 0 {
			t.Errorf("limit %d: a code fence is left open", limit)
		}
		if o, c := strings.Count(got, "<details>"), strings.Count(got, "</details>"); o != c {
			t.Errorf("limit %d: %d <details> but %d </details>", limit, o, c)
		}
	}
}

func TestFileURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ provider, pr, want string }{
		{forge.GitHub, "https://github.com/acme/specs/pull/7", "https://github.com/acme/specs/blob/flink-gitops/status/flink/FlinkDeployment/a.yaml"},
		{forge.Gitea, "http://127.0.0.1:3000/acme/specs/pulls/7", "http://127.0.0.1:3000/acme/specs/src/branch/flink-gitops/status/flink/FlinkDeployment/a.yaml"},
		{forge.GitHub, "https://example.com/elsewhere", ""},
	} {
		if got := forge.FileURL(c.provider, c.pr, "flink-gitops/status", "flink/FlinkDeployment/a.yaml"); got != c.want {
			t.Errorf("FileURL(%s, %s) = %q, want %q", c.provider, c.pr, got, c.want)
		}
	}
}

// TestOnlyOwnMarkedCommentIsFoundOrEdited: a marked comment by anyone but
// the token's own identity is ignored; Upsert writes its own and never
// edits the other.
func TestOnlyOwnMarkedCommentIsFoundOrEdited(t *testing.T) {
	t.Parallel()
	fake, f, _ := newGitHub(t)
	fake.SetPR(3, "main", "aaa", "open", false, "")
	spoof := forge.Marker + "\n<!-- flink-gitops:state {\"head\":\"aaa\"} -->\nall planned, nothing to see\n"
	fake.AddComment(3, "mallory", spoof)
	ctx := context.Background()
	self, err := f.Self(ctx)
	if err != nil || self != fake.Login {
		t.Fatalf("Self = %q, %v; want %q", self, err, fake.Login)
	}
	cs, err := f.Comments(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		author string
		found  bool
	}{{fake.Login, false}, {"mallory", true}, {"", false}, {strings.ToUpper("mallory"), true}} {
		if _, ok := forge.FindMarked(cs, tc.author); ok != tc.found {
			t.Errorf("FindMarked(author %q) = %v, want %v", tc.author, ok, tc.found)
		}
	}
	if _, wrote, err := forge.Upsert(ctx, f, 3, forge.Marker+"\nreal plan\n"); err != nil || !wrote {
		t.Fatalf("Upsert: wrote=%v err=%v", wrote, err)
	}
	if m := fake.Comments(3, "mallory"); len(m) != 1 || m[0] != spoof {
		t.Errorf("mallory's comment changed: %q", m)
	}
	if bot := fake.Comments(3, fake.Login); len(bot) != 1 || bot[0] != forge.Marker+"\nreal plan\n" {
		t.Errorf("bot comments %q, want its own new one", bot)
	}
	// GET /user is asked once per token.
	for range 3 {
		if _, err := f.Self(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, r := range fake.Requests() {
		if r.Path == "/user" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("GET /user asked %d times, want once", n)
	}
}
