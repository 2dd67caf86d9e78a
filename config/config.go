package config

import "time"

// Config is the daemon's whole configuration. Field comments say what a key
// does and whether a change applies live or needs a restart; Default holds
// every default value.
type Config struct {
	// Git is the watched repository (desired state).
	Git Git `koanf:"git"`
	// Status is where the daemon publishes what happened.
	Status Status `koanf:"status"`
	// Webhook is the push (and pull-request) webhook receiver.
	Webhook Webhook `koanf:"webhook"`
	// PullRequests are the pull-request comments: a plan before the merge,
	// the result after the reconcile.
	PullRequests PullRequests `koanf:"pullRequests"`
	// Kubernetes is how the daemon reaches the cluster and where it may act.
	Kubernetes Kubernetes `koanf:"kubernetes"`
	// Flink holds defaults for every Flink cluster and how to reach its REST API.
	Flink Flink `koanf:"flink"`
	// Reconcile tunes the reconcile loop.
	Reconcile Reconcile `koanf:"reconcile"`
	// Render bounds each entry point's build (the repository is untrusted).
	Render Render `koanf:"render"`
	// Artifacts is the fetch policy for session job jars.
	Artifacts Artifacts `koanf:"artifacts"`
	// PodPolicy limits what the pod templates of specs may ask for.
	PodPolicy PodPolicy `koanf:"podPolicy"`
	// LeaderElection makes sure only one replica acts at a time.
	LeaderElection LeaderElection `koanf:"leaderElection"`
	// Server is the HTTP listener for /metrics, /healthz and /readyz.
	Server Server `koanf:"server"`
	// Log configures logging.
	Log Log `koanf:"log"`
}

// Git configures the watched repository.
type Git struct {
	// URL of the repository: https://… or ssh://… (or user@host:path). Restart.
	URL string `koanf:"url"`
	// Branch that holds the desired state. Restart.
	Branch string `koanf:"branch"`
	// EntryPoints are Kustomize directories, paths or globs relative to the
	// repository root, each built on its own. Live.
	EntryPoints []string `koanf:"entryPoints"`
	// PollInterval between two ls-remote calls (jitter is added). Live.
	PollInterval time.Duration `koanf:"pollInterval"`
	// Timeout of one git network operation. Restart.
	Timeout time.Duration `koanf:"timeout"`
	// MaxSnapshotBytes caps the files of one commit held in memory; a
	// fetch is refused while it runs once its pack or the sizes its
	// objects inflate to pass 1.25 times this. Restart.
	MaxSnapshotBytes int64 `koanf:"maxSnapshotBytes"`
	// Auth holds credentials; secrets are read from files, never inline.
	Auth GitAuth `koanf:"auth"`
	// Verify, when set, accepts only commits signed by one of these keys.
	Verify GitVerify `koanf:"verify"`
}

// GitAuth holds the references to git credentials. Restart.
type GitAuth struct {
	// Username for HTTPS basic auth (token auth ignores it on most forges).
	Username string `koanf:"username"`
	// TokenFile holds the HTTPS password or access token.
	TokenFile string `koanf:"tokenFile"`
	// SSHKeyFile is a private key for ssh:// URLs.
	SSHKeyFile string `koanf:"sshKeyFile"`
	// SSHKeyPassphraseFile holds the private key's passphrase, if any.
	SSHKeyPassphraseFile string `koanf:"sshKeyPassphraseFile"`
	// KnownHostsFile is required with SSH: host keys are always checked.
	KnownHostsFile string `koanf:"knownHostsFile"`
}

// GitVerify configures commit signature verification. Restart: the keys
// are loaded when the daemon starts.
type GitVerify struct {
	// OpenPGPKeyFiles are armored public keys; a commit signed by any passes.
	OpenPGPKeyFiles []string `koanf:"openpgpKeyFiles"`
	// SSHAllowedSignersFile is in ssh-keygen's allowed_signers format.
	SSHAllowedSignersFile string `koanf:"sshAllowedSignersFile"`
}

