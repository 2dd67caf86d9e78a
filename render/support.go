package render

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Support says what flink-gitops does with a spec field or a configuration
// key a spec sets. It is the one table behind validation's warnings and
// problems and the README's table (see SupportTable); a field or key that
// is accepted but not acted on must be Warned here, never silently dropped.
type Support string

// Support values.
const (
	// Honoured: the daemon acts on it with the operator's meaning.
	Honoured Support = "honoured"
	// Warned: accepted (a spec that sets it still deploys) but it has no
	// effect; validation warns, naming it.
	Warned Support = "warned"
	// Refused: a spec that sets it is invalid.
	Refused Support = "refused"
)

// Rule is one row of the support table.
type Rule struct {
	// Name is a dotted spec field path (spec.job.jarURI) or a configuration
	// key; "<name>" stands for any one or more key segments.
	Name string
	// Support is what the daemon does with it.
	Support Support
	// Note says how, or why not, for the README and the warning.
	Note string
	// Fixed, when set, is the only value the daemon honours: the key is
	// Honoured with that value and Warned with any other.
	Fixed string

	typ     valueType
	pattern *regexp.Regexp
}

func (r Rule) matches(key string) bool {
	if r.pattern != nil {
		return r.pattern.MatchString(key)
	}
	return r.Name == key
}

const (
	noteLater      = "not acted on yet"
	noteOperator   = "operator-wide setting: it configures the operator process, not a resource; configure the daemon instead"
	noteAutoscaler = "the job autoscaler is not implemented yet"
)

// FieldRules classify the fields of the FlinkDeployment and FlinkSessionJob
// specs. Fields not listed are honoured; the operator's schema is decoded
// strictly, so a field outside it is a problem.
var FieldRules = []Rule{
	{Name: "spec.job.checkpointTriggerNonce", Support: Honoured, Note: "a change triggers a checkpoint through Flink's REST API (Flink 1.17+), recorded in checkpointInfo and on the status branch"},
	{Name: "spec.job.autoscalerResetNonce", Support: Warned, Note: noteAutoscaler},
	{Name: "spec.jobManager.resources.claims", Support: Warned, Note: "resource claims are not applied to the pods (as in the operator); put them in the pod template"},
	{Name: "spec.taskManager.resources.claims", Support: Warned, Note: "resource claims are not applied to the pods (as in the operator); put them in the pod template"},
	{Name: "status", Support: Honoured, Note: "ignored, as a status written by kubectl or the operator is not desired state"},
	{Name: "spec.podTemplate.status", Support: Honoured, Note: "ignored (read-only, added by kubectl)"},
	{Name: "spec.jobManager.podTemplate.status", Support: Honoured, Note: "ignored (read-only, added by kubectl)"},
	{Name: "spec.taskManager.podTemplate.status", Support: Honoured, Note: "ignored (read-only, added by kubectl)"},
}

