// Package kube runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver (and optionally kube-controller-manager) built from source by
// tests/scripts/build-kube.sh, started as local processes on 127.0.0.1.
//
// One call gives a running environment:
//
//	c := kube.Start(t)                 // one control plane for this test
//	c := kube.Shared(t)                // one per test binary; needs TestMain to call kube.Main
//	c, err := kube.NewCluster(ctx, "") // outside go test (make demo); call c.Stop()
//
// The admin credential is a client certificate in group system:masters; use
// ServiceAccountConfig for a least-privilege client. There is no kubelet, no
// scheduler and, unless WithControllerManager is given, no controllers.
package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Versions of the built control plane. They must match tests/scripts/build-kube.sh.
const (
	// KubeVersion is the k8s.io/kubernetes version of kube-apiserver and kube-controller-manager.
	KubeVersion = "v1.37.2"
	// EtcdVersion is the go.etcd.io/etcd/server/v3 version of etcd.
	EtcdVersion = "v3.6.16"
)

// CacheRoot returns the test bed's cache of built binaries and jars:
// $FLINK_GITOPS_CACHE, or the user cache dir + /flink-gitops.
func CacheRoot() (string, error) {
	if root := os.Getenv("FLINK_GITOPS_CACHE"); root != "" {
		return root, nil
	}
	ucd, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache dir (set FLINK_GITOPS_CACHE): %w", err)
	}
	return filepath.Join(ucd, "flink-gitops"), nil
}

// CacheDir returns the directory that holds the built binaries:
// CacheRoot() + /kube-<v>-etcd-<v>.
func CacheDir() (string, error) {
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "kube-"+KubeVersion+"-etcd-"+EtcdVersion), nil
}

// Binaries returns the paths of kube-apiserver and etcd, building them (and
// kube-controller-manager) with tests/scripts/build-kube.sh when they are
// missing. A cold build takes about 10 minutes on 2 cores; the script holds a
// lock, so concurrent callers wait for one build. Progress goes to slog.
func Binaries(ctx context.Context) (apiserver, etcd string, err error) {
	bin, err := binDir(ctx)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(bin, "kube-apiserver"), filepath.Join(bin, "etcd"), nil
}

// ControllerManagerBinary returns the path of kube-controller-manager, building
// the control plane like Binaries when it is missing.
func ControllerManagerBinary(ctx context.Context) (string, error) {
	bin, err := binDir(ctx)
	if err != nil {
		return "", err
	}
	return filepath.Join(bin, "kube-controller-manager"), nil
}

var binaryNames = []string{"kube-apiserver", "kube-controller-manager", "etcd"}

// binDir returns the cache's bin directory once every binary is in it.
func binDir(ctx context.Context) (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin")
	if haveAll(bin) {
		return bin, nil
	}
	script, err := buildScript()
	if err != nil {
		return "", err
	}
	slog.Info("building the Kubernetes test control plane (about 10 minutes on 2 cores, once per version)",
		"script", script, "dir", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "KUBE_VERSION="+KubeVersion, "ETCD_VERSION="+EtcdVersion)
	// The script's go build children die with it: on cancel and with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", fmt.Errorf("run %s: %w", script, err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", script, err)
	}
	var tail []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		tail = append(tail, line)
		if len(tail) > 40 {
			tail = tail[1:]
		}
		if _, msg, ok := strings.Cut(line, "build-kube: "); ok { // progress, not go's download chatter
			slog.Info("build-kube: " + msg)
		}
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("build the control plane with %s: %w\n%s", script, err, strings.Join(tail, "\n"))
	}
	if !haveAll(bin) {
		return "", fmt.Errorf("%s succeeded but %s lacks one of %v", script, bin, binaryNames)
	}
	slog.Info("built the Kubernetes test control plane", "bin", bin, "took", time.Since(start).Round(time.Second))
	return bin, nil
}

func haveAll(bin string) bool {
	for _, n := range binaryNames {
		fi, err := os.Stat(filepath.Join(bin, n))
		if err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildScript finds tests/scripts/build-kube.sh: next to this source file, or
// above the working directory (for binaries built with -trimpath).
func buildScript() (string, error) {
	const rel = "tests/scripts/build-kube.sh"
	if p := os.Getenv("FLINK_GITOPS_BUILD_KUBE"); p != "" {
		return p, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), "..", "..", "..", rel)
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", rel, err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", errors.New("cannot find " + rel + " (run it from the repository, or set FLINK_GITOPS_BUILD_KUBE to its path)")
}
