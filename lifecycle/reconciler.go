package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/artifact"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Flink is what the reconciler needs from a JobManager's REST API;
// *flinkclient.Client satisfies it.
type Flink interface {
	Overview(ctx context.Context) (flinkclient.Overview, error)
	Jobs(ctx context.Context) ([]flinkclient.JobSummary, error)
	Job(ctx context.Context, jobID string) (flinkclient.JobDetails, error)
	Checkpoints(ctx context.Context, jobID string) (flinkclient.Checkpoints, error)
	Exceptions(ctx context.Context, jobID string, max int) (flinkclient.Exceptions, error)
	TriggerSavepoint(ctx context.Context, jobID string, opts flinkclient.SavepointOptions) (string, error)
	StopWithSavepoint(ctx context.Context, jobID string, opts flinkclient.StopOptions) (string, error)
	SavepointStatus(ctx context.Context, jobID, triggerID string) (flinkclient.Operation, error)
	Cancel(ctx context.Context, jobID string) error
	DisposeSavepoint(ctx context.Context, path string) (string, error)
	UploadJar(ctx context.Context, localPath string) (string, error)
	UploadJarFrom(ctx context.Context, name string, r io.Reader) (string, error)
	ListJars(ctx context.Context) ([]flinkclient.JarFile, error)
	DeleteJar(ctx context.Context, jarID string) error
	RunJar(ctx context.Context, jarID string, req flinkclient.JarRunRequest) (string, error)
	ResourceRequirements(ctx context.Context, jobID string) (flinkclient.ResourceRequirements, error)
	SetResourceRequirements(ctx context.Context, jobID string, req flinkclient.ResourceRequirements) error
}

// FlinkFor returns the REST client of the cluster name in namespace.
type FlinkFor func(namespace, name string) (Flink, error)

// Settings are the daemon settings the reconciler reads on every pass, so
// a config reload applies at once.
type Settings struct {
	// FlinkDefaults is merged under every spec's flinkConfiguration.
	FlinkDefaults map[string]string
	// FastPoll is the requeue interval while an operation is in flight.
	FastPoll time.Duration
	// Resync is the requeue interval at rest.
	Resync time.Duration
	// OperationTimeout bounds one phase before it is reported as stuck.
	OperationTimeout time.Duration
	// DefaultMode is the mode of specs that set none (flink.defaultMode);
	// empty means standalone.
	DefaultMode v1beta1.DeploymentMode
	// Artifacts is the fetch policy for session job jars (the zero value
	// allows public https only).
	Artifacts render.ArtifactPolicy
	// MinPeriodicInterval is the least time between two periodic
	// savepoints, whatever the spec's schedule says (0: no floor).
	MinPeriodicInterval time.Duration
}

// Desired is a rendered resource as the reconciler takes it.
type Desired struct {
	Deployment *v1beta1.FlinkDeployment
	SessionJob *v1beta1.FlinkSessionJob
	Snapshot   *v1beta1.FlinkStateSnapshot
	// Hash is the render hash of the spec; Source where it came from.
	Hash   string
	Source v1beta1.SourceRef
	// ClusterConfiguration is a session job's session cluster's
	// flinkConfiguration: as in the operator, it applies to the job under
	// the job's own keys (e.g. the cluster's savepoint directory or
	// periodic savepoint interval).
	ClusterConfiguration v1beta1.FlinkConfiguration
}

// Observe is passed as the desired spec of a resource whose spec is unknown
// this pass (its entry point failed to build, or Git is unreachable): an
// operation in flight carries on, the resource is observed, and nothing new
// is decided — in particular nothing is deleted.
var Observe = &Desired{}

func (d *Desired) observeOnly() bool {
	return d != nil && d.Deployment == nil && d.SessionJob == nil && d.Snapshot == nil
}

// Result tells the caller when to come back.
type Result struct {
	// RequeueAfter is when the resource wants its next pass.
	RequeueAfter time.Duration
	// Record is the status after the pass (nil once a deleted resource is
	// gone); callers publish it.
	Record *Record
}

