package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDispatchAndValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("git: {url: 'https://h/r', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}\n"), 0o644)
	os.WriteFile(bad, []byte("git: {url: 'https://h/r', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}\nreconcile: {concurrancy: 2}\n"), 0o644)

	cases := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{nil, exitError, "", "Commands:"},
		{[]string{"--help"}, exitOK, "Commands:", ""},
		{[]string{"nope"}, exitError, "", `unknown command "nope"`},
		{[]string{"version"}, exitOK, "flink-gitops ", ""},
		{[]string{"validate", "--help"}, exitOK, "git.pollInterval", ""},
		{[]string{"validate"}, exitError, "", "--config FILE is required"},
		{[]string{"validate", "--bogus"}, exitError, "", "unknown flag: --bogus"},
		{[]string{"validate", "--config", good}, exitOK, "good.yaml: ok", ""},
		{[]string{"validate", "--config", bad}, exitInvalid, "reconcile.concurrancy: unknown key (fix: did you mean reconcile.concurrency?)", ""},
		{[]string{"validate", "--config", good, "--set", "reconcile.concurrency=0"}, exitInvalid, "reconcile.concurrency: 0 is out of range", ""},
		{[]string{"validate", "--config", filepath.Join(dir, "missing.yaml")}, exitError, "", "no such file"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), c.args, &out, &errOut)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), c.inStdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), c.inStdout)
			}
			if !strings.Contains(errOut.String(), c.inStderr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), c.inStderr)
			}
		})
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands {
		var out, errOut bytes.Buffer
		if code := dispatch(context.Background(), []string{name, "--help"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "Usage: flink-gitops "+name) {
			t.Errorf("%s --help: code %d, stdout %q", name, code, out.String())
		}
	}
}

// TestExamplesRepoRendersCleanly keeps examples-repo copyable: it renders
// with its own daemon config, with no problem and no warning (exit 1: every
// resource is new without --kubeconfig).
func TestExamplesRepoRendersCleanly(t *testing.T) {
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"plan", "--repo", "../../examples-repo", "--config", "../../examples-repo/flink-gitops.yaml"}, &out, &errOut)
	if code != exitChanges {
		t.Fatalf("plan exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"FlinkDeployment  flink-dev/event-counter application",
		"FlinkDeployment  flink-prod/event-counter application",
		"FlinkDeployment  flink-dev/analytics session",
		"FlinkSessionJob  flink-dev/clicks -> analytics",
		"FlinkSessionJob  flink-dev/views -> analytics",
		"5 resources valid, 0 invalid, 0 problems, 0 warnings",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, out.String())
		}
	}
}
