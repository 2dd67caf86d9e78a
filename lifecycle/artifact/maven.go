package artifact

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"

	"github.com/flink-gitops/flink-gitops/render"
)

// Maven opens maven:groupId:artifactId:version[:classifier] jars from the
// policy's repositories, in order, and verifies each against the
// repository's .sha256 (or .sha1) checksum while it is read: a jar whose
// checksum is missing or wrong fails the fetch.
type Maven struct {
	Policy render.ArtifactPolicy
}

// Open implements Source.
func (m *Maven) Open(ctx context.Context, u *url.URL) (io.ReadCloser, error) {
	c, err := render.ParseCoordinates(u.Opaque)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var tried []string
	for _, repo := range m.Policy.MavenRepositories {
		base, err := url.Parse(strings.TrimSuffix(repo, "/") + "/" + c.Path())
		if err != nil {
			return nil, fmt.Errorf("%w: artifacts.maven.repositories %q: %v", ErrInvalid, repo, err)
		}
		h := &HTTP{Policy: m.trusting(base)}
		sum, algo, err := m.checksum(ctx, h, base)
		if errors.Is(err, ErrInvalid) {
			tried = append(tried, redacted(base))
			continue // not in this repository
		}
		if err != nil {
			return nil, err
		}
		body, err := h.Open(ctx, base)
		if err != nil {
			return nil, err
		}
		hh := sha256.New()
		if algo == "sha1" {
			hh = sha1.New()
		}
		return &verified{ReadCloser: body, h: hh, want: sum, what: redacted(base)}, nil
	}
	return nil, fmt.Errorf("%w: %s is in none of the Maven repositories (tried %s)", ErrInvalid, u.Opaque, strings.Join(tried, ", "))
}

// trusting is the policy with the repository's host exempt from the
// address check: repositories come from the daemon config, not from Git.
func (m *Maven) trusting(u *url.URL) render.ArtifactPolicy {
	p := m.Policy
	p.AllowedHosts = append(append([]string(nil), p.AllowedHosts...), u.Hostname())
	if !containsFold(p.AllowedSchemes, u.Scheme) {
		p.AllowedSchemes = append(append([]string(nil), p.AllowedSchemes...), strings.ToLower(u.Scheme))
	}
	return p
}

// checksum reads the jar's .sha256, else its .sha1, from the repository.
// ErrInvalid means neither exists (the jar is not there either, or the
// repository keeps no checksums, which is refused).
func (m *Maven) checksum(ctx context.Context, h *HTTP, jar *url.URL) (string, string, error) {
	for _, algo := range []string{"sha256", "sha1"} {
		u := *jar
		u.Path += "." + algo
		rc, err := h.Open(ctx, &u)
		if errors.Is(err, ErrInvalid) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1024))
		rc.Close()
		if err != nil {
			return "", "", err
		}
		f := strings.Fields(string(b))
		want := 64
		if algo == "sha1" {
			want = 40
		}
		if len(f) == 0 || len(f[0]) != want {
			return "", "", fmt.Errorf("%s: not a %s checksum", redacted(&u), algo)
		}
		if _, err := hex.DecodeString(f[0]); err != nil {
			return "", "", fmt.Errorf("%s: not a %s checksum", redacted(&u), algo)
		}
		return strings.ToLower(f[0]), algo, nil
	}
	return "", "", fmt.Errorf("%w: no checksum", ErrInvalid)
}

// verified checks the content against the repository's checksum at EOF.
type verified struct {
	io.ReadCloser
	h    hash.Hash
	want string
	what string
}

func (v *verified) Read(p []byte) (int, error) {
	n, err := v.ReadCloser.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%w: %s does not match the repository's checksum (%s, want %s)", ErrInvalid, v.what, got, v.want)
		}
	}
	return n, err
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
