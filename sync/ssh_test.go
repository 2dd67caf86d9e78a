package sync

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flink-gitops/flink-gitops/tests/testbed/gitserver"
)

func TestSSHAuth(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)
	c1 := mustCommitPush(t, w, map[string]string{"apps/a.yaml": "a\n"}, "c1")
	x := srv.StartSSH(t)

	poll := func(t *testing.T, auth Auth) (*Snapshot, error) {
		t.Helper()
		src, err := NewSource(Options{URL: x.URL("specs"), Auth: auth, Logger: quietLogger()})
		if err != nil {
			return nil, err
		}
		snap, _, err := src.Poll(ctx)
		return snap, err
	}

	t.Run("key", func(t *testing.T) {
		snap, err := poll(t, Auth{SSHKeyFile: x.ClientKey, KnownHostsFile: x.KnownHosts})
		if err != nil || snap.Commit != c1 {
			t.Fatalf("poll over ssh: %v", err)
		}
		if b, _ := snap.ReadFile("apps/a.yaml"); string(b) != "a\n" {
			t.Fatalf("file over ssh = %q", b)
		}
	})

	t.Run("status branch push", func(t *testing.T) {
		sw, err := NewStatusWriter(StatusWriterOptions{URL: x.URL("specs"), Branch: "status", WatchedBranch: "main",
			Auth: Auth{SSHKeyFile: x.ClientKey, KnownHostsFile: x.KnownHosts}, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sw.Write(ctx, map[string][]byte{"README.md": []byte("over ssh\n")}, c1)
		if err != nil || !res.Changed {
			t.Fatalf("status write over ssh: %+v, %v", res, err)
		}
		if got := statusTree(t, w, "status"); got["README.md"] != "over ssh\n" {
			t.Fatalf("status tree = %v", got)
		}
	})

	t.Run("key with passphrase", func(t *testing.T) {
		pf := filepath.Join(t.TempDir(), "pass")
		if err := os.WriteFile(pf, []byte(x.ProtectedKeyPassphrase+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		snap, err := poll(t, Auth{SSHKeyFile: x.ProtectedClientKey, SSHKeyPassphraseFile: pf, KnownHostsFile: x.KnownHosts})
		if err != nil || snap.Commit != c1 {
			t.Fatalf("poll with a protected key: %v", err)
		}
	})

	t.Run("wrong passphrase", func(t *testing.T) {
		pf := filepath.Join(t.TempDir(), "pass")
		if err := os.WriteFile(pf, []byte("not-the-passphrase"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := poll(t, Auth{SSHKeyFile: x.ProtectedClientKey, SSHKeyPassphraseFile: pf, KnownHostsFile: x.KnownHosts})
		if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "not-the-passphrase") {
			t.Fatalf("wrong passphrase: %v", err)
		}
	})

	t.Run("unknown host key is refused", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "known_hosts")
		// A valid known_hosts entry for this address, but another key.
		_, pub := genKey(t)
		f := strings.Fields(pub)
		line := "[127.0.0.1]:" + strings.Split(x.Addr, ":")[1] + " " + f[0] + " " + f[1] + "\n"
		if err := os.WriteFile(other, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := poll(t, Auth{SSHKeyFile: x.ClientKey, KnownHostsFile: other})
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("mismatched host key accepted or misreported: %v", err)
		}
		t.Logf("error: %v", err)
	})

	t.Run("host checking cannot be turned off", func(t *testing.T) {
		_, err := poll(t, Auth{SSHKeyFile: x.ClientKey, KnownHostsFile: filepath.Join(t.TempDir(), "missing")})
		if err == nil || !strings.Contains(err.Error(), "known_hosts") {
			t.Fatalf("no known_hosts file: %v", err)
		}
	})

	t.Run("key not authorized", func(t *testing.T) {
		key, _ := genKey(t)
		_, err := poll(t, Auth{SSHKeyFile: key, KnownHostsFile: x.KnownHosts})
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("unauthorized key: %v", err)
		}
	})
}

// genKey makes an ed25519 key pair with ssh-keygen and returns the private
// key's path and the public key line.
func genKey(t *testing.T) (string, string) {
	t.Helper()
	if err := gitserver.EnsureTools(); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(pub))
}
