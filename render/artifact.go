package render

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Defaults of the artifact fetch policy.
const (
	// DefaultArtifactMaxBytes is the largest jar the daemon downloads (512 MiB).
	DefaultArtifactMaxBytes = 512 << 20
	// DefaultArtifactTimeout bounds one jar download.
	DefaultArtifactTimeout = 2 * time.Minute
)

// ArtifactPolicy says which session-job jars the daemon itself may fetch
// (like the operator's kubernetes.operator.user.artifacts.* settings): a
// session job's jarURI is downloaded by the daemon and uploaded to the
// session cluster, so a jarURI pointing at a cloud metadata service, a
// loopback port or a credentials file would make the daemon read it. The
// zero value is the safe default: https only, public hosts only.
type ArtifactPolicy struct {
	// AllowedSchemes among https, http and file (default https).
	AllowedSchemes []string
	// FileDirectory is the absolute directory file:// jars must be in;
	// file:// is refused while it is empty.
	FileDirectory string
	// AllowPrivateHosts allows hosts that resolve to loopback, private,
	// link-local (incl. cloud metadata) and other non-public addresses.
	AllowPrivateHosts bool
	// AllowedHosts are host names or CIDRs exempt from the address check.
	AllowedHosts []string
	// MaxBytes caps one download (default DefaultArtifactMaxBytes).
	MaxBytes int64
	// Timeout bounds one download (default DefaultArtifactTimeout).
	Timeout time.Duration
	// Headers are HTTP headers the daemon adds when it fetches from the
	// named hosts (credentials kept in files, e.g. a mounted Secret).
	Headers []HostHeader
	// CAFile is a PEM file of extra CA certificates trusted for https
	// artifact servers (an internal repository's CA), besides the system's.
	CAFile string
	// CheckObject checks an object-store jarURI (s3, s3a, s3p, gs) offline:
	// the bucket allow-list and the key (the daemon's artifacts.s3/gcs);
	// nil refuses them all.
	CheckObject func(u *url.URL) (msg, fix string)
	// MavenRepositories are the repository base URLs maven: jarURIs are
	// resolved against, in order (trusted: exempt from the address check).
	MavenRepositories []string
}

// HostHeader is one HTTP header the daemon sends to some hosts only; its
// value is read from a file at each fetch, so a rotated Secret applies.
type HostHeader struct {
	Hosts     []string
	Name      string
	ValueFile string
}

// WithDefaults fills the unset fields.
func (p ArtifactPolicy) WithDefaults() ArtifactPolicy {
	if len(p.AllowedSchemes) == 0 {
		p.AllowedSchemes = []string{"https"}
	}
	if p.MaxBytes <= 0 {
		p.MaxBytes = DefaultArtifactMaxBytes
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultArtifactTimeout
	}
	return p
}

// FetchableSchemes are the jarURI schemes the daemon can fetch session job
// jars from, when its policy allows them.
var FetchableSchemes = []string{"https", "http", "file", "maven", "s3", "s3a", "s3p", "gs"}

