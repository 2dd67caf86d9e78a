package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// askpass answers git's username and password prompts from the environment,
// so credentials never appear in a URL, argv or a log.
const askpass = `#!/bin/sh
case "$1" in
Username*) printf '%s\n' "$GITSERVER_USER" ;;
*) printf '%s\n' "$GITSERVER_PASSWORD" ;;
esac
`

// Author is the identity commits are made with.
type Author struct {
	Name  string
	Email string
}

// Signing makes Worktree sign its commits with the git CLI.
type Signing struct {
	// Format is "ssh" or "openpgp".
	Format string
	// Key is, for ssh, the path of the private key (or its .pub); for
	// openpgp, the key id or fingerprint in GNUPGHome.
	Key string
	// GNUPGHome is the gpg home directory for openpgp signing.
	GNUPGHome string
}

// Worktree is a clone made with the real git CLI in an isolated environment
// (own HOME, no global or system config), used to change a repository the
// way a person would: write files, commit, push.
type Worktree struct {
	// Dir is the working directory of the clone.
	Dir string
	// Branch is the branch commits go to (default main).
	Branch string
	// Author is used for commits (default "Test Author <author@example.com>").
	Author Author
	// Sign, when set, signs every commit.
	Sign *Signing

	home    string
	creds   Credentials
	timeout time.Duration
}

// Clone clones url into dir with the git CLI, using c for HTTP basic auth
// (empty for anonymous) and TLS trust. An empty repository is fine: the
// first commit creates the branch.
func Clone(ctx context.Context, url, dir string, c Credentials) (*Worktree, error) {
	home := dir + ".home"
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create git home: %w", err)
	}
	if err := os.WriteFile(filepath.Join(home, "askpass.sh"), []byte(askpass), 0o700); err != nil {
		return nil, fmt.Errorf("write askpass helper: %w", err)
	}
	w := &Worktree{
		Dir:     dir,
		Branch:  "main",
		Author:  Author{Name: "Test Author", Email: "author@example.com"},
		home:    home,
		creds:   c,
		timeout: 2 * time.Minute,
	}
	if _, err := w.run(ctx, filepath.Dir(dir), "clone", "--quiet", url, dir); err != nil {
		return nil, err
	}
	return w, nil
}

// Worktree clones repo from the server into a temporary directory with the
// server's credentials; failures end the test.
func (s *Server) Worktree(t testing.TB, repo string) *Worktree {
	t.Helper()
	w, err := Clone(context.Background(), s.URL(repo), filepath.Join(t.TempDir(), "wt"), s.Credentials())
	if err != nil {
		t.Fatalf("clone %s: %v", repo, err)
	}
	return w
}

// Git runs git with args in the worktree and returns its standard output.
func (w *Worktree) Git(ctx context.Context, args ...string) (string, error) {
	return w.run(ctx, w.Dir, args...)
}

func (w *Worktree) run(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	full := append([]string{"-c", "credential.helper=", "-c", "init.defaultBranch=main", "-c", "protocol.version=2"}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = dir
	cmd.Env = append(isolatedEnv(w.home),
		"GIT_ASKPASS="+filepath.Join(w.home, "askpass.sh"),
		"GITSERVER_USER="+w.creds.User,
		"GITSERVER_PASSWORD="+w.creds.Password,
		"GIT_AUTHOR_NAME="+w.Author.Name,
		"GIT_AUTHOR_EMAIL="+w.Author.Email,
		"GIT_COMMITTER_NAME="+w.Author.Name,
		"GIT_COMMITTER_EMAIL="+w.Author.Email,
	)
	if w.creds.CAFile != "" {
		cmd.Env = append(cmd.Env, "GIT_SSL_CAINFO="+w.creds.CAFile)
	}
	if w.Sign != nil && w.Sign.GNUPGHome != "" {
		cmd.Env = append(cmd.Env, "GNUPGHOME="+w.Sign.GNUPGHome)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// args never hold credentials: they come from the askpass helper.
		return stdout.String(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// WriteFile writes content to path (relative to the worktree root), creating
// directories, and stages it.
func (w *Worktree) WriteFile(path, content string) error {
	full := filepath.Join(w.Dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Remove deletes path (a file or directory) from the worktree.
func (w *Worktree) Remove(path string) error {
	if err := os.RemoveAll(filepath.Join(w.Dir, filepath.FromSlash(path))); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// Commit stages every change and commits it on w.Branch with message,
// signing it when w.Sign is set, and returns the new commit's SHA.
func (w *Worktree) Commit(ctx context.Context, message string) (string, error) {
	if _, err := w.Git(ctx, "checkout", "--quiet", "-B", w.Branch); err != nil {
		return "", err
	}
	if _, err := w.Git(ctx, "add", "--all"); err != nil {
		return "", err
	}
	args := []string{"commit", "--quiet", "--allow-empty", "-m", message}
	if w.Sign != nil {
		format := w.Sign.Format
		if format == "" {
			format = "openpgp"
		}
		args = append([]string{"-c", "gpg.format=" + format, "-c", "user.signingkey=" + w.Sign.Key}, args...)
		args = append(args, "-S")
	} else {
		args = append(args, "--no-gpg-sign")
	}
	if _, err := w.Git(ctx, args...); err != nil {
		return "", err
	}
	return w.Head(ctx)
}

// Head returns the SHA of the worktree's HEAD commit.
func (w *Worktree) Head(ctx context.Context) (string, error) {
	out, err := w.Git(ctx, "rev-parse", "HEAD")
	return strings.TrimSpace(out), err
}

// Push pushes w.Branch to origin (fast-forward only).
func (w *Worktree) Push(ctx context.Context) error {
	_, err := w.Git(ctx, "push", "--quiet", "origin", w.Branch+":"+w.Branch)
	return err
}

// ForcePush pushes w.Branch to origin, replacing whatever is there.
func (w *Worktree) ForcePush(ctx context.Context) error {
	_, err := w.Git(ctx, "push", "--quiet", "--force", "origin", w.Branch+":"+w.Branch)
	return err
}

// CommitPush writes files (path → content), commits and pushes them, and
// returns the commit SHA. Use Remove before it to delete files.
func (w *Worktree) CommitPush(ctx context.Context, files map[string]string, message string) (string, error) {
	for p, c := range files {
		if err := w.WriteFile(p, c); err != nil {
			return "", err
		}
	}
	sha, err := w.Commit(ctx, message)
	if err != nil {
		return "", err
	}
	return sha, w.Push(ctx)
}