// KeyRules classify flinkConfiguration keys read by the operator
// (kubernetes.operator.*, job.autoscaler.*) and by flink-gitops
// (flink-gitops.*). Every other key goes to Flink unchanged.
var KeyRules = []Rule{
	// Per-resource operator options flink-gitops acts on.
	{Name: "kubernetes.operator.deployment.readiness.timeout", Support: Honoured, typ: typeDuration},
	{Name: "kubernetes.operator.deployment.rollback.enabled", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.jm-deployment.startup.probe.enabled", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.job.drain-on-savepoint-deletion", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.job.savepoint-on-deletion", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.job.upgrade.last-state-fallback.enabled", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.job.upgrade.inplace-scaling.enabled", Support: Honoured, typ: typeBool,
		Note: "a parallelism-only change on the adaptive scheduler (Flink 1.18+) is rescaled in place through the resource-requirements API; otherwise, or when Flink refuses or the job does not run at the new parallelism within the readiness timeout, it is a full upgrade"},
	{Name: "kubernetes.operator.periodic.savepoint.interval", Support: Honoured, typ: typeIntervalOrCron},
	{Name: "kubernetes.operator.periodic.checkpoint.interval", Support: Honoured, typ: typeIntervalOrCron,
		Note: "checkpoints triggered through Flink's REST API (Flink 1.17+) on this schedule, recorded as PERIODIC"},
	{Name: "kubernetes.operator.checkpoint.type", Support: Honoured, typ: typeCheckpointType,
		Note: "the type of triggered checkpoints (FULL by default; Flink's REST API may refuse INCREMENTAL, which is then reported)"},
	{Name: "kubernetes.operator.pod-template.merge-arrays-by-name", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.savepoint.cleanup.enabled", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.savepoint.format.type", Support: Honoured, typ: typeSavepointFormat},
	{Name: "kubernetes.operator.savepoint.history.max.age", Support: Honoured, typ: typeDuration},
	{Name: "kubernetes.operator.savepoint.history.max.count", Support: Honoured, typ: typeInt},
	{Name: "kubernetes.operator.snapshot.resource.enabled", Support: Honoured, typ: typeBool,
		Note: "true (default): the job's upgrade, periodic and nonce savepoints (and last requested checkpoint) are listed as the operator's snapshot resources under snapshots: in its status-branch file; false: not listed"},
	{Name: "kubernetes.operator.jm-deployment-recovery.enabled", Support: Honoured, Fixed: "true", typ: typeBool,
		Note: "a JobManager Deployment deleted by hand is always redeployed"},
	{Name: "kubernetes.operator.session.deletion.block-on-session-jobs", Support: Honoured, Fixed: "true", typ: typeBool,
		Note: "a session cluster is always deleted after its session jobs"},
	{Name: "kubernetes.operator.session.deletion.block-on-unmanaged-jobs", Support: Honoured, Fixed: "false", typ: typeBool,
		Note: "jobs not declared in Git do not block a session cluster's deletion"},
	{Name: "kubernetes.operator.job.restart.failed", Support: Honoured, typ: typeBool,
		Note: "a FAILED job is redeployed from its newest savepoint or checkpoint (empty when stateless), with backoff; counted in status.restarts"},
	{Name: "kubernetes.operator.cluster.health-check.enabled", Support: Honoured, typ: typeBool,
		Note: "application clusters: an unhealthy job is restarted from its newest state; the reason is in status.restarts and an event"},
	{Name: "kubernetes.operator.cluster.health-check.restarts.threshold", Support: Honoured, typ: typeInt},
	{Name: "kubernetes.operator.cluster.health-check.restarts.window", Support: Honoured, typ: typeDuration},
	{Name: "kubernetes.operator.cluster.health-check.checkpoint-progress.enabled", Support: Honoured, typ: typeBool},
	{Name: "kubernetes.operator.cluster.health-check.checkpoint-progress.window", Support: Honoured, typ: typeDuration},
	{Name: "kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age", Support: Honoured, typ: typeDuration,
		Note: "a running job whose newest checkpoint is older is stopped with a savepoint instead (refused without a savepoint directory)"},
	{Name: "kubernetes.operator.user.artifacts.http.header", Support: Honoured, typ: typeHTTPHeaders, Note: "sent with the daemon's http(s) fetch of a session job's jar, to the jarURI's host only (a session cluster's value applies to its session jobs; the job's wins), as in the operator"},

	// Per-resource operator options not acted on yet.
	{Name: "kubernetes.operator.checkpoint.trigger.grace-period", Support: Warned, typ: typeDuration, Note: noteLater},
	{Name: "kubernetes.operator.exception.label.mapper", Support: Warned, typ: typeMap, Note: noteLater},
	{Name: "kubernetes.operator.jm-deployment.shutdown-ttl", Support: Warned, typ: typeDuration, Note: noteLater},
	{Name: "kubernetes.operator.job.upgrade.ignore-pending-savepoint", Support: Warned, typ: typeBool, Note: noteLater},
	{Name: "kubernetes.operator.job.upgrade.last-state.job-cancel.enabled", Support: Warned, typ: typeBool, Note: noteLater},
	{Name: "kubernetes.operator.plugins.listeners.<name>.class", Support: Warned, typ: typeString, Note: "operator plugins do not exist in flink-gitops"},
	{Name: "kubernetes.operator.savepoint.dispose-on-delete", Support: Warned, typ: typeBool, Note: noteLater},
	{Name: "kubernetes.operator.savepoint.trigger.grace-period", Support: Warned, typ: typeDuration, Note: noteLater},

	// Operator-wide options: they have no effect in a resource, in the
	// operator either.
	{Name: "kubernetes.operator.cluster.resource-view.refresh-interval", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.config.cache.size", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.config.cache.timeout", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.dynamic.config.check.interval", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.dynamic.config.enabled", Support: Warned, typ: typeBool, Note: noteOperator},
	{Name: "kubernetes.operator.dynamic.namespaces.enabled", Support: Warned, typ: typeBool, Note: noteOperator},
	{Name: "kubernetes.operator.events.exceptions.limit-per-reconciliation", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.events.exceptions.stacktrace-lines", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.exception.field.max.length", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.exception.stacktrace.enabled", Support: Warned, typ: typeBool, Note: noteOperator},
	{Name: "kubernetes.operator.exception.stacktrace.max.length", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.exception.throwable.list.max.count", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.flink.client.cancel.timeout", Support: Warned, typ: typeDuration, Note: noteOperator + " (flink.requestTimeout)"},
	{Name: "kubernetes.operator.flink.client.timeout", Support: Warned, typ: typeDuration, Note: noteOperator + " (flink.requestTimeout)"},
	{Name: "kubernetes.operator.health.canary.resource.timeout", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.health.probe.enabled", Support: Warned, typ: typeBool, Note: noteOperator},
	{Name: "kubernetes.operator.health.probe.port", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.ingress.manage", Support: Warned, typ: typeBool, Note: noteOperator},
	{Name: "kubernetes.operator.job.submission.timeout", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.label.selector", Support: Warned, typ: typeString, Note: noteOperator},
	{Name: "kubernetes.operator.leader-election.<name>", Support: Warned, typ: typeString, Note: noteOperator + " (leaderElection.*)"},
	{Name: "kubernetes.operator.observer.progress-check.interval", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.observer.rest-ready.delay", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.rate-limiter.limit", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.rate-limiter.refresh-period", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.reconcile.interval", Support: Warned, typ: typeDuration, Note: noteOperator + " (reconcile.resyncInterval)"},
	{Name: "kubernetes.operator.reconcile.parallelism", Support: Warned, typ: typeInt, Note: noteOperator + " (reconcile.concurrency)"},
	{Name: "kubernetes.operator.resource.cleanup.timeout", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.resource.deletion.propagation", Support: Warned, typ: typeString, Note: noteOperator},
	{Name: "kubernetes.operator.retry.<name>", Support: Warned, typ: typeString, Note: noteOperator},
	{Name: "kubernetes.operator.savepoint.history.max.age.threshold", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.savepoint.history.max.count.threshold", Support: Warned, typ: typeInt, Note: noteOperator},
	{Name: "kubernetes.operator.startup.stop-on-informer-error", Support: Warned, typ: typeBool, Note: noteOperator},
	{Name: "kubernetes.operator.termination.timeout", Support: Warned, typ: typeDuration, Note: noteOperator},
	{Name: "kubernetes.operator.user.artifacts.allowed-schemes", Support: Warned, typ: typeList, Note: noteOperator + " (the daemon's jarURI policy)"},
	{Name: "kubernetes.operator.user.artifacts.base.dir", Support: Warned, typ: typeString, Note: noteOperator},
	{Name: "kubernetes.operator.user.artifacts.disallow-restricted-hosts", Support: Warned, typ: typeBool, Note: noteOperator + " (the daemon's jarURI policy)"},
	{Name: "kubernetes.operator.watched.namespaces", Support: Warned, typ: typeString, Note: noteOperator + " (kubernetes.allowedNamespaces)"},
	{Name: "kubernetes.operator.metrics.<name>", Support: Warned, typ: typeString, Note: noteOperator},

	// The job autoscaler (also under its legacy kubernetes.operator. prefix).
	{Name: "job.autoscaler.<name>", Support: Warned, typ: typeString, Note: noteAutoscaler},
	{Name: "kubernetes.operator.job.autoscaler.<name>", Support: Warned, typ: typeString, Note: noteAutoscaler},

	// flink-gitops's own keys: never passed to Flink.
	{Name: "flink-gitops.ha.keep-on-deletion", Support: Honoured, typ: typeBool, Note: "keep the HA ConfigMaps when the resource is deleted"},
	{Name: "flink-gitops.jar.sha256", Support: Honoured, typ: typeString, Note: "pins a session job's jar; a jar with another SHA-256 is not submitted"},
	{Name: "flink-gitops.upgrade.restore-on-apply-failure", Support: Honoured, typ: typeBool,
		Note: "default true: an upgrade whose new spec is refused once the old cluster is gone redeploys the last stable spec from the state it just took"},

	{Name: KeyRESTTLSSecret, Support: Honoured, typ: typeString,
		Note: "with security.ssl.rest.enabled: a Secret in the resource's namespace with ca.crt (PEM CAs the daemon verifies the JobManager's REST certificate with) and, for mutual TLS, tls.crt/tls.key (the client certificate the daemon presents); without it the daemon's flink.tls files are used"},
	{Name: KeyRESTTLSServerName, Support: Honoured, typ: typeString,
		Note: "the name the JobManager's REST certificate is verified against (default: the host of the daemon's flink.restURLTemplate, e.g. <name>-rest.<namespace>)"},

	// Flink's own keys that also tell the daemon how to reach the REST API.
	{Name: KeyRESTSSLEnabled, Support: Honoured, typ: typeBool,
		Note: "true: the daemon talks HTTPS to the JobManager and verifies it (CA from flink-gitops.rest.tls.secret or flink.tls.caFile; refused without either); Flink's keystore keys go to Flink unchanged"},
	{Name: KeyRESTSSLMutual, Support: Honoured, typ: typeBool,
		Note: "true (with security.ssl.rest.enabled): the daemon presents a client certificate (tls.crt/tls.key of flink-gitops.rest.tls.secret, or flink.tls.certFile/keyFile; refused without either)"},

	// Keys the operator (and flink-gitops) set themselves.
	{Name: "kubernetes.cluster-id", Support: Refused, Note: "set from metadata.name"},
	{Name: "kubernetes.namespace", Support: Refused, Note: "set from metadata.namespace"},
	{Name: "high-availability.cluster-id", Support: Refused, Note: "set from metadata.name"},
}

var ruleIndex = func() map[string]*Rule {
	m := map[string]*Rule{}
	for _, rules := range [][]Rule{FieldRules, KeyRules} {
		for i := range rules {
			r := &rules[i]
			if strings.Contains(r.Name, "<name>") {
				r.pattern = regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(r.Name), regexp.QuoteMeta("<name>"), `[^\s]+`) + "$")
				continue
			}
			m[r.Name] = r
		}
	}
	return m
}()

// keyRule returns the rule of a configuration key, if one applies.
func keyRule(key string) (*Rule, bool) {
	if r, ok := ruleIndex[key]; ok {
		return r, true
	}
	for i := range KeyRules {
		if r := &KeyRules[i]; r.pattern != nil && r.matches(key) {
			return r, true
		}
	}
	return nil, false
}

// readsKey reports whether a key is read by the operator or flink-gitops
// rather than by Flink.
func readsKey(key string) bool {
	return strings.HasPrefix(key, operatorPrefix) || strings.HasPrefix(key, "job.autoscaler.") || strings.HasPrefix(key, flinkGitOpsPrefix)
}

// warnedFields are the spec fields a resource may set without effect.
func warnedFields() []string {
	var out []string
	for _, r := range FieldRules {
		if r.Support == Warned {
			out = append(out, r.Name)
		}
	}
	return out
}

// SupportTable renders the support table as Markdown, for the README
// (a test keeps the README's copy current).
func SupportTable() string {
	var b strings.Builder
	b.WriteString("| field or key | support | notes |\n|---|---|---|\n")
	rows := append(append([]Rule{}, FieldRules...), KeyRules...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	for _, r := range rows {
		s := string(r.Support)
		if r.Fixed != "" {
			s = fmt.Sprintf("honoured as %s; other values warned", r.Fixed)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Name, s, r.Note)
	}
	return b.String()
}