// Status configures the status branch writer.
type Status struct {
	// Branch the daemon commits status to; never the watched branch. Restart.
	Branch string `koanf:"branch"`
	// AuthorName of status commits. Restart.
	AuthorName string `koanf:"authorName"`
	// AuthorEmail of status commits. Restart.
	AuthorEmail string `koanf:"authorEmail"`
	// MessageTemplate is a text/template for the commit message; it sees
	// .SourceCommit, .Resources, .Changed, .Failed. Live.
	MessageTemplate string `koanf:"messageTemplate"`
}

// Webhook configures the webhook receiver. Listen needs a restart; the
// secret files (paths and contents) and maxBodyBytes apply live.
type Webhook struct {
	// Listen address, e.g. ":9292"; empty disables the receiver. Restart.
	Listen string `koanf:"listen"`
	// MaxBodyBytes caps a delivery's body. Live.
	MaxBodyBytes int64 `koanf:"maxBodyBytes"`
	// Secrets per provider, each a file path.
	Secrets WebhookSecrets `koanf:"secrets"`
}

// WebhookSecrets names the files holding each provider's shared secret. A
// delivery is checked only against the secret of the provider its headers
// name; a provider without a file is refused. Live: the files are re-read
// when they (or these paths) change.
type WebhookSecrets struct {
	// GitHubFile holds the HMAC key of X-Hub-Signature-256.
	GitHubFile string `koanf:"githubFile"`
	// GiteaFile holds the HMAC key of X-Gitea-Signature.
	GiteaFile string `koanf:"giteaFile"`
	// GitLabFile holds the token GitLab sends in X-Gitlab-Token.
	GitLabFile string `koanf:"gitlabFile"`
	// GenericFile holds the HMAC key of the generic X-Signature-256 header.
	GenericFile string `koanf:"genericFile"`
}

// PullRequests configures the pull-request comments. All live: a change
// makes a new forge client from the next report on.
type PullRequests struct {
	// Enabled turns the comments on.
	Enabled bool `koanf:"enabled"`
	// Provider is the forge: github or gitea.
	Provider string `koanf:"provider"`
	// APIURL is the API base URL: empty means https://api.github.com/ for
	// github; https://HOST/api/v3/ for GitHub Enterprise; the server's URL
	// (https://HOST/) for gitea, where it is required.
	APIURL string `koanf:"apiURL"`
	// Owner and Repository name the repository on the forge.
	Owner      string `koanf:"owner"`
	Repository string `koanf:"repository"`
	// TokenFile holds the API token (re-read when it changes).
	TokenFile string `koanf:"tokenFile"`
	// PollInterval is the fallback poll for pull requests whose webhook
	// was missed (pull_request webhooks report at once).
	PollInterval time.Duration `koanf:"pollInterval"`
	// Timeout of one API call.
	Timeout time.Duration `koanf:"timeout"`
}

// Kubernetes configures the cluster connection.
type Kubernetes struct {
	// Kubeconfig path; empty means in-cluster configuration. Restart.
	Kubeconfig string `koanf:"kubeconfig"`
	// Context in the kubeconfig; empty means its current context. Restart.
	Context string `koanf:"context"`
	// QPS and Burst of the client-go rate limiter. Restart.
	QPS   float64 `koanf:"qps"`
	Burst int     `koanf:"burst"`
	// AllowedNamespaces the repository may deploy into; "*" allows all. Live.
	AllowedNamespaces []string `koanf:"allowedNamespaces"`
	// DefaultNamespace for resources that name none. Live.
	DefaultNamespace string `koanf:"defaultNamespace"`
}

