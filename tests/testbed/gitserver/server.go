// Package gitserver is the test bed's Git forge: the real `git http-backend`
// CGI program behind net/http/cgi, serving a directory of bare repositories
// over smart HTTP on a loopback port, with HTTP basic auth and push enabled.
//
// Tests start one with Start; a demo binary uses New and Close. Changes are
// made with the real git CLI through Worktree.
package gitserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"
)

// Default credentials used by Start unless WithAuth or WithoutAuth is given.
const (
	DefaultUser     = "flink"
	DefaultPassword = "s3cr3t-test-token"
)

// maxBufferedBody caps the size of a chunked request body the server buffers
// before handing it to the CGI program (net/http/cgi rejects chunked bodies).
const maxBufferedBody = 512 << 20

// Option configures a Server.
type Option func(*options)

type options struct {
	user, password string
	auth           bool
	tls            bool
	logger         *slog.Logger
}

// WithAuth requires HTTP basic auth with this user and password for every
// request, fetch and push alike.
func WithAuth(user, password string) Option {
	return func(o *options) { o.user, o.password, o.auth = user, password, true }
}

// WithoutAuth serves every repository anonymously, fetch and push.
func WithoutAuth() Option {
	return func(o *options) { o.user, o.password, o.auth = "", "", false }
}

// WithTLS serves HTTPS with a self-signed certificate for 127.0.0.1;
// CAFile names the file clients must trust.
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithLogger sets the logger for request and CGI errors (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Counts is how many requests of each kind the server answered.
type Counts struct {
	// Advertise counts GET info/refs?service=git-upload-pack: one per
	// ls-remote and one before every fetch.
	Advertise int64
	// UploadPack counts POST git-upload-pack: the requests that transfer
	// objects to a client (fetch, clone).
	UploadPack int64
	// ReceivePack counts POST git-receive-pack: pushes.
	ReceivePack int64
	// Unauthorized counts requests refused for missing or wrong credentials.
	Unauthorized int64
	// BytesSent is the total size of the response bodies sent.
	BytesSent int64
}

// Server is a running smart-HTTP git server on 127.0.0.1.
type Server struct {
	// Root is the directory of bare repositories (GIT_PROJECT_ROOT).
	Root string

	opts    options
	backend string
	home    string
	addr    string // host:port, stable across Stop/Restart
	tlsConf *tls.Config
	caFile  string
	// LogPath is the file git http-backend writes its errors to.
	LogPath string
	logFile *os.File

	mu  gosync.Mutex
	srv *http.Server

	advertise, uploadPack, receivePack, unauthorized, bytesSent atomic.Int64
}

// Start starts a server for a test: repositories live under a temporary
// directory and the server is closed in t.Cleanup. By default it requires
// DefaultUser/DefaultPassword.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("start git server: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		if t.Failed() {
			t.Logf("git http-backend log: %s\n%s", s.LogPath, tail(s.LogPath, 40))
		}
	})
	return s
}