// internalNames are host names that name the machine itself or a cloud
// metadata service whatever DNS says.
var internalNames = []string{"localhost", "metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}

// CheckURI checks a session job's jarURI against the policy without
// resolving names (validation runs offline, in plan too): the scheme, the
// file directory, and hosts that are literal non-public addresses or
// well-known internal names. It returns what is wrong and how to fix it;
// msg is empty when the URI is allowed. The fetch checks again after DNS.
func (p ArtifactPolicy) CheckURI(jarURI string) (msg, fix string) {
	p = p.WithDefaults()
	u, err := url.Parse(jarURI)
	if err != nil {
		return fmt.Sprintf("jarURI %q is not a valid URI: %v", jarURI, err), "use an https:// URI of the job jar"
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "":
		return fmt.Sprintf("jarURI %q has no scheme", jarURI), "use one of " + strings.Join(p.AllowedSchemes, ", ") + " (the daemon's artifact policy)"
	case scheme == "local":
		return "local:// names a jar inside an image, which the daemon cannot read to submit a session job",
			"publish the jar where the daemon may fetch it: " + strings.Join(p.AllowedSchemes, ", ") + " (the daemon's artifact policy)"
	}
	if !slices.Contains(p.AllowedSchemes, scheme) {
		return fmt.Sprintf("the daemon does not fetch session job jars over %s:// (allowed: %s; it can fetch %s)", scheme, strings.Join(p.AllowedSchemes, ", "), strings.Join(FetchableSchemes, ", ")),
			"publish the jar where the policy allows, or allow the scheme in the daemon config (artifacts.allowedSchemes)"
	}
	switch scheme {
	case "file":
		return p.checkFile(u)
	case "maven":
		return p.checkMaven(u)
	case "s3", "s3a", "s3p", "gs":
		if p.CheckObject == nil {
			return fmt.Sprintf("the daemon config names no object store for %s:// jars", scheme),
				"configure artifacts.s3 (or artifacts.gcs for gs://) with its allowedBuckets in the daemon config"
		}
		return p.CheckObject(u)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Sprintf("jarURI %q has no host", jarURI), "give the host of the URI"
	}
	if err := p.checkHost(host, nil); err != nil {
		return err.Error(), "fetch the jar from a public server, or allow the host in the daemon config (artifacts.allowedHosts)"
	}
	return "", ""
}

func (p ArtifactPolicy) checkMaven(u *url.URL) (msg, fix string) {
	if len(p.MavenRepositories) == 0 {
		return "maven: jars are not allowed: the daemon config names no Maven repository",
			"use an https:// URI, or set artifacts.maven.repositories in the daemon config"
	}
	if _, err := ParseCoordinates(u.Opaque); err != nil {
		return err.Error(), "write maven:groupId:artifactId:version or maven:groupId:artifactId:version:classifier with a release version"
	}
	return "", ""
}

// Coordinates name a jar in a Maven repository.
type Coordinates struct {
	Group, Artifact, Version, Classifier string
}

// ParseCoordinates reads groupId:artifactId:version[:classifier] (the text
// after maven:). Only release versions are accepted: a SNAPSHOT changes
// under the same name, so the jar Git names would not be the one that runs.
func ParseCoordinates(s string) (Coordinates, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 4 {
		return Coordinates{}, fmt.Errorf("maven coordinates %q are not groupId:artifactId:version[:classifier]", s)
	}
	for _, p := range parts {
		if p == "" || len(p) > 200 || strings.Contains(p, "..") || strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return Coordinates{}, fmt.Errorf("maven coordinates %q: part %q must be letters, digits, '.', '_' or '-'", s, p)
		}
	}
	c := Coordinates{Group: parts[0], Artifact: parts[1], Version: parts[2]}
	if len(parts) == 4 {
		c.Classifier = parts[3]
	}
	if strings.HasSuffix(strings.ToUpper(c.Version), "SNAPSHOT") {
		return Coordinates{}, fmt.Errorf("maven coordinates %q name a SNAPSHOT version, which changes under the same name", s)
	}
	return c, nil
}

// FileName is the jar's file name in the repository.
func (c Coordinates) FileName() string {
	if c.Classifier != "" {
		return c.Artifact + "-" + c.Version + "-" + c.Classifier + ".jar"
	}
	return c.Artifact + "-" + c.Version + ".jar"
}

// Path is the jar's path under a repository's base URL.
func (c Coordinates) Path() string {
	return strings.ReplaceAll(c.Group, ".", "/") + "/" + c.Artifact + "/" + c.Version + "/" + c.FileName()
}

// ParseHeaders reads kubernetes.operator.user.artifacts.http.header's
// headerKey1:headerValue1,headerKey2:headerValue2, checking names and values
// are valid HTTP.
func ParseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not headerName:value", kv)
		}
		if !validHeaderName(k) {
			return nil, fmt.Errorf("%q is not a valid HTTP header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("the value of header %s has a control character", k)
		}
		if len(h) >= 32 {
			return nil, errors.New("more than 32 headers")
		}
		h[http.CanonicalHeaderKey(k)] = v
	}
	return h, nil
}

