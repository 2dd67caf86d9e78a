package nodeagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// UsrLib is where the official image keeps user jars; jar URIs and args
// under it map to the test job jar of the container's Flink version.
const UsrLib = "local:///opt/flink/usrlib/"

// ConfMount is where Flink containers mount their configuration.
const ConfMount = "/opt/flink/conf"

// FlinkRuntime runs containers of the official Flink image as local JVMs with
// the test bed's Flink (see package flinktb). Differences from a real pod,
// all needed because every process shares one network namespace:
//
//   - the ports a JobManager or TaskManager listens on are rewritten to free
//     loopback ports and published through the agent's Service table;
//   - a TaskManager's jobmanager.rpc.address (a Service name) is resolved to
//     the JobManager's local address, as cluster DNS plus kube-proxy would;
//   - local:///opt/flink/usrlib/*.jar is the test job jar.
//
// Native mode's "kubernetes-jobmanager.sh kubernetes-session|application"
// and "kubernetes-taskmanager.sh" (in Flink's bash -c wrapper) run like
// "jobmanager" and "taskmanager"; the JobManager needs API access (see
// Agent.SetServiceAccountKubeconfig) to create its TaskManager Pods, and
// runs in a mount namespace of its own when its pod mounts a TaskManager
// pod template (see PodTemplateMount).
//
// The image tag selects the Flink version by its minor: 1.18[.x|-suffix] runs
// 1.18, and so on for every version in flinktb.AllVersions (1.18 … 2.3); "2"
// runs 2.2. Any other tag fails to start, like an image that cannot be pulled.
type FlinkRuntime struct{}

// VersionForImage maps an image reference to a test bed Flink version.
func VersionForImage(image string) (string, error) {
	tag := image
	if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
		tag = image[i+1:]
	} else {
		tag = "latest"
	}
	for _, v := range flinktb.AllVersions {
		if minor := flinktb.Minor(v); tag == minor || strings.HasPrefix(tag, minor+".") || strings.HasPrefix(tag, minor+"-") {
			return v, nil
		}
	}
	if tag == "2" || strings.HasPrefix(tag, "2-") {
		return flinktb.Version2, nil
	}
	return "", fmt.Errorf("image %q: no such image in the test bed (tags %s exist, each optionally followed by .patch or -suffix; and 2)", image, strings.Join(imageMinors(), ", "))
}

// imageMinors lists the image tags the test bed has, "1.18" … "2.3".
func imageMinors() []string {
	out := make([]string, len(flinktb.AllVersions))
	for i, v := range flinktb.AllVersions {
		out[i] = flinktb.Minor(v)
	}
	return out
}

