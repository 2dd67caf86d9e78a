package nodeagent

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
)

// ProbeImage is the reference the tests register the imageprobe image as.
const ProbeImage = "testbed.local/imageprobe:test"

// BuildProbeImage builds testdata/imageprobe statically and writes an OCI
// layout of an image for the host platform holding it, in two layers (the
// second deletes a file of the first with a whiteout), and returns the
// layout's directory. Entrypoint /imageprobe, user 65532:65532, working
// directory /home/nonroot.
func BuildProbeImage(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "imageprobe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/imageprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build imageprobe: %v\n%s", err, out)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	base := layer(t, []tarEntry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"},
		{name: "etc/gone", mode: 0o644, body: "deleted by the next layer\n"},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: 65532, gid: 65532},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "imageprobe", mode: 0o755, body: string(body)},
	})
	top := layer(t, []tarEntry{
		{name: "etc/.wh.gone", mode: 0o644},
		{name: "etc/hostname-link", link: "passwd"},
	})
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base, top)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		User: "65532:65532", Entrypoint: []string{"/imageprobe"}, Cmd: []string{"-listen", "127.0.0.1:1"},
		WorkingDir: "/home/nonroot", Env: []string{"HOME=/home/nonroot", "FROM_IMAGE=yes"},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	// Another platform first, so the runtime has to pick.
	other, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "s390x"})
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	out := filepath.Join(dir, "layout")
	if _, err := layout.Write(out, idx); err != nil {
		t.Fatal(err)
	}
	return out
}

type tarEntry struct {
	name, body, link string
	mode             int64
	dir              bool
	uid, gid         int
}

func layer(t testing.TB, entries []tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to the image's owners)")
	}
}

// TestUnpack: the host platform's image is found in the index, its layers
// flattened (whiteouts applied) with modes, owners and symlinks kept, and a
// second runtime over the same directory reuses the unpacked root.
func TestUnpack(t *testing.T) {
	needRoot(t)
	rt := &ImageRuntime{Dir: t.TempDir()}
	root, err := rt.unpacked(BuildProbeImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if root.cfg.User != "65532:65532" || !slices.Equal(root.cfg.Entrypoint, []string{"/imageprobe"}) {
		t.Errorf("config = %+v", root.cfg)
	}
	for _, c := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"imageprobe", 0o755, 0, 0},
		{"home/nonroot", os.ModeDir | 0o700, 65532, 65532},
		{"tmp", os.ModeDir | os.ModeSticky | 0o777, 0, 0},
		{"etc/hostname-link", os.ModeSymlink | 0o777, 0, 0},
	} {
		info, err := os.Lstat(filepath.Join(root.dir, c.path))
		if err != nil {
			t.Error(err)
			continue
		}
		uid, gid, _ := owner(info)
		if info.Mode() != c.mode || uid != c.uid || gid != c.gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", c.path, info.Mode(), uid, gid, c.mode, c.uid, c.gid)
		}
	}
	if _, err := os.Lstat(filepath.Join(root.dir, "etc/gone")); !os.IsNotExist(err) {
		t.Errorf("etc/gone survived its whiteout: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(root.dir, "etc/hostname-link")); l != "passwd" {
		t.Errorf("symlink points at %q", l)
	}

	again, err := (&ImageRuntime{Dir: rt.Dir}).unpacked(BuildProbeImage(t))
	if err != nil || again.dir != root.dir {
		t.Errorf("second runtime: %v, dir %s (first %s)", err, again.dir, root.dir)
	}
}

// TestUntarStaysInside: names with ".." land inside the root, and neither a
// write through a symlink nor a hard link to a file outside leaves it.
func TestUntarStaysInside(t *testing.T) {
	outside := t.TempDir()
	for _, c := range []struct {
		name    string
		entries []*tar.Header
		fails   bool
	}{
		{"dot-dot name", []*tar.Header{{Name: "../../evil", Typeflag: tar.TypeReg}}, false},
		{"through symlink", []*tar.Header{{Name: "d", Typeflag: tar.TypeSymlink, Linkname: outside}, {Name: "d/evil", Typeflag: tar.TypeReg}}, true},
		{"hard link out", []*tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: "../../" + outside + "/evil"}}, true},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range c.entries {
			h.Mode = 0o644
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
		}
		_ = tw.Close()
		root := filepath.Join(t.TempDir(), "root")
		err := untar(&buf, root)
		if (err != nil) != c.fails {
			t.Errorf("%s: err = %v, want failure %v", c.name, err, c.fails)
		}
		if _, err := os.Stat(filepath.Join(outside, "evil")); err == nil {
			t.Fatalf("%s: wrote outside the root", c.name)
		}
		if !c.fails {
			if _, err := os.Stat(filepath.Join(root, "evil")); err != nil {
				t.Errorf("%s: not inside the root: %v", c.name, err)
			}
		}
	}
}

