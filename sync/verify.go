package sync

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// VerifyOptions turns on commit signature verification: a new head is
// accepted only when it is signed by one of these keys. Git signs commits
// with OpenPGP (gpg.format=openpgp) or SSH keys (gpg.format=ssh); both are
// checked. At least one key must be given.
type VerifyOptions struct {
	// OpenPGPKeyRingFiles are ASCII-armored public key files.
	OpenPGPKeyRingFiles []string
	// OpenPGPKeyRings are ASCII-armored public keys, inline.
	OpenPGPKeyRings []string
	// SSHKeyFiles hold trusted SSH public keys, one per line in
	// authorized_keys format ("ssh-ed25519 AAAA… comment"); blank lines and
	// # comments are ignored. An allowed_signers file whose lines start with
	// a principal is accepted too: the principal is ignored.
	SSHKeyFiles []string
	// SSHKeys are trusted SSH public keys in authorized_keys format, inline.
	SSHKeys []string
}

// verifier checks commit signatures against trusted keys.
type verifier struct {
	pgpRings []string
	sshKeys  []ssh.PublicKey
}

// newVerifier loads the trusted keys; nil options mean no verification.
func newVerifier(o *VerifyOptions) (*verifier, error) {
	if o == nil {
		return nil, nil
	}
	v := &verifier{pgpRings: append([]string(nil), o.OpenPGPKeyRings...)}
	for _, f := range o.OpenPGPKeyRingFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read OpenPGP key ring %s: %w", f, err)
		}
		v.pgpRings = append(v.pgpRings, string(b))
	}
	lines := append([]string(nil), o.SSHKeys...)
	for _, f := range o.SSHKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read SSH key file %s: %w", f, err)
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, err := parseSSHKeyLine(l)
		if err != nil {
			return nil, fmt.Errorf("trusted SSH key %d: %w", i+1, err)
		}
		v.sshKeys = append(v.sshKeys, k)
	}
	if len(v.pgpRings) == 0 && len(v.sshKeys) == 0 {
		return nil, errors.New("signature verification is on but no trusted OpenPGP or SSH key is configured")
	}
	return v, nil
}

// parseSSHKeyLine parses an authorized_keys line, or an allowed_signers line
// (principal, options, then the key).
func parseSSHKeyLine(line string) (ssh.PublicKey, error) {
	if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
		return k, nil
	}
	fields := strings.Fields(line)
	for i := range fields {
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[i:], " "))); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("not an SSH public key: %.40q", line)
}

// verify returns a description of the trusted key that signed c, or an
// error saying why c is not trusted.
func (v *verifier) verify(c *object.Commit) (string, error) {
	sig := strings.TrimSpace(c.PGPSignature)
	if sig == "" {
		return "", fmt.Errorf("commit %s is not signed", c.Hash)
	}
	payload, err := commitPayload(c)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----") {
		key, err := verifySSHSignature(payload, []byte(sig), "git", v.sshKeys)
		if err != nil {
			return "", fmt.Errorf("commit %s: %w", c.Hash, err)
		}
		return "ssh " + ssh.FingerprintSHA256(key), nil
	}
	if strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----") {
		var last error = errors.New("no OpenPGP key is trusted")
		for _, ring := range v.pgpRings {
			e, err := c.Verify(ring)
			if err == nil {
				return fmt.Sprintf("openpgp %X", e.PrimaryKey.Fingerprint), nil
			}
			last = err
		}
		return "", fmt.Errorf("commit %s: OpenPGP signature not made by a trusted key: %v", c.Hash, last)
	}
	return "", fmt.Errorf("commit %s has a signature of an unsupported kind (only OpenPGP and SSH are checked)", c.Hash)
}

// commitPayload is the commit object as it was signed: without the gpgsig
// header.
func commitPayload(c *object.Commit) ([]byte, error) {
	obj := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(obj); err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", c.Hash, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// sshSigMagic starts both the SSHSIG blob and the data it signs
// (OpenSSH PROTOCOL.sshsig).
const sshSigMagic = "SSHSIG"

// sshSigBlob is the SSHSIG blob after the magic preamble.
type sshSigBlob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

// verifySSHSignature checks an armored SSH signature over message made in
// namespace by one of trusted, and returns the key that made it.
func verifySSHSignature(message, armored []byte, namespace string, trusted []ssh.PublicKey) (ssh.PublicKey, error) {
	block, _ := pem.Decode(armored)
	if block == nil || block.Type != "SSH SIGNATURE" {
		return nil, errors.New("malformed SSH signature: no SSH SIGNATURE block")
	}
	if !bytes.HasPrefix(block.Bytes, []byte(sshSigMagic)) {
		return nil, errors.New("malformed SSH signature: bad magic")
	}
	var blob sshSigBlob
	if err := ssh.Unmarshal(block.Bytes[len(sshSigMagic):], &blob); err != nil {
		return nil, fmt.Errorf("malformed SSH signature: %w", err)
	}
	if blob.Version != 1 {
		return nil, fmt.Errorf("unsupported SSH signature version %d", blob.Version)
	}
	if blob.Namespace != namespace {
		return nil, fmt.Errorf("SSH signature is for namespace %q, want %q", blob.Namespace, namespace)
	}
	pub, err := ssh.ParsePublicKey(blob.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("SSH signature public key: %w", err)
	}
	var found bool
	for _, k := range trusted {
		if bytes.Equal(k.Marshal(), pub.Marshal()) {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("SSH signature made by untrusted key %s", ssh.FingerprintSHA256(pub))
	}
	var digest []byte
	switch blob.HashAlg {
	case "sha256":
		h := sha256.Sum256(message)
		digest = h[:]
	case "sha512":
		h := sha512.Sum512(message)
		digest = h[:]
	default:
		return nil, fmt.Errorf("unsupported SSH signature hash %q", blob.HashAlg)
	}
	signed := append([]byte(sshSigMagic), ssh.Marshal(struct {
		Namespace string
		Reserved  string
		HashAlg   string
		Hash      []byte
	}{blob.Namespace, blob.Reserved, blob.HashAlg, digest})...)
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(blob.Signature, sig); err != nil {
		return nil, fmt.Errorf("malformed SSH signature value: %w", err)
	}
	if err := pub.Verify(signed, sig); err != nil {
		return nil, fmt.Errorf("SSH signature by %s does not match the commit: %w", ssh.FingerprintSHA256(pub), err)
	}
	return pub, nil
}
