package render

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// OtherKinds says what to do with objects that are neither FlinkDeployment
// nor FlinkSessionJob.
type OtherKinds string

// OtherKinds policies.
const (
	// OtherKindsIgnore drops them with a warning (the default).
	OtherKindsIgnore OtherKinds = "ignore"
	// OtherKindsError makes each of them a problem.
	OtherKindsError OtherKinds = "error"
)

// DefaultMaxFileSize is the largest file a build may read (4 MiB).
const DefaultMaxFileSize = 4 << 20

// DefaultTestedVersions are the Flink versions the test bed runs, 1.18 to
// 2.3 (the version contract suite, make test-matrix, runs on each). Every
// other version the operator supports (v1_15 to v1_17, v2_4) is accepted with
// a warning; v1_13 and v1_14 are refused, as the operator refuses them.
var DefaultTestedVersions = []v1beta1.FlinkVersion{
	v1beta1.FlinkV1_18, v1beta1.FlinkV1_19, v1beta1.FlinkV1_20,
	v1beta1.FlinkV2_0, v1beta1.FlinkV2_1, v1beta1.FlinkV2_2, v1beta1.FlinkV2_3,
}

// DefaultJarURISchemes are the jarURI schemes accepted when Options does not
// say otherwise: a jar in the image, or one the cluster fetches itself.
var DefaultJarURISchemes = []string{"local", "file", "https", "http", "s3", "s3a", "s3p", "gs", "hdfs", "abfs", "abfss", "wasb", "wasbs", "oss"}

// Options configures a render. The daemon fills it from its config file.
type Options struct {
	// EntryPoints are directories holding a kustomization, relative to the
	// repository root; path.Match globs and "**" (any number of
	// directories) are allowed.
	EntryPoints []string
	// DefaultNamespace is given to objects without a namespace.
	DefaultNamespace string
	// AllowedNamespaces is the allow-list; empty or "*" allows any namespace.
	AllowedNamespaces []string
	// DefaultConfiguration is the daemon's Flink configuration merged under
	// every spec's flinkConfiguration; validation sees the merged result
	// (e.g. a checkpoint directory given only there). Flat keys.
	DefaultConfiguration map[string]string
	// OtherKinds is the policy for other kinds (default ignore).
	OtherKinds OtherKinds
	// TestedVersions of Flink (default DefaultTestedVersions); others get a warning.
	TestedVersions []v1beta1.FlinkVersion
	// JarURISchemes allowed in job.jarURI (default DefaultJarURISchemes).
	JarURISchemes []string
	// MaxFileSize is the largest file a build may read (default DefaultMaxFileSize).
	MaxFileSize int64
	// UnsupportedFields are dotted field paths of the v1beta1 schema that
	// a resource may not set (e.g. "spec.ingress"): one that does is invalid
	// with a clear problem. The fields the daemon accepts without acting on
	// them are warned about instead (FieldRules).
	UnsupportedFields []string
	// DefaultMode is the mode of specs that set none, as the reconciler
	// applies it (empty: standalone).
	DefaultMode v1beta1.DeploymentMode
	// Check, when set, runs on every FlinkDeployment that passed validation
	// (its spec a copy, with DefaultMode applied) with the daemon's default
	// configuration; a problem makes the resource invalid. The daemon passes
	// the cluster object builder, so what passes render is what the
	// reconciler can build and apply. It must be a top-level function (the
	// decode cache is keyed by the options, the function included).
	Check func(d *v1beta1.FlinkDeployment, defaults map[string]string) *FieldProblem
	// MaxInputBytes is the most one entry point may read (default
	// DefaultMaxInputBytes).
	MaxInputBytes int64
	// MaxYAMLNodes is the most YAML nodes, aliases expanded, the YAML files
	// of one entry point may hold (default DefaultMaxYAMLNodes).
	MaxYAMLNodes int
	// MaxDepth is the deepest nesting of a YAML file (default DefaultMaxDepth).
	MaxDepth int
	// MaxObjects is the most objects one entry point may produce (default
	// DefaultMaxObjects).
	MaxObjects int
	// BuildTimeout bounds one entry point's build (default
	// DefaultBuildTimeout); a build that overruns is a problem on its entry
	// point and never holds up the next render.
	BuildTimeout time.Duration
	// Artifacts is the fetch policy for session job jars, which the daemon
	// downloads itself; validation refuses a jarURI it would refuse.
	Artifacts ArtifactPolicy
	// PodPolicy limits the pod templates (the zero value is baseline Pod
	// Security with no service account allow-list and no forbidden Secrets).
	PodPolicy PodPolicy
	// MinPeriodicInterval is the shortest interval between two periodic
	// savepoints or checkpoints a spec may ask for (0: no floor).
	MinPeriodicInterval time.Duration
	// RESTTLS says which TLS material the daemon has of its own for
	// clusters that enable REST SSL without naming a Secret.
	RESTTLS RESTTLSDefaults
}

// FieldProblem is a problem with one field of a resource, as Options.Check
// reports it.
type FieldProblem struct {
	Field, Message, Fix string
}

