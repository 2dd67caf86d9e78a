// Package artifact makes session job jars available to the daemon as local
// files: it fetches them from where users keep them (https with headers,
// Maven repositories, object stores, an allow-listed directory) under the
// daemon's artifact policy, bounds every fetch in size and time, checks the
// optional SHA-256 pin before anything is uploaded, and keeps a bounded
// on-disk cache keyed by digest so an unchanged jar is not fetched again.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/flink-gitops/flink-gitops/render"
)

// ErrInvalid marks a jar problem a retry cannot fix: the URI is refused by
// the policy, names nothing, or the jar does not match its pin.
var ErrInvalid = errors.New("invalid jar")

// Source opens the artifact a URI names. The Fetcher bounds size and time,
// hashes and caches; a Source only opens. Errors wrapping ErrInvalid are
// permanent.
type Source interface {
	Open(ctx context.Context, u *url.URL) (io.ReadCloser, error)
}

// Jar is a fetched jar: a local file, its digest, and the base name to
// upload it under.
type Jar struct {
	Path   string
	SHA256 string
	Name   string
	Size   int64
}

// Request is one jar to fetch.
type Request struct {
	// URI is the session job's jarURI.
	URI string
	// SHA256 is the pin (flink-gitops.jar.sha256), hex; empty for none.
	SHA256 string
	// Headers are the spec's kubernetes.operator.user.artifacts.http.header
	// (the session cluster's, overridden by the job's), sent to the jarURI's
	// host only.
	Headers map[string]string
}

// Fetcher fetches jars under a policy given per call (the policy is live
// config), through a cache that lives as long as the Fetcher.
type Fetcher struct {
	// Cache keeps jars by digest; nil fetches into temporary files.
	Cache *Cache
	// Sources open the schemes the Fetcher does not know itself (s3, gs);
	// keyed by scheme.
	Sources func(policy render.ArtifactPolicy, scheme string) (Source, error)
}

// Fetch makes the jar req names available as a local file. release must be
// called when the file is no longer needed (it may be a cache entry, which
// is not evicted while held).
func (f *Fetcher) Fetch(ctx context.Context, policy render.ArtifactPolicy, req Request) (Jar, func(), error) {
	none := func() {}
	policy = policy.WithDefaults()
	u, err := url.Parse(req.URI)
	if err != nil {
		return Jar{}, none, fmt.Errorf("%w: spec.job.jarURI %q: %v", ErrInvalid, req.URI, err)
	}
	shown := redacted(u)
	if msg, fix := policy.CheckURI(req.URI); msg != "" {
		return Jar{}, none, fmt.Errorf("%w: spec.job.jarURI %s: %s (%s)", ErrInvalid, shown, msg, fix)
	}
	want := strings.ToLower(strings.TrimSpace(req.SHA256))
	if want != "" && !isDigest(want) {
		return Jar{}, none, fmt.Errorf("%w: flink-gitops.jar.sha256 %q is not 64 hex digits", ErrInvalid, req.SHA256)
	}
	name := jarName(u)
	scheme := strings.ToLower(u.Scheme)
	if scheme == "file" {
		return fetchFile(policy, u, want, name)
	}
	// A pinned digest already in the cache needs no fetch; so does an
	// immutable URI (a Maven release) fetched before.
	if f.Cache != nil {
		key := want
		if key == "" && immutable(u) {
			key = f.Cache.Lookup(req.URI)
		}
		if key != "" {
			if p, size, release, ok := f.Cache.Hold(key); ok {
				return Jar{Path: p, SHA256: key, Name: name, Size: size}, release, nil
			}
		}
	}
	src, err := f.source(policy, scheme, req)
	if err != nil {
		return Jar{}, none, err
	}
	ctx, cancel := context.WithTimeout(ctx, policy.Timeout)
	defer cancel()
	rc, err := src.Open(ctx, u)
	if err != nil {
		return Jar{}, none, fmt.Errorf("fetch %s: %w", shown, err)
	}
	defer rc.Close()
	dir := ""
	if f.Cache != nil {
		dir = f.Cache.dir
	}
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return Jar{}, none, err
	}
	drop := func() { os.Remove(tmp.Name()) }
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(rc, policy.MaxBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		drop()
		return Jar{}, none, fmt.Errorf("fetch %s: %w", shown, err)
	}
	if n > policy.MaxBytes {
		drop()
		return Jar{}, none, fmt.Errorf("%w: %s is larger than the artifact limit of %d bytes (artifacts.maxBytes)", ErrInvalid, shown, policy.MaxBytes)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		drop()
		return Jar{}, none, fmt.Errorf("%w: %s has SHA-256 %s, but flink-gitops.jar.sha256 says %s", ErrInvalid, shown, got, want)
	}
	if f.Cache == nil {
		return Jar{Path: tmp.Name(), SHA256: got, Name: name, Size: n}, drop, nil
	}
	p, release, err := f.Cache.Add(tmp.Name(), got, n)
	if err != nil {
		drop()
		return Jar{}, none, err
	}
	if immutable(u) {
		f.Cache.Remember(req.URI, got)
	}
	return Jar{Path: p, SHA256: got, Name: name, Size: n}, release, nil
}

