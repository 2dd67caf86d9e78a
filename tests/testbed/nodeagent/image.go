package nodeagent

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// ImageRuntime runs containers of plain images built locally, the way a
// kubelet with a container runtime would, as far as one shared network
// namespace allows:
//
//   - an image is registered by reference (Register) as an OCI layout
//     directory; the manifest for the host platform is unpacked once per
//     digest into a root filesystem;
//   - the container runs the image's entrypoint and cmd (the container's
//     command and args override them as in Kubernetes) in its own mount and
//     UTS namespace (hostname = pod name), chrooted into a per-pod copy of
//     the root filesystem (hard links), in the image's working directory, as
//     the image's user unless the pod's or container's securityContext says
//     runAsUser/runAsGroup; readOnlyRootFilesystem is honoured;
//   - ConfigMap and Secret volumes are written in the kubelet's atomic layout
//     (a "..<timestamp>" directory, a "..data" symlink to it, and per-key
//     symlinks "key -> ..data/key"; items, defaultMode, optional and fsGroup
//     honoured), emptyDir volumes are fresh directories, and the
//     ServiceAccount token (from the TokenRequest API), ca.crt and namespace
//     are at /var/run/secrets/kubernetes.io/serviceaccount unless
//     automountServiceAccountToken is false;
//   - KUBERNETES_SERVICE_HOST/PORT point at the apiserver;
//   - while the container runs, its ConfigMap, Secret and token volumes are
//     re-read every SyncPeriod and, when changed, updated in place (new
//     timestamped directory, atomic rename of "..data"): the container is
//     not restarted, as with a kubelet (see LiveVolumes);
//   - each pod has a loopback address of its own as its pod IP (status.podIP
//     field refs), see PodIP;
//   - readiness comes from the container's readinessProbe (httpGet or
//     tcpSocket, to the pod IP) if it has one.
//
// Ports are not remapped and there is no network namespace: the process
// binds its container ports on the host network, so two replicas of one
// pod template that listen on the wildcard address with fixed ports collide
// (the second one crash-loops) unless they bind their pod IP. Service
// traffic through the agent's proxy still goes to 127.0.0.1. Unsupported volume types (hostPath,
// PVCs, …) and an fsGroup that differs from the process's group are refused
// when the container starts.
type ImageRuntime struct {
	// Client reads ConfigMaps and Secrets and requests tokens.
	Client kubernetes.Interface
	// APIHost and APIPort are what KUBERNETES_SERVICE_HOST/PORT say.
	APIHost string
	APIPort int
	// CAData is the apiserver's CA (ca.crt in the token volume).
	CAData []byte
	// Dir holds the unpacked root filesystems, one per image digest.
	Dir string
	// SyncPeriod is how often mounted volumes are re-read (2 s if zero).
	SyncPeriod time.Duration

	mu     gosync.Mutex
	images map[string]string     // reference → OCI layout dir
	roots  map[string]*rootEntry // digest → unpacked root
	podIPs map[string]string     // namespace/pod → its loopback address
}

// PodIP is the address of pod: one of its own in 127.0.1.0/24 (then
// 127.0.2.0/24, …), kept across restarts, so that replicas of one template
// can each bind their ports on their pod IP in the one shared network
// namespace (e.g. a listen address of $(POD_IP):8080 from a status.podIP
// field ref). Readiness probes go to it, as the kubelet's go to the pod IP.
func (rt *ImageRuntime) PodIP(ns, pod string) string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.podIPs == nil {
		rt.podIPs = map[string]string{}
	}
	key := ns + "/" + pod
	if ip, ok := rt.podIPs[key]; ok {
		return ip
	}
	n := len(rt.podIPs)
	ip := fmt.Sprintf("127.0.%d.%d", 1+n/254, 1+n%254)
	rt.podIPs[key] = ip
	return ip
}

// rootEntry is one unpacked image; the first result, error or not, stays
// (an image that cannot be unpacked stays so).
type rootEntry struct {
	once gosync.Once
	dir  string
	cfg  v1.Config
	err  error
}

