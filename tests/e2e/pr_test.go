package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/sync/forge"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitea"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// prEnv is a stack whose repository lives on a real Gitea that delivers
// its signed webhooks (push and pull_request) to the daemon.
type prEnv struct {
	*env
	gitea *gitea.Server
	repo  string
}

func newPREnv(t *testing.T, files map[string]string) *prEnv {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	g := gitea.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	token, err := g.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const repo = "flink-specs"
	cloneURL, err := g.CreateRepo(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	kc := kube.Shared(t)
	ns := kc.Namespace(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(seed, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(seed, p), []byte(strings.ReplaceAll(c, "NAMESPACE", ns)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	webhookSecret := "pr-e2e-webhook-secret"
	webhookAddr := freeAddr(t)
	extra := map[string]any{
		"log":     map[string]any{"level": "debug"},
		"webhook": map[string]any{"listen": webhookAddr, "secrets": map[string]any{"giteaFile": write("webhook-secret", webhookSecret)}},
		"pullRequests": map[string]any{
			"enabled": true, "provider": "gitea", "apiURL": g.URL(), "owner": g.AdminUser(), "repository": repo,
			"tokenFile": write("gitea-token", token),
			// Long: only the webhooks can make the comments appear in time.
			"pollInterval": "30m", "timeout": "20s",
		},
	}
	s, err := stack.Start(ctx, stack.Options{
		Dir: filepath.Join(dir, "stack"), Binary: binary, Seed: seed, Kube: kc,
		EntryPoints: []string{"apps/*"}, Namespaces: []string{ns}, ExtraConfig: extra,
		Remote: &stack.Remote{URL: cloneURL, Credentials: g.Credentials()},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &prEnv{env: &env{t: t, s: s, ns: ns}, gitea: g, repo: repo}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("daemon log %s:\n%s", s.DaemonLog, tail(s.DaemonLog, 60))
		}
	})
	if err := g.AddWebhook(ctx, repo, "http://"+webhookAddr+"/", webhookSecret, []string{"push", "pull_request"}); err != nil {
		t.Fatal(err)
	}
	if err := s.StartDaemon(); err != nil {
		t.Fatal(err)
	}
	return e
}

// branch commits files on a new or existing branch (from main's head when
// new) and pushes it; it returns the commit.
func (e *prEnv) branch(name, msg string, files map[string]string) string {
	e.t.Helper()
	ctx := context.Background()
	w := e.s.Work
	if _, err := w.Git(ctx, "fetch", "--quiet", "origin"); err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Git(ctx, "rev-parse", "--verify", "--quiet", "refs/remotes/origin/"+name); err == nil {
		_, err = w.Git(ctx, "checkout", "--quiet", "-B", name, "origin/"+name)
		if err != nil {
			e.t.Fatal(err)
		}
	} else if _, err := w.Git(ctx, "checkout", "--quiet", "-B", name, "origin/main"); err != nil {
		e.t.Fatal(err)
	}
	for p, c := range files {
		if err := w.WriteFile(p, strings.ReplaceAll(c, "NAMESPACE", e.ns)); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := w.Git(ctx, "add", "--all"); err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Git(ctx, "commit", "--quiet", "--no-gpg-sign", "-m", msg); err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Git(ctx, "push", "--quiet", "origin", name+":"+name); err != nil {
		e.t.Fatal(err)
	}
	head, err := w.Head(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Git(ctx, "checkout", "--quiet", "main"); err != nil {
		e.t.Fatal(err)
	}
	return head
}

// comment waits until the pull request carries exactly one marked comment
// that satisfies cond, and that no other comment was made; it returns the
// body and how long it took.
func (e *prEnv) comment(n int, what string, timeout time.Duration, cond func(string) bool) (string, time.Duration) {
	e.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		cs, err := e.gitea.Comments(context.Background(), e.repo, n)
		if err == nil {
			var marked []string
			for _, c := range cs {
				if strings.Contains(c.Body, forge.Marker) {
					marked = append(marked, c.Body)
				}
			}
			if len(cs) > 1 || len(marked) > 1 {
				e.t.Fatalf("PR #%d has %d comments (%d marked); want exactly one, edited in place", n, len(cs), len(marked))
			}
			if len(marked) == 1 {
				last = marked[0]
				if cond(last) {
					return last, time.Since(start)
				}
			}
		}
		if !e.s.DaemonRunning() {
			e.t.Fatalf("daemon exited while waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting for %s on PR #%d; last comment:\n%s", timeout, what, n, last)
	return "", 0
}

func has(subs ...string) func(string) bool {
	return func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}
}

// TestPullRequestComments is the review story on a real Gitea: a pull
// request gets the plan as one comment (delivered by Gitea's signed
// webhook), a push to it edits the same comment, a pull request with an
// invalid spec shows the validation error and changes nothing, and the
// merge adds the result with the savepoint path to the same comment.
func TestPullRequestComments(t *testing.T) {
	e := newPREnv(t, map[string]string{
		"apps/counter/kustomization.yaml":   kustomization,
		"apps/counter/flinkdeployment.yaml": withSecrets(appSpec("counter", "savepoint", 1, ""), canaryOld),
	})
	rs := e.wait("FlinkDeployment", "counter", "first deploy", 4*time.Minute, stableAt(""))
	ctx := context.Background()
	var bodies []string

	// A pull request with an invalid spec: the error in the comment, and
	// nothing changes in the cluster.
	e.branch("broken", "counter: parallelism -1", map[string]string{"apps/counter/flinkdeployment.yaml": withSecrets(appSpec("counter", "savepoint", -1, ""), canaryOld)})
	bad, err := e.gitea.OpenPullRequest(ctx, e.repo, "broken", "main", "broken counter")
	if err != nil {
		t.Fatal(err)
	}
	body, took := e.comment(bad, "the validation error", time.Minute, has("Validation errors", "spec.job.parallelism", "none: invalid spec"))
	bodies = append(bodies, body)
	t.Logf("invalid spec: comment %s after the pull request was opened", took.Round(time.Millisecond))
	if strings.Contains(body, "**upgrade") {
		t.Errorf("an invalid spec planned an action:\n%s", body)
	}

	// A good pull request: the plan.
	h1 := e.branch("faster", "counter: parallelism 2, new secret", map[string]string{"apps/counter/flinkdeployment.yaml": withSecrets(appSpec("counter", "savepoint", 2, ""), canaryNew)})
	n, err := e.gitea.OpenPullRequest(ctx, e.repo, "faster", "main", "counter: parallelism 2")
	if err != nil {
		t.Fatal(err)
	}
	body, took = e.comment(n, "the plan", time.Minute, has("**upgrade (savepoint)**", "+ spec.job.parallelism: 2", "Head `"+h1[:12]+"`", "s3.secret-key", "changed (redacted)"))
	bodies = append(bodies, body)
	t.Logf("plan: comment %s after the pull request was opened", took.Round(time.Millisecond))

	// Push again: the same comment is edited.
	h2 := e.branch("faster", "counter: parallelism 2, object reuse", map[string]string{"apps/counter/flinkdeployment.yaml": strings.Replace(
		withSecrets(appSpec("counter", "savepoint", 2, ""), canaryNew), `taskmanager.numberOfTaskSlots: "2"`, `taskmanager.numberOfTaskSlots: "2"`+"\n    pipeline.object-reuse: \"true\"", 1)})
	body, took = e.comment(n, "the plan of the second push", time.Minute, has("Head `"+h2[:12]+"`", "pipeline.object-reuse"))
	if strings.Contains(body, "Head `"+h1[:12]+"`") {
		t.Errorf("the edited comment still names the first head:\n%s", body)
	}
	t.Logf("second push: comment edited %s after the push", took.Round(time.Millisecond))

	// The invalid pull request changed nothing.
	now := e.wait("FlinkDeployment", "counter", "status after the pull requests", time.Minute, stableAt(""))
	if now.JobID != rs.JobID || now.LastReconciledCommit != rs.LastReconciledCommit {
		t.Fatalf("pull requests changed the cluster: %+v -> %+v", rs, now)
	}

	// Merge: the result with the savepoint path joins the same comment.
	merge, err := e.gitea.MergePullRequest(ctx, e.repo, n)
	if err != nil {
		t.Fatal(err)
	}
	mergedAt := time.Now()
	up := e.wait("FlinkDeployment", "counter", "savepoint upgrade", 5*time.Minute, stableAt(merge))
	if up.UpgradeSavepointPath == "" {
		t.Fatalf("no upgrade savepoint on the status branch: %+v", up)
	}
	body, _ = e.comment(n, "the result", 2*time.Minute, has("## Result", "Merged as `"+merge[:12]+"`", "✅ done: STABLE, job RUNNING; savepoint `"+up.UpgradeSavepointPath+"`"))
	t.Logf("result: comment %s after the merge (upgrade included)", time.Since(mergedAt).Round(time.Millisecond))
	if !regexp.MustCompile(`src/branch/flink-gitops/status/` + regexp.QuoteMeta(lifecycle.StatusPath("FlinkDeployment", e.ns, "counter"))).MatchString(body) {
		t.Errorf("the result does not link the status branch file:\n%s", body)
	}
	if !strings.Contains(body, "**upgrade (savepoint)**") {
		t.Errorf("the plan was lost from the comment:\n%s", body)
	}
	t.Logf("final comment:\n%s", body)
	bodies = append(bodies, body)
	noSecretsAnywhere(t, e, bodies)

	// What the forge was asked, from the daemon's metrics: two pull
	// requests planned, one re-planned on a push, both re-planned when the
	// deployed state moved, one result.
	m := metrics(t, e.s.MetricsAddr)
	gets, writes := sum(m, "flink_gitops_forge_requests_total", `method="GET"`), sum(m, "flink_gitops_forge_requests_total", `method="POST"`)+sum(m, "flink_gitops_forge_requests_total", `method="PATCH"`)
	created := sum(m, "flink_gitops_forge_requests_total", `method="POST"`)
	t.Logf("forge API: %.0f GET (%.0f answered 304), %.0f writes (%.0f comments created)", gets, sum(m, "flink_gitops_forge_requests_total", `cached="true"`), writes, created)
	if created != 2 || gets+writes > 30 {
		t.Errorf("forge API calls: %.0f comments created (want 2, one per pull request), %.0f calls in all (want at most 30)", created, gets+writes)
	}
}

// canaryOld and canaryNew are values under keys Flink treats as secret.
const canaryOld, canaryNew = "canary-7d1f0c2e-old", "canary-7d1f0c2e-new"

// withSecrets puts value under two keys Flink treats as sensitive.
func withSecrets(spec, value string) string {
	return strings.Replace(spec, `taskmanager.numberOfTaskSlots: "2"`,
		`taskmanager.numberOfTaskSlots: "2"`+"\n    s3.secret-key: \""+value+"\"\n    custom.api-key: \""+value+"\"", 1)
}

// noSecretsAnywhere checks that the secret values reached Flink's own
// configuration (they must, to be used) and nothing a person reads: the
// pull-request comments, the status branch, the Kubernetes events, the
// daemon's log (at debug level) and every output of plan.
func noSecretsAnywhere(t *testing.T, e *prEnv, bodies []string) {
	t.Helper()
	ctx := context.Background()
	leaks := func(where, text string) {
		for _, c := range []string{canaryOld, canaryNew} {
			if strings.Contains(text, c) {
				t.Errorf("a secret value is printed in %s", where)
			}
		}
	}
	cm, err := e.s.Kube.Client().CoreV1().ConfigMaps(e.ns).Get(ctx, "flink-config-counter", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["config.yaml"], canaryNew) {
		t.Errorf("the secret did not reach Flink's configuration (err %v): the check below proves nothing", err)
	}
	for i, b := range bodies {
		leaks(fmt.Sprintf("pull-request comment %d", i), b)
	}
	_, files, err := e.s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		leaks("status branch file "+p, string(b))
	}
	evs, err := e.s.Kube.Client().CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		leaks("event "+ev.Reason, ev.Message)
	}
	log, err := os.ReadFile(e.s.DaemonLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "level=DEBUG") && !strings.Contains(string(log), `"level":"DEBUG"`) {
		t.Errorf("the daemon did not log at debug level: the log check proves less")
	}
	leaks("the daemon log", string(log))
	for _, o := range []string{"table", "json", "objects"} {
		out, _ := exec.Command(binary, "plan", "--repo", e.s.Work.Dir, "--config", e.s.ConfigPath, "-o", o).CombinedOutput()
		if !strings.Contains(string(out), "counter") {
			t.Errorf("plan -o %s printed no resource: %s", o, out)
		}
		leaks("plan -o "+o, string(out))
	}
}
