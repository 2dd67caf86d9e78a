package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

const minimal = `
git:
  url: https://git.example.com/platform/flink.git
  entryPoints: [overlays/prod]
kubernetes:
  allowedNamespaces: [default, flink]
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func problems(t *testing.T, err error) []Problem {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Error, got %T: %v", err, err)
	}
	return ce.Problems
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "c.yaml", minimal+`
  qps: 20
  burst: 30
reconcile:
  concurrency: 8
  resyncInterval: 1m
log:
  level: debug
flink:
  defaultConfiguration:
    taskmanager.numberOfTaskSlots: 2
    state:
      checkpoints.dir: file:///tmp/cp
`)
	env := []string{
		"PATH=/usr/bin", // not ours: ignored
		"FLINK_GITOPS_RECONCILE_CONCURRENCY=6",
		"FLINK_GITOPS_KUBERNETES_BURST=40",
		"FLINK_GITOPS_GIT_ENTRY_POINTS=apps/a, apps/b",
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	sets := BindFlags(fs)
	if err := fs.Parse([]string{"--set", "reconcile.concurrency=5", "--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Sources{File: file, Environ: env, Set: sets()})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"default kept", cfg.Git.Branch, "main"},
		{"default duration", cfg.Git.PollInterval, time.Minute},
		{"file over default", cfg.Kubernetes.QPS, 20.0},
		{"file duration", cfg.Reconcile.ResyncInterval, time.Minute},
		{"env over file", cfg.Kubernetes.Burst, 40},
		{"env list", cfg.Git.EntryPoints, []string{"apps/a", "apps/b"}},
		{"flag over env over file", cfg.Reconcile.Concurrency, 5},
		{"flag shorthand", cfg.Log.Level, "warn"},
		{"flink defaults flat and nested", cfg.Flink.DefaultConfiguration, map[string]string{
			"taskmanager.numberOfTaskSlots": "2",
			"state.checkpoints.dir":         "file:///tmp/cp",
		}},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "c.yaml", minimal+`
reconcile:
  concurrancy: 3
gitt:
  x: 1
`)
	_, err := Load(Sources{
		File:    file,
		Environ: []string{"FLINK_GITOPS_GIT_POLL_INTERVALL=5s"},
		Set:     []string{"log.levle=debug"},
	})
	got := problems(t, err)
	want := []Problem{
		{Source: file, Key: "gitt.x", Message: "unknown key", Fix: "remove it; `flink-gitops validate --help` lists every key"},
		{Source: file, Key: "reconcile.concurrancy", Message: "unknown key", Fix: "did you mean reconcile.concurrency?"},
		{Source: "env", Key: "FLINK_GITOPS_GIT_POLL_INTERVALL", Message: "unknown environment variable", Fix: "did you mean FLINK_GITOPS_GIT_POLL_INTERVAL?"},
		{Source: "flag", Key: "log.levle", Message: "unknown key", Fix: "did you mean log.level?"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestTypeErrors(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "c.yaml", minimal+`
  qps: lots
reconcile:
  concurrency: 2.5
  resyncInterval: 5 minutes
leaderElection:
  enabled: sometimes
status:
  branch: [a, b]
