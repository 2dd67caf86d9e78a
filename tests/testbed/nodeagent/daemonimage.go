package nodeagent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// DaemonImage builds the flink-gitops image (go run ./deploy/image) for the
// host platform from the module at root and returns its OCI layout
// directory. Builds are cached under cacheDir by the state of the sources
// (HEAD, uncommitted changes and untracked files), so a second test run of
// the same tree reuses the image; older cached images are removed.
func DaemonImage(ctx context.Context, root, cacheDir string) (string, error) {
	key, err := sourceKey(ctx, root)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "daemon-image-"+key)
	if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, ".daemon-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "run", "./deploy/image", "-out", filepath.Join(tmp, "layout"), "-platforms", "linux/"+runtime.GOARCH)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the daemon image: %w\n%s", err, b)
	}
	old, _ := filepath.Glob(filepath.Join(cacheDir, "daemon-image-*"))
	for _, o := range old {
		_ = os.RemoveAll(o)
	}
	if err := os.Rename(filepath.Join(tmp, "layout"), out); err != nil {
		return "", err
	}
	return out, nil
}

// sourceKey identifies the source tree at root: HEAD, the diff against it
// and the untracked files' contents.
func sourceKey(ctx context.Context, root string) (string, error) {
	git := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
		b, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return b, nil
	}
	h := sha256.New()
	for _, args := range [][]string{{"rev-parse", "HEAD"}, {"diff", "HEAD"}} {
		b, err := git(args...)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	untracked, err := git("ls-files", "-o", "--exclude-standard", "-z")
	if err != nil {
		return "", err
	}
	for _, name := range bytes.Split(untracked, []byte{0}) {
		if len(name) == 0 {
			continue
		}
		h.Write(name)
		if b, err := os.ReadFile(filepath.Join(root, string(name))); err == nil {
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
