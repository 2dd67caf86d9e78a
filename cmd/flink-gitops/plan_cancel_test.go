package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPlanEndsPromptlyWhenCancelled: plan's context is cancelled by SIGTERM
// (signal.NotifyContext in main); a cancelled plan must end within 1 s even
// while Kustomize is busy with a build that would run for tens of seconds
// (3,000 objects in one entry point, with the budgets raised so that it is
// not refused up front).
func TestPlanEndsPromptlyWhenCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("leaves a CPU-bound build running in the background for a while")
	}
	dir := t.TempDir()
	var many strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&many, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  k: v\n", i)
	}
	files := map[string]string{
		"app/kustomization.yaml": "resources: [many.yaml]\ncommonLabels: {team: data}\n",
		"app/many.yaml":          many.String(),
		"config.yaml": `git:
  url: https://git.example.com/x.git
  entryPoints: [app]
kubernetes:
  defaultNamespace: flink
  allowedNamespaces: [flink]
render:
  maxObjects: 100000
  maxYAMLNodes: 10000000
  buildTimeout: 10m
`,
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- dispatch(ctx, []string{"plan", "--repo", dir, "--config", filepath.Join(dir, "config.yaml")}, &out, &errOut)
	}()
	select {
	case code := <-done:
		t.Fatalf("plan finished before it was cancelled (exit %d): the build is not slow enough to test cancellation\n%s%s", code, out.String(), errOut.String())
	case <-time.After(2 * time.Second):
	}
	cancel()
	cancelled := time.Now()
	select {
	case code := <-done:
		took := time.Since(cancelled)
		t.Logf("plan ended %s after the cancel, exit %d: %s", took, code, strings.TrimSpace(errOut.String()))
		if took > time.Second {
			t.Errorf("plan took %s to end after the cancel, want at most 1s", took)
		}
		if code == exitOK {
			t.Errorf("a cancelled plan exited 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("plan did not end within 10s of the cancel")
	}
}
