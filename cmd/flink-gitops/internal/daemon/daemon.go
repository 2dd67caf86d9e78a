package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"text/template"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/prcomment"
	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	gitsync "github.com/flink-gitops/flink-gitops/sync"
)

// Daemon is one running flink-gitops process.
type Daemon struct {
	cfg     *config.Store
	log     *slog.Logger
	kube    kubernetes.Interface
	metrics *Metrics

	source    *gitsync.Source
	webhook   *gitsync.WebhookHandler
	writer    *gitsync.StatusWriter
	renderer  *render.Renderer
	rec       *lifecycle.Reconciler
	cache     *lifecycle.Cache
	gate      *upgradeGate
	flinkHTTP *http.Client

	queue   workqueue.TypedDelayingInterface[string]
	limit   *limiter
	ready   atomic.Bool
	leading atomic.Bool

	mu       gosync.Mutex
	commit   string                        // commit of the last rendered snapshot
	desired  map[string]*lifecycle.Desired // last good desired spec per key
	removed  map[string]bool               // keys confirmed gone from Git
	problems map[string][]string           // validation problems per key, this commit
	warnings map[string][]string           // accepted-but-not-acted-on notes per key, this commit
	global   []string                      // problems not tied to a resource
	records  map[string]*lifecycle.Record  // latest record per key
	failures map[string]string             // last reconcile error of keys without a record
	dirty    bool                          // records changed since the last status write
	renders  chan struct{}                 // asks the render loop to render the current snapshot again
	rendered []string                      // recently rendered commits, oldest first (pull-request results)

	prs *prcomment.Reporter // pull-request comments (runs only on the leader)

	// published are the files of the last status write, rendered at
	// publishedAt; only publish touches them (it never runs concurrently).
	published   map[string][]byte
	publishedAt time.Time
}

