package sync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

// specRepoDirs is the size of the benchmark repository: one directory per
// Flink application, each with a kustomization and a FlinkDeployment.
const specRepoDirs = 1000

// benchRepo starts a git server with a repository of specRepoDirs spec
// directories and returns the server and a worktree on it.
func benchRepo(b *testing.B) (*gitserver.Server, *gitserver.Worktree) {
	b.Helper()
	integration(b)
	srv := gitserver.Start(b)
	srv.CreateRepo("specs")
	w := srv.Worktree(b, "specs")
	files := map[string]string{"README.md": "# specs\n"}
	for i := range specRepoDirs {
		dir := fmt.Sprintf("apps/app-%04d", i)
		files[dir+"/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: flink\nresources:\n  - flinkdeployment.yaml\n"
		files[dir+"/flinkdeployment.yaml"] = fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: app-%04d
spec:
  image: flink:2.2
  flinkVersion: v2_2
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    state.savepoints.dir: s3://bucket/savepoints/app-%04d
    kubernetes.operator.periodic.savepoint.interval: 6h
  serviceAccount: flink
  jobManager:
    resource: {memory: 2048m, cpu: 1}
  taskManager:
    resource: {memory: 2048m, cpu: 1}
  job:
    jarURI: local:///opt/flink/usrlib/app.jar
    parallelism: 2
    upgradeMode: savepoint
    state: running
`, i, i)
	}
	mustCommitPush(b, w, files, "1000 spec directories")
	return srv, w
}

// cliEnv runs the git CLI against srv without any user configuration, with
// the password from the environment (askpass), like Worktree does.
func cliEnv(b *testing.B, srv *gitserver.Server) []string {
	b.Helper()
	dir := b.TempDir()
	askpass := filepath.Join(dir, "askpass.sh")
	script := "#!/bin/sh\ncase \"$1\" in Username*) echo \"$U\";; *) echo \"$P\";; esac\n"
	if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
		b.Fatal(err)
	}
	return []string{"HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=" + askpass, "U=" + srv.User(), "P=" + srv.Password(), "PATH=" + os.Getenv("PATH")}
}

func runGit(b *testing.B, env []string, dir string, args ...string) {
	b.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// BenchmarkNoopPoll: a poll that finds no new commit (one ls-remote).
func BenchmarkNoopPoll(b *testing.B) {
	srv, _ := benchRepo(b)
	b.Run("go-git", func(b *testing.B) {
		src := newTestSource(b, srv, "specs", nil)
		if _, _, err := src.Poll(context.Background()); err != nil {
			b.Fatal(err)
		}
		before := srv.Counts()
		b.ReportAllocs()
		for b.Loop() {
			if _, changed, err := src.Poll(context.Background()); err != nil || changed {
				b.Fatalf("no-op poll: changed=%v err=%v", changed, err)
			}
		}
		after := srv.Counts()
		if after.UploadPack != before.UploadPack {
			b.Fatal("a no-op poll fetched")
		}
		b.ReportMetric(float64(after.BytesSent-before.BytesSent)/float64(b.N), "B-sent/op")
	})
	b.Run("git-cli-ls-remote", func(b *testing.B) {
		env := cliEnv(b, srv)
		sent := srv.Counts().BytesSent
		for b.Loop() {
			runGit(b, env, b.TempDir(), "ls-remote", srv.URL("specs"), "refs/heads/main")
		}
		b.ReportMetric(float64(srv.Counts().BytesSent-sent)/float64(b.N), "B-sent/op")
	})
}

// BenchmarkFetchNewCommit: what a new head costs — fetch the commit at
// depth 1 and make the snapshot (go-git: every file read into memory), or
// `git fetch --depth 1` into an empty repository (no checkout).
func BenchmarkFetchNewCommit(b *testing.B) {
	srv, _ := benchRepo(b)
	b.Run("go-git", func(b *testing.B) {
		b.ReportAllocs()
		files := 0
		sent := srv.Counts().BytesSent
		for b.Loop() {
			// A fresh Source has no snapshot, so its first poll fetches the
			// head, exactly as a poll after a push does.
			src := newTestSource(b, srv, "specs", nil)
			snap, changed, err := src.Poll(context.Background())
			if err != nil || !changed {
				b.Fatalf("poll: changed=%v err=%v", changed, err)
			}
			files = len(snap.Paths())
		}
		b.ReportMetric(float64(files), "files")
		b.ReportMetric(float64(srv.Counts().BytesSent-sent)/float64(b.N)/1024, "KiB-sent/op")
	})
	b.Run("git-cli-fetch-depth1", func(b *testing.B) {
		env := cliEnv(b, srv)
		sent := srv.Counts().BytesSent
		for b.Loop() {
			dir := b.TempDir()
			runGit(b, env, dir, "init", "--quiet", "--bare", ".")
			runGit(b, env, dir, "fetch", "--quiet", "--depth", "1", srv.URL("specs"), "+refs/heads/main:refs/heads/main")
		}
		b.ReportMetric(float64(srv.Counts().BytesSent-sent)/float64(b.N)/1024, "KiB-sent/op")
	})
}
