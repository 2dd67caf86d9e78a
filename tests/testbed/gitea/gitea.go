// Package gitea runs a real Gitea forge for tests: the gitea binary built
// from source by tests/scripts/build-gitea.sh, started as a local process on
// 127.0.0.1 with SQLite, one admin user and webhooks allowed to loopback.
//
//	s := gitea.Start(t)                     // one server for this test
//	s, err := gitea.New(dir); defer s.Close() // outside go test
//
// Repositories, webhooks and pull requests are driven through Gitea's REST
// API (see api.go); pushes go over smart HTTP with the admin's basic auth,
// e.g. with gitserver.Clone(ctx, cloneURL, dir, s.Credentials()).
package gitea

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// Version is the code.gitea.io/gitea version the test bed runs. It must match
// GITEA_VERSION in tests/scripts/build-gitea.sh.
const Version = "v1.26.0"

// BuildHint tells a person how to get the binary.
const BuildHint = "build it with: bash tests/scripts/build-gitea.sh (about 10 minutes cold, once per version)"

const (
	adminUser  = "gitops-admin"
	adminEmail = "gitops-admin@example.com"
	// startTimeout bounds migrations, admin creation and the wait for the
	// HTTP API of one start attempt.
	startTimeout = 2 * time.Minute
	// requestTimeout bounds every REST call.
	requestTimeout = 30 * time.Second
)

// CacheDir returns the directory that holds the built binary and its static
// files: kube.CacheRoot() + /gitea-<v>.
func CacheDir() (string, error) {
	root, err := kube.CacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "gitea-"+Version), nil
}

// Binary returns the path of the gitea binary and of the directory Gitea
// reads its templates, locales and options from (STATIC_ROOT_PATH). It does
// not build: a missing binary is an error that says how to build it.
func Binary() (bin, static string, err error) {
	dir, err := CacheDir()
	if err != nil {
		return "", "", err
	}
	bin, static = filepath.Join(dir, "gitea"), filepath.Join(dir, "static")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("gitea %s is not built (no executable %s); %s", Version, bin, BuildHint)
	}
	if _, err := os.Stat(filepath.Join(static, ".complete")); err != nil {
		return "", "", fmt.Errorf("gitea %s static files are incomplete (%s); %s", Version, static, BuildHint)
	}
	return bin, static, nil
}

// Server is a real Gitea on 127.0.0.1 with SQLite, one admin user,
// INSTALL_LOCK=true.
type Server struct {
	dir, bin, conf, logPath string
	url                     string
	password                string
	client                  *http.Client

	cmd  *exec.Cmd
	done chan struct{} // closed when the web process has exited
	err  error         // its exit status, valid after done

	tokenMu gosync.Mutex
	token   string

	closeOnce gosync.Once
	closeErr  error
}

// Start starts a server for this test alone in a temporary directory and
// stops it in t.Cleanup. It skips the test under -short and fails it, with
// the build hint, when the binary is missing. When the test fails, the log
// path and its last 40 lines are logged and the directory is kept.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	dir, err := os.MkdirTemp("", "gitea-testbed-")
	if err != nil {
		t.Fatalf("create gitea dir: %v", err)
	}
	s, err := New(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start gitea: %v", err)
	}
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			t.Logf("gitea log %s (kept in %s), last 40 lines:\n%s", s.LogPath(), dir, tail(s.LogPath(), 40))
		}
		if err := s.Close(); err != nil {
			t.Errorf("stop gitea: %v", err)
		}
		if !failed {
			os.RemoveAll(dir)
		}
	})
	return s
}