// source picks the Source of a scheme.
func (f *Fetcher) source(policy render.ArtifactPolicy, scheme string, req Request) (Source, error) {
	switch scheme {
	case "http", "https":
		return &HTTP{Policy: policy, SpecHeaders: req.Headers}, nil
	case "maven":
		return &Maven{Policy: policy}, nil
	}
	if f.Sources != nil {
		return f.Sources(policy, scheme)
	}
	return nil, fmt.Errorf("%w: the daemon cannot fetch %s:// jars", ErrInvalid, scheme)
}

// fetchFile uses a file:// jar in place once it resolves inside the
// policy's directory.
func fetchFile(policy render.ArtifactPolicy, u *url.URL, want, name string) (Jar, func(), error) {
	none := func() {}
	if err := policy.CheckFile(u.Path); err != nil {
		return Jar{}, none, fmt.Errorf("%w: spec.job.jarURI: %v", ErrInvalid, err)
	}
	fh, err := os.Open(u.Path)
	if err != nil {
		return Jar{}, none, fmt.Errorf("%w: spec.job.jarURI: %v", ErrInvalid, err)
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(fh, policy.MaxBytes+1))
	if err != nil {
		return Jar{}, none, fmt.Errorf("read %s: %w", u.Path, err)
	}
	if n > policy.MaxBytes {
		return Jar{}, none, fmt.Errorf("%w: %s is larger than the artifact limit of %d bytes (artifacts.maxBytes)", ErrInvalid, u.Path, policy.MaxBytes)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return Jar{}, none, fmt.Errorf("%w: %s has SHA-256 %s, but flink-gitops.jar.sha256 says %s", ErrInvalid, u.Path, got, want)
	}
	return Jar{Path: u.Path, SHA256: got, Name: name, Size: n}, none, nil
}

// jarName is the base name to upload a jar under: the URI's last path
// element (the artifact's file name for Maven coordinates), ending in .jar
// as Flink requires, with nothing but safe characters.
func jarName(u *url.URL) string {
	base := path.Base(u.Path)
	if strings.EqualFold(u.Scheme, "maven") {
		if c, err := render.ParseCoordinates(u.Opaque); err == nil {
			base = c.FileName()
		}
	}
	name := strings.Trim(SafeName(base), ".")
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	if name == "" || name == "_" {
		name = "job"
	}
	if !strings.HasSuffix(name, ".jar") {
		name += ".jar"
	}
	return name
}

// SafeName replaces every character of s but letters, digits, '.', '-'
// and '_' with '_', so it can be a file name on any system.
func SafeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// immutable reports whether the content behind a URI cannot change: a
// Maven release (SNAPSHOT versions are refused).
func immutable(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "maven")
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// redacted shows a URI without user info or query (presigned URLs carry
// credentials in the query).
func redacted(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	return c.String()
}