// Register makes image reference ref run from the OCI layout directory dir.
func (rt *ImageRuntime) Register(ref, dir string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.images == nil {
		rt.images = map[string]string{}
	}
	rt.images[ref] = dir
}

// Has reports whether ref is registered.
func (rt *ImageRuntime) Has(ref string) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	_, ok := rt.images[ref]
	return ok
}

// LiveVolumes reports that pods of registered images get volume updates in
// place; the agent then leaves mounted contents out of the template hash, so
// a ConfigMap change does not replace the replicas.
func (rt *ImageRuntime) LiveVolumes(image string) bool { return rt.Has(image) }

// Prepare implements Runtime.
func (rt *ImageRuntime) Prepare(ctx context.Context, c Container) (*Process, error) {
	rt.mu.Lock()
	layoutDir, ok := rt.images[c.Spec.Image]
	rt.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("image %q: not registered with the test bed's image runtime", c.Spec.Image)
	}
	if rt.Dir == "" {
		return nil, errors.New("the image runtime has no Dir for unpacked images")
	}
	root, err := rt.unpacked(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", c.Spec.Image, err)
	}
	uid, gid, err := identity(root.cfg.User, c.PodSpec.SecurityContext, c.Spec.SecurityContext)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", c.Pod, err)
	}
	fsGroup := -1
	if sc := c.PodSpec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = int(*sc.FSGroup)
		if fsGroup != gid {
			return nil, fmt.Errorf("pod %s: fsGroup %d differs from the process group %d: the test bed's image runtime cannot add supplementary groups", c.Pod, fsGroup, gid)
		}
	}

	podRoot := filepath.Join(c.Dir, "rootfs")
	if err := os.RemoveAll(podRoot); err != nil {
		return nil, err
	}
	if err := linkTree(root.dir, podRoot); err != nil {
		return nil, fmt.Errorf("pod %s: copy root filesystem: %w", c.Pod, err)
	}
	vols := &podVolumes{
		rt: rt, ns: c.Namespace, pod: c.Pod, dir: filepath.Join(c.Dir, "volumes"),
		spec: c.PodSpec, fsGroup: fsGroup,
	}
	mounts, err := vols.setup(ctx, c.Spec)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", c.Pod, err)
	}

	env := map[string]string{}
	for _, kv := range root.cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	env["HOSTNAME"] = c.Pod
	env["KUBERNETES_SERVICE_HOST"] = rt.APIHost
	env["KUBERNETES_SERVICE_PORT"] = strconv.Itoa(rt.APIPort)
	env["KUBERNETES_SERVICE_PORT_HTTPS"] = strconv.Itoa(rt.APIPort)
	podIP := rt.PodIP(c.Namespace, c.Pod)
	for _, e := range c.Spec.Env { // only the pod's own env: not the agent's KUBECONFIG stand-in
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env) // $(VAR) of the variables defined before, as the kubelet does
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			env[e.Name] = podIP
		default:
			if v, ok := c.Env[e.Name]; ok {
				env[e.Name] = v
			}
		}
	}
	argv := containerArgv(root.cfg, c.Spec, env)
	if len(argv) == 0 {
		return nil, fmt.Errorf("pod %s: image %q has no entrypoint and the container no command", c.Pod, c.Spec.Image)
	}
	wd := root.cfg.WorkingDir
	if c.Spec.WorkingDir != "" {
		wd = c.Spec.WorkingDir
	}
	if wd == "" {
		wd = "/"
	}
	if err := os.MkdirAll(filepath.Join(podRoot, wd), 0o755); err != nil {
		return nil, err
	}
	readOnly := c.Spec.SecurityContext != nil && c.Spec.SecurityContext.ReadOnlyRootFilesystem != nil && *c.Spec.SecurityContext.ReadOnlyRootFilesystem
	cmd, err := namespacedCommand(podRoot, c.Pod, wd, uid, gid, readOnly, mounts, argv)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", c.Pod, err)
	}
	cmd.Dir = c.Dir
	cmd.Env = nil
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	ports := map[int32]int32{}
	for _, p := range c.Spec.Ports {
		ports[p.ContainerPort] = p.ContainerPort
	}
	proc := &Process{Cmd: cmd, Ports: ports, Refresh: vols.refresher(rt.syncPeriod())}
	if rp := c.Spec.ReadinessProbe; rp != nil {
		proc.Ready = probeFunc(rp.ProbeHandler, c.Spec.Ports, podIP)
	}
	return proc, nil
}