// New prepares dir (app.ini, SQLite database, repositories, log), creates the
// admin user and starts `gitea web`, returning once the REST API answers.
// Close stops it; dir is left for the caller to remove.
func New(dir string) (*Server, error) {
	bin, static, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("gitea dir: %w", err)
	}
	for _, d := range []string{"custom", "data", "repos", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create gitea dir: %w", err)
		}
	}
	s := &Server{
		dir:      dir,
		bin:      bin,
		conf:     filepath.Join(dir, "custom", "conf", "app.ini"),
		logPath:  filepath.Join(dir, "gitea.log"),
		password: randomHex(12),
		client:   &http.Client{Timeout: requestTimeout},
	}
	// A port found free may be taken before gitea binds it; try again then.
	for attempt := 1; ; attempt++ {
		err = s.start(static, attempt == 1)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

// start writes app.ini for a fresh port and starts `gitea web`; the first
// attempt also migrates the database and creates the admin.
func (s *Server) start(static string, first bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	port, err := freePort()
	if err != nil {
		return err
	}
	s.url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := s.writeConfig(static, port); err != nil {
		return err
	}
	if first {
		if err := s.run(ctx, "migrate"); err != nil {
			return err
		}
		if err := s.run(ctx, "admin", "user", "create", "--admin",
			"--username", adminUser, "--password", s.password, "--email", adminEmail,
			"--must-change-password=false"); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open gitea log: %w", err)
	}
	offset, _ := logf.Seek(0, 2)
	s.cmd = s.command(context.Background(), "web")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start gitea web: %w", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		s.err = cmd.Wait()
		logf.Close()
		close(done)
	}(s.cmd, s.done)
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		if b, rerr := os.ReadFile(s.logPath); rerr == nil && int64(len(b)) > offset &&
			bytes.Contains(b[offset:], []byte("address already in use")) {
			return fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return fmt.Errorf("%w; log %s:\n%s", err, s.logPath, tail(s.logPath, 40))
	}
	return nil
}