// New builds a daemon from the running configuration. It connects to
// nothing yet.
func New(cfg *config.Store, log *slog.Logger) (*Daemon, error) {
	c := cfg.Current()
	metrics := NewMetrics()
	kube, err := kubeClient(c.Kubernetes, metrics.instrumentKube)
	if err != nil {
		return nil, err
	}
	auth := gitAuth(c.Git.Auth)
	var verify *gitsync.VerifyOptions
	if v := c.Git.Verify; len(v.OpenPGPKeyFiles) > 0 || v.SSHAllowedSignersFile != "" {
		verify = &gitsync.VerifyOptions{OpenPGPKeyRingFiles: v.OpenPGPKeyFiles}
		if v.SSHAllowedSignersFile != "" {
			verify.SSHKeyFiles = []string{v.SSHAllowedSignersFile}
		}
	}
	d := &Daemon{
		cfg:      cfg,
		log:      log,
		kube:     kube,
		metrics:  metrics,
		renderer: render.NewRenderer(),
		queue:    workqueue.NewTypedDelayingQueue[string](),
		limit:    newLimiter(c.Reconcile.Concurrency),
		desired:  map[string]*lifecycle.Desired{},
		removed:  map[string]bool{},
		problems: map[string][]string{},
		records:  map[string]*lifecycle.Record{},
		failures: map[string]string{},
		renders:  make(chan struct{}, 1),
	}
	d.source, err = gitsync.NewSource(gitsync.Options{
		URL: c.Git.URL, Branch: c.Git.Branch, Auth: auth, Interval: c.Git.PollInterval, Timeout: c.Git.Timeout,
		MaxSnapshotBytes: c.Git.MaxSnapshotBytes, Verify: verify, Logger: log.With("component", "git"), OnPoll: d.metrics.observePoll,
	})
	if err != nil {
		return nil, err
	}
	d.writer, err = gitsync.NewStatusWriter(gitsync.StatusWriterOptions{
		URL: c.Git.URL, Branch: c.Status.Branch, WatchedBranch: c.Git.Branch, Auth: auth,
		Author:  gitsync.Signature{Name: c.Status.AuthorName, Email: c.Status.AuthorEmail},
		Timeout: c.Git.Timeout, Logger: log.With("component", "status-writer"),
	})
	if err != nil {
		return nil, err
	}
	if c.Webhook.Listen != "" {
		secrets := newSecretFiles(func() config.WebhookSecrets { return d.cfg.Current().Webhook.Secrets })
		d.webhook, err = gitsync.NewWebhookHandler(gitsync.WebhookOptions{
			Secrets: secrets.Secrets, Branch: c.Git.Branch, MaxBodyBytes: c.Webhook.MaxBodyBytes, Logger: log.With("component", "webhook"),
		}, d.source.Wake)
		if err != nil {
			return nil, err
		}
	}
	d.prs = d.newPRReporter()
	if d.webhook != nil {
		d.webhook.On(gitsync.EventPullRequest, d.prs.OnWebhook)
	}
	d.flinkHTTP = &http.Client{Transport: d.metrics.instrumentFlink(flinkclient.NewTransport())}
	d.gate = newUpgradeGate(func() (int, int) {
		r := d.cfg.Current().Reconcile
		return r.MaxConcurrentUpgrades, r.MaxConcurrentUpgradesPerNamespace
	})
	d.cache = lifecycle.NewCache(kube, log.With("component", "watch"))
	d.cache.OnDrift(d.onDrift)
	store := &lifecycle.Store{Client: kube, Cache: d.cache, Log: d.log}
	clients := &lifecycle.RESTClients{
		Access: &lifecycle.RESTAccess{Kube: kube, Store: store, Defaults: func() (lifecycle.TLSFiles, map[string]string) {
			f := d.cfg.Current().Flink
			return lifecycle.TLSFiles{CAFile: f.TLS.CAFile, CertFile: f.TLS.CertFile, KeyFile: f.TLS.KeyFile}, f.DefaultConfiguration
		}},
		Endpoint: func(namespace, name string) (string, time.Duration, error) {
			cur := d.cfg.Current().Flink
			u, err := cur.RESTURL(name, namespace)
			return u, cur.RequestTimeout, err
		},
		Plain:   d.flinkHTTP,
		Wrap:    d.metrics.instrumentFlink,
		Options: []flinkclient.Option{flinkclient.WithLogger(log.With("component", "flink-rest"))},
	}
	jars, err := jarCache(c.Artifacts.Cache)
	if err != nil {
		return nil, err
	}
	d.rec = &lifecycle.Reconciler{
		Jars:   &artifact.Fetcher{Cache: jars, Sources: (&objectStores{current: d.cfg.Current}).source},
		Kube:   kube,
		Cache:  d.cache,
		Gate:   d.gate,
		Store:  store,
		Flink:  clients.Flink,
		Events: &lifecycle.Events{Client: d.metrics.countEvents(kube), Log: log},
		Log:    log.With("component", "lifecycle"),
		Settings: func() lifecycle.Settings {
			cur := d.cfg.Current()
			return lifecycle.Settings{
				FlinkDefaults:    cur.Flink.DefaultConfiguration,
				FastPoll:         cur.Reconcile.FastPollInterval,
				Resync:           cur.Reconcile.ResyncInterval,
				OperationTimeout: cur.Reconcile.OperationTimeout,
				DefaultMode:      v1beta1.DeploymentMode(cur.Flink.DefaultMode),
				Artifacts:        ArtifactPolicy(cur),

				MinPeriodicInterval: cur.Reconcile.MinPeriodicInterval,
			}
		},
	}
	return d, nil
}

func kubeClient(k config.Kubernetes, wrap func(http.RoundTripper) http.RoundTripper) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	if k.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig},
			&clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	rc.QPS, rc.Burst = float32(k.QPS), k.Burst
	rc.UserAgent = "flink-gitops"
	OwnTransport(rc)
	if wrap != nil {
		rc.Wrap(wrap)
	}
	return kubernetes.NewForConfig(rc)
}

