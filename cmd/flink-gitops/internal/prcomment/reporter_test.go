package prcomment

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
	"github.com/flink-gitops/flink-gitops/sync/forge"
	"github.com/flink-gitops/flink-gitops/sync/forge/forgetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func appSpec(parallelism int, mode string) string {
	return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: counter
  namespace: flink
spec:
  image: flink:2.2
  flinkVersion: v2_2
  mode: standalone
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    execution.checkpointing.dir: file:///state/cp
    execution.checkpointing.interval: 10s
  jobManager:
    resource: {memory: 1024m, cpu: 0.5}
  taskManager:
    resource: {memory: 1280m, cpu: 0.5}
  job:
    jarURI: local:///opt/flink/usrlib/testjob.jar
    parallelism: %d
    upgradeMode: %s
`, parallelism, mode)
}

var renderOpts = render.Options{EntryPoints: []string{"apps/*"}, DefaultNamespace: "flink", AllowedNamespaces: []string{"flink"},
	DefaultConfiguration: map[string]string{"execution.checkpointing.savepoint-dir": "file:///state/sp"}}

// tree writes a repository with the counter app at spec.
func tree(t *testing.T, spec string) render.Source {
	t.Helper()
	dir := t.TempDir()
	for p, c := range map[string]string{
		"apps/counter/kustomization.yaml":   "resources: [flinkdeployment.yaml]\n",
		"apps/counter/flinkdeployment.yaml": spec,
	} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := render.NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// deployedRecord is the record of the counter app reconciled at commit
// from spec.
func deployedRecord(t *testing.T, spec, commit string) *lifecycle.Record {
	t.Helper()
	res, err := render.NewRenderer().Render(context.Background(), tree(t, spec), renderOpts)
	if err != nil || len(res.Resources) != 1 {
		t.Fatalf("render the deployed spec: %v %+v", err, res.Problems)
	}
	js, _ := json.Marshal(res.Resources[0].Deployment.Spec)
	return &lifecycle.Record{Kind: lifecycle.KindDeployment, Namespace: "flink", Name: "counter", Deployment: &v1beta1.FlinkDeploymentStatus{
		CommonStatus: v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable, JobStatus: v1beta1.JobStatus{State: "RUNNING", JobID: "j1"},
			Source: &v1beta1.SourceRef{Commit: commit, EntryPoint: "apps/counter", Path: "apps/counter/flinkdeployment.yaml"}},
		ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: string(js)}}}
}

// harness is a reporter against a fake GitHub, with PR heads and the
// daemon's state set by the test.
type harness struct {
	t     *testing.T
	fake  *forgetest.GitHub
	r     *Reporter
	mu    gosync.Mutex
	heads map[int]string // PR → spec at its head
	shas  map[int]string
	st    State
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, heads: map[int]string{}, shas: map[int]string{}}
	h.fake = forgetest.NewGitHub(t, "acme", "flink-specs")
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte(h.fake.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := forge.New(forge.Options{Provider: forge.GitHub, BaseURL: h.fake.URL(), Owner: "acme", Repo: "flink-specs", TokenFile: tf, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.st = State{Rendered: []string{"c0"}, Records: map[string]*lifecycle.Record{"FlinkDeployment/flink/counter": deployedRecord(t, appSpec(1, "savepoint"), "c0")}}
	renderer := render.NewRenderer()
	h.r = New(Options{
		Forge:  func() (forge.Forge, error) { return f, nil },
		Branch: "main", StatusBranch: "flink-gitops/status",
		Fetch: func(ctx context.Context, n int) (string, render.Source, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.heads[n] == "" {
				return "", nil, errors.New("no such ref")
			}
			return h.shas[n], tree(t, h.heads[n]), nil
		},
		Render: func(ctx context.Context, src render.Source) (*render.Result, error) {
			return renderer.Render(ctx, src, renderOpts)
		},
		FlinkDefaults: func() map[string]string { return renderOpts.DefaultConfiguration },
		State: func() State {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.st
		},
		FileURL: func(prURL, branch, path string) string {
			return "https://github.example/acme/flink-specs/blob/" + branch + "/" + path
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return h
}

// push sets the head of pull request n.
func (h *harness) push(n int, sha, spec string) {
	h.mu.Lock()
	h.heads[n], h.shas[n] = spec, sha
	h.mu.Unlock()
	h.fake.SetPR(n, "main", sha, "open", false, "")
}

func (h *harness) comment(n int) string {
	h.t.Helper()
	bot := h.fake.Comments(n, h.fake.Login)
	if len(bot) != 1 {
		h.t.Fatalf("PR #%d has %d comments by the bot, want exactly 1", n, len(bot))
	}
	return bot[0]
}

func calls(reqs []forgetest.Request) string {
	var s []string
	for _, r := range reqs {
		s = append(s, fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status))
	}
	return strings.Join(s, "\n")
}

func TestPlanThenSamePushThenNewPushThenMergeResult(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.push(7, "h1", appSpec(2, "savepoint"))
	if err := h.r.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	c := h.comment(7)
	for _, want := range []string{forge.Marker, "| FlinkDeployment flink/counter | **upgrade (savepoint)** |", "spec.job.parallelism: 1", "+ spec.job.parallelism: 2", "<details>", "Head `h1` of #7"} {
		if !strings.Contains(c, want) {
			t.Errorf("plan comment lacks %q:\n%s", want, c)
		}
	}
	reqs := h.fake.Requests()
	if len(reqs) != 4 {
		t.Errorf("first report: %d API calls, want 4 (get PR, get the own user, list comments, create):\n%s", len(reqs), calls(reqs))
	}

	// The same head again: one conditional GET, nothing written.
	if err := h.r.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if reqs := h.fake.Requests(); len(reqs) != 1 || reqs[0].Status != http.StatusNotModified {
		t.Errorf("unchanged head: calls\n%s\nwant one 304", calls(reqs))
	}

	// A new push: the same comment is edited.
	h.push(7, "h2", appSpec(3, "stateless"))
	if err := h.r.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	c = h.comment(7)
	for _, want := range []string{"**upgrade (stateless)**", "+ spec.job.parallelism: 3", "state is discarded", "Head `h2`"} {
		if !strings.Contains(c, want) {
			t.Errorf("updated comment lacks %q:\n%s", want, c)
		}
	}
	if reqs := h.fake.Requests(); len(reqs) != 2 || reqs[1].Method != http.MethodPatch {
		t.Errorf("new head: calls\n%s\nwant get PR and one PATCH", calls(reqs))
	}

	// Merged, but the daemon has not rendered the merge commit: no result.
	h.fake.SetPR(7, "main", "h2", "closed", true, "m1")
	if err := h.r.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.comment(7), "## Result") {
		t.Fatal("result written before the merge commit was rendered")
	}
	// Rendered, operation in flight: still no result.
	rec := deployedRecord(t, appSpec(3, "stateless"), "c0")
	rec.Operation = &lifecycle.Operation{Kind: lifecycle.OpUpgrade, Phase: "AwaitSavepoint"}
	h.mu.Lock()
	h.st = State{Rendered: []string{"c0", "m1"}, Records: map[string]*lifecycle.Record{"FlinkDeployment/flink/counter": rec}}
	h.mu.Unlock()
	if err := h.r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.comment(7), "## Result") {
		t.Fatal("result written while the upgrade is in flight")
	}
	// Deployed from the merge commit but not yet stable: still no result.
	deployed := deployedRecord(t, appSpec(3, "stateless"), "m1")
	deployed.Deployment.LifecycleState = v1beta1.LifecycleDeployed
	h.mu.Lock()
	h.st = State{Rendered: []string{"c0", "m1"}, Records: map[string]*lifecycle.Record{"FlinkDeployment/flink/counter": deployed}}
	h.mu.Unlock()
	if err := h.r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.comment(7), "## Result") {
		t.Fatal("result written before the deployment became stable")
	}
	// Reconciled: the result with the savepoint goes into the same comment.
	done := deployedRecord(t, appSpec(3, "stateless"), "m1")
	done.Deployment.JobStatus.SavepointInfo = &v1beta1.SavepointInfo{SavepointHistory: []v1beta1.Savepoint{{Location: "file:///state/sp/savepoint-abc", TriggerType: "UPGRADE", Commit: "c0"}}}
	done.Deployment.JobStatus.UpgradeSavepointPath = "file:///state/sp/savepoint-abc"
	h.mu.Lock()
	h.st = State{Rendered: []string{"c0", "m1"}, Records: map[string]*lifecycle.Record{"FlinkDeployment/flink/counter": done}}
	h.mu.Unlock()
	h.fake.Requests()
	if err := h.r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c = h.comment(7)
	for _, want := range []string{"## Result", "Merged as `m1`", "✅ done: STABLE, job RUNNING; savepoint `file:///state/sp/savepoint-abc`", "flink/FlinkDeployment/counter.yaml", "**upgrade (stateless)**"} {
		if !strings.Contains(c, want) {
			t.Errorf("result comment lacks %q:\n%s", want, c)
		}
	}
	if reqs := h.fake.Requests(); len(reqs) != 1 || reqs[0].Method != http.MethodPatch {
		t.Errorf("result: calls\n%s\nwant one PATCH", calls(reqs))
	}
	// Written once: later passes leave it.
	if err := h.r.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if reqs := h.fake.Requests(); len(reqs) != 1 || reqs[0].Method != http.MethodGet {
		t.Errorf("after the result: calls\n%s\nwant only the GET", calls(reqs))
	}
}