// Flink holds Flink defaults and REST access.
type Flink struct {
	// RESTURLTemplate is a text/template with .Name and .Namespace giving the
	// JobManager REST base URL. Live.
	RESTURLTemplate string `koanf:"restURLTemplate"`
	// RequestTimeout of one REST call. Live.
	RequestTimeout time.Duration `koanf:"requestTimeout"`
	// DefaultConfiguration is merged under every spec's flinkConfiguration
	// (the spec wins). Flat ("a.b.c": v) or nested YAML. Live.
	DefaultConfiguration map[string]string `koanf:"defaultConfiguration"`
	// DefaultMode for specs that set none: standalone or native. Live.
	DefaultMode string `koanf:"defaultMode"`
	// TLS is the daemon's own TLS material for JobManagers whose REST API
	// speaks HTTPS (security.ssl.rest.enabled) and whose spec names no
	// Secret (flink-gitops.rest.tls.secret). Live.
	TLS FlinkTLS `koanf:"tls"`
}

// FlinkTLS names PEM files (mounted Secrets) the daemon reads when it
// connects; a rotated file is picked up at the next connection.
type FlinkTLS struct {
	// CAFile holds the CA certificates JobManagers' REST certificates are
	// verified with.
	CAFile string `koanf:"caFile"`
	// CertFile and KeyFile are the client certificate and key presented to
	// JobManagers with security.ssl.rest.authentication-enabled.
	CertFile string `koanf:"certFile"`
	KeyFile  string `koanf:"keyFile"`
}

// Reconcile tunes the reconcile loop. All live.
type Reconcile struct {
	// Concurrency is the number of resources reconciled at once.
	Concurrency int `koanf:"concurrency"`
	// ResyncInterval is how often every resource is observed at rest.
	ResyncInterval time.Duration `koanf:"resyncInterval"`
	// FastPollInterval is how often Flink is polled while an operation
	// (savepoint, upgrade, deploy) is in flight.
	FastPollInterval time.Duration `koanf:"fastPollInterval"`
	// OperationTimeout bounds one step of an operation before it is reported.
	OperationTimeout time.Duration `koanf:"operationTimeout"`
	// MinPeriodicInterval is the least time between two periodic savepoints
	// or checkpoints: a spec whose interval or cron asks for more is
	// refused in validation, and the reconciler never fires more often
	// (also when the floor is raised after a spec was accepted).
	MinPeriodicInterval time.Duration `koanf:"minPeriodicInterval"`
	// MaxConcurrentUpgrades bounds the upgrades (and restarts) in flight at
	// once across every resource; a resource over the bound waits, and its
	// status says so. 0: no bound.
	MaxConcurrentUpgrades int `koanf:"maxConcurrentUpgrades"`
	// MaxConcurrentUpgradesPerNamespace bounds them per namespace. 0: no bound.
	MaxConcurrentUpgradesPerNamespace int `koanf:"maxConcurrentUpgradesPerNamespace"`
}

// PodPolicy limits the pod templates of FlinkDeployments. All live: a
// change re-validates every spec.
type PodPolicy struct {
	// Level is the Kubernetes Pod Security Standards level the pod templates
	// must meet: privileged, baseline or restricted.
	Level string `koanf:"level"`
	// AllowedServiceAccounts are the service accounts Flink pods may run as
	// (spec.serviceAccount and pod templates' serviceAccountName). Empty:
	// any spec.serviceAccount, and a pod template may only repeat it.
	AllowedServiceAccounts []string `koanf:"allowedServiceAccounts"`
	// ForbiddenSecrets are Secrets no Flink pod may mount or read through
	// env: the daemon's own credentials (git token, webhook secrets, forge
	// token), so a push cannot hand them to a job.
	ForbiddenSecrets []string `koanf:"forbiddenSecrets"`
}

// Render holds the per-entry-point budgets of a render. All live. A budget
// exceeded is a problem on that entry point, never a crash.
type Render struct {
	// MaxFileBytes is the largest file a build may read.
	MaxFileBytes int64 `koanf:"maxFileBytes"`
	// MaxInputBytes is the most one entry point may read in total.
	MaxInputBytes int64 `koanf:"maxInputBytes"`
	// MaxYAMLNodes is the most YAML nodes (aliases expanded) an entry
	// point's YAML may hold.
	MaxYAMLNodes int `koanf:"maxYAMLNodes"`
	// MaxDepth is the deepest nesting of maps and lists in a YAML file.
	MaxDepth int `koanf:"maxDepth"`
	// MaxObjects is the most objects one entry point may produce.
	MaxObjects int `koanf:"maxObjects"`
	// BuildTimeout bounds one entry point's Kustomize build.
	BuildTimeout time.Duration `koanf:"buildTimeout"`
}