// Reconciler drives Flink resources towards their desired specs. One
// Reconcile call makes at most a few steps and returns; the caller calls
// again after Result.RequeueAfter. Everything it needs to continue is in the
// status ConfigMap, so any Reconciler (a new process, another replica) can
// pick up where another stopped.
type Reconciler struct {
	Kube kubernetes.Interface
	// Cache, when set, answers reads of the daemon's own objects from
	// watches (see Cache); Store should share it.
	Cache    *Cache
	Store    *Store
	Flink    FlinkFor
	Events   *Events
	Log      *slog.Logger
	Settings func() Settings
	// Gate, when set, holds back upgrades beyond the configured number
	// in flight (see Gate).
	Gate Gate
	// Jars fetches session job jars (nil: no cache, temporary files).
	Jars *artifact.Fetcher
	// Now is the clock (tests replace it).
	Now func() time.Time

	jarSweeps jarSweeps // when each session cluster's jars were last swept
}

func (r *Reconciler) fetcher() *artifact.Fetcher {
	if r.Jars == nil {
		return &artifact.Fetcher{}
	}
	return r.Jars
}

// Reconcile makes one pass over the FlinkDeployment or FlinkSessionJob kind
// namespace/name. desired is nil when the resource is no longer in Git (the
// caller must be sure of that: a failed fetch or render is not a deletion).
func (r *Reconciler) Reconcile(ctx context.Context, kind, namespace, name string, desired *Desired) (Result, error) {
	rec, err := r.Store.Get(ctx, kind, namespace, name)
	if err != nil {
		return Result{}, err
	}
	if rec == nil {
		if desired == nil || desired.observeOnly() {
			return Result{}, nil // never deployed, gone from Git or unknown: nothing to do
		}
		rec = &Record{Kind: kind, Namespace: namespace, Name: name}
		switch kind {
		case KindDeployment:
			rec.Deployment = &v1beta1.FlinkDeploymentStatus{JobManagerDeploymentStatus: v1beta1.JMMissing}
		case KindSnapshot:
			rec.Snapshot = newSnapshotRecord()
		default:
			rec.SessionJob = &v1beta1.FlinkSessionJobStatus{}
		}
		rec.Common().LifecycleState = v1beta1.LifecycleCreated
		if err := r.Store.Save(ctx, rec); err != nil {
			return Result{}, err
		}
	}
	p := &pass{r: r, rec: rec, desired: desired, set: r.Settings(), log: r.Log.With("kind", kind, "namespace", namespace, "name", name)}
	if desired != nil && !desired.observeOnly() {
		p.log = p.log.With("commit", desired.Source.Commit)
	}
	var res Result
	switch kind {
	case KindDeployment:
		res, err = p.reconcileDeployment(ctx)
	case KindSnapshot:
		res, err = p.reconcileSnapshot(ctx)
	default:
		res, err = p.reconcileSessionJob(ctx)
	}
	if p.deleted {
		return Result{}, err
	}
	if serr := p.save(ctx); serr != nil && err == nil {
		err = serr
	}
	res.Record = rec
	return res, err
}

// pass is one Reconcile call's working state.
type pass struct {
	r       *Reconciler
	rec     *Record
	desired *Desired
	set     Settings
	log     *slog.Logger
	deleted bool
	dirty   bool
	// failed is set by fail: an error this pass found must not be cleared
	// by the same pass's settle.
	failed bool
	// jobLost: the session cluster answers but no longer knows the
	// session job's job (the cluster was redeployed or restarted).
	jobLost bool
}

// save persists the record if it changed since the last save.
func (p *pass) save(ctx context.Context) error {
	if !p.dirty {
		return nil
	}
	if err := p.r.Store.Save(ctx, p.rec); err != nil {
		return err
	}
	p.dirty = false
	return nil
}

// persist writes the record now: the write-ahead step before anything
// external happens.
func (p *pass) persist(ctx context.Context) error {
	p.dirty = true
	return p.save(ctx)
}

func (p *pass) now() time.Time {
	if p.r.Now != nil {
		return p.r.Now()
	}
	return time.Now()
}

// begin starts an operation and persists it.
func (p *pass) begin(ctx context.Context, op *Operation) error {
	now := p.now()
	op.Started, op.PhaseStarted = now, now
	p.rec.Operation = op
	p.rec.Common().Error = ""
	p.log.Info("operation started", "op", op.Kind, "phase", op.Phase, "upgradeMode", op.UpgradeMode)
	return p.persist(ctx)
}

