package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceAccountMount is where the kubelet mounts a pod's API credentials.
const ServiceAccountMount = "/var/run/secrets/kubernetes.io/serviceaccount"

// tokenTTL is the lifetime of the ServiceAccount tokens the image runtime
// requests; they are renewed after 80% of it, as the kubelet does.
const tokenTTL = time.Hour

// payloadFile is one file of a ConfigMap, Secret or token volume.
type payloadFile struct {
	data []byte
	mode os.FileMode
}

// bindMount is one volume (or file of one) mounted into a container.
type bindMount struct {
	src, target string
	readOnly    bool
}

// podVolumes are the volumes of one image-runtime container, kept on the
// host under dir/<volume name> and bind-mounted into its root.
type podVolumes struct {
	rt       *ImageRuntime
	ns, pod  string
	dir      string
	spec     corev1.PodSpec
	fsGroup  int // -1: none
	tokenAt  time.Time
	lastSync time.Time
}

// saVolume is the name of the token volume the runtime adds.
const saVolume = "kube-api-access"

// setup writes every volume the container mounts and returns its mounts.
func (v *podVolumes) setup(ctx context.Context, c corev1.Container) ([]bindMount, error) {
	if err := os.RemoveAll(v.dir); err != nil {
		return nil, err
	}
	byName := map[string]corev1.Volume{}
	for _, vol := range v.spec.Volumes {
		byName[vol.Name] = vol
	}
	var mounts []bindMount
	saMounted := false
	for _, m := range c.VolumeMounts {
		vol, ok := byName[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %s: no volume of that name", m.Name)
		}
		src := filepath.Join(v.dir, vol.Name)
		switch {
		case vol.ConfigMap != nil, vol.Secret != nil:
			if err := v.sync(ctx, vol); err != nil {
				return nil, err
			}
		case vol.EmptyDir != nil:
			if err := os.MkdirAll(src, 0o777); err != nil {
				return nil, err
			}
			if err := os.Chmod(src, 0o777); err != nil { // as the kubelet makes it, whatever the umask
				return nil, err
			}
		default:
			return nil, fmt.Errorf("volume %s: only configMap, secret and emptyDir volumes run in the test bed's image runtime", vol.Name)
		}
		if m.SubPath != "" {
			if p, err := within(src, m.SubPath); err != nil {
				return nil, fmt.Errorf("volume mount %s: subPath: %w", m.Name, err)
			} else if src, err = filepath.EvalSymlinks(p); err != nil {
				return nil, fmt.Errorf("volume mount %s: subPath %s: %w", m.Name, m.SubPath, err)
			}
		}
		if path.Clean(m.MountPath) == ServiceAccountMount {
			saMounted = true
		}
		readOnly := m.ReadOnly || vol.ConfigMap != nil || vol.Secret != nil
		mounts = append(mounts, bindMount{src: src, target: path.Clean("/" + m.MountPath), readOnly: readOnly})
	}
	automount := v.spec.AutomountServiceAccountToken == nil || *v.spec.AutomountServiceAccountToken
	if automount && !saMounted {
		if err := v.syncToken(ctx); err != nil {
			return nil, err
		}
		mounts = append(mounts, bindMount{src: filepath.Join(v.dir, saVolume), target: ServiceAccountMount, readOnly: true})
	}
	v.lastSync = time.Now()
	return mounts, nil
}

// refresher returns the Process.Refresh of these volumes: every period it
// re-reads the ConfigMap and Secret volumes and renews the token when due,
// writing only what changed. An error keeps the old contents (as the
// kubelet does) and is tried again next period.
func (v *podVolumes) refresher(period time.Duration) func(context.Context) {
	return func(ctx context.Context) {
		if time.Since(v.lastSync) < period {
			return
		}
		v.lastSync = time.Now()
		for _, vol := range v.spec.Volumes {
			if _, err := os.Stat(filepath.Join(v.dir, vol.Name)); err != nil {
				continue // not mounted by the main container
			}
			if vol.ConfigMap != nil || vol.Secret != nil {
				_ = v.sync(ctx, vol)
			}
		}
		if _, err := os.Stat(filepath.Join(v.dir, saVolume)); err == nil && time.Since(v.tokenAt) > tokenTTL*8/10 {
			_ = v.syncToken(ctx)
		}
	}
}