func (o Options) withDefaults() Options {
	if o.OtherKinds == "" {
		o.OtherKinds = OtherKindsIgnore
	}
	if len(o.TestedVersions) == 0 {
		o.TestedVersions = DefaultTestedVersions
	}
	if len(o.JarURISchemes) == 0 {
		o.JarURISchemes = DefaultJarURISchemes
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = DefaultMaxInputBytes
	}
	if o.MaxYAMLNodes <= 0 {
		o.MaxYAMLNodes = DefaultMaxYAMLNodes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxObjects <= 0 {
		o.MaxObjects = DefaultMaxObjects
	}
	if o.BuildTimeout <= 0 {
		o.BuildTimeout = DefaultBuildTimeout
	}
	return o
}

// Problem is one thing wrong with the repository, located as precisely as
// possible, with what to do about it.
type Problem struct {
	// EntryPoint is the entry point being rendered ("" for config-level problems).
	EntryPoint string
	// File is the repository path of the offending file, if known.
	File string
	// Resource is "Kind namespace/name" when the problem is about one object.
	Resource string
	// Field is the path of the offending field (e.g. spec.job.parallelism).
	Field string
	// Message says what is wrong.
	Message string
	// Fix says what to do.
	Fix string
}

// String renders the problem on one line.
func (p Problem) String() string {
	var b strings.Builder
	loc := p.EntryPoint
	if loc == "" {
		// The repository root is the entry point "" (shown as its path,
		// "."); only the entry point list itself is a config problem.
		loc = "."
		if p.Field == "entryPoints" {
			loc = "(config)"
		}
	}
	b.WriteString(loc)
	if p.File != "" {
		b.WriteString(": " + p.File)
	}
	if p.Resource != "" {
		b.WriteString(": " + p.Resource)
	}
	if p.Field != "" {
		b.WriteString(": " + p.Field)
	}
	b.WriteString(": " + p.Message)
	if p.Fix != "" {
		b.WriteString(" (fix: " + p.Fix + ")")
	}
	// One problem, one line: multi-line messages (YAML errors) are folded.
	return strings.Join(strings.Fields(b.String()), " ")
}

// Key identifies a resource in the cluster.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// String renders the key as "Kind namespace/name".
func (k Key) String() string { return fmt.Sprintf("%s %s/%s", k.Kind, k.Namespace, k.Name) }

// Resource is one rendered, valid FlinkDeployment or FlinkSessionJob.
// Exactly one of Deployment and SessionJob is set. The objects are shared
// with the Renderer's cache and later Results: treat them as read-only
// (copy before changing).
type Resource struct {
	// EntryPoint that produced it.
	EntryPoint string
	// File that declared it (repository path), if kustomize recorded it.
	File string
	// Deployment is set for a FlinkDeployment.
	Deployment *v1beta1.FlinkDeployment
	// SessionJob is set for a FlinkSessionJob.
	SessionJob *v1beta1.FlinkSessionJob
	// Snapshot is set for a FlinkStateSnapshot (see snapshot.go).
	Snapshot *v1beta1.FlinkStateSnapshot
	// Hash is the stable hash of the normalised spec (see SpecHash).
	Hash string
}

// Key returns the resource's identity.
func (r Resource) Key() Key {
	if r.Deployment != nil {
		return Key{v1beta1.KindFlinkDeployment, r.Deployment.Namespace, r.Deployment.Name}
	}
	if r.Snapshot != nil {
		return Key{v1beta1.KindFlinkStateSnapshot, r.Snapshot.Namespace, r.Snapshot.Name}
	}
	return Key{v1beta1.KindFlinkSessionJob, r.SessionJob.Namespace, r.SessionJob.Name}
}

// EntryResult is what one entry point produced.
type EntryResult struct {
	// EntryPoint is the repository-relative directory.
	EntryPoint string
	// Failed is true when the entry point could not be built at all; its
	// resources are then unknown, and callers must not treat them as removed.
	Failed bool
	// Cached is true when the build was reused from the previous render.
	Cached bool
	// Keys of every Flink resource the entry point declared, valid or not.
	Keys []Key
}

// Result is the outcome of rendering a snapshot.
type Result struct {
	// Resources are the valid resources, sorted by key.
	Resources []Resource
	// Invalid are resources declared in the repository but rejected by
	// validation: callers keep what is deployed for them and report.
	Invalid []Key
	// EntryPoints in sorted order.
	EntryPoints []EntryResult
	// Problems are errors, sorted by entry point, file and field.
	Problems []Problem
	// Warnings do not block anything (ignored kinds, unknown operator keys).
	Warnings []Problem
	// Built and Reused count the entry points built and taken from the cache.
	Built, Reused int
}

// OK reports whether the render found no problems.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// Lookup returns the valid resource with key k (Resources are sorted by
// key, so this is a binary search).
func (r *Result) Lookup(k Key) (Resource, bool) {
	i := sort.Search(len(r.Resources), func(i int) bool { return !keyLess(r.Resources[i].Key(), k) })
	if i < len(r.Resources) && r.Resources[i].Key() == k {
		return r.Resources[i], true
	}
	return Resource{}, false
}
