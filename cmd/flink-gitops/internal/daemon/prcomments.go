package daemon

import (
	"context"
	"fmt"
	"strconv"
	gosync "sync"
	"time"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/prcomment"
	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
	"github.com/flink-gitops/flink-gitops/sync/forge"
)

// renderedHistory is how many rendered commits the daemon remembers for
// the pull-request reporter (to tell whether a merge commit was rendered).
const renderedHistory = 64

// RenderOptions are the render settings of a configuration, the same for
// the watched branch, pull-request heads and the plan command.
func RenderOptions(c *config.Config) render.Options {
	return render.Options{
		EntryPoints: c.Git.EntryPoints, DefaultNamespace: c.Kubernetes.DefaultNamespace,
		AllowedNamespaces: c.Kubernetes.AllowedNamespaces, DefaultConfiguration: c.Flink.DefaultConfiguration,
		DefaultMode: v1beta1.DeploymentMode(c.Flink.DefaultMode), Check: lifecycle.CheckDeployment,
		MaxFileSize: c.Render.MaxFileBytes, MaxInputBytes: c.Render.MaxInputBytes, MaxYAMLNodes: c.Render.MaxYAMLNodes,
		MaxDepth: c.Render.MaxDepth, MaxObjects: c.Render.MaxObjects, BuildTimeout: c.Render.BuildTimeout,
		Artifacts: ArtifactPolicy(c),
		PodPolicy: render.PodPolicy{Level: render.PodSecurityLevel(c.PodPolicy.Level),
			AllowedServiceAccounts: c.PodPolicy.AllowedServiceAccounts, ForbiddenSecrets: c.PodPolicy.ForbiddenSecrets},
		MinPeriodicInterval: c.Reconcile.MinPeriodicInterval,
		RESTTLS:             render.RESTTLSDefaults{CA: c.Flink.TLS.CAFile != "", ClientCert: c.Flink.TLS.CertFile != ""},
	}
}

// ArtifactPolicy is the session job jar fetch policy of a configuration,
// the same for validation and for the reconciler's downloads.
func ArtifactPolicy(c *config.Config) render.ArtifactPolicy {
	a := c.Artifacts
	p := render.ArtifactPolicy{AllowedSchemes: a.AllowedSchemes, FileDirectory: a.FileDirectory, AllowPrivateHosts: a.AllowPrivateHosts,
		AllowedHosts: a.AllowedHosts, MaxBytes: a.MaxBytes, Timeout: a.Timeout, MavenRepositories: a.Maven.Repositories, CAFile: a.CAFile,
		CheckObject: artifact.S3ConfigFrom(a).CheckURI}
	for _, h := range a.Headers {
		if r, err := config.ParseHeaderRule(h); err == nil { // validated at load
			p.Headers = append(p.Headers, render.HostHeader{Hosts: []string{r.Host}, Name: r.Name, ValueFile: r.ValueFile})
		}
	}
	return p
}

// newPRReporter builds the pull-request reporter. It reads the daemon only
// through prState, renders pull-request heads with its own renderer (its
// cache must not evict the watched branch's), and makes a forge client per
// pullRequests configuration (nil while disabled).
func (d *Daemon) newPRReporter() *prcomment.Reporter {
	var mu gosync.Mutex
	var client forge.Forge
	var built config.PullRequests
	renderer := render.NewRenderer()
	log := d.log.With("component", "pr-comments")
	calls := newForgeRequests()
	d.metrics.reg.MustRegister(calls)
	observe := func(method, _ string, status int, cached bool) {
		calls.WithLabelValues(method, strconv.Itoa(status), strconv.FormatBool(cached)).Inc()
	}
	return prcomment.New(prcomment.Options{
		Forge: func() (forge.Forge, error) {
			pr := d.cfg.Current().PullRequests
			if !pr.Enabled {
				return nil, nil
			}
			mu.Lock()
			defer mu.Unlock()
			if client != nil && pr == built {
				return client, nil
			}
			f, err := forge.New(forge.Options{Provider: pr.Provider, BaseURL: pr.APIURL, Owner: pr.Owner, Repo: pr.Repository,
				TokenFile: pr.TokenFile, Timeout: pr.Timeout, OnRequest: observe, Logger: log, Transport: flinkclient.NewTransport()})
			if err != nil {
				return nil, fmt.Errorf("pull-request comments: %w", err)
			}
			client, built = f, pr
			return f, nil
		},
		Branch:       d.cfg.Current().Git.Branch,
		StatusBranch: d.cfg.Current().Status.Branch,
		Fetch: func(ctx context.Context, n int) (string, render.Source, error) {
			snap, err := d.source.FetchRef(ctx, gitsync.PullRequestRef(n))
			if err != nil {
				return "", nil, err
			}
			return snap.Commit, snap, nil
		},
		Render: func(ctx context.Context, tree render.Source) (*render.Result, error) {
			return renderer.Render(ctx, tree, RenderOptions(d.cfg.Current()))
		},
		FlinkDefaults: func() map[string]string { return d.cfg.Current().Flink.DefaultConfiguration },
		DefaultMode:   func() v1beta1.DeploymentMode { return v1beta1.DeploymentMode(d.cfg.Current().Flink.DefaultMode) },
		State:         d.prState,
		FileURL: func(prURL, branch, path string) string {
			return forge.FileURL(d.cfg.Current().PullRequests.Provider, prURL, branch, path)
		},
		ResultTimeout: 3 * d.cfg.Current().Reconcile.OperationTimeout,
		Preflight: func(ctx context.Context, p lifecycle.Planned) error {
			if d.kube == nil {
				return nil
			}
			return lifecycle.PreflightPlanned(ctx, d.kube, p, d.cfg.Current().Flink.DefaultConfiguration, v1beta1.DeploymentMode(d.cfg.Current().Flink.DefaultMode))
		},
		Log: log,
	})
}

// prState is the reporter's read-only view of the daemon: copies of the
// maps, sharing the records (which the daemon replaces, never mutates).
func (d *Daemon) prState() prcomment.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := prcomment.State{
		Rendered: append([]string(nil), d.rendered...),
		Records:  make(map[string]*lifecycle.Record, len(d.records)),
		Problems: make(map[string][]string, len(d.problems)),
		Failures: make(map[string]string, len(d.failures)),
	}
	for k, v := range d.records {
		s.Records[k] = v
	}
	for k, v := range d.problems {
		s.Problems[k] = v
	}
	for k, v := range d.failures {
		s.Failures[k] = v
	}
	return s
}

// noteRendered remembers a rendered commit; callers hold d.mu.
func (d *Daemon) noteRendered(commit string) {
	if n := len(d.rendered); n > 0 && d.rendered[n-1] == commit {
		return
	}
	d.rendered = append(d.rendered, commit)
	if len(d.rendered) > renderedHistory {
		d.rendered = d.rendered[len(d.rendered)-renderedHistory:]
	}
}

// runPRReporter reports on pull requests while this replica leads.
func (d *Daemon) runPRReporter(ctx context.Context) {
	d.prs.Run(ctx, func() time.Duration { return d.cfg.Current().PullRequests.PollInterval })
}