// sync writes the current contents of a ConfigMap or Secret volume.
func (v *podVolumes) sync(ctx context.Context, vol corev1.Volume) error {
	payload, err := v.payload(ctx, vol)
	if err != nil {
		return err
	}
	_, err = writeAtomic(filepath.Join(v.dir, vol.Name), payload, v.fsGroup)
	if err != nil {
		return fmt.Errorf("volume %s: %w", vol.Name, err)
	}
	return nil
}

// payload reads a ConfigMap or Secret volume's files from the API.
func (v *podVolumes) payload(ctx context.Context, vol corev1.Volume) (map[string]payloadFile, error) {
	var (
		data     map[string][]byte
		items    []corev1.KeyToPath
		mode     *int32
		optional bool
		err      error
	)
	switch {
	case vol.ConfigMap != nil:
		items, mode, optional = vol.ConfigMap.Items, vol.ConfigMap.DefaultMode, vol.ConfigMap.Optional != nil && *vol.ConfigMap.Optional
		var cm *corev1.ConfigMap
		if cm, err = v.rt.Client.CoreV1().ConfigMaps(v.ns).Get(ctx, vol.ConfigMap.Name, metav1.GetOptions{}); err == nil {
			data = map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				data[k] = b
			}
		}
	case vol.Secret != nil:
		items, mode, optional = vol.Secret.Items, vol.Secret.DefaultMode, vol.Secret.Optional != nil && *vol.Secret.Optional
		var s *corev1.Secret
		if s, err = v.rt.Client.CoreV1().Secrets(v.ns).Get(ctx, vol.Secret.SecretName, metav1.GetOptions{}); err == nil {
			data = s.Data
		}
	}
	if apierrors.IsNotFound(err) && optional {
		return map[string]payloadFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", vol.Name, err)
	}
	return volumePayload(data, items, mode)
}

// volumePayload selects and names the files of a ConfigMap or Secret volume:
// every key, or only items (each under its path, with its mode), with
// defaultMode (0644 if unset) for the rest. A missing item key is an error,
// as it is for the kubelet.
func volumePayload(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) (map[string]payloadFile, error) {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode) & os.ModePerm
	}
	out := map[string]payloadFile{}
	if len(items) == 0 {
		for k, b := range data {
			out[k] = payloadFile{data: b, mode: mode}
		}
		return out, nil
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("item key %q does not exist", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode) & os.ModePerm
		}
		out[it.Path] = payloadFile{data: b, mode: m}
	}
	return out, nil
}

// syncToken writes a fresh token for the pod's ServiceAccount, with the
// apiserver's CA and the namespace.
func (v *podVolumes) syncToken(ctx context.Context) error {
	sa := v.spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	ttl := int64(tokenTTL / time.Second)
	tr, err := v.rt.Client.CoreV1().ServiceAccounts(v.ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for service account %s/%s: %w", v.ns, sa, err)
	}
	_, err = writeAtomic(filepath.Join(v.dir, saVolume), map[string]payloadFile{
		"token":     {data: []byte(tr.Status.Token), mode: 0o644},
		"ca.crt":    {data: v.rt.CAData, mode: 0o644},
		"namespace": {data: []byte(v.ns), mode: 0o644},
	}, v.fsGroup)
	if err != nil {
		return fmt.Errorf("service account volume: %w", err)
	}
	v.tokenAt = time.Now()
	return nil
}

// dataDir is the kubelet's name of the symlink to the current contents.
const dataDir = "..data"

