package nodeagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DaemonImage builds the flink-gitops image (go run ./deploy/image) for the
// host platform from the module at root and returns its OCI layout
// directory. Builds are cached under cacheDir by the binary's sources (see
// sourceKey), so a second test run of the same code reuses the image; older
// cached images are removed. The build is a static -trimpath one: on two
// idle cores it compiles every dependency once more (minutes).
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

// sourceKey identifies what the daemon's binary is built from: the
// contents of every non-test Go file outside tests/ and testdata, go.mod and
// go.sum in the module at root (tracked or not), so commits of tests or
// docs keep the cached image.
func sourceKey(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", root, "ls-files", "-co", "--exclude-standard", "-z")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git ls-files: %w", err)
	}
	var names []string
	for _, n := range strings.Split(string(out), "\x00") {
		if n == "go.mod" || n == "go.sum" ||
			strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") && !strings.HasPrefix(n, "tests/") && !strings.Contains(n, "testdata/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(root, n))
		if err != nil {
			continue // deleted in the work tree
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ImageSize is the size of the host platform's image in the OCI layout at
// dir: compressed (its layers as stored and pulled) and uncompressed (the
// unpacked layer tars).
func ImageSize(dir string) (compressed, uncompressed int64, err error) {
	img, err := platformImage(dir, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return 0, 0, err
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, 0, err
		}
		compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		uncompressed += u
	}
	return compressed, uncompressed, nil
}