// New starts a server whose bare repositories live in dir. Without options it
// requires DefaultUser/DefaultPassword. Close stops it.
func New(dir string, opts ...Option) (*Server, error) {
	o := options{user: DefaultUser, password: DefaultPassword, auth: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("find git exec path (is git installed?): %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("find git-http-backend: %w", err)
	}
	root := filepath.Join(dir, "repos")
	home := filepath.Join(dir, "server-home")
	for _, d := range []string{root, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	s := &Server{Root: root, opts: o, backend: backend, home: home, LogPath: filepath.Join(dir, "http-backend.log")}
	if s.logFile, err = os.Create(s.LogPath); err != nil {
		return nil, fmt.Errorf("create log file: %w", err)
	}
	if o.tls {
		conf, caPEM, err := selfSignedTLS()
		if err != nil {
			return nil, err
		}
		s.tlsConf = conf
		s.caFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(s.caFile, caPEM, 0o644); err != nil {
			return nil, fmt.Errorf("write CA file: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	if s.tlsConf != nil {
		ln = tls.NewListener(ln, s.tlsConf)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.logger.Error("git server stopped", "err", err)
		}
	}()
}

func (s *Server) handler() http.Handler {
	cgiHandler := &cgi.Handler{
		Path: s.backend,
		Root: "/",
		Dir:  s.Root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"HOME=" + s.home,
			"XDG_CONFIG_HOME=" + s.home,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
			// Enable push without REMOTE_USER (auth is checked in front).
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=http.receivepack",
			"GIT_CONFIG_VALUE_0=true",
			"GIT_CONFIG_KEY_1=uploadpack.allowAnySHA1InWant",
			"GIT_CONFIG_VALUE_1=true",
		},
		Stderr: s.logFile,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.auth {
			u, p, ok := r.BasicAuth()
			if !ok || !constantEqual(u, s.opts.user) || !constantEqual(p, s.opts.password) {
				s.unauthorized.Add(1)
				w.Header().Set("WWW-Authenticate", `Basic realm="flink-gitops test git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		s.count(r)
		if len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked" {
			// net/http/cgi refuses chunked bodies; git sends them for large
			// pushes. Buffer the body and pass it with a length.
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
			if err != nil || len(body) > maxBufferedBody {
				http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.TransferEncoding = nil
		}
		cgiHandler.ServeHTTP(&countingWriter{ResponseWriter: w, n: &s.bytesSent}, r)
	})
}

// countingWriter adds the bytes written through it to n.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// Flush passes streaming output on (git sends progress while it packs).
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) count(r *http.Request) {
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack":
		s.advertise.Add(1)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
		s.uploadPack.Add(1)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack"):
		s.receivePack.Add(1)
	}
}

func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Counts returns how many requests of each kind the server has answered.
func (s *Server) Counts() Counts {
	return Counts{
		Advertise:    s.advertise.Load(),
		UploadPack:   s.uploadPack.Load(),
		ReceivePack:  s.receivePack.Load(),
		Unauthorized: s.unauthorized.Load(),
		BytesSent:    s.bytesSent.Load(),
	}
}

// Addr is the server's host:port on 127.0.0.1.
func (s *Server) Addr() string { return s.addr }

// URL is the clone URL of repository repo (without credentials).
func (s *Server) URL(repo string) string {
	scheme := "http://"
	if s.tlsConf != nil {
		scheme = "https://"
	}
	return scheme + s.addr + "/" + strings.TrimSuffix(repo, ".git") + ".git"
}

// Credentials are what a client needs to use the server.
type Credentials struct {
	// User and Password for HTTP basic auth (empty without auth).
	User, Password string
	// CAFile is the PEM file of the server's certificate, with WithTLS.
	CAFile string
}

// Credentials returns the user, password and CA file clients need.
func (s *Server) Credentials() Credentials {
	return Credentials{User: s.opts.user, Password: s.opts.password, CAFile: s.caFile}
}

// CAFile is the PEM file clients trust for WithTLS ("" without TLS).
func (s *Server) CAFile() string { return s.caFile }

// User is the basic-auth user name ("" without auth).
func (s *Server) User() string { return s.opts.user }

// Password is the basic-auth password ("" without auth).
func (s *Server) Password() string { return s.opts.password }

// AuthEnabled reports whether the server requires credentials.
func (s *Server) AuthEnabled() bool { return s.opts.auth }

// NewRepo creates an empty bare repository named name (".git" is appended)
// whose default branch is main, and returns its URL.
func (s *Server) NewRepo(name string) (string, error) {
	name = strings.TrimSuffix(name, ".git")
	if name == "" || strings.Contains(name, "..") || filepath.IsAbs(name) {
		return "", fmt.Errorf("invalid repository name %q", name)
	}
	dir := filepath.Join(s.Root, name+".git")
	cmd := exec.Command("git", "init", "--bare", "--quiet", "--initial-branch=main", dir)
	cmd.Env = isolatedEnv(s.home)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git init --bare %s: %w: %s", dir, err, out)
	}
	return s.URL(name), nil
}

// CreateRepo is NewRepo that panics on error; for tests and demos where a
// failure to create a directory is fatal anyway.
func (s *Server) CreateRepo(name string) string {
	u, err := s.NewRepo(name)
	if err != nil {
		panic(err)
	}
	return u
}

// Stop takes the server down (connections are refused) but keeps its port
// and repositories, so Restart brings it back at the same URL.
func (s *Server) Stop() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// Restart brings a stopped server back on the same address. It retries the
// listen for a few seconds in case the port is briefly busy.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.serve(ln)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("listen again on %s: %w", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond) // retry interval, not synchronization
	}
}

// Close stops the server for good.
func (s *Server) Close() error {
	err := s.Stop()
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	return err
}

// isolatedEnv is an environment for git that ignores the user's and the
// system's git configuration and never prompts on a terminal.
func isolatedEnv(home string) []string {
	env := []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}