// OwnTransport makes client-go build a transport of its own for rc even
// when rc has no TLS settings (a plain-http kubeconfig, as kubectl proxy
// serves): client-go would otherwise use http.DefaultTransport, which the
// flink-gitops binary seals. The proxy is client-go's own default.
func OwnTransport(rc *rest.Config) {
	if rc.Proxy == nil && rc.Transport == nil {
		rc.Proxy = utilnet.NewProxierWithNoProxyCIDR(http.ProxyFromEnvironment)
	}
}

func gitAuth(a config.GitAuth) gitsync.Auth {
	return gitsync.Auth{Username: a.Username, TokenFile: a.TokenFile, SSHKeyFile: a.SSHKeyFile,
		SSHKeyPassphraseFile: a.SSHKeyPassphraseFile, KnownHostsFile: a.KnownHostsFile}
}

// Run serves health and metrics, takes the lead (when leader election is
// on) and reconciles until ctx is done. It returns after in-flight passes
// have finished: every pass leaves its state persisted.
func (d *Daemon) Run(ctx context.Context) error {
	c := d.cfg.Current()
	d.metrics.watchConfig(d.cfg)
	var servers []*http.Server
	if c.Server.Listen != "" {
		srv, err := d.serve(c.Server.Listen, d.httpHandler())
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	if d.webhook != nil {
		srv, err := d.serve(c.Webhook.Listen, d.metrics.instrumentWebhook(d.webhook))
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}()
	if c.LeaderElection.Enabled {
		return d.runWithLeaderElection(ctx)
	}
	d.leading.Store(true)
	return d.lead(ctx)
}

func (d *Daemon) serve(addr string, h http.Handler) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", "addr", addr, "err", err)
		}
	}()
	d.log.Info("listening", "addr", l.Addr().String())
	return srv, nil
}

// lead is the work of the leader: poll, render, reconcile, publish.
func (d *Daemon) lead(ctx context.Context) error {
	d.log.Info("reconciling", "repo", redact(d.cfg.Current().Git.URL), "branch", d.cfg.Current().Git.Branch)
	// Watch the daemon's own objects while leading: reads come from the
	// watch, and a hand edit of a cluster's object is noticed at once.
	d.cache.SetNamespaces(d.cfg.Current().Kubernetes.AllowedNamespaces)
	defer d.cache.Stop()
	// Existing records first: operations in flight continue before the
	// first snapshot arrives.
	if err := d.loadRecords(ctx); err != nil {
		d.log.Warn("cannot list status ConfigMaps yet", "err", err)
	}
	unsub := d.cfg.Subscribe(func(old, cur *config.Config) { d.applyConfig(old, cur) })
	defer unsub()

	var wg gosync.WaitGroup
	wctx, stopWorkers := context.WithCancel(context.Background()) // workers finish their pass, then stop
	for i := 0; i < maxWorkers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); d.worker(wctx) }()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = d.source.Run(ctx, func(*gitsync.Snapshot) { d.requestRender() })
	}()
	go func() { defer wg.Done(); d.renderLoop(ctx) }()
	wg.Add(2)
	go func() { defer wg.Done(); d.publishLoop(ctx) }()
	go func() { defer wg.Done(); d.runPRReporter(ctx) }()

	<-ctx.Done()
	d.log.Info("shutting down: finishing passes in flight")
	d.queue.ShutDown()
	stopWorkers()
	wg.Wait()
	pctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d.publish(pctx)
	return nil
}

// maxWorkers bounds reconcile.concurrency; the limiter applies the value.
const maxWorkers = 256