// to moves the operation to the next phase and persists it.
func (p *pass) to(ctx context.Context, ph Phase) error {
	op := p.rec.Operation
	p.log.Info("step", "op", op.Kind, "from", op.Phase, "to", ph)
	op.Phase, op.PhaseStarted, op.Attempts, op.Message = ph, p.now(), 0, ""
	op.NextAttempt = time.Time{}
	return p.persist(ctx)
}

// finish ends the operation.
func (p *pass) finish(msg string) {
	if op := p.rec.Operation; op != nil {
		p.log.Info("operation finished", "op", op.Kind, "took", p.now().Sub(op.Started).Round(time.Millisecond), "msg", msg)
	}
	p.rec.Operation = nil
	p.dirty = true
}

// fail records an error that needs a human: the operation stops, the
// resource is FAILED, and the message says what to do.
func (p *pass) fail(ctx context.Context, reason, msg string) {
	p.log.Error("operation failed", "reason", reason, "err", msg)
	p.failed = true
	p.rec.Common().Error = msg
	p.rec.Common().LifecycleState = v1beta1.LifecycleFailed
	p.r.Events.Warn(ctx, p.rec, reason, msg)
	p.rec.Operation = nil
	p.dirty = true
}

// retry notes a transient failure of the current phase; the phase is tried
// again on the next pass.
func (p *pass) retry(err error) {
	op := p.rec.Operation
	op.Attempts++
	op.Message = err.Error()
	p.dirty = true
	p.log.Warn("step failed; will retry", "phase", op.Phase, "attempt", op.Attempts, "err", err)
}

// fast is the requeue while an operation is in flight.
func (p *pass) fast() Result { return Result{RequeueAfter: p.set.FastPoll} }

// rest is the requeue at rest.
func (p *pass) rest() Result { return Result{RequeueAfter: p.set.Resync} }

// conf returns a Flink configuration value of spec with the daemon defaults
// under it.
func (p *pass) conf(fc v1beta1.FlinkConfiguration, key string) string {
	if v, ok := fc[key]; ok {
		return v
	}
	if p.rec.Kind == KindSessionJob && p.desired != nil {
		if v, ok := p.desired.ClusterConfiguration[key]; ok {
			return v
		}
	}
	return p.set.FlinkDefaults[key]
}

func (p *pass) confBool(fc v1beta1.FlinkConfiguration, key string, def bool) bool {
	if b, err := strconv.ParseBool(p.conf(fc, key)); err == nil {
		return b
	}
	return def
}

func (p *pass) confDuration(fc v1beta1.FlinkConfiguration, key string, def time.Duration) time.Duration {
	if d, err := parseFlinkDuration(p.conf(fc, key)); err == nil && d > 0 {
		return d
	}
	return def
}

// parseFlinkDuration parses Flink's durations: Go syntax, a bare number of
// milliseconds, or a number with one of Flink's unit words.
func parseFlinkDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if d, ok := parseISODuration(s); ok {
		return d, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	unit := s[i:]
	for len(unit) > 0 && unit[0] == ' ' {
		unit = unit[1:]
	}
	switch strings.ToLower(unit) {
	case "ns", "nano", "nanos", "nanosecond", "nanoseconds":
		return time.Duration(n), nil
	case "µs", "us", "micro", "micros", "microsecond", "microseconds":
		return time.Duration(n) * time.Microsecond, nil
	case "", "ms", "milli", "millis", "millisecond", "milliseconds":
		return time.Duration(n) * time.Millisecond, nil
	case "s", "sec", "secs", "second", "seconds":
		return time.Duration(n) * time.Second, nil
	case "min", "mins", "minute", "minutes", "m":
		return time.Duration(n) * time.Minute, nil
	case "h", "hour", "hours":
		return time.Duration(n) * time.Hour, nil
	case "d", "day", "days":
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("%q is not a duration", s)
}

// specJSON is how specs are kept in lastReconciledSpec and TargetSpec.
func specJSON(spec any) string {
	b, _ := json.Marshal(spec)
	return string(b)
}
