package sync

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Errors callers branch on. Every error this package returns for a remote
// operation matches one of them with errors.Is, and its message never holds a
// credential.
var (
	// ErrUnavailable: the remote could not be reached or answered with an
	// error. Retry later; the last good snapshot stays in force.
	ErrUnavailable = errors.New("git source unavailable")
	// ErrAuth: the remote refused the credentials, or they could not be
	// loaded. Needs a person to fix the credentials.
	ErrAuth = errors.New("git authentication failed")
	// ErrBranchNotFound: the remote has no such branch.
	ErrBranchNotFound = errors.New("branch not found")
	// ErrUntrustedCommit: the head commit is not signed by a trusted key.
	// The last good snapshot stays in force until a trusted commit arrives.
	ErrUntrustedCommit = errors.New("commit not signed by a trusted key")
	// ErrSnapshotTooLarge: the head commit's files exceed the size limit.
	// The last good snapshot stays in force.
	ErrSnapshotTooLarge = errors.New("commit too large to snapshot")
	// ErrConflict: the status branch moved under a writer more often than its
	// retry budget allowed.
	ErrConflict = errors.New("status branch update conflict")
)

// Error is an error from a remote operation, classified by Kind (one of the
// Err* values above) and already redacted.
type Error struct {
	// Kind is ErrUnavailable, ErrAuth, ErrBranchNotFound, ErrUntrustedCommit,
	// ErrSnapshotTooLarge or ErrConflict.
	Kind error
	// Op says what was being done ("ls-remote", "fetch", "push", "verify").
	Op string
	// Remote is the remote URL without user info.
	Remote string
	// Msg is the redacted detail.
	Msg string
}

func (e *Error) Error() string {
	s := e.Op
	if e.Remote != "" {
		s += " " + e.Remote
	}
	s += ": " + e.Kind.Error()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap lets errors.Is match Kind. The original error is deliberately not
// kept: its text could carry a credential.
func (e *Error) Unwrap() error { return e.Kind }

// userinfoRE matches the user info part of a URL inside free text.
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@`)

// redactor removes secrets and URL user info from error text.
type redactor struct{ secrets []string }

func (r redactor) redact(s string) string {
	for _, sec := range r.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return userinfoRE.ReplaceAllString(s, "${1}[REDACTED]@")
}

// classify wraps err from operation op against remote into an *Error of the
// right kind, with the text redacted.
func (r redactor) classify(op, remote string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	kind := ErrUnavailable
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(err.Error(), "unable to authenticate"),
		strings.Contains(err.Error(), "knownhosts:"),
		strings.Contains(err.Error(), "host key"):
		kind = ErrAuth
	}
	msg := r.redact(err.Error())
	if kind == ErrAuth && (errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed)) {
		msg = "the remote refused the credentials (" + msg + "); check the user name and the token file or variable"
	}
	return &Error{Kind: kind, Op: op, Remote: redactURL(remote), Msg: msg}
}

// redactURL returns u without user info.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return userinfoRE.ReplaceAllString(u, "${1}")
	}
	if p.Scheme == "ssh" {
		// The SSH user name is not a secret, and people need it to debug.
		p.User = url.User(p.User.Username())
		return p.String()
	}
	p.User = nil
	return p.String()
}
