package sync

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// TestBuildTreeMatchesGit: the trees the status writer builds hash exactly
// like the ones git writes for the same files, including git's ordering of
// directories ("a/") against names like "a-b", "a.b" and "a0".
func TestBuildTreeMatchesGit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	files := map[string]string{
		"a/x.yaml":                        "x\n",
		"a-b":                             "dash\n",
		"a.b":                             "dot\n",
		"a0":                              "zero\n",
		"a/b/c/deep.yaml":                 "deep\n",
		"README.md":                       "# status\n",
		"ns/FlinkDeployment/app.yaml":     "state: RUNNING\n",
		"ns/FlinkDeployment.yaml":         "file next to dir\n",
		"ns/FlinkDeployment-extra/x.yaml": "x\n",
	}
	st := memory.NewStorage()
	entries := map[string]object.TreeEntry{}
	for p, c := range files {
		h, err := storeBlob(st, []byte(c))
		if err != nil {
			t.Fatal(err)
		}
		entries[p] = object.TreeEntry{Mode: filemode.Regular, Hash: h}
	}
	got, err := buildTree(st, entries)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "--quiet")
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	if want := git("write-tree"); got.String() != want {
		t.Fatalf("tree hash %s, git writes %s", got, want)
	}
}

func TestValidStatusPath(t *testing.T) {
	t.Parallel()
	for p, ok := range map[string]bool{
		"README.md": true, "ns/FlinkDeployment/a.yaml": true,
		"": false, ".": false, "/abs": false, "../x": false, "a/../b": false, "a//b": false, "a/": false,
		".git/config": false, "x/.GIT/y": false,
	} {
		if err := validStatusPath(p); (err == nil) != ok {
			t.Errorf("validStatusPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}
