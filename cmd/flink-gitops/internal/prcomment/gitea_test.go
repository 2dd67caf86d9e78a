package prcomment

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/sync/forge"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitea"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

// TestSpoofedCommentOnRealGitea: on a real Gitea, a second user posts a
// comment carrying the marker and a hidden state claiming the pull
// request's head was already planned against what is deployed. The
// reporter (with the admin's token, which could edit anyone's comment)
// still plans, writes its own comment, and never edits the other user's —
// also after a restart, when it looks for its comment again.
func TestSpoofedCommentOnRealGitea(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed (Gitea); run make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g := gitea.Start(t)
	const repo = "specs"
	cloneURL, err := g.CreateRepo(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	w, err := gitserver.Clone(ctx, cloneURL, filepath.Join(t.TempDir(), "wt"), g.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CommitPush(ctx, map[string]string{"README.md": "specs\n"}, "initial"); err != nil {
		t.Fatal(err)
	}
	w.Branch = "feature"
	head, err := w.CommitPush(ctx, map[string]string{"apps/counter/flinkdeployment.yaml": appSpec(3, "savepoint")}, "counter: parallelism 3")
	if err != nil {
		t.Fatal(err)
	}
	n, err := g.OpenPullRequest(ctx, repo, "feature", "main", "counter: parallelism 3")
	if err != nil {
		t.Fatal(err)
	}

	records := map[string]*lifecycle.Record{"FlinkDeployment/flink/counter": deployedRecord(t, appSpec(1, "savepoint"), "c0")}
	st := State{Rendered: []string{"c0"}, Records: records}
	password, err := g.CreateUser(ctx, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	spoof := forge.Marker + "\n" + encodeState(state{Head: head, Records: fingerprint(records)}) + "\nAlready planned: nothing changes. Merge away!\n"
	planted, err := g.CommentAs(ctx, "mallory", password, repo, n, spoof)
	if err != nil {
		t.Fatal(err)
	}

	token, err := g.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	newReporter := func() *Reporter {
		f, err := forge.New(forge.Options{Provider: forge.Gitea, BaseURL: g.URL(), Owner: g.AdminUser(), Repo: repo, TokenFile: tf, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		renderer := render.NewRenderer()
		return New(Options{
			Forge:  func() (forge.Forge, error) { return f, nil },
			Branch: "main", StatusBranch: "flink-gitops/status",
			Fetch: func(ctx context.Context, _ int) (string, render.Source, error) {
				return head, tree(t, appSpec(3, "savepoint")), nil
			},
			Render: func(ctx context.Context, src render.Source) (*render.Result, error) {
				return renderer.Render(ctx, src, renderOpts)
			},
			FlinkDefaults: func() map[string]string { return renderOpts.DefaultConfiguration },
			State:         func() State { return st },
			Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}
	check := func(when string) gitea.Comment {
		t.Helper()
		cs, err := g.Comments(ctx, repo, n)
		if err != nil {
			t.Fatal(err)
		}
		var own []gitea.Comment
		for _, c := range cs {
			switch c.User {
			case "mallory":
				if c.ID != planted.ID || c.Body != spoof || !c.Updated.Equal(planted.Updated) {
					t.Fatalf("%s: mallory's comment was changed: %+v", when, c)
				}
			case g.AdminUser():
				own = append(own, c)
			default:
				t.Fatalf("%s: a comment by %s", when, c.User)
			}
		}
		if len(own) != 1 {
			t.Fatalf("%s: %d comments by the daemon's identity, want exactly 1: %+v", when, len(own), cs)
		}
		if !strings.Contains(own[0].Body, "+ spec.job.parallelism: 3") || !strings.Contains(own[0].Body, "**upgrade (savepoint)**") {
			t.Fatalf("%s: the daemon's comment has no plan:\n%s", when, own[0].Body)
		}
		return own[0]
	}

	if err := newReporter().Report(ctx, n); err != nil {
		t.Fatal(err)
	}
	first := check("first report")
	// A restarted daemon reads the comments again: it finds its own, not
	// mallory's, and has nothing new to write.
	if err := newReporter().Report(ctx, n); err != nil {
		t.Fatal(err)
	}
	if again := check("after a restart"); again.ID != first.ID {
		t.Fatalf("after a restart the daemon wrote comment %d, want its comment %d kept", again.ID, first.ID)
	}
}