// loadRecords reads the status ConfigMaps of every allowed namespace. It
// lists namespace by namespace unless every namespace is allowed: a
// least-privilege install (deploy/) is bound per namespace and may not list
// across all of them. A namespace that cannot be listed (e.g. allowed in
// the config but not bound) does not keep the others from loading.
func (d *Daemon) loadRecords(ctx context.Context) error {
	var recs []*lifecycle.Record
	var errs []error
	for _, ns := range listNamespaces(d.cfg.Current().Kubernetes.AllowedNamespaces) {
		r, err := d.rec.Store.List(ctx, ns)
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %q: %w", ns, err))
			continue
		}
		recs = append(recs, r...)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		key := Key(r.Kind, r.Namespace, r.Name)
		d.records[key] = r
		d.gate.observe(key, r)
		if r.Operation != nil {
			d.queue.Add(key)
		}
	}
	return errors.Join(errs...)
}

// listNamespaces is the namespaces to list status ConfigMaps in: "" (all)
// when the allow-list has "*".
func listNamespaces(allowed []string) []string {
	if slices.Contains(allowed, "*") {
		return []string{""}
	}
	return allowed
}

// applyConfig makes a reloaded configuration take effect.
func (d *Daemon) applyConfig(old, cur *config.Config) {
	if old.Git.PollInterval != cur.Git.PollInterval {
		d.source.SetInterval(cur.Git.PollInterval)
	}
	d.limit.SetLimit(cur.Reconcile.Concurrency)
	if d.leading.Load() {
		d.cache.SetNamespaces(cur.Kubernetes.AllowedNamespaces)
	}
	if d.webhook != nil {
		d.webhook.SetMaxBodyBytes(cur.Webhook.MaxBodyBytes)
	}
	// Entry points, namespaces and Flink defaults change what renders.
	d.requestRender()
}

func (d *Daemon) requestRender() {
	select {
	case d.renders <- struct{}{}:
	default:
	}
}

// renderLoop renders the current snapshot whenever asked.
func (d *Daemon) renderLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.renders:
		}
		if snap := d.source.Last(); snap != nil {
			d.onSnapshot(ctx, snap)
		}
	}
}

// onSnapshot renders a snapshot and queues every resource it concerns.
func (d *Daemon) onSnapshot(ctx context.Context, snap *gitsync.Snapshot) {
	c := d.cfg.Current()
	start := time.Now()
	res, err := d.renderer.Render(ctx, snap, RenderOptions(c))
	if err != nil {
		return // cancelled
	}
	d.metrics.renderDuration.Observe(time.Since(start).Seconds())
	log := d.log.With("commit", snap.Commit)
	log.Info("rendered", "resources", len(res.Resources), "invalid", len(res.Invalid), "problems", len(res.Problems), "built", res.Built, "reused", res.Reused)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.commit = snap.Commit
	d.noteRendered(snap.Commit)
	d.problems = map[string][]string{}
	d.warnings = map[string][]string{}
	for _, w := range res.Warnings {
		if w.Resource != "" {
			key := problemKey(w.Resource)
			d.warnings[key] = append(d.warnings[key], w.String())
		}
	}
	d.global = nil
	for _, p := range res.Problems {
		if p.Resource != "" {
			key := problemKey(p.Resource)
			d.problems[key] = append(d.problems[key], p.String())
		} else {
			d.global = append(d.global, p.String())
		}
	}
	present := map[string]bool{}
	for _, r := range res.Resources {
		k := r.Key()
		key := Key(k.Kind, k.Namespace, k.Name)
		present[key] = true
		d.desired[key] = &lifecycle.Desired{Deployment: r.Deployment, SessionJob: r.SessionJob, Snapshot: r.Snapshot, Hash: r.Hash,
			Source: sourceRef(snap.Commit, r), ClusterConfiguration: sessionClusterConfig(res, r)}
		delete(d.removed, key)
		d.queue.Add(key)
	}
	for _, k := range res.Invalid {
		key := Key(k.Kind, k.Namespace, k.Name)
		present[key] = true // keep what is deployed; the problems say why
		d.queue.Add(key)
	}
	// A resource is gone from Git only when the entry point that declared
	// it built fine this time (or no longer exists) and nothing declares it.
	built := map[string]bool{}
	failed := map[string]bool{}
	for _, ep := range res.EntryPoints {
		if ep.Failed {
			failed[ep.EntryPoint] = true
		} else {
			built[ep.EntryPoint] = true
		}
	}
	for key, r := range d.records {
		if present[key] || r.Common().LifecycleState == "DELETED" {
			continue
		}
		ep := ""
		if s := r.Common().Source; s != nil {
			ep = s.EntryPoint
		}
		if failed[ep] || len(failed) > 0 && ep == "" {
			continue // unknown: keep it
		}
		if !built[ep] && !snapshotHasDir(snap, ep) && configuredLiterally(c.Git.EntryPoints, ep) {
			// A configured entry point that vanished is more likely a
			// mistake (a moved directory, a bad merge) than a decision to
			// delete everything in it: keep the resources and say so.
			msg := fmt.Sprintf("entry point %s is configured but no longer in the repository; %s is kept as deployed: "+
				"restore the directory, or remove %s from git.entryPoints to delete its resources", ep, key, ep)
			log.Warn("entry point vanished; resource kept", "resource", key, "entryPoint", ep)
			d.problems[key] = append(d.problems[key], msg)
			continue
		}
		if built[ep] || !snapshotHasDir(snap, ep) {
			if !d.removed[key] {
				log.Info("resource removed from Git", "resource", key)
			}
			d.removed[key] = true
			delete(d.desired, key)
			d.queue.Add(key)
		}
	}
	d.dirty = true
}

