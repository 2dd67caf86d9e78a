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
	if !slices.Contains(p.AllowedSchemes, scheme) {
		return fmt.Sprintf("the daemon does not fetch session job jars over %s:// (allowed: %s)", scheme, strings.Join(p.AllowedSchemes, ", ")),
			"publish the jar on an https:// server, or allow the scheme in the daemon config (artifacts.allowedSchemes)"
	}
	if scheme == "file" {
		return p.checkFile(u)
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