`)
	_, err := Load(Sources{File: file})
	got := problems(t, err)
	want := []Problem{
		{Source: file, Key: "kubernetes.qps", Message: `"lots" is not a number`, Fix: "write a number such as 50"},
		{Source: file, Key: "leaderElection.enabled", Message: `"sometimes" is not a boolean`, Fix: "write true or false"},
		{Source: file, Key: "reconcile.concurrency", Message: `2.5 is not a whole number`, Fix: "write a whole number such as 4"},
		{Source: file, Key: "reconcile.resyncInterval", Message: `"5 minutes" is not a duration`, Fix: "write a Go duration such as 30s, 5m or 1h30m"},
		{Source: file, Key: "status.branch", Message: `must be a single value, not a list`, Fix: "write a single string value"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestBrokenYAML(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"syntax":        "git:\n  url: [unclosed\n",
		"duplicate key": "git:\n  url: a\n  url: b\n",
		"tabs":          "git:\n\turl: a\n",
	} {
		file := writeFile(t, dir, strings.ReplaceAll(name, " ", "-")+".yaml", content)
		_, err := Load(Sources{File: file})
		p := problems(t, err)
		if len(p) != 1 || p[0].Source != file || !strings.HasPrefix(p[0].Message, "not valid YAML: ") || !strings.Contains(p[0].Message, "line") {
			t.Errorf("%s: want one YAML problem naming the file and a line, got %v", name, p)
		}
	}
	if _, err := Load(Sources{File: filepath.Join(dir, "missing.yaml")}); err == nil || errors.As(err, new(*Error)) {
		t.Errorf("missing file: want a plain read error, got %v", err)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "s3cret")
	cases := []struct {
		name  string
		yaml  string
		key   string
		inMsg string
	}{
		{"no url", "git: {entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}", "git.url", "is required"},
		{"bad scheme", "git: {url: 'ftp://x/y', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}", "git.url", `scheme "ftp" is not supported`},
		{"password in url", "git: {url: 'https://u:p@x/y', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}", "git.url", "contains a password"},
		{"ssh needs key", "git: {url: 'git@github.com:o/r.git', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}", "git.auth.sshKeyFile", "is required for an SSH git.url"},
		{"ssh needs known_hosts", "git: {url: 'ssh://git@h/o/r', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [default]}", "git.auth.knownHostsFile", "host keys are always checked"},
		{"token with ssh", "git: {url: 'ssh://git@h/o/r', entryPoints: [a], auth: {tokenFile: " + token + "}}\nkubernetes: {allowedNamespaces: [default]}", "git.auth.tokenFile", "is set but git.url is SSH"},
		{"missing token file", "git: {url: 'https://h/r', entryPoints: [a], auth: {tokenFile: /nonexistent/t}}\nkubernetes: {allowedNamespaces: [default]}", "git.auth.tokenFile", "cannot read /nonexistent/t"},
		{"no entry points", "git: {url: 'https://h/r'}\nkubernetes: {allowedNamespaces: [default]}", "git.entryPoints", "is empty"},
		{"absolute entry point", "git: {url: 'https://h/r', entryPoints: [/etc]}\nkubernetes: {allowedNamespaces: [default]}", "git.entryPoints[0]", "is absolute"},
		{"escaping entry point", "git: {url: 'https://h/r', entryPoints: [a, ../b]}\nkubernetes: {allowedNamespaces: [default]}", "git.entryPoints[1]", "leaves the repository"},
		{"bad glob", "git: {url: 'https://h/r', entryPoints: ['apps/[']}\nkubernetes: {allowedNamespaces: [default]}", "git.entryPoints[0]", "is not a valid glob"},
		{"poll too fast", "git: {url: 'https://h/r', entryPoints: [a], pollInterval: 10ms}\nkubernetes: {allowedNamespaces: [default]}", "git.pollInterval", "10ms is too short"},
		{"status on watched branch", minimal + "status: {branch: main}", "status.branch", "is the watched branch"},
		{"bad branch", minimal + "status: {branch: 'a..b'}", "status.branch", "is not a valid branch name"},
		{"bad template", minimal + "status: {messageTemplate: '{{.X'}", "status.messageTemplate", "does not parse"},
		{"webhook without secret", minimal + "webhook: {listen: ':9292'}", "webhook.secrets", "every delivery would be refused"},
		{"webhook bad addr", minimal + "webhook: {listen: 'nope', secrets: {githubFile: " + token + "}}", "webhook.listen", "is not a listen address"},
		{"body cap", minimal + "webhook: {maxBodyBytes: 10}", "webhook.maxBodyBytes", "10 is out of range"},
		{"no namespaces", "git: {url: 'https://h/r', entryPoints: [a]}", "kubernetes.allowedNamespaces", "is empty"},
		{"bad namespace", "git: {url: 'https://h/r', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [Prod]}", "kubernetes.allowedNamespaces[0]", `"Prod" is not a namespace name`},
		{"default ns not allowed", "git: {url: 'https://h/r', entryPoints: [a]}\nkubernetes: {allowedNamespaces: [flink]}", "kubernetes.defaultNamespace", "is not in kubernetes.allowedNamespaces"},
		{"qps", minimal + "  qps: 0", "kubernetes.qps", "must be positive"},
		{"rest template", minimal + "flink: {restURLTemplate: 'http://{{.Nme}}'}", "flink.restURLTemplate", "does not render"},
		{"rest template not url", minimal + "flink: {restURLTemplate: '{{.Name}}:8081'}", "flink.restURLTemplate", "which is not an http(s) URL"},
		{"tls cert without key", minimal + "flink: {tls: {certFile: " + token + "}}", "flink.tls.certFile", "needs its key"},
		{"tls CA missing", minimal + "flink: {tls: {caFile: /nonexistent/ca.crt}}", "flink.tls.caFile", "cannot read /nonexistent/ca.crt"},
		{"mode", minimal + "flink: {defaultMode: kubernetes}", "flink.defaultMode", `"kubernetes" is not a mode`},
		{"concurrency", minimal + "reconcile: {concurrency: 0}", "reconcile.concurrency", "0 is out of range"},
		{"fast poll", minimal + "reconcile: {fastPollInterval: 2m, resyncInterval: 1m}", "reconcile.fastPollInterval", "is longer than reconcile.resyncInterval"},
		{"lease namespace", minimal + "leaderElection: {enabled: true}", "leaderElection.namespace", "is required"},
		{"lease timings", minimal + "leaderElection: {enabled: true, namespace: x, leaseDuration: 5s, renewDeadline: 10s}", "leaderElection.leaseDuration", "must be longer than"},
		{"same listen", minimal + "server: {listen: ':9292'}\nwebhook: {listen: ':9292', secrets: {githubFile: " + token + "}}", "server.listen", "the same address as webhook.listen"},
		{"log level", minimal + "log: {level: verbose}", "log.level", `"verbose" is not a level`},
		{"log format", minimal + "log: {format: xml}", "log.format", `"xml" is not a format`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, dir, "v"+strings.Repeat("x", i)+".yaml", c.yaml)
			_, err := Load(Sources{File: file})
			for _, p := range problems(t, err) {
				if p.Key == c.key && strings.Contains(p.Message, c.inMsg) {
					if p.Fix == "" {
						t.Errorf("problem %v has no fix", p)
					}
					return
				}
			}
			t.Errorf("want a problem at %s containing %q, got: %v", c.key, c.inMsg, err)
		})
	}
}

func TestValidConfigsAndAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(Sources{File: writeFile(t, dir, "ok.yaml", minimal)}); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	_, err := Load(Sources{File: writeFile(t, dir, "bad.yaml", "reconcile: {concurrency: 0}\nlog: {level: loud}\n")})
	keys := map[string]bool{}
	for _, p := range problems(t, err) {
		keys[p.Key] = true
	}
	for _, k := range []string{"git.url", "git.entryPoints", "kubernetes.allowedNamespaces", "reconcile.concurrency", "log.level"} {
		if !keys[k] {
			t.Errorf("missing problem for %s in %v", k, err)
		}
	}
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"git.pollInterval":              "FLINK_GITOPS_GIT_POLL_INTERVAL",
		"flink.restURLTemplate":         "FLINK_GITOPS_FLINK_REST_URL_TEMPLATE",
		"kubernetes.qps":                "FLINK_GITOPS_KUBERNETES_QPS",
		"git.verify.openpgpKeyFiles":    "FLINK_GITOPS_GIT_VERIFY_OPENPGP_KEY_FILES",
		"webhook.secrets.githubFile":    "FLINK_GITOPS_WEBHOOK_SECRETS_GITHUB_FILE",
		"leaderElection.leaseDuration":  "FLINK_GITOPS_LEADER_ELECTION_LEASE_DURATION",
		"reconcile.fastPollInterval":    "FLINK_GITOPS_RECONCILE_FAST_POLL_INTERVAL",
		"git.auth.sshKeyPassphraseFile": "FLINK_GITOPS_GIT_AUTH_SSH_KEY_PASSPHRASE_FILE",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", key, got, want)
		}
	}
	// Every key must map to a distinct variable, or env could set the wrong one.
	seen := map[string]string{}
	for _, k := range Keys() {
		n := EnvName(k)
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share %s", k, other, n)
		}
		seen[n] = k
	}
}

func TestRestartOnlyKeysExist(t *testing.T) {
	t.Parallel()
	v := reflectValue(Default())
	for _, k := range RestartOnly {
		if !fieldByKey(v, k).IsValid() {
			t.Errorf("RestartOnly names %q, which is not a key", k)
		}
	}
}