// configuredLiterally reports whether entry point ep is one of the
// configured entry points as a path (not only matched by a glob).
func configuredLiterally(patterns []string, ep string) bool {
	for _, p := range patterns {
		if strings.ContainsAny(p, "*?[") {
			continue
		}
		if c := path.Clean(strings.TrimSuffix(p, "/")); c == ep || c == "." && ep == "" {
			return true
		}
	}
	return false
}

func snapshotHasDir(snap *gitsync.Snapshot, dir string) bool {
	if dir == "" {
		return false
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for _, p := range snap.Paths() {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func sourceRef(commit string, r render.Resource) v1beta1.SourceRef {
	return v1beta1.SourceRef{Commit: commit, EntryPoint: r.EntryPoint, Path: r.File}
}

// problemKey turns a problem's "Kind namespace/name" into a key.
func problemKey(resource string) string {
	kind, nn, _ := strings.Cut(resource, " ")
	ns, name, _ := strings.Cut(nn, "/")
	return Key(kind, ns, name)
}

// onDrift reconciles a FlinkDeployment at once when someone else changed
// or deleted one of its cluster's objects (the pass sets it back).
func (d *Daemon) onDrift(namespace, name string) {
	key := Key(lifecycle.KindDeployment, namespace, name)
	d.mu.Lock()
	_, known := d.records[key]
	if _, ok := d.desired[key]; ok {
		known = true
	}
	d.mu.Unlock()
	if known {
		d.metrics.drift.Inc()
		d.queue.Add(key)
	}
}

// worker reconciles keys from the queue, one pass at a time.
func (d *Daemon) worker(ctx context.Context) {
	for {
		key, quit := d.queue.Get()
		if quit {
			return
		}
		if ctx.Err() != nil {
			// Shutting down: the queue hands out what is left; leave it
			// for the next leader instead of failing a pass per key.
			d.queue.Done(key)
			continue
		}
		d.limit.Acquire()
		next := d.reconcile(ctx, key)
		d.limit.Release()
		d.queue.Done(key)
		if next > 0 {
			d.queue.AddAfter(key, next)
		}
	}
}

// reconcile makes one pass over key and returns when to come back (0: not
// until something changes).
func (d *Daemon) reconcile(ctx context.Context, key string) time.Duration {
	parts := strings.SplitN(key, "/", 3)
	kind, ns, name := parts[0], parts[1], parts[2]
	d.mu.Lock()
	desired, known := d.desired[key]
	removed := d.removed[key]
	d.mu.Unlock()
	switch {
	case removed:
		desired = nil
	case !known:
		desired = lifecycle.Observe
	}
	c := d.cfg.Current()
	if !c.NamespaceAllowed(ns) {
		d.log.Warn("namespace not allowed any more; leaving the resource alone", "resource", key)
		return 0
	}
	rctx, cancel := context.WithTimeout(ctx, c.Reconcile.OperationTimeout)
	defer cancel()
	start := time.Now()
	res, err := d.rec.Reconcile(rctx, kind, ns, name, desired)
	if err != nil && ctx.Err() != nil {
		// Interrupted by shutdown, not failed: the record was saved before
		// every step, so the next run (or leader) goes on from there.
		d.log.Debug("pass interrupted by shutdown", "resource", key, "err", err)
		return 0
	}
	d.metrics.observeReconcile(kind, time.Since(start), err)
	if err != nil {
		d.log.Warn("reconcile failed; will retry", "resource", key, "err", err)
	}
	if err == nil || res.Record != nil {
		d.gate.observe(key, res.Record)
	}
	d.mu.Lock()
	d.noteFailure(key, res.Record, err)
	if res.Record != nil {
		prev := d.records[key]
		d.metrics.observeRecord(prev, res.Record)
		d.records[key] = res.Record
		d.dirty = true
	}
	done := removed && (res.Record == nil || (res.Record.Operation == nil && res.Record.Common().LifecycleState == "DELETED"))
	if done {
		delete(d.removed, key)
	}
	d.mu.Unlock()
	if done {
		return 0
	}
	if err != nil {
		return max(res.RequeueAfter, 2*time.Second)
	}
	return res.RequeueAfter
}

// noteFailure keeps the error of a resource that has no record (e.g. its
// namespace is forbidden to the daemon's ServiceAccount), so the status
// branch says why nothing happens. Callers hold d.mu.
func (d *Daemon) noteFailure(key string, rec *lifecycle.Record, err error) {
	msg := ""
	if err != nil && rec == nil && d.records[key] == nil {
		msg = err.Error()
	}
	if d.failures[key] != msg {
		if msg == "" {
			delete(d.failures, key)
		} else {
			d.failures[key] = msg
		}
		d.dirty = true
	}
}

// publishLoop writes the status branch when records changed, at most
// once per interval.
func (d *Daemon) publishLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.publish(ctx)
		}
	}
}

