package render

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// MaxNameLength is the operator's limit on resource names: Flink derives
// Kubernetes object names (Services, ConfigMaps) from it.
const MaxNameLength = 45

var namePattern = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$`)

// Config keys the validator reads.
const (
	keyCheckpointDir       = "execution.checkpointing.dir"
	keyCheckpointDirLegacy = "state.checkpoints.dir"
	keySavepointDir        = "execution.checkpointing.savepoint-dir"
	keySavepointDirLegacy  = "state.savepoints.dir"
	keyHAType              = "high-availability.type"
	keyHALegacy            = "high-availability"
	keyPeriodicSavepoint   = "kubernetes.operator.periodic.savepoint.interval"
	keyRollbackEnabled     = "kubernetes.operator.deployment.rollback.enabled"
	keyMaxCheckpointAge    = "kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age"
	operatorPrefix         = "kubernetes.operator."
	flinkGitOpsPrefix      = "flink-gitops."
)

// allowedLogFiles are the logConfiguration keys the operator accepts.
var allowedLogFiles = []string{"log4j-console.properties", "logback-console.xml"}

func confFirst(c v1beta1.FlinkConfiguration, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(c[k]); v != "" {
			return v
		}
	}
	return ""
}

// haEnabled reports whether Flink high availability is switched on.
func haEnabled(c v1beta1.FlinkConfiguration) bool {
	v := strings.ToLower(confFirst(c, keyHAType, keyHALegacy))
	return v != "" && v != "none"
}

// validateName checks a resource name against the operator's rule.
func validateName(name string) []fieldError {
	if name == "" {
		return []fieldError{{Field: "metadata.name", Message: "name is missing", Fix: "set metadata.name"}}
	}
	if len(name) > MaxNameLength {
		return []fieldError{{Field: "metadata.name", Message: fmt.Sprintf("name %q is %d characters, longer than %d", name, len(name), MaxNameLength),
			Fix: fmt.Sprintf("shorten the name to at most %d characters", MaxNameLength)}}
	}
	if !namePattern.MatchString(name) {
		return []fieldError{{Field: "metadata.name", Message: fmt.Sprintf("name %q is not a DNS label", name),
			Fix: "use lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"}}
	}
	return nil
}

func (v *validator) namespace(ns string) []fieldError {
	if ns == "" {
		return []fieldError{{Field: "metadata.namespace", Message: "no namespace, and no default namespace is configured",
			Fix: "set metadata.namespace (or a namespace in the kustomization), or configure a default namespace"}}
	}
	if len(v.opts.AllowedNamespaces) == 0 {
		return nil
	}
	for _, a := range v.opts.AllowedNamespaces {
		if a == ns || a == "*" {
			return nil
		}
	}
	return []fieldError{{Field: "metadata.namespace", Message: fmt.Sprintf("namespace %q is not in the allow-list %v", ns, v.opts.AllowedNamespaces),
		Fix: "deploy into an allowed namespace, or add the namespace to the daemon's allowed namespaces"}}
}

type validator struct {
	opts     Options
	warnings []fieldError
}

// effective returns the configuration Flink will see: the daemon's default
// configuration with the spec's keys on top.
func (v *validator) effective(spec v1beta1.FlinkConfiguration) v1beta1.FlinkConfiguration {
	if len(v.opts.DefaultConfiguration) == 0 {
		return spec
	}
	out := v1beta1.FlinkConfiguration{}
	for k, val := range v.opts.DefaultConfiguration {
		out[k] = val
	}
	for k, val := range spec {
		out[k] = val
	}
	return out
}

// flinkVersion accepts every version the operator supports (v1_15 and
// newer) and warns about the ones the test bed does not run.
func (v *validator) flinkVersion(fv v1beta1.FlinkVersion) []fieldError {
	if fv == "" {
		return []fieldError{{Field: "spec.flinkVersion", Message: "flinkVersion is missing", Fix: "set spec.flinkVersion, e.g. v1_20 or v2_2"}}
	}
	tested := make([]string, len(v.opts.TestedVersions))
	for i, s := range v.opts.TestedVersions {
		tested[i] = string(s)
		if s == fv {
			return nil
		}
	}
	if !fv.Known() {
		return []fieldError{{Field: "spec.flinkVersion", Message: fmt.Sprintf("unknown flinkVersion %q", fv),
			Fix: fmt.Sprintf("use one of the operator's versions, %s to %s", v1beta1.FlinkV1_15, v1beta1.FlinkVersions[len(v1beta1.FlinkVersions)-1])}}
	}
	if !fv.Supported() {
		return []fieldError{{Field: "spec.flinkVersion", Message: fmt.Sprintf("flinkVersion %s is no longer supported (by the operator either)", fv),
			Fix: fmt.Sprintf("upgrade the image to Flink 1.15 or newer and set flinkVersion accordingly (tested: %s)", strings.Join(tested, ", "))}}
	}
	v.warn("spec.flinkVersion", fmt.Sprintf("flinkVersion %s is accepted but not tested by flink-gitops (tested: %s)", fv, strings.Join(tested, ", ")),
		"use a tested version, or test the upgrade path of your jobs on this version before relying on it")
	return nil
}

func (v *validator) jarURI(field, jar string) []fieldError {
	schemes := strings.Join(v.opts.JarURISchemes, ", ")
	u, err := url.Parse(jar)
	if err != nil {
		return []fieldError{{Field: field, Message: fmt.Sprintf("jarURI %q is not a valid URI: %v", jar, err), Fix: "use a URI such as local:///opt/flink/usrlib/job.jar"}}
	}
	if u.Scheme == "" {
		return []fieldError{{Field: field, Message: fmt.Sprintf("jarURI %q has no scheme", jar), Fix: "use a URI with one of the schemes " + schemes + ", e.g. local:///opt/flink/usrlib/job.jar"}}
	}
	for _, s := range v.opts.JarURISchemes {
		if strings.EqualFold(s, u.Scheme) {
			if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
				return []fieldError{{Field: field, Message: fmt.Sprintf("jarURI %q has no host", jar), Fix: "give the host of the http(s) URI"}}
			}
			return nil
		}
	}
	return []fieldError{{Field: field, Message: fmt.Sprintf("jarURI scheme %q is not allowed", u.Scheme), Fix: "use one of the schemes " + schemes}}
}

// job checks a JobSpec with the effective configuration.
func (v *validator) job(j *v1beta1.JobSpec, tm *v1beta1.TaskManagerSpec, conf v1beta1.FlinkConfiguration, sessionJob bool) []fieldError {
	var errs []fieldError
	switch j.State {
	case v1beta1.JobStateRunning, v1beta1.JobStateSuspended:
	default:
		errs = append(errs, fieldError{Field: "spec.job.state", Message: fmt.Sprintf("unknown job state %q", j.State), Fix: "use running or suspended"})
	}
	switch j.UpgradeMode {
	case v1beta1.UpgradeModeStateless, v1beta1.UpgradeModeSavepoint, v1beta1.UpgradeModeLastState:
	default:
		errs = append(errs, fieldError{Field: "spec.job.upgradeMode", Message: fmt.Sprintf("unknown upgradeMode %q", j.UpgradeMode), Fix: "use stateless, savepoint or last-state"})
	}
	if j.JarURI != "" && sessionJob {
		// The daemon fetches a session job's jar itself: its policy says
		// which schemes and sources are allowed.
		if msg, fix := v.opts.Artifacts.CheckURI(j.JarURI); msg != "" {
			errs = append(errs, fieldError{Field: "spec.job.jarURI", Message: msg, Fix: fix})
		}
	} else if j.JarURI != "" {
		errs = append(errs, v.jarURI("spec.job.jarURI", j.JarURI)...)
	} else if sessionJob {
		errs = append(errs, fieldError{Field: "spec.job.jarURI", Message: "a session job needs a jarURI", Fix: "set spec.job.jarURI to the job jar"})
	}
	if conf != nil {
		errs = append(errs, jobConfig(j, conf)...)
	}
	if tm != nil && tm.Replicas != nil {
		if *tm.Replicas < 1 {
			errs = append(errs, fieldError{Field: "spec.taskManager.replicas", Message: fmt.Sprintf("taskManager.replicas is %d; it must be at least 1", *tm.Replicas), Fix: "set spec.taskManager.replicas to 1 or more"})
		}
	} else if j.Parallelism < 1 {
		errs = append(errs, fieldError{Field: "spec.job.parallelism", Message: fmt.Sprintf("job parallelism is %d; it must be at least 1", j.Parallelism), Fix: "set spec.job.parallelism to 1 or more"})
	}
	return errs
}

// jobConfig checks what a job needs from its effective configuration: a
// checkpoint directory for stateful upgrades and a savepoint directory for
// savepoints. For a session job, the effective configuration includes its
// session cluster's (see sessionJobConfig).
func jobConfig(j *v1beta1.JobSpec, conf v1beta1.FlinkConfiguration) []fieldError {
	var errs []fieldError
	stateful := j.UpgradeMode == v1beta1.UpgradeModeSavepoint || j.UpgradeMode == v1beta1.UpgradeModeLastState
	if stateful && confFirst(conf, keyCheckpointDir, keyCheckpointDirLegacy) == "" {
		errs = append(errs, fieldError{Field: "spec.flinkConfiguration", Message: fmt.Sprintf("upgradeMode %s needs a checkpoint directory", j.UpgradeMode),
			Fix: fmt.Sprintf("set %s (or %s) in flinkConfiguration", keyCheckpointDir, keyCheckpointDirLegacy)})
	}
	if confFirst(conf, keySavepointDir, keySavepointDirLegacy) == "" {
		need := ""
		switch {
		case j.UpgradeMode == v1beta1.UpgradeModeSavepoint:
			need = "upgradeMode savepoint"
		case j.SavepointTriggerNonce != nil:
			need = "savepointTriggerNonce (manual savepoints)"
		case conf[keyPeriodicSavepoint] != "":
			need = keyPeriodicSavepoint + " (periodic savepoints)"
		case conf[keyMaxCheckpointAge] != "":
			need = keyMaxCheckpointAge
		}
		if need != "" {
			errs = append(errs, fieldError{Field: "spec.flinkConfiguration", Message: need + " needs a savepoint directory",
				Fix: fmt.Sprintf("set %s (or %s) in flinkConfiguration", keySavepointDir, keySavepointDirLegacy)})
		}
	}
	return errs
}

// config checks flinkConfiguration against the support table: keys the
// operator or flink-gitops set themselves are refused, keys read but not
// acted on are warned about, and the values of the keys the daemon reads
// must parse.
func (v *validator) config(conf v1beta1.FlinkConfiguration) []fieldError {
	var errs []fieldError
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := mapKey("spec.flinkConfiguration", k)
		r, known := keyRule(k)
		if !known {
			if readsKey(k) {
				v.warn(field, fmt.Sprintf("unknown config key %s is ignored", k), "check the key's spelling against the operator's documentation")
			}
			continue
		}
		if r.typ != 0 {
			if msg := checkValue(r.typ, conf[k]); msg != "" {
				errs = append(errs, fieldError{Field: field, Message: fmt.Sprintf("invalid value %q for %s: %s", conf[k], k, msg), Fix: fixFor(r.typ)})
				continue
			}
		}
		switch {
		case r.Support == Refused:
			errs = append(errs, fieldError{Field: field, Message: fmt.Sprintf("config key %s is set by flink-gitops (%s) and must not be given", k, r.Note), Fix: "remove the key"})
		case r.Support == Warned:
			v.warn(field, fmt.Sprintf("%s has no effect in flink-gitops: %s", k, r.Note), "remove the key, or keep it knowing it does nothing here")
		case r.Fixed != "" && !strings.EqualFold(strings.TrimSpace(conf[k]), r.Fixed):
			v.warn(field, fmt.Sprintf("%s: %q has no effect in flink-gitops, which always behaves as %s: %s", k, conf[k], r.Fixed, r.Note),
				fmt.Sprintf("remove the key or set it to %s", r.Fixed))
		}
	}
	// Unlike the operator, rollback does not need high availability here:
	// the reconciler rolls back by redeploying lastStableSpec from the
	// savepoint or checkpoint the upgrade started from.
	return errs
}

func (v *validator) warn(field, msg, fix string) {
	v.warnings = append(v.warnings, fieldError{Field: field, Message: msg, Fix: fix})
}

// memoryDefined reports whether a component's memory is set in the spec or
// in the Flink configuration.
func memoryDefined(r *v1beta1.Resource, rr *resourceReqs, conf v1beta1.FlinkConfiguration, keys ...string) bool {
	if r != nil && strings.TrimSpace(r.Memory) != "" {
		return true
	}
	if rr != nil && (rr.requestMem || rr.limitMem) {
		return true
	}
	return confFirst(conf, keys...) != ""
}

type resourceReqs struct{ requestMem, limitMem bool }

func (v *validator) deployment(d *v1beta1.FlinkDeployment) []fieldError {
	s := &d.Spec
	conf := v.effective(s.FlinkConfiguration)
	var errs []fieldError
	errs = append(errs, validateName(d.Name)...)
	errs = append(errs, v.namespace(d.Namespace)...)
	if strings.TrimSpace(s.Image) == "" {
		errs = append(errs, fieldError{Field: "spec.image", Message: "image is missing", Fix: "set spec.image to a Flink image, e.g. flink:2.2"})
	}
	errs = append(errs, v.flinkVersion(s.FlinkVersion)...)
	if s.Job != nil {
		errs = append(errs, checkpointTriggers(s.FlinkVersion, s.Job, conf)...)
	}
	switch s.Mode {
	case "", v1beta1.ModeNative, v1beta1.ModeStandalone:
	default:
		errs = append(errs, fieldError{Field: "spec.mode", Message: fmt.Sprintf("unknown mode %q", s.Mode), Fix: "use native or standalone"})
	}
	if s.Ingress != nil && strings.TrimSpace(s.Ingress.Template) == "" {
		errs = append(errs, fieldError{Field: "spec.ingress.template", Message: "ingress template is missing", Fix: "set spec.ingress.template, e.g. {{name}}.{{namespace}}.example.com"})
	}
	logKeys := make([]string, 0, len(s.LogConfiguration))
	for k := range s.LogConfiguration {
		logKeys = append(logKeys, k)
	}
	sort.Strings(logKeys)
	for _, k := range logKeys {
		if k != allowedLogFiles[0] && k != allowedLogFiles[1] {
			errs = append(errs, fieldError{Field: mapKey("spec.logConfiguration", k), Message: fmt.Sprintf("unknown log configuration file %q", k),
				Fix: "use " + strings.Join(allowedLogFiles, " or ")})
		}
	}
	errs = append(errs, v.config(s.FlinkConfiguration)...)
	errs = append(errs, v.policies(d, conf)...)
	errs = append(errs, v.restTLS(conf)...)
	if s.Job != nil {
		errs = append(errs, v.job(s.Job, s.TaskManager, conf, false)...)
	}
	var jmRes, tmRes *v1beta1.Resource
	var jmReqs, tmReqs *resourceReqs
	if jm := s.JobManager; jm != nil {
		jmRes = jm.Resource
		errs = append(errs, legacyResource("spec.jobManager.resource", jm.Resource)...)
		jmReqs = v.requirements(jm.Resources, "spec.jobManager.resources", &errs)
		if jm.Replicas < 1 {
			errs = append(errs, fieldError{Field: "spec.jobManager.replicas", Message: fmt.Sprintf("jobManager.replicas is %d; it must be at least 1", jm.Replicas), Fix: "set spec.jobManager.replicas to 1 (or more with high availability)"})
		} else if jm.Replicas > 1 && !haEnabled(conf) {
			errs = append(errs, fieldError{Field: "spec.jobManager.replicas", Message: "standby JobManagers (replicas > 1) need high availability", Fix: "enable high-availability.type, or set replicas to 1"})
		}
	}
	if haEnabled(conf) && strings.TrimSpace(conf["high-availability.storageDir"]) == "" {
		// Flink's JobManager refuses to start without it.
		errs = append(errs, fieldError{Field: mapKey("spec.flinkConfiguration", "high-availability.storageDir"),
			Message: "high availability is on but has no storage directory for its metadata",
			Fix:     "set high-availability.storageDir (e.g. s3://bucket/ha) in the spec or in the daemon's flink.defaultConfiguration"})
	}
	if !memoryDefined(jmRes, jmReqs, conf, "jobmanager.memory.process.size", "jobmanager.memory.flink.size", "jobmanager.memory.heap.size") {
		errs = append(errs, fieldError{Field: "spec.jobManager.resource.memory", Message: "JobManager memory is not defined",
			Fix: "set spec.jobManager.resource.memory or spec.jobManager.resources.requests.memory"})
	}
	if tm := s.TaskManager; tm != nil {
		tmRes = tm.Resource
		errs = append(errs, legacyResource("spec.taskManager.resource", tm.Resource)...)
		tmReqs = v.requirements(tm.Resources, "spec.taskManager.resources", &errs)
	}
	if !memoryDefined(tmRes, tmReqs, conf, "taskmanager.memory.process.size", "taskmanager.memory.flink.size", "taskmanager.memory.task.heap.size") {
		errs = append(errs, fieldError{Field: "spec.taskManager.resource.memory", Message: "TaskManager memory is not defined",
			Fix: "set spec.taskManager.resource.memory or spec.taskManager.resources.requests.memory"})
	}
	return errs
}

func (v *validator) sessionJob(j *v1beta1.FlinkSessionJob) []fieldError {
	var errs []fieldError
	errs = append(errs, validateName(j.Name)...)
	errs = append(errs, v.namespace(j.Namespace)...)
	if j.Spec.DeploymentName == "" {
		errs = append(errs, fieldError{Field: "spec.deploymentName", Message: "deploymentName is missing", Fix: "set spec.deploymentName to the session cluster's FlinkDeployment name"})
	}
	errs = append(errs, v.config(j.Spec.FlinkConfiguration)...)
	errs = append(errs, sessionJobRESTTLS(j.Spec.FlinkConfiguration)...)
	errs = append(errs, v.schedules(v.effective(j.Spec.FlinkConfiguration))...)
	if j.Spec.Job == nil {
		errs = append(errs, fieldError{Field: "spec.job", Message: "a session job needs a job", Fix: "set spec.job with at least jarURI and parallelism"})
	} else {
		// The configuration checks wait for the session cluster's
		// configuration: see SessionJobConfig.
		errs = append(errs, v.job(j.Spec.Job, nil, nil, true)...)
	}
	return errs
}

// SessionJobConfig is a session job's effective configuration as the
// operator builds it: the daemon's defaults, then its session cluster's
// flinkConfiguration, then the job's own.
func SessionJobConfig(defaults map[string]string, cluster, job v1beta1.FlinkConfiguration) v1beta1.FlinkConfiguration {
	out := v1beta1.FlinkConfiguration{}
	for _, m := range []map[string]string{defaults, cluster, job} {
		for k, val := range m {
			out[k] = val
		}
	}
	return out
}

// legacyResource checks the deprecated resource block's quantities.
func legacyResource(field string, r *v1beta1.Resource) []fieldError {
	if r == nil {
		return nil
	}
	var errs []fieldError
	if r.Memory != "" && !validMemory(r.Memory) {
		errs = append(errs, fieldError{Field: field + ".memory", Message: fmt.Sprintf("memory %q does not parse", r.Memory), Fix: "use a size such as 2048m, 2g or 2Gi"})
	}
	if r.EphemeralStorage != "" {
		if _, err := resource.ParseQuantity(r.EphemeralStorage); err != nil {
			errs = append(errs, fieldError{Field: field + ".ephemeralStorage", Message: fmt.Sprintf("ephemeralStorage %q does not parse", r.EphemeralStorage), Fix: "use a Kubernetes quantity such as 2G or 2Gi"})
		}
	}
	if r.CPU != nil && *r.CPU <= 0 {
		errs = append(errs, fieldError{Field: field + ".cpu", Message: fmt.Sprintf("cpu is %v; it must be more than 0", *r.CPU), Fix: "set a positive number of cores, e.g. 1 or 0.5"})
	}
	return errs
}

// requirements checks the newer resources form as the operator reads it:
// memory in Flink's MemorySize syntax or as a Kubernetes quantity, cpu and
// every other resource as Kubernetes quantities, and no request above its
// limit.
func (v *validator) requirements(r *v1beta1.ResourceRequirements, field string, errs *[]fieldError) *resourceReqs {
	if r == nil {
		return nil
	}
	if len(r.Claims) > 0 {
		v.warn(field+".claims", "resource claims are not applied to the pods (the operator does not apply them either)",
			"put the claims into the pod template's main container")
	}
	out := &resourceReqs{}
	parsed := map[string]float64{}
	for _, l := range []struct {
		name string
		list map[corev1.ResourceName]v1beta1.Quantity
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, res := range slices.Sorted(maps.Keys(l.list)) {
			q := string(l.list[res])
			f := fmt.Sprintf("%s.%s.%s", field, l.name, res)
			switch res {
			case corev1.ResourceMemory:
				out.requestMem = out.requestMem || l.name == "requests"
				out.limitMem = out.limitMem || l.name == "limits"
				b, err := v1beta1.ParseMemory(q)
				if err != nil || b <= 0 {
					*errs = append(*errs, fieldError{Field: f, Message: fmt.Sprintf("memory %q does not parse as Flink's MemorySize or a Kubernetes quantity", q),
						Fix: "use a size such as 2048m, 2g or 2Gi"})
					continue
				}
				parsed[l.name+"/memory"] = float64(b)
			case corev1.ResourceCPU:
				c, err := v1beta1.ParseCPU(q)
				if err != nil || c <= 0 {
					*errs = append(*errs, fieldError{Field: f, Message: fmt.Sprintf("cpu %q is not a positive Kubernetes quantity", q), Fix: "use a number of cores such as 1, 0.5 or 500m"})
					continue
				}
				parsed[l.name+"/cpu"] = c
			default:
				if _, err := resource.ParseQuantity(q); err != nil {
					*errs = append(*errs, fieldError{Field: f, Message: fmt.Sprintf("%s %q is not a Kubernetes quantity", res, q), Fix: "use a quantity such as 2Gi or 1"})
				}
			}
		}
	}
	for _, name := range []string{"cpu", "memory"} {
		req, okR := parsed["requests/"+name]
		lim, okL := parsed["limits/"+name]
		if okR && okL && req > lim {
			*errs = append(*errs, fieldError{Field: field + ".requests." + name, Message: fmt.Sprintf("%s request %s is above the limit %s", name, r.Requests[corev1.ResourceName(name)], r.Limits[corev1.ResourceName(name)]),
				Fix: "lower the request or raise the limit"})
		}
	}
	return out
}

// validMemory accepts what the operator accepts for resource.memory.
func validMemory(s string) bool {
	b, err := v1beta1.ParseMemory(s)
	return err == nil && b > 0
}

// operator key types.
type valueType int

const (
	typeDuration valueType = iota + 1
	typeInt
	typeBool
	typeDouble
	typeString
	typeIntervalOrCron
	typeSavepointFormat
	typeList
	typeMap
	typeCheckpointType
	typeHTTPHeaders
)

func fixFor(t valueType) string {
	switch t {
	case typeDuration:
		return "use a duration such as 30 s, 5 min, 1 h or 500 ms"
	case typeInt:
		return "use a whole number of 0 or more"
	case typeBool:
		return "use true or false"
	case typeDouble:
		return "use a number such as 1.5"
	case typeIntervalOrCron:
		return "use a duration such as 1 h, or a cron expression, or 0 to disable"
	case typeSavepointFormat:
		return "use CANONICAL or NATIVE"
	case typeCheckpointType:
		return "use FULL or INCREMENTAL"
	case typeHTTPHeaders:
		return "write Name1:value1,Name2:value2 with valid HTTP header names"
	}
	return "check the value against the operator's documentation"
}

// checkValue returns why value is not a valid value of type t, or "".
func checkValue(t valueType, value string) string {
	s := strings.TrimSpace(value)
	switch t {
	case typeDuration:
		if !validDuration(s) {
			return "not a duration"
		}
	case typeInt:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return "not a whole number"
		}
		if n < 0 {
			return "negative"
		}
	case typeBool:
		if !strings.EqualFold(s, "true") && !strings.EqualFold(s, "false") {
			return "not a boolean"
		}
	case typeDouble:
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return "not a number"
		}
	case typeIntervalOrCron:
		if !validDuration(s) && len(strings.Fields(s)) < 6 {
			return "neither a duration nor a cron expression"
		}
	case typeSavepointFormat:
		if !strings.EqualFold(s, "CANONICAL") && !strings.EqualFold(s, "NATIVE") {
			return "not a savepoint format"
		}
	case typeCheckpointType:
		if !strings.EqualFold(s, "FULL") && !strings.EqualFold(s, "INCREMENTAL") {
			return "not a checkpoint type"
		}
	case typeHTTPHeaders:
		if _, err := ParseHeaders(value); err != nil {
			return err.Error()
		}
	}
	return ""
}

var durationPattern = regexp.MustCompile(`^(?i)([0-9]+)\s*(|ns|nano|nanos|nanosecond|nanoseconds|µs|us|micro|micros|microsecond|microseconds|ms|milli|millis|millisecond|milliseconds|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days)$`)
var isoDurationPattern = regexp.MustCompile(`^(?i)P(T?([0-9]+(\.[0-9]+)?[DHMS])+)+$`)

// validDuration accepts Flink's duration syntax (TimeUtils.parseDuration:
// a number and an optional unit, milliseconds by default) and ISO-8601.
func validDuration(s string) bool {
	return durationPattern.MatchString(s) || isoDurationPattern.MatchString(s)
}
