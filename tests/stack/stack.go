// Package stack starts the whole local stack the way a user meets it: a
// real kube-apiserver, the node agent running Flink JVMs, a git server with
// a repository, and the flink-gitops binary configured against them. The
// end-to-end tests and `make demo` use it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// StatusBranch is the status branch the stack's daemon writes.
const StatusBranch = "flink-gitops/status"

// Options configure a stack.
type Options struct {
	// Dir holds everything the stack writes (logs, repos, state).
	Dir string
	// Binary is the flink-gitops binary to run.
	Binary string
	// Seed is a directory copied into the repository's first commit (e.g.
	// examples-repo); empty starts with a README only.
	Seed string
	// EntryPoints and Namespaces configure the daemon.
	EntryPoints []string
	Namespaces  []string
	// ExtraConfig is YAML merged into the daemon config (top-level keys
	// replace the stack's).
	ExtraConfig map[string]any
	// Kube, when set, is used instead of starting a control plane.
	Kube *kube.Cluster
	// Remote, when set, is the repository the daemon watches (e.g. an empty
	// repository on a Gitea test server) instead of one on a git server the
	// stack starts.
	Remote *Remote
	// Runtime runs the node agent's replicas; nil means real Flink JVMs
	// (nodeagent.FlinkRuntime). AgentOptions tune the agent.
	Runtime      nodeagent.Runtime
	AgentOptions []nodeagent.Option
	// Log receives the stack's progress.
	Log *slog.Logger
}

// Remote is an existing, empty repository: its HTTP clone URL and the
// basic-auth credentials to push and fetch with.
type Remote struct {
	URL         string
	Credentials gitserver.Credentials
}

// Stack is a running local stack.
type Stack struct {
	Kube  *kube.Cluster
	Agent *nodeagent.Handle
	// Git is the stack's own git server (nil with Options.Remote).
	Git *gitserver.Server
	// RepoURL is the repository the daemon watches; Work a clone of it.
	RepoURL string
	Work    *gitserver.Worktree
	// StateDir is where Flink checkpoints and savepoints go (file://).
	StateDir string
	// ConfigPath is the daemon's config file; MetricsAddr its metrics and
	// health address; DaemonLog its log.
	ConfigPath  string
	MetricsAddr string
	DaemonLog   string

	opts      Options
	ownKube   bool
	daemon    *exec.Cmd
	exited    chan struct{}
	tokenFile string
	creds     gitserver.Credentials
}

// Start brings up everything but the daemon (see StartDaemon).
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Stack{opts: opts, StateDir: filepath.Join(opts.Dir, "flink-state")}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	s.Kube = opts.Kube
	if s.Kube == nil {
		opts.Log.Info("starting kube-apiserver and etcd")
		k, err := kube.NewCluster(ctx, filepath.Join(opts.Dir, "kube"), kube.WithControllerManager())
		if err != nil {
			return nil, err
		}
		s.Kube, s.ownKube = k, true
	}
	for _, ns := range opts.Namespaces {
		if err := ensureNamespace(ctx, s.Kube, ns); err != nil {
			return nil, err
		}
	}
	agentLog, err := os.Create(filepath.Join(opts.Dir, "node-agent.log"))
	if err != nil {
		return nil, err
	}
	var rt nodeagent.Runtime = nodeagent.FlinkRuntime{}
	if opts.Runtime != nil {
		rt = opts.Runtime
	}
	s.Agent, err = nodeagent.Launch(s.Kube.Client(), rt, filepath.Join(opts.Dir, "pods"),
		slog.New(slog.NewTextHandler(agentLog, nil)), opts.AgentOptions...)
	if err != nil {
		return nil, err
	}
	if opts.Remote != nil {
		s.RepoURL, s.creds = opts.Remote.URL, opts.Remote.Credentials
	} else {
		opts.Log.Info("starting git server")
		s.Git, err = gitserver.New(filepath.Join(opts.Dir, "git"))
		if err != nil {
			return nil, err
		}
		s.RepoURL, err = s.Git.NewRepo("flink-specs")
		if err != nil {
			return nil, err
		}
		s.creds = s.Git.Credentials()
	}
	s.Work, err = gitserver.Clone(ctx, s.RepoURL, filepath.Join(opts.Dir, "work"), s.creds)
	if err != nil {
		return nil, err
	}
	files := map[string]string{"README.md": "# Flink specs\n"}
	if opts.Seed != "" {
		if files, err = readTree(opts.Seed); err != nil {
			return nil, err
		}
	}
	if _, err := s.Work.CommitPush(ctx, files, "Initial specs"); err != nil {
		return nil, err
	}
	s.tokenFile = filepath.Join(opts.Dir, "git-token")
	if err := os.WriteFile(s.tokenFile, []byte(s.creds.Password), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.StateDir, 0o755); err != nil {
		return nil, err
	}
	if err := s.WriteConfig(nil); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Credentials are those the daemon pushes and fetches with.
func (s *Stack) Credentials() gitserver.Credentials { return s.creds }

// readTree reads every file below dir as path → content.
func readTree(dir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return files, err
}