func TestNoCommentUntilSomethingChanges(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.push(4, "h1", appSpec(1, "savepoint")) // the deployed spec: a docs-only pull request
	if err := h.r.Report(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if cs := h.fake.Comments(4, ""); len(cs) != 0 {
		t.Fatalf("a pull request that changes nothing got comments: %q", cs)
	}
	h.fake.Requests()
	if err := h.r.Report(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if reqs := h.fake.Requests(); len(reqs) != 1 {
		t.Errorf("same head again: calls\n%s\nwant only the GET", calls(reqs))
	}
	h.push(4, "h2", appSpec(2, "savepoint"))
	if err := h.r.Report(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if c := h.comment(4); !strings.Contains(c, "**upgrade (savepoint)**") {
		t.Errorf("comment after a real change:\n%s", c)
	}
}

func TestInvalidSpecIsAWarningAndNoAction(t *testing.T) {
	h := newHarness(t)
	h.push(8, "h1", appSpec(-1, "savepoint"))
	if err := h.r.Report(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	c := h.comment(8)
	for _, want := range []string{"0 to change, 1 invalid (left as deployed)", "| FlinkDeployment flink/counter | none: invalid spec |", "### ⚠️ Validation errors",
		"`apps/counter/flinkdeployment.yaml` `spec.job.parallelism`"} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	st, ok := parseState(c)
	if !ok || len(st.Planned) != 0 {
		t.Errorf("hidden state %+v: an invalid spec must plan no action", st)
	}
}

func TestSavepointModeWithoutDirectoryWarns(t *testing.T) {
	h := newHarness(t)
	renderOpts := renderOpts
	renderOpts.DefaultConfiguration = nil
	h.r.opts.Render = func(ctx context.Context, src render.Source) (*render.Result, error) {
		return render.NewRenderer().Render(ctx, src, renderOpts)
	}
	h.push(9, "h1", appSpec(2, "savepoint"))
	if err := h.r.Report(context.Background(), 9); err != nil {
		t.Fatal(err)
	}
	if c := h.comment(9); !strings.Contains(c, "upgradeMode savepoint needs a savepoint directory") {
		t.Errorf("comment lacks the savepoint directory error:\n%s", c)
	}
}

func TestRestartFindsItsCommentAndSkipsAnUnchangedHead(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.push(7, "h1", appSpec(2, "savepoint"))
	if err := h.r.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	first := h.comment(7)
	// A new reporter (a restarted daemon) with the same state.
	restarted := New(h.r.opts)
	h.fake.Requests()
	if err := restarted.Report(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if reqs := h.fake.Requests(); len(reqs) != 2 {
		t.Errorf("restart, same head: calls\n%s\nwant get PR and list comments only", calls(reqs))
	}
	if h.comment(7) != first {
		t.Error("comment changed")
	}
}

func TestRateLimitStopsCallsUntilReset(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.push(7, "h1", appSpec(2, "savepoint"))
	h.fake.RateLimitUntil(time.Now().Add(time.Hour))
	err := h.r.Report(ctx, 7)
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("err = %v, want a rate limit error", err)
	}
	h.fake.Requests()
	for i := 0; i < 3; i++ {
		if err := h.r.Report(ctx, 7); !errors.As(err, &rl) {
			t.Fatalf("err = %v, want a rate limit error", err)
		}
		if err := h.r.Poll(ctx); !errors.As(err, &rl) {
			t.Fatalf("poll err = %v, want a rate limit error", err)
		}
	}
	if reqs := h.fake.Requests(); len(reqs) != 0 {
		t.Errorf("%d calls while rate limited, want none", len(reqs))
	}
}

func TestWebhookTriggersAReport(t *testing.T) {
	h := newHarness(t)
	h.push(5, "h1", appSpec(2, "savepoint"))
	secret := []byte("s3cret")
	wh, err := gitsync.NewWebhookHandler(gitsync.WebhookOptions{Secrets: gitsync.StaticSecrets(gitsync.WebhookSecrets{GitHub: secret}), Branch: "main", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wh.On(gitsync.EventPullRequest, h.r.OnWebhook)
	srv := httptest.NewServer(wh)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// The first poll finds nothing to do; only the webhook can bring #5
	// (the list of pull requests starts empty).
	h.fake.RateLimitUntil(time.Time{})
	go func() { defer close(done); h.r.Run(ctx, func() time.Duration { return time.Hour }) }()
	defer func() { cancel(); <-done }()

	payload := []byte(`{"action":"synchronize","number":5,"pull_request":{"number":5,"base":{"ref":"main"}}}`)
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.fake.Comments(5, h.fake.Login)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no comment 10s after the webhook")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("webhook to comment: %s", time.Since(start).Round(time.Millisecond))
	// A pull request for another branch is ignored.
	h.r.OnWebhook(gitsync.Event{Type: gitsync.EventPullRequest, Body: []byte(`{"action":"opened","number":6,"pull_request":{"number":6,"base":{"ref":"release"}}}`)})
	h.r.mu.Lock()
	queued := h.r.pending[6]
	h.r.mu.Unlock()
	if queued {
		t.Error("a pull request for another branch was queued")
	}
}

func TestFormatPlanGolden(t *testing.T) {
	n := int64(2)
	plan := Plan{Number: 12, Head: "0123456789abcdef", Base: "main", BaseCommit: "fedcba9876543210",
		Resources: []lifecycle.Planned{
			{Key: "FlinkDeployment/flink/orders", Kind: "FlinkDeployment", Namespace: "flink", Name: "orders", EntryPoint: "apps/orders", File: "apps/orders/app.yaml",
				Desired: &lifecycle.Desired{}, Action: lifecycle.Action{Kind: lifecycle.ActionUpgrade, Mode: v1beta1.UpgradeModeStateless,
					Diff:     lifecycle.Diff{Type: lifecycle.DiffUpgrade, Changes: []lifecycle.Change{{Path: "spec.job.parallelism", Old: "2", New: "4", Type: lifecycle.DiffUpgrade}}},
					Warnings: []string{"stateless upgrade of a job with checkpointing: the new job starts empty and its state is discarded"}}},
			{Key: "FlinkDeployment/flink/payments", Kind: "FlinkDeployment", Namespace: "flink", Name: "payments", Desired: &lifecycle.Desired{}, Action: lifecycle.Action{Kind: lifecycle.ActionNone}},
			{Key: "FlinkDeployment/flink/legacy", Kind: "FlinkDeployment", Namespace: "flink", Name: "legacy", EntryPoint: "apps/legacy", File: "apps/legacy/app.yaml",
				Action: lifecycle.Action{Kind: lifecycle.ActionDelete, Warnings: []string{"deletes a running job without a savepoint (set kubernetes.operator.job.savepoint-on-deletion to take one first)"}}},
			{Key: "FlinkSessionJob/flink/etl", Kind: "FlinkSessionJob", Namespace: "flink", Name: "etl", Desired: &lifecycle.Desired{}, Action: lifecycle.Action{Kind: lifecycle.ActionSavepoint}},
		},
		Problems: []render.Problem{{EntryPoint: "apps/bad", File: "apps/bad/app.yaml", Resource: "FlinkDeployment flink/bad", Field: "spec.job.parallelism",
			Message: "job parallelism is -1; it must be at least 1", Fix: "set spec.job.parallelism to 1 or more"}},
	}
	_ = n
	links := Links{StatusBranch: "flink-gitops/status", File: func(p string) string { return "https://github.example/acme/specs/blob/flink-gitops/status/" + p }}
	st := state{Head: plan.Head, Records: "fp", Planned: map[string]string{"FlinkDeployment/flink/orders": "upgrade (stateless)", "FlinkDeployment/flink/legacy": "delete", "FlinkSessionJob/flink/etl": "savepoint"}}
	got := FormatPlan(plan, st, links)
	outcomes := []Outcome{
		{Key: "FlinkDeployment/flink/legacy", Action: "delete", Done: true, State: "DELETED"},
		{Key: "FlinkDeployment/flink/orders", Action: "upgrade (stateless)", Err: "submit job: the JobManager | refused it"},
		{Key: "FlinkSessionJob/flink/etl", Action: "savepoint", Done: true, State: "STABLE, job RUNNING", Savepoint: "s3://sp/savepoint-1"},
	}
	st.Merge = "abcdef0123456789"
	got += "\n---- after the merge ----\n" + FormatResult(got, st, st.Merge, outcomes, links)
	golden := filepath.Join("testdata", "plan.golden.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("comment differs from %s (run with -update and review the diff):\n%s", golden, got)
	}
}

func TestLongPlansAreFoldedThenCut(t *testing.T) {
	var resources []lifecycle.Planned
	for i := 0; i < 400; i++ {
		var changes []lifecycle.Change
		for j := 0; j < 10; j++ {
			changes = append(changes, lifecycle.Change{Path: fmt.Sprintf(`spec.flinkConfiguration["key.%d"]`, j), Old: strings.Repeat("o", 20), New: strings.Repeat("n", 20)})
		}
		resources = append(resources, lifecycle.Planned{Key: fmt.Sprintf("FlinkDeployment/flink/app-%03d", i), Kind: "FlinkDeployment", Namespace: "flink", Name: fmt.Sprintf("app-%03d", i),
			File: "apps/x.yaml", Desired: &lifecycle.Desired{}, Action: lifecycle.Action{Kind: lifecycle.ActionUpgrade, Diff: lifecycle.Diff{Type: lifecycle.DiffUpgrade, Changes: changes}}})
	}
	links := Links{StatusBranch: "flink-gitops/status"}
	got := FormatPlan(Plan{Number: 1, Head: "h", Base: "main", Resources: resources[:30]}, state{Head: "h"}, links)
	if !strings.Contains(got, "<details><summary>Spec diff") || len([]rune(got)) > forge.MaxCommentChars {
		t.Errorf("30 resources: diffs should fit folded (%d chars)", len([]rune(got)))
	}
	got = FormatPlan(Plan{Number: 1, Head: "h", Base: "main", Resources: resources[:250]}, state{Head: "h"}, links)
	if strings.Contains(got, "```diff") || !strings.Contains(got, "left out for size") || len([]rune(got)) > forge.MaxCommentChars {
		t.Errorf("250 resources: diffs should be left out (%d chars)", len([]rune(got)))
	}
	got = FormatPlan(Plan{Number: 1, Head: "h", Base: "main", Resources: resources}, state{Head: "h"}, links)
	if n := len([]rune(got)); n > forge.MaxCommentChars || !strings.Contains(got, "cut to GitHub's size limit") || !strings.HasPrefix(got, forge.Marker) {
		t.Errorf("400 resources: %d chars, want at most %d with the truncation note", n, forge.MaxCommentChars)
	}
	if _, ok := parseState(got); !ok {
		t.Error("the hidden state was lost by the cut")
	}
}

// TestSpoofedMarkedCommentIsIgnored: a pull request's author posts a
// comment with the marker and a hidden state saying the head was planned
// against the current records; the reporter still plans, writes its own
// comment, and leaves the author's alone.
func TestSpoofedMarkedCommentIsIgnored(t *testing.T) {
	h := newHarness(t)
	h.push(9, "h9", appSpec(3, "savepoint"))
	spoof := forge.Marker + "\n" + encodeState(state{Head: "h9", Records: fingerprint(h.st.Records)}) + "\nNothing to plan here.\n"
	h.fake.AddComment(9, "mallory", spoof)
	if err := h.r.Report(context.Background(), 9); err != nil {
		t.Fatal(err)
	}
	c := h.comment(9)
	if !strings.Contains(c, "+ spec.job.parallelism: 3") {
		t.Errorf("the daemon's comment has no plan:\n%s", c)
	}
	if m := h.fake.Comments(9, "mallory"); len(m) != 1 || m[0] != spoof {
		t.Errorf("mallory's comment was changed: %q", m)
	}
}