// TestWriteAtomic: the kubelet's layout, an in-place update that swaps
// ..data and drops a removed key, modes and group, and no write when
// nothing changed.
func TestWriteAtomic(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "vol")
	changed, err := writeAtomic(dir, map[string]payloadFile{
		"a.yaml":     {data: []byte("one"), mode: 0o644},
		"old":        {data: []byte("x"), mode: 0o644},
		"sub/nested": {data: []byte("n"), mode: 0o440},
	}, 65532)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil || !strings.HasPrefix(first, "..") {
		t.Fatalf("..data -> %q, %v", first, err)
	}
	for name, want := range map[string]string{"a.yaml": "..data/a.yaml", "old": "..data/old", "sub": "..data/sub"} {
		if l, err := os.Readlink(filepath.Join(dir, name)); err != nil || l != want {
			t.Errorf("%s -> %q (%v), want %s", name, l, err, want)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "sub/nested"))
	if err != nil {
		t.Fatal(err)
	}
	if _, gid, _ := owner(info); info.Mode().Perm() != 0o440 || gid != 65532 {
		t.Errorf("sub/nested: mode %v gid %d", info.Mode(), gid)
	}

	if changed, err := writeAtomic(dir, map[string]payloadFile{
		"a.yaml": {data: []byte("one"), mode: 0o644}, "old": {data: []byte("x"), mode: 0o644}, "sub/nested": {data: []byte("n"), mode: 0o440},
	}, 65532); err != nil || changed {
		t.Errorf("same contents: changed=%v err=%v", changed, err)
	}

	if changed, err := writeAtomic(dir, map[string]payloadFile{
		"a.yaml": {data: []byte("two"), mode: 0o644},
		"b.yaml": {data: []byte("new"), mode: 0o600},
	}, -1); err != nil || !changed {
		t.Fatalf("update: changed=%v err=%v", changed, err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if second == first {
		t.Errorf("..data still points at %s", first)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.yaml")); string(b) != "two" {
		t.Errorf("a.yaml = %q after the update", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.yaml")); string(b) != "new" {
		t.Errorf("b.yaml = %q after the update", b)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{second, "..data", "a.yaml", "b.yaml"}; !sameSet(names, want) {
		t.Errorf("entries after update = %v, want %v (old dir, old and sub gone)", names, want)
	}

	for _, bad := range []string{"../x", "/abs", "..data", "a/../b"} {
		if _, err := writeAtomic(dir, map[string]payloadFile{bad: {}}, -1); err == nil {
			t.Errorf("path %q: no error", bad)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestVolumePayload(t *testing.T) {
	data := map[string][]byte{"k1": []byte("v1"), "k2": []byte("v2")}
	m0400, m0600 := int32(0o400), int32(0o600)
	all, err := volumePayload(data, nil, &m0400)
	if err != nil || len(all) != 2 || all["k1"].mode != 0o400 || string(all["k2"].data) != "v2" {
		t.Errorf("all keys with defaultMode: %+v %v", all, err)
	}
	some, err := volumePayload(data, []corev1.KeyToPath{{Key: "k2", Path: "dir/two", Mode: &m0600}, {Key: "k1", Path: "one"}}, nil)
	if err != nil || len(some) != 2 || some["dir/two"].mode != 0o600 || some["one"].mode != 0o644 || string(some["dir/two"].data) != "v2" {
		t.Errorf("items: %+v %v", some, err)
	}
	if _, err := volumePayload(data, []corev1.KeyToPath{{Key: "k3", Path: "x"}}, nil); err == nil {
		t.Error("missing item key: no error")
	}
}

func TestContainerArgv(t *testing.T) {
	cfg := v1.Config{Entrypoint: []string{"/bin/app"}, Cmd: []string{"run", "--x"}}
	env := map[string]string{"N": "ns1"}
	for _, c := range []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image defaults", nil, nil, []string{"/bin/app", "run", "--x"}},
		{"args replace cmd", nil, []string{"version"}, []string{"/bin/app", "version"}},
		{"command drops cmd", []string{"/other"}, nil, []string{"/other"}},
		{"both", []string{"/other"}, []string{"-n", "$(N)"}, []string{"/other", "-n", "ns1"}},
	} {
		got := containerArgv(cfg, corev1.Container{Command: c.command, Args: c.args}, env)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestIdentity(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	yes := true
	for _, c := range []struct {
		name     string
		user     string
		pod      *corev1.PodSecurityContext
		ctr      *corev1.SecurityContext
		uid, gid int
		err      bool
	}{
		{"image user and group", "65532:65532", nil, nil, 65532, 65532, false},
		{"image user only", "1000", nil, nil, 1000, 1000, false},
		{"no user is root", "", nil, nil, 0, 0, false},
		{"pod overrides", "65532:65532", &corev1.PodSecurityContext{RunAsUser: i64(7), RunAsGroup: i64(8)}, nil, 7, 8, false},
		{"container over pod", "", &corev1.PodSecurityContext{RunAsUser: i64(7)}, &corev1.SecurityContext{RunAsUser: i64(9)}, 9, 0, false},
		{"named user", "nonroot", nil, nil, 0, 0, true},
		{"runAsNonRoot as root", "", &corev1.PodSecurityContext{RunAsNonRoot: &yes}, nil, 0, 0, true},
	} {
		uid, gid, err := identity(c.user, c.pod, c.ctr)
		if (err != nil) != c.err || !c.err && (uid != c.uid || gid != c.gid) {
			t.Errorf("%s: %d:%d %v, want %d:%d err=%v", c.name, uid, gid, err, c.uid, c.gid, c.err)
		}
	}
}

// TestRuntimeRefusesUnregistered: an image nobody registered fails like a
// pull that cannot succeed.
func TestRuntimeRefusesUnregistered(t *testing.T) {
	_, err := (&ImageRuntime{}).Prepare(context.Background(), Container{Spec: corev1.Container{Image: "nope:1"}})
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("err = %v", err)
	}
}
