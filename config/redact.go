package config

import (
	"errors"
	"net/url"
	"strings"
)

// RedactURL returns s with any credentials replaced by "***", whether or
// not s parses as a URL: the user-info part between "scheme://" and the
// last "@" before the path. Use it wherever a configured URL is printed.
func RedactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := len(rest)
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		end = j
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	return s[:i+3] + "***" + rest[at:]
}

// urlErr is the reason of a URL parse error without the URL itself (which
// may carry a password).
func urlErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
