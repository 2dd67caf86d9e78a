// Command image builds the flink-gitops container image without Docker: a
// static binary on an empty base, as an OCI image index for linux/amd64 and
// linux/arm64, written as an OCI layout directory (and optionally pushed).
//
//	go run ./deploy/image -out bin/image [-version V] [-push REGISTRY/REPO:TAG]
//
// The image holds the binary (/flink-gitops; CA roots and the time zone
// database are compiled into it), /etc/passwd and /etc/group naming the
// non-root user 65532, /home/nonroot and /tmp — nothing else, no shell. It
// runs as 65532:65532. Every timestamp is the commit time (or
// SOURCE_DATE_EPOCH), files are written in a fixed order with fixed owners,
// and the binary is built with -trimpath and no build id, so two builds of
// the same commit have the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User and Group the image runs as (the "nonroot" user of distroless).
const (
	User  = 65532
	Group = 65532
)

// Platforms the image is built for.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

func main() {
	out := flag.String("out", "bin/image", "OCI layout directory to write (replaced)")
	version := flag.String("version", "", "version stamped into the binary and the image labels (default: git describe)")
	push := flag.String("push", "", "also push the image index to this reference (REGISTRY/REPO:TAG)")
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "comma-separated OS/ARCH list")
	flag.Parse()
	if err := run(context.Background(), *out, *version, *push, *platforms); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, version, push, platforms string) error {
	if version == "" {
		version = gitOutput("describe", "--tags", "--always", "--dirty")
	}
	revision := gitOutput("rev-parse", "HEAD")
	created, err := sourceDate()
	if err != nil {
		return err
	}
	var plats []v1.Platform
	for _, p := range strings.Split(platforms, ",") {
		os, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok {
			return fmt.Errorf("platform %q: want OS/ARCH", p)
		}
		plats = append(plats, v1.Platform{OS: os, Architecture: arch})
	}
	tmp, err := os.MkdirTemp("", "flink-gitops-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bins := map[string][]byte{}
	for _, p := range plats {
		bin := filepath.Join(tmp, "flink-gitops-"+p.Architecture)
		if err := buildBinary(ctx, p, version, bin); err != nil {
			return err
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		bins[p.OS+"/"+p.Architecture] = b
	}
	idx, err := Index(bins, plats, Meta{Version: version, Revision: revision, Created: created})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if _, err := layout.Write(out, idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", out, d)
	if push != "" {
		ref, err := name.ParseReference(push)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push %s: %w", push, err)
		}
		fmt.Printf("pushed %s@%s\n", ref.Context(), d)
	}
	return nil
}

// Meta is what the image says about itself.
type Meta struct {
	Version, Revision string
	Created           time.Time
}

// Index assembles the image index from one binary per platform (keyed by
// "os/arch"). It is a pure function of its inputs.
func Index(bins map[string][]byte, plats []v1.Platform, m Meta) (v1.ImageIndex, error) {
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range plats {
		bin, ok := bins[p.OS+"/"+p.Architecture]
		if !ok {
			return nil, fmt.Errorf("no binary for %s/%s", p.OS, p.Architecture)
		}
		img, err := Image(bin, p, m)
		if err != nil {
			return nil, err
		}
		p := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, nil
}

// Image is the image of one platform: one layer, the non-root user, the
// daemon as entrypoint.
func Image(bin []byte, p v1.Platform, m Meta) (v1.Image, error) {
	layerTar, err := rootfs(bin, m.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: m.Created}, CreatedBy: "flink-gitops deploy/image", Comment: "flink-gitops " + m.Version}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: m.Created}
	cf.Config = v1.Config{
		User:       strconv.Itoa(User) + ":" + strconv.Itoa(Group),
		Entrypoint: []string{"/flink-gitops"},
		Cmd:        []string{"run", "--config", "/etc/flink-gitops/config.yaml"},
		WorkingDir: "/home/nonroot",
		Env:        []string{"HOME=/home/nonroot", "TMPDIR=/tmp"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "flink-gitops",
			"org.opencontainers.image.description": "GitOps for Apache Flink on Kubernetes",
			"org.opencontainers.image.source":      "https://github.com/flink-gitops/flink-gitops",
			"org.opencontainers.image.version":     m.Version,
			"org.opencontainers.image.revision":    m.Revision,
			"org.opencontainers.image.licenses":    "Apache-2.0",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the image's only layer, byte for byte the same for the same
// binary and time.
func rootfs(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid, gid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", User, Group)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", Group)
	for _, step := range []func() error{
		func() error { return dir("etc/", 0o755, 0, 0) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("flink-gitops", 0o755, bin) },
		func() error { return dir("home/", 0o755, 0, 0) },
		func() error { return dir("home/nonroot/", 0o700, User, Group) },
		func() error { return dir("tmp/", 0o1777, 0, 0) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildBinary builds a static, reproducible binary for p.
func buildBinary(ctx context.Context, p v1.Platform, version, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X main.version="+version, "-o", out, "github.com/flink-gitops/flink-gitops/cmd/flink-gitops")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build for %s/%s: %w", p.OS, p.Architecture, err)
	}
	return nil
}

// sourceDate is SOURCE_DATE_EPOCH, else the HEAD commit's time, else the
// Unix epoch: never the wall clock.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		s = gitOutput("log", "-1", "--format=%ct")
	}
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func gitOutput(args ...string) string {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
