package sync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

func TestClassifyRedacts(t *testing.T) {
	t.Parallel()
	r := redactor{secrets: []string{"tok-SECRET-123"}}
	for _, tc := range []struct {
		err  error
		kind error
	}{
		{fmt.Errorf("wrapped: %w", transport.ErrAuthenticationRequired), ErrAuth},
		{errors.New(`Get "https://bob:tok-SECRET-123@git.example.com/r.git/info/refs": dial tcp: connection refused`), ErrUnavailable},
		{errors.New("ssh: handshake failed: knownhosts: key mismatch"), ErrAuth},
		{errors.New("server said tok-SECRET-123 is bad"), ErrUnavailable},
	} {
		err := r.classify("ls-remote", "https://bob:tok-SECRET-123@git.example.com/r.git", tc.err)
		if !errors.Is(err, tc.kind) {
			t.Errorf("%v classified as %v, want %v", tc.err, err, tc.kind)
		}
		if strings.Contains(err.Error(), "tok-SECRET-123") {
			t.Errorf("secret leaked: %v", err)
		}
		if errors.Unwrap(err) != tc.kind {
			t.Errorf("%v unwraps to more than its kind", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://bob:pw@git.example.com/r.git": "https://git.example.com/r.git",
		"https://git.example.com/r.git":        "https://git.example.com/r.git",
		"ssh://git@git.example.com:2222/r.git": "ssh://git@git.example.com:2222/r.git",
		"git@github.com:org/r.git":             "git@github.com:org/r.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsSSH(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"ssh://git@host/r.git":   true,
		"git@github.com:o/r.git": true,
		"https://host/r.git":     false,
		"http://u:p@host/r.git":  false,
	} {
		if got := isSSH(in); got != want {
			t.Errorf("isSSH(%q) = %v", in, got)
		}
	}
}