func (rt *ImageRuntime) syncPeriod() time.Duration {
	if rt.SyncPeriod > 0 {
		return rt.SyncPeriod
	}
	return 2 * time.Second
}

// containerArgv is the process's argv as Kubernetes composes it from the
// image config and the container: command replaces the entrypoint (and drops
// the image's cmd), args replace cmd; $(VAR) is expanded in both.
func containerArgv(cfg v1.Config, spec corev1.Container, env map[string]string) []string {
	entry, args := cfg.Entrypoint, cfg.Cmd
	if len(spec.Command) > 0 {
		entry, args = spec.Command, nil
	}
	if len(spec.Args) > 0 {
		args = spec.Args
	}
	var argv []string
	for _, a := range append(append([]string{}, entry...), args...) {
		argv = append(argv, expand(a, env))
	}
	return argv
}

// identity is the uid and gid a container runs as: the securityContext's
// runAsUser/runAsGroup (container over pod) over the image's USER, which
// must be numeric (there is no passwd lookup).
func identity(user string, pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext) (int, int, error) {
	uid, gid := 0, 0
	if user != "" {
		u, g, hasGroup := strings.Cut(user, ":")
		var err error
		if uid, err = strconv.Atoi(u); err != nil {
			return 0, 0, fmt.Errorf("image user %q is not numeric (the test bed does not look names up)", user)
		}
		gid = uid
		if hasGroup {
			if gid, err = strconv.Atoi(g); err != nil {
				return 0, 0, fmt.Errorf("image group in %q is not numeric", user)
			}
		}
	}
	if pod != nil {
		if pod.RunAsUser != nil {
			uid = int(*pod.RunAsUser)
		}
		if pod.RunAsGroup != nil {
			gid = int(*pod.RunAsGroup)
		}
	}
	if ctr != nil {
		if ctr.RunAsUser != nil {
			uid = int(*ctr.RunAsUser)
		}
		if ctr.RunAsGroup != nil {
			gid = int(*ctr.RunAsGroup)
		}
	}
	nonRoot := pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot || ctr != nil && ctr.RunAsNonRoot != nil && *ctr.RunAsNonRoot
	if nonRoot && uid == 0 {
		return 0, 0, errors.New("runAsNonRoot is set but the container would run as root")
	}
	return uid, gid, nil
}

// probeFunc turns an httpGet or tcpSocket probe into a readiness check.
// Like the kubelet's, it targets the pod's IP unless the probe names a host.
func probeFunc(h corev1.ProbeHandler, ports []corev1.ContainerPort, podIP string) func(context.Context) bool {
	port := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.Int {
			return p.IntVal
		}
		for _, cp := range ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort
			}
		}
		return 0
	}
	switch {
	case h.HTTPGet != nil:
		host := podIP
		if h.HTTPGet.Host != "" {
			host = h.HTTPGet.Host
		}
		url := "http://" + net.JoinHostPort(host, strconv.Itoa(int(port(h.HTTPGet.Port)))) + h.HTTPGet.Path
		return func(ctx context.Context) bool {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return false
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode >= 200 && resp.StatusCode < 400
		}
	case h.TCPSocket != nil:
		addr := net.JoinHostPort(podIP, strconv.Itoa(int(port(h.TCPSocket.Port))))
		return func(ctx context.Context) bool {
			d := net.Dialer{Timeout: 500 * time.Millisecond}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}
	}
	return nil // exec probes: ready once the ports accept connections
}