// Prepare implements Runtime.
func (FlinkRuntime) Prepare(ctx context.Context, c Container) (*Process, error) {
	version, err := VersionForImage(c.Spec.Image)
	if err != nil {
		return nil, err
	}
	// $(VAR) references to the container's env are expanded as the kubelet
	// does (e.g. -D jobmanager.rpc.address=$(_POD_IP_ADDRESS) with HA); the
	// image's entrypoint (implicit: args start with the service) and the bash
	// wrapper of Flink's native mode are taken off.
	var raw []string
	for _, a := range append(append([]string{}, c.Spec.Command...), c.Spec.Args...) {
		raw = append(raw, expand(a, c.Env))
	}
	args, err := flinktb.ContainerArgs(nil, raw)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", c.Pod, err)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("pod %s: flink container has no args", c.Pod)
	}
	role := args[0]

	files := c.Files[ConfMount]
	if files == nil {
		return nil, fmt.Errorf("pod %s: nothing mounted at %s (the flink-config ConfigMap volume)", c.Pod, ConfMount)
	}
	src := filepath.Join(c.Dir, "conf-mounted")
	if err := writeFiles(src, files); err != nil {
		return nil, err
	}
	conf, err := flinktb.ReadConfig(src, version)
	if err != nil {
		return nil, fmt.Errorf("pod %s: read mounted flink config: %w", c.Pod, err)
	}

	jar, err := flinktb.TestJobJar(ctx, version)
	if err != nil {
		return nil, err
	}
	usesJar := false
	mapJar := func(s string) string {
		if strings.Contains(s, UsrLib) {
			usesJar = true
			var parts []string
			for _, p := range strings.Split(s, ";") {
				if strings.HasPrefix(p, UsrLib) {
					p = "file://" + jar
				}
				parts = append(parts, p)
			}
			return strings.Join(parts, ";")
		}
		return s
	}
	for i := range args {
		args[i] = mapJar(args[i])
	}
	if v, ok := conf["pipeline.jars"]; ok {
		conf["pipeline.jars"] = mapJar(v)
	}

	ports := map[int32]int32{}
	alloc := func(key string, def int32) error {
		orig := def
		if v, ok := conf[key]; ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				orig = int32(n)
			}
		}
		local, err := FreePort()
		if err != nil {
			return err
		}
		conf[key] = strconv.Itoa(local)
		ports[orig] = int32(local)
		return nil
	}
	conf["io.tmp.dirs"] = filepath.Join(c.Dir, "tmp")
	conf["web.tmpdir"] = filepath.Join(c.Dir, "web")
	var ready func(context.Context) bool
	switch role {
	case "jobmanager", "standalone-job", "kubernetes-jobmanager.sh":
		for _, p := range []struct {
			key string
			def int32
		}{{"rest.port", 8081}, {"jobmanager.rpc.port", 6123}, {"blob.server.port", 6124}} {
			if err := alloc(p.key, p.def); err != nil {
				return nil, err
			}
		}
		delete(conf, "rest.bind-port")
		for _, k := range []string{"jobmanager.rpc.address", "jobmanager.bind-host", "rest.address", "rest.bind-address"} {
			conf[k] = "127.0.0.1"
		}
		if role == "kubernetes-jobmanager.sh" {
			// Native application mode fetches pipeline.jars there (default
			// /opt/flink/artifacts, which is the image's).
			conf["user.artifacts.base-dir"] = filepath.Join(c.Dir, "artifacts")
		}
		ready = restProbe(conf)
	case "taskmanager", "kubernetes-taskmanager.sh":
		host := conf["jobmanager.rpc.address"]
		port := int32(6123)
		if v, err := strconv.Atoi(conf["jobmanager.rpc.port"]); err == nil {
			port = int32(v)
		}
		// With HA and no address configured (as Flink's native mode writes
		// it), TaskManagers find the leader through the HA services.
		if host != "" {
			jmHost, jmPort, err := c.Resolve(host, port)
			if err != nil {
				return nil, err
			}
			conf["jobmanager.rpc.address"] = jmHost
			conf["jobmanager.rpc.port"] = strconv.Itoa(int(jmPort))
		}
		if err := alloc("taskmanager.rpc.port", 6122); err != nil {
			return nil, err
		}
		conf["taskmanager.data.port"] = "0"
		conf["taskmanager.host"] = "127.0.0.1"
		conf["taskmanager.bind-host"] = "127.0.0.1"
		if _, ok := conf["taskmanager.resource-id"]; !ok {
			conf["taskmanager.resource-id"] = c.Pod
		}
	default:
		return nil, fmt.Errorf("pod %s: flink container command %q is not supported", c.Pod, role)
	}

	confDir := filepath.Join(c.Dir, "conf")
	if err := flinktb.WriteConfig(confDir, version, conf); err != nil {
		return nil, err
	}
	for name, content := range files { // logging configuration and other mounted files
		if name == flinktb.ConfigFileName(version) || name == "config.yaml" || name == "flink-conf.yaml" {
			continue
		}
		if err := os.WriteFile(filepath.Join(confDir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	spec := flinktb.ProcessSpec{
		Version: version,
		Args:    args,
		ConfDir: confDir,
		LogDir:  filepath.Join(c.Dir, "log"),
		WorkDir: filepath.Join(c.Dir, "home"),
	}
	if usesJar || role == "standalone-job" || role == "kubernetes-jobmanager.sh" && len(args) > 1 && args[1] == "kubernetes-application" {
		spec.UserJars = []string{jar}
	}
	for k, v := range c.Env {
		spec.Env = append(spec.Env, k+"="+v)
	}
	if err := os.MkdirAll(spec.WorkDir, 0o755); err != nil {
		return nil, err
	}
	cmd, err := flinktb.Command(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", c.Pod, err)
	}
	if files, ok := c.Files[PodTemplateMount]; ok {
		// Flink's JobManager reads the TaskManager pod template from this
		// fixed path, which no option moves: give the JVM a mount
		// namespace of its own with the volume there, as a kubelet would.
		src := filepath.Join(c.Dir, "pod-template")
		if err := writeFiles(src, files); err != nil {
			return nil, err
		}
		if err := inMountNamespace(cmd, src, PodTemplateMount); err != nil {
			return nil, fmt.Errorf("pod %s: %w", c.Pod, err)
		}
	}
	return &Process{Cmd: cmd, Ports: ports, Ready: ready}, nil
}

// PodTemplateMount is where a native JobManager reads the TaskManager pod
// template (Flink's KubernetesUtils.getTaskManagerPodTemplateFileInPod).
const PodTemplateMount = "/opt/flink/pod-template"

// inMountNamespace makes cmd run in a private mount namespace in which the
// directory src is mounted at target under a fresh tmpfs on target's top
// directory (e.g. /opt), so each JVM sees only its own pod's files there and
// the host's directory is not touched. It needs CAP_SYS_ADMIN (root, as the
// test bed runs).
func inMountNamespace(cmd *exec.Cmd, src, target string) error {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return fmt.Errorf("a volume at %s needs unshare (util-linux): %w", target, err)
	}
	top := "/" + strings.SplitN(strings.TrimPrefix(target, "/"), "/", 2)[0]
	script := `set -e; mount -t tmpfs flink-gitops-testbed "$1"; mkdir -p "$3"; mount --bind "$2" "$3"; shift 3; exec "$@"`
	args := []string{unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", top, src, target, cmd.Path}
	cmd.Args = append(args, cmd.Args[1:]...)
	cmd.Path = unshare
	return nil
}

func writeFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if strings.Contains(name, "/") {
			return fmt.Errorf("mounted file name %q has a slash", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// restProbe is the JobManager's readiness check, as a kubelet would run
// it: GET /config over HTTP, or over HTTPS without verifying the
// certificate (kubelet's HTTPS probes do not) when REST SSL is on, or a TCP
// connect when REST SSL requires a client certificate (which a probe has
// not).
func restProbe(conf map[string]string) func(context.Context) bool {
	on := func(k string) bool { return strings.EqualFold(strings.TrimSpace(conf[k]), "true") }
	addr := "127.0.0.1:" + conf["rest.port"]
	switch {
	case on("security.ssl.rest.enabled") && on("security.ssl.rest.authentication-enabled"):
		return func(ctx context.Context) bool {
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}
	case on("security.ssl.rest.enabled"):
		return func(ctx context.Context) bool { return httpOK(ctx, "https://"+addr+"/config") }
	default:
		return func(ctx context.Context) bool { return httpOK(ctx, "http://"+addr+"/config") }
	}
}

// probeClient is the HTTP(S) client of readiness probes.
var probeClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as kubelet's HTTPS probes
	DisableKeepAlives: true,
}}

func httpOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
