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
	"golang.org/x/crypto/ssh"
)

// gpgKey makes an ed25519 signing key in a fresh GNUPGHOME with the real
// gpg and returns the home, the key's fingerprint and its armored public key.
func gpgKey(t *testing.T, name string) (home, fpr, armored string) {
	t.Helper()
	if err := gitserver.EnsureTools(); err != nil {
		t.Fatal(err)
	}
	// A short path: gpg-agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--homedir", home}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr)
		}
		return string(out)
	}
	t.Cleanup(func() {
		// gpg starts an agent; stop it and remove the home.
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	run("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", name+" <"+strings.ToLower(name)+"@example.com>", "ed25519", "sign", "never")
	for _, line := range strings.Split(run("--with-colons", "--list-secret-keys"), "\n") {
		if strings.HasPrefix(line, "fpr:") {
			fpr = strings.Split(line, ":")[9]
			break
		}
	}
	if fpr == "" {
		t.Fatal("no fingerprint for the generated gpg key")
	}
	return home, fpr, run("--armor", "--export", fpr)
}

func TestSignatureVerification(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := context.Background()
	srv, w := specRepo(t)

	trustedSSH, trustedSSHPub := genKey(t)
	otherSSH, _ := genKey(t)
	gpgHome, gpgFpr, gpgPub := gpgKey(t, "Trusted")
	otherGPGHome, otherGPGFpr, _ := gpgKey(t, "Mallory")

	keysFile := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(keysFile, []byte("# trusted\nops@example.com "+trustedSSHPub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := newTestSource(t, srv, "specs", func(o *Options) {
		o.Verify = &VerifyOptions{SSHKeyFiles: []string{keysFile}, OpenPGPKeyRings: []string{gpgPub}}
	})

	commit := func(sign *gitserver.Signing, content string) string {
		t.Helper()
		w.Sign = sign
		return mustCommitPush(t, w, map[string]string{"a.yaml": content}, "commit "+content)
	}
	expectAccepted := func(sha, signer string) {
		t.Helper()
		snap, changed, err := src.Poll(ctx)
		if err != nil || !changed || snap.Commit != sha {
			t.Fatalf("signed commit %s not accepted: changed=%v err=%v", sha, changed, err)
		}
		if !strings.HasPrefix(snap.Signer, signer) {
			t.Fatalf("Signer = %q, want prefix %q", snap.Signer, signer)
		}
	}
	expectRejected := func(sha, last, why string) {
		t.Helper()
		snap, changed, err := src.Poll(ctx)
		if !errors.Is(err, ErrUntrustedCommit) || changed {
			t.Fatalf("commit %s: changed=%v err=%v, want ErrUntrustedCommit", sha, changed, err)
		}
		if !strings.Contains(err.Error(), why) {
			t.Fatalf("rejection %q does not say %q", err, why)
		}
		if (snap == nil && last != "") || (snap != nil && snap.Commit != last) {
			t.Fatalf("last good snapshot not kept: %+v", snap)
		}
		st := src.Status()
		if st.Rejected != sha || !st.Available || !errors.Is(st.Err, ErrUntrustedCommit) {
			t.Fatalf("status = %+v", st)
		}
		// Polling again does not fetch the rejected commit again.
		before := srv.Counts().UploadPack
		if _, _, err := src.Poll(ctx); !errors.Is(err, ErrUntrustedCommit) {
			t.Fatalf("second poll: %v", err)
		}
		if srv.Counts().UploadPack != before {
			t.Fatal("a known rejected head was fetched again")
		}
	}

	unsigned := commit(nil, "unsigned")
	expectRejected(unsigned, "", "is not signed")

	s1 := commit(&gitserver.Signing{Format: "ssh", Key: trustedSSH}, "ssh-trusted")
	expectAccepted(s1, "ssh SHA256:")

	s2 := commit(&gitserver.Signing{Format: "ssh", Key: otherSSH}, "ssh-untrusted")
	expectRejected(s2, s1, "untrusted key")

	p1 := commit(&gitserver.Signing{Format: "openpgp", Key: gpgFpr, GNUPGHome: gpgHome}, "pgp-trusted")
	expectAccepted(p1, "openpgp "+gpgFpr)

	p2 := commit(&gitserver.Signing{Format: "openpgp", Key: otherGPGFpr, GNUPGHome: otherGPGHome}, "pgp-untrusted")
	expectRejected(p2, p1, "OpenPGP signature not made by a trusted key")

	// The next trusted commit is accepted; changed paths are relative to
	// the last accepted snapshot.
	s3 := commit(&gitserver.Signing{Format: "ssh", Key: trustedSSH}, "ssh-trusted-2")
	expectAccepted(s3, "ssh SHA256:")
	if snap := src.Last(); snap.Previous != p1 {
		t.Fatalf("Previous = %s, want the last accepted %s", snap.Previous, p1)
	}
}

func TestNewVerifierNeedsKeys(t *testing.T) {
	t.Parallel()
	if _, err := newVerifier(&VerifyOptions{}); err == nil {
		t.Fatal("verification without keys was accepted")
	}
	if _, err := newVerifier(&VerifyOptions{SSHKeys: []string{"not a key"}}); err == nil {
		t.Fatal("a malformed SSH key was accepted")
	}
	if v, err := newVerifier(nil); v != nil || err != nil {
		t.Fatalf("nil options: %v, %v", v, err)
	}
}

// TestSSHSignatureNamespaceAndTampering checks the SSHSIG verifier against
// signatures made by ssh-keygen itself.
func TestSSHSignatureNamespaceAndTampering(t *testing.T) {
	t.Parallel()
	integration(t) // may install ssh-keygen
	if err := gitserver.EnsureTools(); err != nil {
		t.Fatal(err)
	}
	key, pubLine := genKey(t)
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pubLine))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("tree 0000\nauthor x\n\nmessage\n")
	sign := func(namespace string) []byte {
		t.Helper()
		f := filepath.Join(t.TempDir(), "msg")
		if err := os.WriteFile(f, msg, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", namespace, f).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
		}
		sig, err := os.ReadFile(f + ".sig")
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	gitSig := sign("git")
	if _, err := verifySSHSignature(msg, gitSig, "git", []ssh.PublicKey{pub}); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if _, err := verifySSHSignature(append([]byte("x"), msg...), gitSig, "git", []ssh.PublicKey{pub}); err == nil {
		t.Fatal("signature over other content accepted")
	}
	if _, err := verifySSHSignature(msg, sign("file"), "git", []ssh.PublicKey{pub}); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Fatalf("signature in another namespace: %v", err)
	}
	_, otherPub := genKey(t)
	other, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(otherPub))
	if _, err := verifySSHSignature(msg, gitSig, "git", []ssh.PublicKey{other}); err == nil {
		t.Fatal("signature by an untrusted key accepted")
	}
	if _, err := verifySSHSignature(msg, []byte("garbage"), "git", []ssh.PublicKey{pub}); err == nil {
		t.Fatal("garbage accepted")
	}
}