// waitReady polls GET /api/v1/version until it answers 200, the process
// exits or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"api/v1/version", nil)
		if err != nil {
			return fmt.Errorf("gitea readiness: %w", err)
		}
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /api/v1/version: %s", resp.Status)
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("gitea web exited before it answered: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("gitea web did not answer at %s: %w (last: %v)", s.url, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// command builds a gitea invocation for this server's config and work path,
// in its own process group that dies with us.
func (s *Server) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--config", s.conf, "--work-path", s.dir, "--custom-path", filepath.Join(s.dir, "custom")}, args...)
	cmd := exec.CommandContext(ctx, s.bin, full...)
	cmd.Dir = s.dir
	env := []string{"HOME=" + filepath.Join(s.dir, "home"), "GITEA_WORK_DIR=" + s.dir}
	for _, kv := range os.Environ() {
		// Our own settings win over a developer's GITEA_* or HOME.
		if strings.HasPrefix(kv, "GITEA_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	if os.Getuid() == 0 {
		env = append(env, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// run runs a one-shot gitea command, its output appended to the log.
func (s *Server) run(ctx context.Context, args ...string) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open gitea log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== gitea %s\n", args[0])
	cmd := s.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	// The password is an argument of admin user create; keep it out of the log.
	logf.Write(bytes.ReplaceAll(out.Bytes(), []byte(s.password), []byte("<password>")))
	if err != nil {
		return fmt.Errorf("gitea %s: %w; log %s:\n%s", args[0], err, s.logPath, tail(s.logPath, 40))
	}
	return nil
}

// writeConfig writes app.ini: SQLite, no SSH, no mail, no indexer, no cron
// jobs, webhooks to loopback, console log (to LogPath).
func (s *Server) writeConfig(static string, port int) error {
	runUser := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		runUser = u.Username // what gitea compares RUN_USER with
	}
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	sec := func(name string) { fmt.Fprintf(&b, "\n[%s]\n", name) }
	kv("APP_NAME", "flink-gitops test bed")
	kv("RUN_MODE", "prod")
	kv("WORK_PATH", s.dir)
	if runUser != "" {
		kv("RUN_USER", runUser)
	}
	if os.Getuid() == 0 {
		kv("I_AM_BEING_UNSAFE_RUNNING_AS_ROOT", "true")
	}
	sec("server")
	kv("PROTOCOL", "http")
	kv("HTTP_ADDR", "127.0.0.1")
	kv("HTTP_PORT", fmt.Sprint(port))
	kv("DOMAIN", "127.0.0.1")
	kv("ROOT_URL", s.url)
	kv("LOCAL_ROOT_URL", s.url)
	kv("STATIC_ROOT_PATH", static)
	kv("APP_DATA_PATH", filepath.Join(s.dir, "data"))
	kv("DISABLE_SSH", "true")
	kv("START_SSH_SERVER", "false")
	kv("LFS_START_SERVER", "false")
	kv("OFFLINE_MODE", "true")
	sec("database")
	kv("DB_TYPE", "sqlite3")
	kv("PATH", filepath.Join(s.dir, "data", "gitea.db"))
	kv("SQLITE_JOURNAL_MODE", "WAL")
	sec("repository")
	kv("ROOT", filepath.Join(s.dir, "repos"))
	kv("DEFAULT_BRANCH", "main")
	kv("DEFAULT_PRIVATE", "public")
	sec("security")
	kv("INSTALL_LOCK", "true")
	kv("SECRET_KEY", randomHex(32))
	kv("INTERNAL_TOKEN", randomHex(32))
	kv("PASSWORD_CHECK_PWN", "false")
	kv("MIN_PASSWORD_LENGTH", "8")
	sec("service")
	kv("DISABLE_REGISTRATION", "true")
	kv("REQUIRE_SIGNIN_VIEW", "false")
	kv("ENABLE_NOTIFY_MAIL", "false")
	kv("DEFAULT_KEEP_EMAIL_PRIVATE", "false")
	sec("mailer")
	kv("ENABLED", "false")
	sec("oauth2")
	kv("ENABLED", "false")
	sec("actions")
	kv("ENABLED", "false")
	sec("packages")
	kv("ENABLED", "false")
	sec("webhook")
	kv("ALLOWED_HOST_LIST", "loopback")
	kv("SKIP_TLS_VERIFY", "true")
	kv("DELIVER_TIMEOUT", "5")
	sec("indexer")
	kv("ISSUE_INDEXER_TYPE", "db")
	kv("REPO_INDEXER_ENABLED", "false")
	sec("queue")
	// In memory: nothing outlives the process, and no LevelDB to open.
	kv("TYPE", "channel")
	sec("cache")
	kv("ADAPTER", "memory")
	sec("session")
	kv("PROVIDER", "memory")
	sec("log")
	kv("MODE", "console")
	kv("LEVEL", "info")
	kv("ROOT_PATH", filepath.Join(s.dir, "log"))
	sec("log.console")
	kv("COLORIZE", "false")
	sec("git")
	kv("HOME_PATH", filepath.Join(s.dir, "home"))
	// Every scheduled job off: none is needed, and update_checker would
	// reach the internet.
	for _, job := range []string{
		"update_checker", "update_mirrors", "repo_health_check", "check_repo_stats",
		"archive_cleanup", "sync_external_users", "deleted_branches_cleanup",
		"update_migration_poster_id", "cleanup_hook_task_table", "cleanup_packages",
		"sync_repo_licenses", "delete_inactive_accounts", "delete_repo_archives",
		"git_gc_repos", "resync_all_sshkeys", "resync_all_hooks", "reinit_missing_repos",
		"delete_missing_repos", "delete_generated_repository_avatars", "delete_old_actions",
		"delete_old_system_notices", "gc_lfs",
	} {
		sec("cron." + job)
		kv("ENABLED", "false")
		kv("RUN_AT_START", "false")
	}
	if err := os.MkdirAll(filepath.Dir(s.conf), 0o755); err != nil {
		return fmt.Errorf("create gitea config dir: %w", err)
	}
	if err := os.WriteFile(s.conf, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write gitea config: %w", err)
	}
	return nil
}

// Close stops the server (SIGTERM, then SIGKILL after 10s) and its process group.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.stop() })
	return s.closeErr
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// URL is Gitea's ROOT_URL, "http://127.0.0.1:PORT/".
func (s *Server) URL() string { return s.url }

// AdminUser is the name of the admin user.
func (s *Server) AdminUser() string { return adminUser }

// AdminPassword is the admin user's password.
func (s *Server) AdminPassword() string { return s.password }

// Credentials are the admin's HTTP basic auth, for gitserver.Clone.
func (s *Server) Credentials() gitserver.Credentials {
	return gitserver.Credentials{User: adminUser, Password: s.password}
}

// LogPath is the file that receives Gitea's log and the output of the
// one-shot commands (migrate, admin user create).
func (s *Server) LogPath() string { return s.logPath }

// Dir is the server's directory (app.ini under custom/conf, data, repos).
func (s *Server) Dir() string { return s.dir }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