// Artifacts is the fetch policy for session job jars, which the daemon
// downloads itself and uploads to the session cluster (like the operator's
// kubernetes.operator.user.artifacts.*). All live.
type Artifacts struct {
	// AllowedSchemes among https, http and file.
	AllowedSchemes []string `koanf:"allowedSchemes"`
	// FileDirectory is the absolute directory file:// jars must be in;
	// empty refuses file:// jars.
	FileDirectory string `koanf:"fileDirectory"`
	// AllowPrivateHosts allows hosts resolving to loopback, private,
	// link-local (cloud metadata) and other non-public addresses.
	AllowPrivateHosts bool `koanf:"allowPrivateHosts"`
	// AllowedHosts are host names or CIDRs exempt from the address check.
	AllowedHosts []string `koanf:"allowedHosts"`
	// MaxBytes caps one jar download.
	MaxBytes int64 `koanf:"maxBytes"`
	// Timeout bounds one jar download.
	Timeout time.Duration `koanf:"timeout"`
	// S3 is where s3://, s3a:// and s3p:// jars come from (AWS S3 or an
	// S3-compatible store).
	S3 ObjectStore `koanf:"s3"`
	// GCS is where gs:// jars come from, through GCS's S3-compatible XML
	// API with HMAC keys.
	GCS ObjectStore `koanf:"gcs"`
	// Headers are HTTP headers the daemon sends to one host only, each
	// written host:Header-Name:/path/to/value-file (a mounted Secret; the
	// file is read at every fetch, so a rotated Secret applies).
	Headers []string `koanf:"headers"`
	// CAFile is a PEM file of extra CA certificates for https artifact
	// servers (e.g. an internal repository's), trusted besides the system's.
	CAFile string `koanf:"caFile"`
	// Maven resolves maven:groupId:artifactId:version[:classifier] jarURIs.
	Maven MavenArtifacts `koanf:"maven"`
	// Cache keeps fetched jars on disk by digest. Restart.
	Cache ArtifactCache `koanf:"cache"`
}

// MavenArtifacts configures maven: jarURIs.
type MavenArtifacts struct {
	// Repositories are repository base URLs, tried in order (trusted:
	// exempt from the address check). Empty refuses maven: jarURIs.
	Repositories []string `koanf:"repositories"`
}

// ArtifactCache bounds the on-disk jar cache.
type ArtifactCache struct {
	// Directory holds the cache (default: the user cache directory's
	// flink-gitops/jars, or the temp directory).
	Directory string `koanf:"directory"`
	// MaxBytes bounds the cache; least recently used jars go first.
	MaxBytes int64 `koanf:"maxBytes"`
}

// ObjectStore configures one object store session job jars may come from.
// The endpoint comes only from here, never from a spec; only the buckets
// (and prefixes) in AllowedBuckets are read.
type ObjectStore struct {
	// Endpoint overrides the store's URL (MinIO, Ceph, versitygw; GCS
	// defaults to https://storage.googleapis.com); empty is AWS S3.
	Endpoint string `koanf:"endpoint"`
	// Region signs requests (GCS defaults to auto); empty for S3 takes the
	// SDK's environment (AWS_REGION, shared config).
	Region string `koanf:"region"`
	// PathStyle addresses buckets as endpoint/bucket/key rather than
	// bucket.endpoint/key (most S3-compatible stores need it).
	PathStyle bool `koanf:"pathStyle"`
	// AccessKeyIDFile and SecretAccessKeyFile name files (a mounted Secret)
	// holding the key pair, read again every 5 minutes (rotation needs no
	// restart); both empty uses the SDK's default chain (environment,
	// shared files, IRSA, instance role).
	AccessKeyIDFile     string `koanf:"accessKeyIDFile"`
	SecretAccessKeyFile string `koanf:"secretAccessKeyFile"`
	// AllowedBuckets are the buckets jars may be read from, "bucket" or
	// "bucket/prefix/"; required, since the daemon's credentials may read
	// more than jars.
	AllowedBuckets []string `koanf:"allowedBuckets"`
}

