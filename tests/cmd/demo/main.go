// Command demo runs examples-repo on the local test bed: a real
// kube-apiserver, the node agent running Flink JVMs, a git server seeded
// with examples-repo, and the flink-gitops daemon. With -check it plays the
// story without a person (deploy, savepoint upgrade, suspend, resume) and
// exits non-zero if any step does not happen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// Resources examples-repo declares, as status keys.
var resources = []string{
	"FlinkDeployment/flink-dev/event-counter",
	"FlinkDeployment/flink-prod/event-counter",
	"FlinkDeployment/flink-dev/analytics",
	"FlinkSessionJob/flink-dev/clicks",
	"FlinkSessionJob/flink-dev/views",
}

const devOverlay = "apps/event-counter/overlays/dev/kustomization.yaml"

func main() {
	dir := flag.String("dir", "", "working directory (default: a new temporary one)")
	binary := flag.String("binary", "bin/flink-gitops", "the flink-gitops binary")
	examples := flag.String("examples", "examples-repo", "the repository to seed the git server with")
	check := flag.Bool("check", false, "play the story without a person and exit")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *dir, *binary, *examples, *check); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, dir, binary, examples string, check bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "flink-gitops-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	binary, _ = filepath.Abs(binary)
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("%s: %w (run make build)", binary, err)
	}
	step(fmt.Sprintf("Preparing (first run builds the test bed: ~10 min; working dir %s)", dir))
	jar, err := flinktb.TestJobJar(ctx, flinktb.Version2)
	if err != nil {
		return err
	}
	artifacts, stopArtifacts, err := serveArtifacts(jar)
	if err != nil {
		return err
	}
	defer stopArtifacts()
	seed := filepath.Join(dir, "seed")
	if err := copyRewriting(examples, seed, map[string]string{"https://artifacts.example.com": artifacts}); err != nil {
		return err
	}

	step("Starting kube-apiserver, etcd, the node agent, a git server seeded with " + examples)
	s, err := stack.Start(ctx, stack.Options{
		Dir: filepath.Join(dir, "stack"), Binary: binary, Seed: seed,
		EntryPoints: []string{"apps/*/overlays/*", "sessions/*"}, Namespaces: []string{"flink-dev", "flink-prod"},
		Log: log,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping everything")
		s.Stop()
	}()
	// Native clusters (overlays/prod) run as deploy/flink-serviceaccount's account.
	if err := stack.EnableNativeMode(ctx, s.Kube, s.Agent.Agent, filepath.Join(dir, "tokens"), "flink-dev", "flink-prod"); err != nil {
		return err
	}
	if err := s.StartDaemon(); err != nil {
		return err
	}
	step("flink-gitops is running; waiting for the first deploy of every resource")
	if err := waitAll(ctx, s, 8*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.Operation == "" && rs.LifecycleState == "STABLE" && rs.JobState == "RUNNING" ||
			rs.Kind == "FlinkDeployment" && rs.Name == "analytics" && rs.LifecycleState == "STABLE"
	}); err != nil {
		return explain(s, err)
	}
	printStatus(ctx, s)
	if check {
		return story(ctx, s)
	}
	instructions(s)
	watch(ctx, s)
	return nil
}

// story is what make demo-check plays: every step must show on the
// status branch.
func story(ctx context.Context, s *stack.Stack) error {
	const key = "FlinkDeployment/flink-dev/event-counter"
	before, _ := statusOf(ctx, s, key)

	step("Step 1: parallelism 1 → 2 in overlays/dev (a savepoint upgrade)")
	c, err := push(ctx, s, "dev: parallelism 2", map[string]string{devOverlay: devKustomization("2", "running")})
	if err != nil {
		return err
	}
	rs, err := waitOne(ctx, s, key, 5*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.LastReconciledCommit == c && rs.Operation == "" && rs.LifecycleState == "STABLE"
	})
	if err != nil {
		return explain(s, err)
	}
	if rs.JobID == before.JobID || len(rs.Savepoints) == 0 || rs.Savepoints[0].Trigger != "UPGRADE" {
		return explain(s, fmt.Errorf("upgrade without a new job restored from an UPGRADE savepoint: %+v", rs))
	}
	printStatus(ctx, s)

	step("Step 2: suspend the dev job (job.state: suspended)")
	c, err = push(ctx, s, "dev: suspend", map[string]string{devOverlay: devKustomization("2", "suspended")})
	if err != nil {
		return err
	}
	rs, err = waitOne(ctx, s, key, 3*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.LastReconciledCommit == c && rs.Operation == "" && rs.LifecycleState == "SUSPENDED"
	})
	if err != nil {
		return explain(s, err)
	}
	suspendedAt := rs.UpgradeSavepointPath
	printStatus(ctx, s)

	step("Step 3: resume it (job.state: running); it restores from " + suspendedAt)
	c, err = push(ctx, s, "dev: resume", map[string]string{devOverlay: devKustomization("2", "running")})
	if err != nil {
		return err
	}
	if _, err = waitOne(ctx, s, key, 5*time.Minute, func(rs lifecycle.ResourceStatus) bool {
		return rs.LastReconciledCommit == c && rs.Operation == "" && rs.LifecycleState == "STABLE" && rs.JobState == "RUNNING"
	}); err != nil {
		return explain(s, err)
	}
	printStatus(ctx, s)
	step("demo-check: deploy, savepoint upgrade, suspend and resume all happened")
	return nil
}

