package sync

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Auth says how to authenticate to the remote. Secrets are read from files
// or environment variables when the source is created; they never appear in
// errors or logs.
//
// For http(s) URLs: Username plus a token (TokenFile, else TokenEnv), or
// nothing for anonymous access. For ssh URLs (ssh://user@host/path or
// user@host:path): SSHKeyFile, an optional passphrase, and a known_hosts file;
// host keys are always checked.
type Auth struct {
	// Username for HTTPS basic auth (default "git" when a token is set).
	Username string
	// TokenFile is a file holding the HTTPS password or access token.
	TokenFile string
	// TokenEnv names an environment variable holding the token.
	TokenEnv string

	// SSHKeyFile is the private key for SSH.
	SSHKeyFile string
	// SSHKeyPassphraseFile is a file holding the key's passphrase, if any.
	SSHKeyPassphraseFile string
	// SSHKeyPassphraseEnv names an environment variable holding the passphrase.
	SSHKeyPassphraseEnv string
	// CAFile is a PEM bundle of extra certificate authorities to trust for
	// https remotes (a self-hosted forge); the system roots stay trusted.
	CAFile string

	// KnownHostsFile lists the server's host keys. Empty means
	// $SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts;
	// if none exists the source refuses to start. Checking is never skipped.
	KnownHostsFile string
}

// resolvedAuth is an Auth ready to use: the go-git method plus the secret
// strings to scrub from any error text.
type resolvedAuth struct {
	method   transport.AuthMethod
	caBundle []byte
	secrets  redactor
}

// isSSH reports whether rawURL is an SSH remote (ssh:// or scp-like).
func isSSH(rawURL string) bool {
	if strings.HasPrefix(rawURL, "ssh://") || strings.HasPrefix(rawURL, "git+ssh://") {
		return true
	}
	return !strings.Contains(rawURL, "://") && strings.Contains(rawURL, ":") && strings.Contains(rawURL, "@")
}

// sshHostPort returns host:port of an SSH remote for known_hosts lookups.
func sshHostPort(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), "22")
		}
		return u.Host
	}
	// scp-like user@host:path
	at := strings.LastIndex(rawURL, "@")
	rest := rawURL[at+1:]
	host, _, _ := strings.Cut(rest, ":")
	return net.JoinHostPort(host, "22")
}

func readSecret(file, env, what string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read %s file %s: %w", what, file, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if env != "" {
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s environment variable %s is not set", what, env)
		}
		return v, nil
	}
	return "", nil
}

// resolve loads the secrets and builds the go-git auth method for rawURL.
func (a Auth) resolve(rawURL string) (resolvedAuth, error) {
	if isSSH(rawURL) {
		return a.resolveSSH(rawURL)
	}
	var ca []byte
	if a.CAFile != "" {
		b, err := os.ReadFile(a.CAFile)
		if err != nil {
			return resolvedAuth{}, fmt.Errorf("read CA file: %w", err)
		}
		ca = b
	}
	if a.SSHKeyFile != "" {
		return resolvedAuth{}, fmt.Errorf("an SSH key is configured but %s is not an ssh:// URL", redactURL(rawURL))
	}
	token, err := readSecret(a.TokenFile, a.TokenEnv, "token")
	if err != nil {
		return resolvedAuth{}, &Error{Kind: ErrAuth, Op: "load credentials", Msg: err.Error()}
	}
	var secrets []string
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	if token == "" && a.Username == "" {
		return resolvedAuth{caBundle: ca, secrets: redactor{secrets}}, nil
	}
	user := a.Username
	if user == "" {
		user = "git"
	}
	secrets = append(secrets, token)
	return resolvedAuth{method: &githttp.BasicAuth{Username: user, Password: token}, caBundle: ca, secrets: redactor{secrets}}, nil
}

func (a Auth) resolveSSH(rawURL string) (resolvedAuth, error) {
	if a.SSHKeyFile == "" {
		return resolvedAuth{}, &Error{Kind: ErrAuth, Op: "load credentials", Remote: redactURL(rawURL), Msg: "an ssh remote needs an SSH key file"}
	}
	pass, err := readSecret(a.SSHKeyPassphraseFile, a.SSHKeyPassphraseEnv, "SSH key passphrase")
	if err != nil {
		return resolvedAuth{}, &Error{Kind: ErrAuth, Op: "load credentials", Msg: err.Error()}
	}
	user := "git"
	if u, err := url.Parse(rawURL); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	} else if at := strings.Index(rawURL, "@"); at > 0 && !strings.Contains(rawURL, "://") {
		user = rawURL[:at]
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, pass)
	if err != nil {
		msg := fmt.Sprintf("load SSH key %s: %v", a.SSHKeyFile, err)
		if pass != "" {
			msg = strings.ReplaceAll(msg, pass, "[REDACTED]")
		}
		return resolvedAuth{}, &Error{Kind: ErrAuth, Op: "load credentials", Msg: msg}
	}
	var files []string
	if a.KnownHostsFile != "" {
		if _, err := os.Stat(a.KnownHostsFile); err != nil {
			return resolvedAuth{}, &Error{Kind: ErrAuth, Op: "load known_hosts", Msg: err.Error()}
		}
		files = []string{a.KnownHostsFile}
	}
	db, err := gitssh.NewKnownHostsDb(files...)
	if err != nil {
		return resolvedAuth{}, &Error{Kind: ErrAuth, Op: "load known_hosts", Msg: err.Error()}
	}
	keys.HostKeyCallback = db.HostKeyCallback()
	// Offer only the host key algorithms known_hosts has keys for, so the
	// server does not pick one we cannot check.
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(sshHostPort(rawURL))
	if keys.HostKeyCallback == nil {
		return resolvedAuth{}, errors.New("known_hosts produced no host key callback")
	}
	var secrets []string
	if pass != "" {
		secrets = append(secrets, pass)
	}
	return resolvedAuth{method: keys, secrets: redactor{secrets}}, nil
}
