package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

var meta = Meta{Version: "v1.2.3", Revision: "abc", Created: time.Unix(1700000000, 0).UTC()}

func digest(t *testing.T, bins map[string][]byte, m Meta) v1.Hash {
	t.Helper()
	idx, err := Index(bins, Platforms, m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestIndexIsReproducible(t *testing.T) {
	bins := map[string][]byte{"linux/amd64": []byte("amd64 binary"), "linux/arm64": []byte("arm64 binary")}
	a, b := digest(t, bins, meta), digest(t, bins, meta)
	if a != b {
		t.Fatalf("two builds of the same inputs: %s and %s", a, b)
	}
	other := map[string][]byte{"linux/amd64": []byte("amd64 binary!"), "linux/arm64": []byte("arm64 binary")}
	if digest(t, other, meta) == a {
		t.Error("a different binary gave the same digest")
	}
	later := meta
	later.Created = later.Created.Add(time.Second)
	if digest(t, bins, later) == a {
		t.Error("a different commit time gave the same digest")
	}
}

// entry is one file of the image's root filesystem.
type entry struct {
	Name     string
	Mode     int64
	Uid, Gid int
}

func files(t *testing.T, img v1.Image) ([]entry, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var es []entry
	bodies := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{h.Name, h.Mode, h.Uid, h.Gid})
		b, _ := io.ReadAll(tr)
		bodies[h.Name] = b
	}
	return es, bodies
}

// TestImageShape: the binary, the non-root user and two directories —
// no shell, no package manager, nothing else.
func TestImageShape(t *testing.T) {
	img, err := Image([]byte("binary"), v1.Platform{OS: "linux", Architecture: "arm64"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	es, bodies := files(t, img)
	want := []entry{
		{"etc/", 0o755, 0, 0}, {"etc/group", 0o644, 0, 0}, {"etc/passwd", 0o644, 0, 0},
		{"flink-gitops", 0o755, 0, 0}, {"home/", 0o755, 0, 0}, {"home/nonroot/", 0o700, User, Group}, {"tmp/", 0o1777, 0, 0},
	}
	if d := cmp.Diff(want, es); d != "" {
		t.Errorf("root filesystem (-want +got):\n%s", d)
	}
	if !strings.Contains(string(bodies["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user:\n%s", bodies["etc/passwd"])
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || cf.Architecture != "arm64" || cf.OS != "linux" ||
		!cmp.Equal(cf.Config.Entrypoint, []string{"/flink-gitops"}) || !cf.Created.Time.Equal(meta.Created) ||
		cf.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" {
		t.Errorf("config: %+v", cf)
	}
}

// TestBuildFromSource builds the real image for this machine's platform
// twice from the source tree: the same digest both times, and the binary in
// it runs.
func TestBuildFromSource(t *testing.T) {
	// A static -trimpath build compiles every dependency a second time
	// (minutes on two cores), which the make test budget cannot afford:
	// make image-check runs it.
	if os.Getenv("FLINK_GITOPS_IMAGE_BUILD") == "" {
		t.Skip("builds the daemon twice for the image: run make image-check")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	ctx := context.Background()
	plat := "linux/" + runtime.GOARCH
	var digests []string
	var dir string
	for i := 0; i < 2; i++ {
		dir = filepath.Join(t.TempDir(), "image")
		if err := run(ctx, dir, "v0.0.0-test", "", plat); err != nil {
			t.Fatal(err)
		}
		p, err := layout.FromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds of the same commit: %s and %s", digests[0], digests[1])
	}
	p, _ := layout.FromPath(dir)
	idx, _ := p.ImageIndex()
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v, %+v", err, im)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	_, bodies := files(t, img)
	bin := filepath.Join(t.TempDir(), "flink-gitops")
	if err := os.WriteFile(bin, bodies["flink-gitops"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v0.0.0-test") {
		t.Fatalf("the image's binary: %v\n%s", err, out)
	}
	size := 0
	for _, b := range bodies {
		size += len(b)
	}
	t.Logf("image %s: %d MiB uncompressed", digests[0], size>>20)
}