// unpacked returns the root filesystem of the host platform's image in the
// OCI layout at dir, unpacking it on first use.
func (rt *ImageRuntime) unpacked(dir string) (*rootEntry, error) {
	img, err := platformImage(dir, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	if rt.roots == nil {
		rt.roots = map[string]*rootEntry{}
	}
	e := rt.roots[digest.String()]
	if e == nil {
		e = &rootEntry{dir: filepath.Join(rt.Dir, "rootfs", digest.Hex)}
		rt.roots[digest.String()] = e
	}
	rt.mu.Unlock()
	e.once.Do(func() {
		cf, err := img.ConfigFile()
		if err != nil {
			e.err = err
			return
		}
		e.cfg = cf.Config
		if _, err := os.Stat(e.dir); err == nil {
			return // unpacked by an earlier runtime over the same Dir
		}
		e.err = unpack(img, e.dir)
	})
	return e, e.err
}

// platformImage finds the image for p in the OCI layout at dir, looking
// through nested indexes; a manifest without a platform matches when its
// config's OS and architecture do.
func platformImage(dir string, p v1.Platform) (v1.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	img, err := findImage(idx, p, 0)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return img, nil
}

func findImage(idx v1.ImageIndex, p v1.Platform, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errors.New("image indexes nested too deep")
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := findImage(child, p, depth+1); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform != nil && (d.Platform.OS != p.OS || d.Platform.Architecture != p.Architecture) {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			if d.Platform == nil {
				cf, err := img.ConfigFile()
				if err != nil || cf.OS != p.OS || cf.Architecture != p.Architecture {
					continue
				}
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("no image for %s/%s", p.OS, p.Architecture)
}

// unpack writes img's flattened file system to dir (through a temporary
// sibling, renamed into place once complete), keeping modes and owners.
func unpack(img v1.Image, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(rc, tmp); err != nil {
		return fmt.Errorf("unpack image: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // another process won the race
		}
		return err
	}
	return nil
}

// untar extracts a tar stream under dir. Names that leave dir and hard
// links to outside it are refused; symlinks are written as they are (they
// are resolved inside the chroot).
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target, err := within(dir, h.Name)
		if err != nil {
			return err
		}
		if target == dir {
			continue
		}
		if err := noSymlinkParent(dir, target); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if h.Mode&0o4000 != 0 {
			mode |= os.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			mode |= os.ModeSetgid
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
			if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			src, err := within(dir, h.Linkname)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
			continue
		default:
			continue // devices and fifos have no place in a test image
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
	}
}

// within joins name under dir, refusing a name that leaves dir.
func within(dir, name string) (string, error) {
	clean := filepath.Clean("/" + name)
	target := filepath.Join(dir, clean)
	if target != dir && !strings.HasPrefix(target, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("tar entry %q leaves the root", name)
	}
	return target, nil
}

// noSymlinkParent refuses a target under dir reached through a symlink
// (an earlier entry "d -> /" and a later "d/etc/x" would write outside).
func noSymlinkParent(dir, target string) error {
	rel, err := filepath.Rel(dir, filepath.Dir(target))
	if err != nil || rel == "." {
		return err
	}
	p := dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		info, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("tar entry %s: goes through the symlink %s", target, p)
		}
	}
	return nil
}

// linkTree makes dst a copy of src whose regular files are hard links (or
// copies, across file systems), so each pod has its own directory tree
// (mount points can be made in it) without copying the image's bytes.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			return chownLike(target, info)
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
			return chownLike(target, info)
		case info.Mode().IsRegular():
			if err := os.Link(p, target); err == nil {
				return nil
			}
			return copyFile(p, target, info)
		}
		return nil
	})
}

// owner is the uid and gid of info's file.
func owner(info os.FileInfo) (uid, gid int, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// ByImage is a Runtime that runs registered plain images with Images and
// every other image (e.g. Flink's) with Default, so both kinds of pod run in
// one agent.
type ByImage struct {
	Images  *ImageRuntime
	Default Runtime
}

// Prepare implements Runtime.
func (m ByImage) Prepare(ctx context.Context, c Container) (*Process, error) {
	if m.Images != nil && m.Images.Has(c.Spec.Image) {
		return m.Images.Prepare(ctx, c)
	}
	return m.Default.Prepare(ctx, c)
}

// LiveVolumes reports whether pods of image get volume updates in place.
func (m ByImage) LiveVolumes(image string) bool {
	return m.Images != nil && m.Images.LiveVolumes(image)
}