// writeAtomic makes dir hold exactly payload in the kubelet's atomic
// layout: the files in a "..<timestamp>" directory, "..data" a symlink to
// it, and each top-level name a symlink through "..data". An update writes
// a new timestamped directory and renames a new symlink over "..data", so a
// reader sees the old or the new contents, never a mix; it then adds and
// removes the per-name symlinks and deletes the old directory. Nothing is
// written when the contents are unchanged (changed is false). gid, if not
// -1, owns the files (fsGroup).
func writeAtomic(dir string, payload map[string]payloadFile, gid int) (changed bool, err error) {
	names := make([]string, 0, len(payload))
	for p := range payload {
		if p == "" || path.IsAbs(p) || strings.HasPrefix(p, "..") || path.Clean(p) != p {
			return false, fmt.Errorf("file path %q: must be relative, clean and not start with '..'", p)
		}
		names = append(names, p)
	}
	sort.Strings(names)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataDir))
	if old != "" && sameContents(filepath.Join(dir, old), payload) {
		return false, nil
	}

	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	for _, p := range names {
		f := payload[p]
		target := filepath.Join(ts, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(target, f.data, 0o600); err != nil {
			return false, err
		}
		if gid >= 0 {
			if err := os.Chown(target, 0, gid); err != nil {
				return false, err
			}
		}
		if err := os.Chmod(target, f.mode); err != nil {
			return false, err
		}
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return false, err
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDir)); err != nil {
		return false, err
	}

	top := map[string]bool{}
	for _, p := range names {
		first, _, _ := strings.Cut(p, "/")
		top[first] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(path.Join(dataDir, name), link); err != nil {
			return false, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return false, err
			}
		}
	}
	if old != "" && old != filepath.Base(ts) {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// sameContents reports whether dir holds exactly payload (bytes and modes).
func sameContents(dir string, payload map[string]payloadFile) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, ok := payload[filepath.ToSlash(rel)]
		if !ok {
			return errors.New("extra file")
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() != f.mode {
			return errors.New("mode differs")
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.data) {
			return errors.New("content differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(payload)
}

// namespacedCommand runs argv chrooted into root in a new mount and UTS
// namespace: the mounts are bind-mounted (read-only where asked), /proc and
// the usual /dev nodes are provided, the root is made read-only if asked,
// the hostname is set, and the program runs in wd as uid:gid with no
// supplementary groups. The mount points are made under root here, on the
// host, since root is the pod's own tree.
func namespacedCommand(root, hostname, wd string, uid, gid int, readOnlyRoot bool, mounts []bindMount, argv []string) (*exec.Cmd, error) {
	tools := map[string]string{}
	for _, t := range []string{"unshare", "mount", "hostname", "nsenter", "sh"} {
		p, err := exec.LookPath(t)
		if err != nil {
			return nil, fmt.Errorf("the image runtime needs %s (util-linux): %w", t, err)
		}
		tools[t] = p
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	line := func(args ...string) {
		for i, a := range args {
			if i > 0 {
				script.WriteByte(' ')
			}
			script.WriteString(shq(a))
		}
		script.WriteByte('\n')
	}
	line(tools["mount"], "--bind", root, root)
	bind := func(src, target string, readOnly bool) error {
		dst := filepath.Join(root, target)
		info, err := os.Stat(src)
		if err != nil {
			return err
		}
		if info.IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
				return err
			} else {
				f.Close()
			}
		}
		line(tools["mount"], "--bind", src, dst)
		if readOnly {
			line(tools["mount"], "-o", "remount,bind,ro", dst)
		}
		return nil
	}
	for _, dev := range []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"} {
		if err := bind(dev, dev, false); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o555); err != nil {
		return nil, err
	}
	line(tools["mount"], "-t", "proc", "proc", filepath.Join(root, "proc"))
	for _, m := range mounts {
		if err := bind(m.src, m.target, m.readOnly); err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	if readOnlyRoot {
		line(tools["mount"], "-o", "remount,bind,ro", root)
	}
	line(tools["hostname"], hostname)
	script.WriteString("exec ")
	line(append([]string{tools["nsenter"], "--root=" + root, "--wd=" + filepath.Join(root, wd),
		fmt.Sprintf("--setuid=%d", uid), fmt.Sprintf("--setgid=%d", gid), "--"}, argv...)...)
	cmd := exec.Command(tools["unshare"], "--mount", "--uts", "--propagation", "private", tools["sh"], "-c", script.String())
	return cmd, nil
}

// shq quotes s for sh.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// chownLike gives target the owner of info's file.
func chownLike(target string, info os.FileInfo) error {
	uid, gid, ok := owner(info)
	if !ok {
		return nil
	}
	return os.Lchown(target, uid, gid)
}

// copyFile copies src to dst with its mode and owner.
func copyFile(src, dst string, info os.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := chownLike(dst, info); err != nil {
		return err
	}
	return os.Chmod(dst, info.Mode())
}