// publish writes one status commit if anything changed.
func (d *Daemon) publish(ctx context.Context) {
	d.mu.Lock()
	if !d.dirty || d.commit == "" {
		d.mu.Unlock()
		return
	}
	d.dirty = false
	recs := make([]*lifecycle.Record, 0, len(d.records))
	for _, r := range d.records {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool {
		return Key(recs[i].Kind, recs[i].Namespace, recs[i].Name) < Key(recs[j].Kind, recs[j].Namespace, recs[j].Name)
	})
	problems := map[string][]string{}
	var orphans []string // problems of resources without a record: no file of their own
	for k, v := range d.problems {
		problems[k] = v
		if d.records[k] == nil {
			orphans = append(orphans, v...)
		}
	}
	for k, msg := range d.failures {
		orphans = append(orphans, fmt.Sprintf("%s: reconcile failed: %s", k, msg))
	}
	sort.Strings(orphans)
	desiredCommit := map[string]string{}
	for k, v := range d.desired {
		desiredCommit[k] = v.Source.Commit
	}
	sum := Summary{SourceCommit: d.commit, Problems: append(append([]string(nil), d.global...), orphans...), Generated: time.Now(),
		Warnings: maps.Clone(d.warnings)}
	d.mu.Unlock()

	if d.published != nil {
		// Every pass marks the records dirty; rendered at the last write's
		// time, unchanged files mean nothing a person reads changed, and the
		// README's time alone must not make a commit on every pass.
		prev := sum
		prev.Generated = d.publishedAt
		if same, err := StatusFiles(recs, problems, desiredCommit, prev); err == nil && maps.EqualFunc(same, d.published, bytes.Equal) {
			return
		}
	}
	files, err := StatusFiles(recs, problems, desiredCommit, sum)
	if err != nil {
		d.log.Error("cannot render status files", "err", err)
		return
	}
	counts := countStates(recs, problems)
	msg := commitMessage(d.cfg.Current().Status.MessageTemplate, sum.SourceCommit, counts)
	start := time.Now()
	res, err := d.writer.WriteMessage(ctx, files, sum.SourceCommit, msg)
	d.metrics.observeStatusWrite(time.Since(start), err)
	if err != nil {
		d.log.Warn("status branch write failed; will retry", "err", err)
		d.mu.Lock()
		d.dirty = true
		d.mu.Unlock()
		return
	}
	if res.Changed {
		d.log.Info("status branch written", "commit", res.Commit, "source", short(sum.SourceCommit))
	}
	d.published, d.publishedAt = files, sum.Generated
	d.ready.Store(true)
}

