package artifact

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/flink-gitops/flink-gitops/render"
)

// maxHeaderFile bounds a header value file.
const maxHeaderFile = 16 << 10

// HTTP opens http(s) URLs with the policy's client (every connected
// address checked after DNS, no environment proxy, redirects checked like
// the URI), adding the spec's headers and the daemon's headers for the
// host. Headers never follow a redirect to another host.
type HTTP struct {
	Policy render.ArtifactPolicy
	// SpecHeaders come from the spec (kubernetes.operator.user.artifacts.http.header).
	SpecHeaders map[string]string
}

// Open implements Source.
func (h *HTTP) Open(ctx context.Context, u *url.URL) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	added, err := h.headers(u.Hostname())
	if err != nil {
		return nil, err
	}
	for k, v := range added {
		req.Header.Set(k, v)
	}
	client := h.Policy.Client()
	if h.Policy.CAFile != "" {
		pool, err := caPool(h.Policy.CAFile)
		if err != nil {
			return nil, fmt.Errorf("artifacts.caFile: %w", err)
		}
		client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	check := client.CheckRedirect
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if err := check(r, via); err != nil {
			return err
		}
		if !strings.EqualFold(r.URL.Host, via[0].URL.Host) || r.URL.Scheme != via[0].URL.Scheme {
			for k := range added {
				r.Header.Del(k)
			}
		}
		return nil
	}
	resp, err := client.Do(req)
	if errors.Is(err, render.ErrArtifactRefused) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("HTTP %d", resp.StatusCode)
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			err = fmt.Errorf("%w: HTTP %d (no such jar)", ErrInvalid, resp.StatusCode)
		}
		return nil, err
	}
	return resp.Body, nil
}

// headers are the headers to send to host: the daemon's for that host,
// then the spec's (which win, as a session job's win over its cluster's in
// the operator).
func (h *HTTP) headers(host string) (map[string]string, error) {
	out := map[string]string{}
	for _, hh := range h.Policy.Headers {
		if !slices.ContainsFunc(hh.Hosts, func(a string) bool { return strings.EqualFold(a, host) }) {
			continue
		}
		v, err := readValue(hh.ValueFile)
		if err != nil {
			return nil, fmt.Errorf("artifact header %s for %s: %w", hh.Name, host, err)
		}
		out[http.CanonicalHeaderKey(hh.Name)] = v
	}
	for k, v := range h.SpecHeaders {
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out, nil
}

// caPool is the system's roots plus the PEM certificates in file.
func caPool(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// readValue reads a header value file (bounded, trailing newline dropped);
// errors never carry the value.
func readValue(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHeaderFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxHeaderFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxHeaderFile)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", fmt.Errorf("%s holds a control character", path)
	}
	return v, nil
}