// devKustomization is overlays/dev with a parallelism and job state.
func devKustomization(parallelism, state string) string {
	return `# dev: one slot of parallelism, a savepoint every 10 minutes, a short history.
namespace: flink-dev
resources:
  - ../../base
patches:
  - target:
      kind: FlinkDeployment
      name: event-counter
    patch: |-
      - op: add
        path: /spec/flinkConfiguration/kubernetes.operator.periodic.savepoint.interval
        value: 10m
      - op: add
        path: /spec/flinkConfiguration/kubernetes.operator.savepoint.history.max.count
        value: "3"
      - op: replace
        path: /spec/job/parallelism
        value: ` + parallelism + `
      - op: replace
        path: /spec/job/state
        value: ` + state + "\n"
}

func push(ctx context.Context, s *stack.Stack, msg string, files map[string]string) (string, error) {
	for p, c := range files {
		if err := s.Work.WriteFile(p, c); err != nil {
			return "", err
		}
	}
	commit, err := s.Work.Commit(ctx, msg)
	if err != nil {
		return "", err
	}
	if err := s.Work.Push(ctx); err != nil {
		return "", err
	}
	fmt.Printf("pushed %s %q\n", commit[:12], msg)
	return commit, nil
}

func statusOf(ctx context.Context, s *stack.Stack, key string) (lifecycle.ResourceStatus, error) {
	st, _, err := s.Status(ctx)
	if err != nil {
		return lifecycle.ResourceStatus{}, err
	}
	return st[key], nil
}

func waitOne(ctx context.Context, s *stack.Stack, key string, timeout time.Duration, cond func(lifecycle.ResourceStatus) bool) (lifecycle.ResourceStatus, error) {
	deadline := time.Now().Add(timeout)
	var last lifecycle.ResourceStatus
	for time.Now().Before(deadline) {
		if st, _, err := s.Status(ctx); err == nil {
			last = st[key]
			if cond(last) {
				return last, nil
			}
		}
		if !s.DaemonRunning() {
			return last, errors.New("the daemon exited")
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return last, fmt.Errorf("%s: timed out after %s; last status %+v", key, timeout, last)
}

func waitAll(ctx context.Context, s *stack.Stack, timeout time.Duration, cond func(lifecycle.ResourceStatus) bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, _, err := s.Status(ctx)
		if err == nil {
			done := 0
			for _, k := range resources {
				if rs, ok := st[k]; ok && cond(rs) {
					done++
				}
			}
			if done == len(resources) {
				return nil
			}
		}
		if !s.DaemonRunning() {
			return errors.New("the daemon exited")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return fmt.Errorf("not every resource was deployed within %s", timeout)
}

// printStatus prints what `flink-gitops status` prints.
func printStatus(ctx context.Context, s *stack.Stack) {
	st, _, err := s.Status(ctx)
	if err != nil {
		fmt.Println("status branch:", err)
		return
	}
	keys := make([]string, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println("\nstatus branch " + stack.StatusBranch + ":")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAMESPACE\tKIND\tNAME\tLIFECYCLE\tJOB\tRECONCILED\tLAST SAVEPOINT")
	for _, k := range keys {
		r := st[k]
		sp := "-"
		if len(r.Savepoints) > 0 {
			sp = r.Savepoints[0].Trigger + " " + filepath.Base(r.Savepoints[0].Path)
		}
		commit := r.LastReconciledCommit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Kind, r.Name, r.State(), r.JobState, commit, sp)
	}
	tw.Flush()
	fmt.Println()
}

func instructions(s *stack.Stack) {
	u := strings.Replace(s.RepoURL, "://", "://"+s.Git.User()+":"+s.Git.Password()+"@", 1)
	fmt.Printf(`
flink-gitops is reconciling examples-repo. Try it:

  git clone %s demo-specs && cd demo-specs
  # e.g. raise the dev parallelism (a savepoint upgrade):
  sed -i 's/value: 10m/value: 10m\n      - op: replace\n        path: \/spec\/job\/parallelism\n        value: 2/' apps/event-counter/overlays/dev/kustomization.yaml
  git commit -am "dev: parallelism 2" && git push

Then read what happened on the status branch:

  bin/flink-gitops status --repo %s --username %s --token-file %s

Daemon log:    %s
Metrics:       http://%s/metrics
Flink REST:    %s/flink-dev/event-counter-rest/jobs/overview

Ctrl-C stops everything.
`, u, s.RepoURL, s.Git.User(), filepath.Join(filepath.Dir(s.ConfigPath), "git-token"), s.DaemonLog, s.MetricsAddr, s.Agent.ProxyURL)
}

// watch prints the status table whenever the status branch changes.
func watch(ctx context.Context, s *stack.Stack) {
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		_, files, err := s.Status(ctx)
		if err != nil {
			continue
		}
		if readme := string(files["README.md"]); readme != "" && stripTime(readme) != last {
			if last != "" {
				printStatus(ctx, s)
			}
			last = stripTime(readme)
		}
	}
}

func stripTime(readme string) string {
	if i := strings.Index(readme, "written "); i >= 0 {
		if j := strings.Index(readme[i:], "."); j >= 0 {
			return readme[:i] + readme[i+j:]
		}
	}
	return readme
}

func explain(s *stack.Stack, err error) error {
	if b, rerr := os.ReadFile(s.DaemonLog); rerr == nil {
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(os.Stderr, "last lines of %s:\n%s\n", s.DaemonLog, strings.Join(lines, "\n"))
	}
	return err
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

// serveArtifacts serves the test job jar where examples-repo's session jobs
// expect artifacts.example.com.
func serveArtifacts(jar string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/flink/counter-job-1.0.jar", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, jar) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// copyRewriting copies a directory tree, replacing strings in every file.
func copyRewriting(src, dst string, repl map[string]string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		for from, to := range repl {
			s = strings.ReplaceAll(s, from, to)
		}
		return os.WriteFile(target, []byte(s), 0o644)
	})
}