type stateCounts struct{ Resources, Changed, Failed int }

func countStates(recs []*lifecycle.Record, problems map[string][]string) stateCounts {
	var c stateCounts
	for _, r := range recs {
		c.Resources++
		st := r.Common().LifecycleState
		if r.Operation != nil {
			c.Changed++
		}
		if st == "FAILED" || len(problems[Key(r.Kind, r.Namespace, r.Name)]) > 0 {
			c.Failed++
		}
	}
	return c
}

// commitMessage renders status.messageTemplate; on error, a plain message.
func commitMessage(tmpl, source string, c stateCounts) string {
	data := struct {
		SourceCommit               string
		Resources, Changed, Failed int
	}{short(source), c.Resources, c.Changed, c.Failed}
	t, err := template.New("m").Parse(tmpl)
	if err == nil {
		var b strings.Builder
		if err = t.Execute(&b, data); err == nil {
			return b.String()
		}
	}
	return fmt.Sprintf("status for %s: %d resources, %d changed, %d failed", data.SourceCommit, c.Resources, c.Changed, c.Failed)
}

// redact drops credentials from a URL for logs.
func redact(u string) string { return config.RedactURL(u) }

// sessionClusterConfig is the flinkConfiguration of a session job's session
// cluster in the render (nil for a deployment, or when the cluster is not
// valid in this render).
func sessionClusterConfig(res *render.Result, r render.Resource) v1beta1.FlinkConfiguration {
	if r.SessionJob == nil {
		return nil
	}
	c, ok := res.Lookup(render.Key{Kind: v1beta1.KindFlinkDeployment, Namespace: r.SessionJob.Namespace, Name: r.SessionJob.Spec.DeploymentName})
	if !ok {
		return nil
	}
	return c.Deployment.Spec.FlinkConfiguration
}

// jarCache opens the session job jar cache: the configured directory, or
// flink-gitops/jars under the user cache directory (the temp directory
// where there is none, as in a container without HOME).
func jarCache(c config.ArtifactCache) (*artifact.Cache, error) {
	if c.Directory != "" {
		cache, err := artifact.NewCache(c.Directory, c.MaxBytes)
		if err != nil {
			return nil, fmt.Errorf("artifacts.cache.directory: %w", err)
		}
		return cache, nil
	}
	if base, err := os.UserCacheDir(); err == nil {
		if cache, err := artifact.NewCache(filepath.Join(base, "flink-gitops", "jars"), c.MaxBytes); err == nil {
			return cache, nil
		}
	}
	return artifact.NewCache(filepath.Join(os.TempDir(), "flink-gitops-jars"), c.MaxBytes) // read-only root, no HOME
}
