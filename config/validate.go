package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
)

// fetchableSchemes are the jarURI schemes the daemon can fetch.
var fetchableSchemes = []string{"https", "http", "file", "maven", "s3", "s3a", "s3p", "gs"}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// dnsSubdomain matches Kubernetes object names (service accounts, Secrets).
var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// scpLike matches git's "user@host:path" SSH shorthand.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.*`)

// Validate checks a loaded configuration and returns every problem found,
// each with the key path and the fix. It reads the credential files it names
// (existence only, never their content).
func Validate(c *Config) []Problem {
	v := &validator{}

	// git
	isSSH := false
	switch {
	case c.Git.URL == "":
		v.add("git.url", "is required", "set it to the repository's https://, ssh:// or file:// URL")
	case scpLike.MatchString(c.Git.URL):
		isSSH = true
	default:
		u, err := url.Parse(c.Git.URL)
		switch {
		case err != nil:
			v.add("git.url", fmt.Sprintf("%q is not a URL: %v", RedactURL(c.Git.URL), urlErr(err)), "write https://host/org/repo.git or ssh://git@host/org/repo.git")
		case u.Scheme == "ssh":
			isSSH = true
		case u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "file":
			if u.User != nil {
				if _, hasPassword := u.User.Password(); hasPassword {
					v.add("git.url", "contains a password", "remove it from the URL and put the token in the file named by git.auth.tokenFile")
				}
			}
		default:
			v.add("git.url", fmt.Sprintf("scheme %q is not supported", u.Scheme), "use https://, http://, ssh:// or file://")
		}
	}
	v.refName("git.branch", c.Git.Branch)
	if len(c.Git.EntryPoints) == 0 {
		v.add("git.entryPoints", "is empty", "list the Kustomize directories to build, e.g. [overlays/prod] or [apps/*]")
	}
	for i, ep := range c.Git.EntryPoints {
		key := fmt.Sprintf("git.entryPoints[%d]", i)
		switch {
		case strings.TrimSpace(ep) == "":
			v.add(key, "is empty", "remove it or name a directory")
		case path.IsAbs(ep) || strings.HasPrefix(ep, "\\"):
			v.add(key, fmt.Sprintf("%q is absolute", ep), "write it relative to the repository root")
		case hasDotDot(ep):
			v.add(key, fmt.Sprintf("%q leaves the repository", ep), "remove the .. elements")
		default:
			if _, err := path.Match(ep, ""); err != nil {
				v.add(key, fmt.Sprintf("%q is not a valid glob: %v", ep, err), "fix the pattern (see Go's path.Match)")
			}
		}
	}
	v.minDuration("git.pollInterval", c.Git.PollInterval, time.Second)
	v.minDuration("git.timeout", c.Git.Timeout, time.Second)
	a := c.Git.Auth
	v.fileExists("git.auth.tokenFile", a.TokenFile)
	v.fileExists("git.auth.sshKeyFile", a.SSHKeyFile)
	v.fileExists("git.auth.sshKeyPassphraseFile", a.SSHKeyPassphraseFile)
	v.fileExists("git.auth.knownHostsFile", a.KnownHostsFile)
	if isSSH {
		if a.SSHKeyFile == "" {
			v.add("git.auth.sshKeyFile", "is required for an SSH git.url", "point it at the private key file")
		}
		if a.KnownHostsFile == "" {
			v.add("git.auth.knownHostsFile", "is required for an SSH git.url (host keys are always checked)", "point it at a known_hosts file with the server's key (ssh-keyscan HOST)")
		}
		if a.TokenFile != "" {
			v.add("git.auth.tokenFile", "is set but git.url is SSH", "remove it, or use an https:// URL")
		}
	} else if a.SSHKeyFile != "" {
		v.add("git.auth.sshKeyFile", "is set but git.url is not SSH", "remove it, or use an ssh:// URL")
	}
	for i, f := range c.Git.Verify.OpenPGPKeyFiles {
		v.fileExists(fmt.Sprintf("git.verify.openpgpKeyFiles[%d]", i), f)
	}
	v.fileExists("git.verify.sshAllowedSignersFile", c.Git.Verify.SSHAllowedSignersFile)

	// status
	v.refName("status.branch", c.Status.Branch)
	if c.Status.Branch != "" && c.Status.Branch == c.Git.Branch {
		v.add("status.branch", "is the watched branch", "choose another branch; the daemon never writes the watched branch")
	}
	if c.Status.AuthorName == "" {
		v.add("status.authorName", "is empty", "set a name for status commits")
	}
	if !strings.Contains(c.Status.AuthorEmail, "@") {
		v.add("status.authorEmail", fmt.Sprintf("%q is not an email address", c.Status.AuthorEmail), "write name@host")
	}
	if _, err := template.New("m").Option("missingkey=error").Parse(c.Status.MessageTemplate); err != nil {
		v.add("status.messageTemplate", "does not parse: "+err.Error(), "fix the Go template syntax")
	} else if strings.TrimSpace(c.Status.MessageTemplate) == "" {
		v.add("status.messageTemplate", "is empty", "write a message such as `status for {{.SourceCommit}}`")
	}

	// webhook
	if c.Webhook.Listen != "" {
		v.listenAddr("webhook.listen", c.Webhook.Listen)
		s := c.Webhook.Secrets
		if s.GitHubFile == "" && s.GiteaFile == "" && s.GitLabFile == "" && s.GenericFile == "" {
			v.add("webhook.secrets", "no secret is configured, so every delivery would be refused", "set webhook.secrets.githubFile (or giteaFile, gitlabFile, genericFile), or leave webhook.listen empty")
		}
	}
	v.fileExists("webhook.secrets.githubFile", c.Webhook.Secrets.GitHubFile)
	v.fileExists("webhook.secrets.giteaFile", c.Webhook.Secrets.GiteaFile)
	v.fileExists("webhook.secrets.gitlabFile", c.Webhook.Secrets.GitLabFile)
	v.fileExists("webhook.secrets.genericFile", c.Webhook.Secrets.GenericFile)
	if c.Webhook.MaxBodyBytes < 1024 || c.Webhook.MaxBodyBytes > 25<<20 {
		v.add("webhook.maxBodyBytes", fmt.Sprintf("%d is out of range", c.Webhook.MaxBodyBytes), "use a value between 1024 and 26214400 (25 MiB, GitHub's limit)")
	}

	// pull requests
	if pr := c.PullRequests; pr.Enabled {
		switch pr.Provider {
		case "github", "gitea":
		default:
			v.add("pullRequests.provider", fmt.Sprintf("%q is not a supported forge", pr.Provider), "use github or gitea")
		}
		if pr.APIURL == "" && pr.Provider == "gitea" {
			v.add("pullRequests.apiURL", "is required for gitea", "set it to the Gitea server's URL, e.g. https://gitea.example.com/")
		}
		if pr.APIURL != "" {
			if u, err := url.Parse(pr.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.add("pullRequests.apiURL", fmt.Sprintf("%q is not an http(s) URL", RedactURL(pr.APIURL)), "write e.g. https://api.github.com/ or https://gitea.example.com/")
			} else if u.User != nil {
				v.add("pullRequests.apiURL", "contains credentials", "remove them and put the token in the file named by pullRequests.tokenFile")
			}
		}
		if pr.Owner == "" {
			v.add("pullRequests.owner", "is required when pull-request comments are enabled", "set the repository's owner (user or organization)")
		}
		if pr.Repository == "" {
			v.add("pullRequests.repository", "is required when pull-request comments are enabled", "set the repository's name on the forge")
		}
		if pr.TokenFile == "" {
			v.add("pullRequests.tokenFile", "is required when pull-request comments are enabled", "point it at a file holding an API token that may comment on pull requests")
		}
		v.minDuration("pullRequests.pollInterval", pr.PollInterval, 10*time.Second)
		v.minDuration("pullRequests.timeout", pr.Timeout, time.Second)
	}
	v.fileExists("pullRequests.tokenFile", c.PullRequests.TokenFile)

	// kubernetes
	v.fileExists("kubernetes.kubeconfig", c.Kubernetes.Kubeconfig)
	if c.Kubernetes.QPS <= 0 {
		v.add("kubernetes.qps", fmt.Sprintf("%g must be positive", c.Kubernetes.QPS), "use e.g. 50")
	}
	if c.Kubernetes.Burst < 1 {
		v.add("kubernetes.burst", fmt.Sprintf("%d must be at least 1", c.Kubernetes.Burst), "use e.g. 100")
	}
	if len(c.Kubernetes.AllowedNamespaces) == 0 {
		v.add("kubernetes.allowedNamespaces", "is empty, so nothing could be deployed", `list the namespaces the repository may deploy into, or ["*"] for all`)
	}
	for i, ns := range c.Kubernetes.AllowedNamespaces {
		if ns != "*" && !dnsLabel.MatchString(ns) {
			v.add(fmt.Sprintf("kubernetes.allowedNamespaces[%d]", i), fmt.Sprintf("%q is not a namespace name", ns), `use a lowercase DNS label, or "*"`)
		}
	}
	if !dnsLabel.MatchString(c.Kubernetes.DefaultNamespace) {
		v.add("kubernetes.defaultNamespace", fmt.Sprintf("%q is not a namespace name", c.Kubernetes.DefaultNamespace), "use a lowercase DNS label")
	} else if len(c.Kubernetes.AllowedNamespaces) > 0 && !c.NamespaceAllowed(c.Kubernetes.DefaultNamespace) {
		v.add("kubernetes.defaultNamespace", fmt.Sprintf("%q is not in kubernetes.allowedNamespaces", c.Kubernetes.DefaultNamespace), "add it to kubernetes.allowedNamespaces or choose an allowed one")
	}

	// flink
	if _, err := c.Flink.RESTURL("example", "default"); err != nil {
		v.add("flink.restURLTemplate", err.Error(), "write e.g. http://{{.Name}}-rest.{{.Namespace}}:8081")
	}
	v.minDuration("flink.requestTimeout", c.Flink.RequestTimeout, 100*time.Millisecond)
	if c.Flink.DefaultMode != "standalone" && c.Flink.DefaultMode != "native" {
		v.add("flink.defaultMode", fmt.Sprintf("%q is not a mode", c.Flink.DefaultMode), "use standalone or native")
	}
	v.fileExists("flink.tls.caFile", c.Flink.TLS.CAFile)
	v.fileExists("flink.tls.certFile", c.Flink.TLS.CertFile)
	v.fileExists("flink.tls.keyFile", c.Flink.TLS.KeyFile)
	if (c.Flink.TLS.CertFile == "") != (c.Flink.TLS.KeyFile == "") {
		v.add("flink.tls.certFile", "a client certificate needs its key and a key its certificate", "set both flink.tls.certFile and flink.tls.keyFile, or neither")
	}
	for k := range c.Flink.DefaultConfiguration {
		if strings.TrimSpace(k) == "" || strings.Contains(k, " ") {
			v.add("flink.defaultConfiguration."+k, "is not a Flink configuration key", "use dotted keys such as taskmanager.numberOfTaskSlots")
		}
	}

	// reconcile
	if c.Reconcile.Concurrency < 1 || c.Reconcile.Concurrency > 256 {
		v.add("reconcile.concurrency", fmt.Sprintf("%d is out of range", c.Reconcile.Concurrency), "use a value between 1 and 256")
	}
	v.minDuration("reconcile.resyncInterval", c.Reconcile.ResyncInterval, time.Second)
	v.minDuration("reconcile.fastPollInterval", c.Reconcile.FastPollInterval, 50*time.Millisecond)
	v.minDuration("reconcile.operationTimeout", c.Reconcile.OperationTimeout, time.Second)
	if c.Reconcile.MinPeriodicInterval < 0 {
		v.add("reconcile.minPeriodicInterval", "is negative", "use 0 (no floor) or a duration such as 1m")
	}
	if c.Reconcile.MaxConcurrentUpgrades < 0 {
		v.add("reconcile.maxConcurrentUpgrades", "is negative", "use 0 (no bound) or the number of upgrades that may run at once")
	}
	if c.Reconcile.MaxConcurrentUpgradesPerNamespace < 0 {
		v.add("reconcile.maxConcurrentUpgradesPerNamespace", "is negative", "use 0 (no bound) or the number of upgrades that may run at once in one namespace")
	}

	// pod policy
	switch c.PodPolicy.Level {
	case "privileged", "baseline", "restricted":
	default:
		v.add("podPolicy.level", fmt.Sprintf("%q is not a Pod Security level", c.PodPolicy.Level), "use baseline (the default), restricted or privileged")
	}
	for i, sa := range c.PodPolicy.AllowedServiceAccounts {
		if !dnsSubdomain.MatchString(sa) {
			v.add(fmt.Sprintf("podPolicy.allowedServiceAccounts[%d]", i), fmt.Sprintf("%q is not a service account name", sa), "use a lower-case DNS name")
		}
	}
	for i, s := range c.PodPolicy.ForbiddenSecrets {
		if !dnsSubdomain.MatchString(s) {
			v.add(fmt.Sprintf("podPolicy.forbiddenSecrets[%d]", i), fmt.Sprintf("%q is not a Secret name", s), "use a lower-case DNS name")
		}
	}
	if c.Reconcile.FastPollInterval > c.Reconcile.ResyncInterval {
		v.add("reconcile.fastPollInterval", "is longer than reconcile.resyncInterval", "make it shorter: it is the poll rate while an operation is in flight")
	}

	// render
	positive := func(key string, n int64) {
		if n <= 0 {
			v.add(key, fmt.Sprintf("%d is not positive", n), "give a positive limit, or leave the key out for the default")
		}
	}
	positive("git.maxSnapshotBytes", c.Git.MaxSnapshotBytes)
	positive("render.maxFileBytes", c.Render.MaxFileBytes)
	positive("render.maxInputBytes", c.Render.MaxInputBytes)
	positive("render.maxYAMLNodes", int64(c.Render.MaxYAMLNodes))
	positive("render.maxDepth", int64(c.Render.MaxDepth))
	positive("render.maxObjects", int64(c.Render.MaxObjects))
	v.minDuration("render.buildTimeout", c.Render.BuildTimeout, 100*time.Millisecond)

	// artifacts
	if len(c.Artifacts.AllowedSchemes) == 0 {
		v.add("artifacts.allowedSchemes", "is empty", "list at least https")
	}
	for _, s := range c.Artifacts.AllowedSchemes {
		if !slices.Contains(fetchableSchemes, s) {
			v.add("artifacts.allowedSchemes", fmt.Sprintf("%q is not a scheme the daemon can fetch", s), "use "+strings.Join(fetchableSchemes, ", "))
		}
		if s == "maven" && len(c.Artifacts.Maven.Repositories) == 0 {
			v.add("artifacts.maven.repositories", "is required when maven is an allowed scheme", "name at least one repository URL, e.g. https://repo1.maven.org/maven2")
		}
		if s == "file" && c.Artifacts.FileDirectory == "" {
			v.add("artifacts.fileDirectory", "is required when file is an allowed scheme", "name the absolute directory file:// jars must be in")
		}
	}
	if d := c.Artifacts.FileDirectory; d != "" && !filepath.IsAbs(d) {
		v.add("artifacts.fileDirectory", fmt.Sprintf("%q is not an absolute path", d), "give an absolute directory")
	}
	for _, h := range c.Artifacts.AllowedHosts {
		if _, err := netip.ParsePrefix(h); err != nil && (h == "" || strings.ContainsAny(h, "/ :")) {
			if _, err := netip.ParseAddr(h); err != nil {
				v.add("artifacts.allowedHosts", fmt.Sprintf("%q is neither a host name nor a CIDR", h), "write e.g. artifacts.internal or 10.0.0.0/8")
			}
		}
	}
	for _, h := range c.Artifacts.Headers {
		if _, err := ParseHeaderRule(h); err != nil {
			v.add("artifacts.headers", err.Error(), "write host:Header-Name:/path/to/file, e.g. artifacts.example.com:Authorization:/etc/flink-gitops/artifacts/token")
		}
	}
	for _, r := range c.Artifacts.Maven.Repositories {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			v.add("artifacts.maven.repositories", fmt.Sprintf("%q is not an http(s) URL without credentials", r), "give the repository's base URL, e.g. https://repo1.maven.org/maven2; send credentials with artifacts.headers")
		}
	}
	if d := c.Artifacts.Cache.Directory; d != "" && !filepath.IsAbs(d) {
		v.add("artifacts.cache.directory", fmt.Sprintf("%q is not an absolute path", d), "give an absolute directory")
	}
	if f := c.Artifacts.CAFile; f != "" {
		v.fileExists("artifacts.caFile", f)
	}
	positive("artifacts.cache.maxBytes", c.Artifacts.Cache.MaxBytes)
	v.objectStores(c.Artifacts)
	positive("artifacts.maxBytes", c.Artifacts.MaxBytes)
	v.minDuration("artifacts.timeout", c.Artifacts.Timeout, time.Second)

	// leader election
	if le := c.LeaderElection; le.Enabled {
		if !dnsLabel.MatchString(le.LeaseName) {
			v.add("leaderElection.leaseName", fmt.Sprintf("%q is not a valid name", le.LeaseName), "use a lowercase DNS label")
		}
		if !dnsLabel.MatchString(le.Namespace) {
			v.add("leaderElection.namespace", "is required when leader election is enabled", "set the namespace the daemon runs in")
		}
		if le.LeaseDuration <= le.RenewDeadline {
			v.add("leaderElection.leaseDuration", "must be longer than leaderElection.renewDeadline", "e.g. 15s and 10s")
		}
		if le.RenewDeadline <= le.RetryPeriod*6/5 {
			v.add("leaderElection.renewDeadline", "must be longer than 1.2 × leaderElection.retryPeriod", "e.g. 10s and 2s")
		}
		v.minDuration("leaderElection.retryPeriod", le.RetryPeriod, 100*time.Millisecond)
	}

	// server, log
	if c.Server.Listen != "" {
		v.listenAddr("server.listen", c.Server.Listen)
		if c.Server.Listen == c.Webhook.Listen {
			v.add("server.listen", "is the same address as webhook.listen", "use two different ports")
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		v.add("log.level", fmt.Sprintf("%q is not a level", c.Log.Level), "use debug, info, warn or error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		v.add("log.format", fmt.Sprintf("%q is not a format", c.Log.Format), "use text or json")
	}
	return v.probs
}

// NamespaceAllowed reports whether resources may be deployed into ns.
func (c *Config) NamespaceAllowed(ns string) bool {
	for _, a := range c.Kubernetes.AllowedNamespaces {
		if a == "*" || a == ns {
			return true
		}
	}
	return false
}

// RESTURL renders the JobManager REST base URL of one Flink cluster.
func (f Flink) RESTURL(name, namespace string) (string, error) {
	t, err := template.New("restURLTemplate").Option("missingkey=error").Parse(f.RESTURLTemplate)
	if err != nil {
		return "", fmt.Errorf("does not parse: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Name, Namespace string }{name, namespace}); err != nil {
		return "", fmt.Errorf("does not render: %w", err)
	}
	u, err := url.Parse(b.String())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("renders %q, which is not an http(s) URL", RedactURL(b.String()))
	}
	return strings.TrimSuffix(b.String(), "/"), nil
}

type validator struct{ probs []Problem }

func (v *validator) add(key, msg, fix string) {
	v.probs = append(v.probs, Problem{Key: key, Message: msg, Fix: fix})
}

func (v *validator) minDuration(key string, d, minimum time.Duration) {
	if d < minimum {
		v.add(key, fmt.Sprintf("%s is too short", d), fmt.Sprintf("use at least %s", minimum))
	}
}

func (v *validator) fileExists(key, p string) {
	if p == "" {
		return
	}
	if _, err := os.Stat(p); err != nil {
		v.add(key, fmt.Sprintf("cannot read %s: %v", p, unwrapAll(err)), "point it at an existing file (mounted Secrets appear as files)")
	}
}

func (v *validator) listenAddr(key, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		v.add(key, fmt.Sprintf("%q is not a listen address", addr), `write host:port or ":port", e.g. ":8080"`)
	}
}

func (v *validator) refName(key, b string) {
	switch {
	case b == "":
		v.add(key, "is required", "name a branch, e.g. main")
	case strings.ContainsAny(b, " ~^:?*[\\") || strings.Contains(b, "..") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock") || strings.HasPrefix(b, "refs/"):
		v.add(key, fmt.Sprintf("%q is not a valid branch name", b), "use a plain branch name such as main or flink-gitops/status")
	}
}

func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// HeaderRule is one parsed artifacts.headers entry.
type HeaderRule struct {
	Host, Name, ValueFile string
}

// ParseHeaderRule reads host:Header-Name:/path/to/value-file.
func ParseHeaderRule(s string) (HeaderRule, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !filepath.IsAbs(parts[2]) {
		return HeaderRule{}, fmt.Errorf("%q is not host:Header-Name:/absolute/path/to/value-file", s)
	}
	return HeaderRule{Host: strings.ToLower(parts[0]), Name: parts[1], ValueFile: parts[2]}, nil
}
