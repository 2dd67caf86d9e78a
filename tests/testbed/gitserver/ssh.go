package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshdPath is where Debian's openssh-server installs sshd.
const sshdPath = "/usr/sbin/sshd"

// SSHServer is a real OpenSSH sshd on 127.0.0.1 serving the bare
// repositories of a Server to one generated client key, so git works over
// ssh:// exactly as against a forge.
type SSHServer struct {
	// Addr is host:port.
	Addr string
	// User is the login user (the user running the tests).
	User string
	// Root is the directory of bare repositories.
	Root string
	// ClientKey is the path of the authorized private key (ed25519, no passphrase).
	ClientKey string
	// ProtectedClientKey is the path of a second authorized private key,
	// encrypted with ProtectedKeyPassphrase.
	ProtectedClientKey     string
	ProtectedKeyPassphrase string
	// KnownHosts is a known_hosts file holding the server's host key.
	KnownHosts string
	// HostPublicKey is the server's host public key in authorized_keys format.
	HostPublicKey string
	// LogPath is sshd's log file.
	LogPath string

	cmd *exec.Cmd
}

// EnsureTools installs git, sshd, ssh-keygen and gpg with the script next
// to this file (Debian packages) if any is missing.
func EnsureTools() error {
	if _, err := os.Stat(sshdPath); err == nil {
		missing := false
		for _, p := range []string{"git", "ssh-keygen", "gpg"} {
			if _, err := exec.LookPath(p); err != nil {
				missing = true
			}
		}
		if !missing {
			return nil
		}
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("test tools are missing and the install script cannot be located")
	}
	script := filepath.Join(filepath.Dir(self), "install-tools.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("install test tools with %s: %w\n%s", script, err, out)
	}
	return nil
}

// StartSSH starts sshd serving the repositories of s for the duration of
// the test: its own config, host key and authorized_keys, on a free port, as
// a child process killed in t.Cleanup.
func (s *Server) StartSSH(t testing.TB) *SSHServer {
	t.Helper()
	if err := EnsureTools(); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keygen := func(path, passphrase string) {
		t.Helper()
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", filepath.Base(path), "-f", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %s: %v\n%s", path, err, out)
		}
	}
	x := &SSHServer{
		User:                   u.Username,
		Root:                   s.Root,
		ClientKey:              filepath.Join(dir, "client_ed25519"),
		ProtectedClientKey:     filepath.Join(dir, "client_protected_ed25519"),
		ProtectedKeyPassphrase: "correct horse battery staple",
		KnownHosts:             filepath.Join(dir, "known_hosts"),
		LogPath:                filepath.Join(dir, "sshd.log"),
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	keygen(hostKey, "")
	keygen(x.ClientKey, "")
	keygen(x.ProtectedClientKey, x.ProtectedKeyPassphrase)
	var authorized []byte
	for _, k := range []string{x.ClientKey, x.ProtectedClientKey} {
		b, err := os.ReadFile(k + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		authorized = append(authorized, b...)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, authorized, 0o600); err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	x.HostPublicKey = strings.TrimSpace(string(hostPub))

	port := freePort(t)
	x.Addr = net.JoinHostPort("127.0.0.1", port)
	fields := strings.Fields(x.HostPublicKey)
	known := fmt.Sprintf("[127.0.0.1]:%s %s %s\n", port, fields[0], fields[1])
	if err := os.WriteFile(x.KnownHosts, []byte(known), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
AllowUsers %s
PermitUserEnvironment no
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
`, port, hostKey, authKeys, u.Username)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation directory.
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	logf, err := os.Create(x.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start sshd: %v", err)
	}
	x.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("sshd log: %s\n%s", x.LogPath, tail(x.LogPath, 40))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", x.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited at start; log %s:\n%s", x.LogPath, tail(x.LogPath, 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s; log %s:\n%s", x.Addr, x.LogPath, tail(x.LogPath, 40))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	return x
}

// URL is the ssh:// clone URL of repository repo.
func (x *SSHServer) URL(repo string) string {
	return fmt.Sprintf("ssh://%s@%s%s", x.User, x.Addr, filepath.ToSlash(filepath.Join(x.Root, strings.TrimSuffix(repo, ".git")+".git")))
}

// GitSSHCommand is a GIT_SSH_COMMAND value that uses the client key and the
// known_hosts file, so the git CLI can talk to this server.
func (x *SSHServer) GitSSHCommand() string {
	return fmt.Sprintf("ssh -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes", x.ClientKey, x.KnownHosts)
}

// Check runs `git ls-remote` over SSH with the git CLI; it proves the
// server works independently of the code under test.
func (x *SSHServer) Check(ctx context.Context, repo string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", x.URL(repo))
	cmd.Env = append(isolatedEnv(filepath.Dir(x.ClientKey)), "GIT_SSH_COMMAND="+x.GitSSHCommand())
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git ls-remote over ssh: %w: %s", err, stderr.String())
	}
	return out.String(), nil
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