func validHeaderName(k string) bool {
	for _, c := range k {
		if c > 0x7e || c <= ' ' || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return len(k) <= 128
}

func (p ArtifactPolicy) checkFile(u *url.URL) (msg, fix string) {
	if u.Host != "" && u.Host != "localhost" {
		return fmt.Sprintf("file:// jarURI names host %q", u.Host), "write file:///absolute/path/job.jar"
	}
	if p.FileDirectory == "" {
		return "file:// jars are not allowed: the daemon config names no directory for them",
			"use an https:// URI, or set artifacts.fileDirectory in the daemon config"
	}
	if !underDir(p.FileDirectory, u.Path) {
		return fmt.Sprintf("file %s is outside the directory %s that file:// jars must be in", u.Path, p.FileDirectory),
			"put the jar in " + p.FileDirectory + ", or use an https:// URI"
	}
	return "", ""
}

// CheckFile checks a local jar path at fetch time, after resolving
// symlinks: a link inside the directory must not lead out of it.
func (p ArtifactPolicy) CheckFile(path string) error {
	p = p.WithDefaults()
	if p.FileDirectory == "" || !slices.Contains(p.AllowedSchemes, "file") {
		return errors.New("file:// jars are not allowed by the artifact policy")
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	dir, err := filepath.EvalSymlinks(p.FileDirectory)
	if err != nil {
		return fmt.Errorf("artifact directory: %w", err)
	}
	if !underDir(dir, real) {
		return fmt.Errorf("file %s resolves to %s, outside the directory %s that file:// jars must be in", path, real, p.FileDirectory)
	}
	return nil
}

func underDir(dir, p string) bool {
	dir, p = filepath.Clean(dir), filepath.Clean(p)
	if !filepath.IsAbs(p) {
		return false
	}
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// checkHost refuses a host that is an internal name, or (ip given, or host
// a literal address) a non-public address, unless allowed.
func (p ArtifactPolicy) checkHost(host string, ip *netip.Addr) error {
	if p.AllowPrivateHosts {
		return nil
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range p.AllowedHosts {
		if strings.EqualFold(a, host) {
			return nil
		}
	}
	addr := ip
	if addr == nil {
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			addr = &a
		} else if numericHost(host) {
			return fmt.Errorf("host %s is a number, which resolvers may read as an address (2130706433 is 127.0.0.1); the artifact policy refuses it", host)
		} else if slices.Contains(internalNames, host) || strings.HasSuffix(host, ".localhost") {
			return fmt.Errorf("host %s is the machine itself or a metadata service; the artifact policy refuses it", host)
		} else {
			return nil // resolved and checked at fetch time
		}
	}
	a := addr.Unmap()
	for _, allowed := range p.AllowedHosts {
		if pfx, err := netip.ParsePrefix(allowed); err == nil && pfx.Contains(a) {
			return nil
		}
		if one, err := netip.ParseAddr(allowed); err == nil && one.Unmap() == a {
			return nil
		}
	}
	if kind := nonPublic(a); kind != "" {
		if ip != nil {
			return fmt.Errorf("host %s resolves to %s, a %s address; the artifact policy refuses it", host, a, kind)
		}
		return fmt.Errorf("host %s is a %s address; the artifact policy refuses it", host, kind)
	}
	return nil
}

// numericHost reports whether host is made of numbers only (decimal, octal
// or hex parts) without being a canonical address.
func numericHost(host string) bool {
	for _, part := range strings.Split(host, ".") {
		p := strings.TrimPrefix(part, "0x")
		if p == "" {
			return false
		}
		for _, c := range p {
			if !strings.ContainsRune("0123456789abcdef", c) || (p == part && (c < '0' || c > '9')) {
				return false
			}
		}
	}
	return true
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// nonPublic names the kind of a non-public address, "" for a public one.
func nonPublic(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local (cloud metadata)"
	case a.IsPrivate(), sharedAddressSpace.Contains(a):
		return "private"
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast(), !a.IsGlobalUnicast():
		return "non-routable"
	}
	return ""
}

// ErrArtifactRefused marks a fetch the policy refused.
var ErrArtifactRefused = errors.New("refused by the artifact policy")

// Client returns an HTTP client for fetching jars under the policy: every
// address it connects to is checked after DNS resolution (a net.Dialer
// Control hook, so a name that resolves to a public address at validation
// and to a private one at fetch — DNS rebinding — is still refused), no
// proxy from the environment is used, redirects are checked like the
// original URI, and the whole request is bounded by the policy's timeout.
func (p ArtifactPolicy) Client() *http.Client {
	p = p.WithDefaults()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := net.Dialer{Timeout: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unexpected address %q", ErrArtifactRefused, address)
			}
			ip := ap.Addr()
			if err := p.checkHost(host, &ip); err != nil {
				return fmt.Errorf("%w: %v", ErrArtifactRefused, err)
			}
			return nil
		}}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout: p.Timeout,
		// No proxy (an environment proxy would connect instead of the
		// checked address) and no kept-alive connections (one client per
		// download).
		Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true,
			TLSHandshakeTimeout: 30 * time.Second, ResponseHeaderTimeout: time.Minute},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if msg, _ := p.CheckURI(req.URL.String()); msg != "" || req.URL.Scheme == "file" {
				return fmt.Errorf("%w: redirect to %s: %s", ErrArtifactRefused, req.URL.Redacted(), msg)
			}
			return nil
		},
	}
}