// Config returns the daemon configuration the stack writes, with extra
// merged over it.
func (s *Stack) Config(extra map[string]any) map[string]any {
	cfg := map[string]any{
		"git": map[string]any{
			"url": s.RepoURL, "branch": "main", "entryPoints": s.opts.EntryPoints, "pollInterval": "1s", "timeout": "20s",
			"auth": map[string]any{"username": s.creds.User, "tokenFile": s.tokenFile},
		},
		"status":     map[string]any{"branch": StatusBranch},
		"kubernetes": map[string]any{"kubeconfig": s.Kube.Kubeconfig, "allowedNamespaces": s.opts.Namespaces, "defaultNamespace": s.opts.Namespaces[0]},
		"flink": map[string]any{
			"restURLTemplate": s.Agent.RESTURLTemplate(), "requestTimeout": "5s",
			"defaultConfiguration": map[string]any{
				"execution.checkpointing.dir":           "file://" + filepath.Join(s.StateDir, "checkpoints"),
				"execution.checkpointing.savepoint-dir": "file://" + filepath.Join(s.StateDir, "savepoints"),
				"state.checkpoints.dir":                 "file://" + filepath.Join(s.StateDir, "checkpoints"),
				"state.savepoints.dir":                  "file://" + filepath.Join(s.StateDir, "savepoints"),
				"high-availability.storageDir":          "file://" + filepath.Join(s.StateDir, "ha"),
			},
		},
		// The scenarios take periodic savepoints seconds apart.
		"reconcile": map[string]any{"concurrency": 4, "resyncInterval": "3s", "fastPollInterval": "250ms", "operationTimeout": "3m", "minPeriodicInterval": "1s"},
		// The test bed serves job jars from local files and over http on
		// 127.0.0.1: it opts in to both explicitly (the default is public
		// https only).
		"artifacts": map[string]any{"allowedSchemes": []string{"https", "http", "file"}, "fileDirectory": "/", "allowedHosts": []string{"127.0.0.0/8"}},
		"server":    map[string]any{"listen": s.metricsAddr()},
		"log":       map[string]any{"level": "info", "format": "text"},
	}
	for k, v := range s.opts.ExtraConfig {
		cfg[k] = v
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

func (s *Stack) metricsAddr() string {
	if s.MetricsAddr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			s.MetricsAddr = l.Addr().String()
			l.Close()
		}
	}
	return s.MetricsAddr
}

// WriteConfig writes the daemon config (a running daemon reloads it).
func (s *Stack) WriteConfig(extra map[string]any) error {
	b, err := yaml.Marshal(s.Config(extra))
	if err != nil {
		return err
	}
	s.ConfigPath = filepath.Join(s.opts.Dir, "flink-gitops.yaml")
	tmp := s.ConfigPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.ConfigPath)
}

// StartDaemon starts the flink-gitops binary; its output goes to DaemonLog.
func (s *Stack) StartDaemon() error {
	if s.daemon != nil {
		return errors.New("daemon already running")
	}
	s.DaemonLog = filepath.Join(s.opts.Dir, "flink-gitops.log")
	logf, err := os.OpenFile(s.DaemonLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.opts.Binary, "run", "--config", s.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start flink-gitops: %w", err)
	}
	s.daemon, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(s.exited) }()
	return nil
}

// StopDaemon stops the daemon gracefully (SIGTERM), or with kill=true at
// once (SIGKILL), as a crash would.
func (s *Stack) StopDaemon(kill bool) {
	if s.daemon == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-s.daemon.Process.Pid, sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.daemon.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.daemon = nil
}

// DaemonPID returns the daemon's process id (0 when it is not running).
func (s *Stack) DaemonPID() int {
	if !s.DaemonRunning() {
		return 0
	}
	return s.daemon.Process.Pid
}

// DaemonRunning reports whether the daemon process is alive.
func (s *Stack) DaemonRunning() bool {
	if s.daemon == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Status reads the status branch: one entry per resource file, and the
// branch's files.
func (s *Stack) Status(ctx context.Context) (map[string]lifecycle.ResourceStatus, map[string][]byte, error) {
	w, err := gitsync.NewStatusWriter(gitsync.StatusWriterOptions{URL: s.RepoURL, Branch: StatusBranch,
		Auth: gitsync.Auth{Username: s.creds.User, TokenFile: s.tokenFile}})
	if err != nil {
		return nil, nil, err
	}
	files, _, err := w.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]lifecycle.ResourceStatus{}
	for p, b := range files {
		if !strings.HasSuffix(p, ".yaml") || strings.Count(p, "/") != 2 {
			continue
		}
		var rs lifecycle.ResourceStatus
		if err := yaml.Unmarshal(b, &rs); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		out[rs.Kind+"/"+rs.Namespace+"/"+rs.Name] = rs
	}
	return out, files, nil
}

// Stop stops the daemon, the agent (and every JVM), the git server and the
// control plane if the stack started it.
func (s *Stack) Stop() {
	s.StopDaemon(false)
	if s.Agent != nil {
		_ = s.Agent.Stop()
	}
	if s.Git != nil {
		s.Git.Close()
	}
	if s.ownKube && s.Kube != nil {
		_ = s.Kube.Stop()
	}
}

func ensureNamespace(ctx context.Context, k *kube.Cluster, ns string) error {
	_, err := k.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}