// LeaderElection configures the Lease based leader election. Restart.
type LeaderElection struct {
	Enabled       bool          `koanf:"enabled"`
	LeaseName     string        `koanf:"leaseName"`
	Namespace     string        `koanf:"namespace"`
	LeaseDuration time.Duration `koanf:"leaseDuration"`
	RenewDeadline time.Duration `koanf:"renewDeadline"`
	RetryPeriod   time.Duration `koanf:"retryPeriod"`
}

// Server configures the metrics and health listener. Restart.
type Server struct {
	// Listen address for /metrics, /healthz and /readyz; empty disables it.
	Listen string `koanf:"listen"`
}

// Log configures logging. Live.
type Log struct {
	// Level: debug, info, warn or error.
	Level string `koanf:"level"`
	// Format: text or json. Restart.
	Format string `koanf:"format"`
}

// Default returns the configuration used for every key a source leaves out.
func Default() *Config {
	return &Config{
		Git: Git{
			Branch:           "main",
			PollInterval:     time.Minute,
			Timeout:          time.Minute,
			MaxSnapshotBytes: 256 << 20,
		},
		Status: Status{
			Branch:          "flink-gitops/status",
			AuthorName:      "flink-gitops",
			AuthorEmail:     "flink-gitops@localhost",
			MessageTemplate: "status for {{.SourceCommit}}: {{.Resources}} resources, {{.Changed}} changed, {{.Failed}} failed",
		},
		Webhook: Webhook{
			MaxBodyBytes: 1 << 20,
		},
		PullRequests: PullRequests{
			Provider:     "github",
			PollInterval: 5 * time.Minute,
			Timeout:      20 * time.Second,
		},
		Kubernetes: Kubernetes{
			QPS:              50,
			Burst:            100,
			DefaultNamespace: "default",
		},
		Flink: Flink{
			RESTURLTemplate: "http://{{.Name}}-rest.{{.Namespace}}:8081",
			RequestTimeout:  10 * time.Second,
			DefaultMode:     "standalone",
		},
		Reconcile: Reconcile{
			Concurrency:         4,
			ResyncInterval:      30 * time.Second,
			FastPollInterval:    500 * time.Millisecond,
			OperationTimeout:    5 * time.Minute,
			MinPeriodicInterval: time.Minute,
		},
		PodPolicy: PodPolicy{
			Level:            "baseline",
			ForbiddenSecrets: []string{"flink-gitops-git", "flink-gitops-webhook", "flink-gitops-forge"},
		},
		Render: Render{
			MaxFileBytes:  4 << 20,
			MaxInputBytes: 8 << 20,
			MaxYAMLNodes:  100_000,
			MaxDepth:      100,
			MaxObjects:    1000,
			BuildTimeout:  15 * time.Second,
		},
		Artifacts: Artifacts{
			AllowedSchemes: []string{"https"},
			MaxBytes:       512 << 20,
			Timeout:        2 * time.Minute,
			Cache:          ArtifactCache{MaxBytes: 2 << 30},
		},
		LeaderElection: LeaderElection{
			LeaseName:     "flink-gitops",
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
		},
		Server: Server{Listen: ":8080"},
		Log:    Log{Level: "info", Format: "text"},
	}
}

// RestartOnly lists the keys whose new value takes effect only after a
// restart; a live reload keeps their running value and logs a warning.
var RestartOnly = []string{
	"git.url", "git.branch", "git.auth", "git.timeout", "git.verify", "git.maxSnapshotBytes",
	"status.branch", "status.authorName", "status.authorEmail",
	"webhook.listen",
	"kubernetes.kubeconfig", "kubernetes.context", "kubernetes.qps", "kubernetes.burst",
	"leaderElection",
	"artifacts.cache",
	"server.listen",
	"log.format",
}
