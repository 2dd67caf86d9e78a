package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Pre-flight retry timing for a refused spec: it is checked again after
// 30 s, doubling up to 10 minutes (a new commit is checked at once).
const (
	refusalRetryBase  = 30 * time.Second
	refusalRetryLimit = 10 * time.Minute
)

// Rejection is a pre-flight finding: the object the apiserver (or the
// daemon's own Pod Security or ResourceQuota check) would not accept, and
// why.
type Rejection struct {
	// Object is "Kind namespace/name".
	Object string
	// Message is the apiserver's message, or the check's.
	Message string
}

func (r *Rejection) Error() string { return r.Object + ": " + r.Message }

// ReasonPreflightFailed is the event reason of a spec pre-flight refused.
const ReasonPreflightFailed = "PreflightFailed"

// Preflight checks, changing nothing, that the cluster objects objs can
// replace the cluster of the same name that runs now (if any; native says
// whether it is a native one, whose TaskManager pods count too): every
// object is server-side applied with dryRun All (schema, RBAC, admission
// webhooks and ValidatingAdmissionPolicies answer), the pod templates are
// checked against the namespace's Pod Security enforce level (the
// apiserver only warns for Deployments, then refuses their pods), and the
// namespace's ResourceQuotas must have room for the new pods, counting what
// the old cluster frees, with LimitRange defaults applied and its min/max
// checked. It returns a *Rejection when the objects would be refused, and
// another error when the apiserver could not be asked.
func Preflight(ctx context.Context, kc kubernetes.Interface, objs *cluster.Objects, native bool) error {
	if objs == nil || objs.JobManager == nil {
		return permanent(fmt.Errorf("cluster has no JobManager Deployment"))
	}
	ns, name := objs.JobManager.Namespace, objs.JobManager.Name
	old, tms, err := runningCluster(ctx, kc, name, ns, native)
	if err != nil {
		return err
	}
	for _, o := range objs.List() {
		// An object of that name the daemon did not make is never taken
		// over: refuse before anything stops (apply would refuse it later).
		if err := checkOwned(ctx, kube{Interface: kc}, kindOf(o), o); err != nil {
			var foreign *NotOwnedError
			if errors.As(err, &foreign) {
				return &Rejection{Object: objectName(o), Message: foreign.Error()}
			}
			return fmt.Errorf("check %s: %w", objectName(o), err)
		}
		if err := dryRunApply(ctx, kc, o); err != nil {
			if isPermanent(err) {
				return &Rejection{Object: objectName(o), Message: apiMessage(err)}
			}
			return fmt.Errorf("dry-run apply %s: %w", objectName(o), err)
		}
	}
	pods, err := newPods(objs)
	if err != nil {
		return permanent(err)
	}
	if err := checkPodSecurity(ctx, kc, ns, pods); err != nil {
		return err
	}
	return checkQuota(ctx, kc, ns, pods, append(oldPods(old), tms...))
}

// podSet is a pod template and how many pods of it run.
type podSet struct {
	what     string // "Deployment ns/name"
	replicas int64
	pod      corev1.PodTemplateSpec
}

// newPods lists the pods the cluster objects make: the Deployments' pods,
// and a native cluster's TaskManager pod template (one pod counted).
func newPods(objs *cluster.Objects) ([]podSet, error) {
	var out []podSet
	for _, d := range []*appsv1.Deployment{objs.JobManager, objs.TaskManager} {
		if d != nil {
			out = append(out, deploymentPods(d))
		}
	}
	if cm := objs.PodTemplate; cm != nil {
		if s := cm.Data[cluster.TaskManagerPodTemplate]; s != "" {
			var pod corev1.Pod
			if err := yaml.Unmarshal([]byte(s), &pod); err != nil {
				return nil, fmt.Errorf("TaskManager pod template in ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
			}
			// Quota: the JobManager decides how many; one is the least.
			out = append(out, podSet{what: "TaskManager pod template " + cm.Namespace + "/" + cm.Name, replicas: 1,
				pod: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}})
		}
	}
	return out, nil
}

func deploymentPods(d *appsv1.Deployment) podSet {
	n := int64(1)
	if d.Spec.Replicas != nil {
		n = int64(*d.Spec.Replicas)
	}
	return podSet{what: "Deployment " + d.Namespace + "/" + d.Name, replicas: n, pod: d.Spec.Template}
}

// oldPods lists the pods the running cluster's Deployments run; they go
// before the new ones start.
func oldPods(old *cluster.Objects) []podSet {
	if old == nil {
		return nil
	}
	var out []podSet
	for _, d := range []*appsv1.Deployment{old.JobManager, old.TaskManager} {
		if d != nil {
			out = append(out, deploymentPods(d))
		}
	}
	return out
}

// runningCluster reads the Deployments of the cluster that runs now (nil
// when none) and, for a native one, its TaskManager pods.
func runningCluster(ctx context.Context, kc kubernetes.Interface, name, namespace string, native bool) (*cluster.Objects, []podSet, error) {
	var old cluster.Objects
	found := false
	for _, n := range []string{cluster.JobManagerName(name), cluster.TaskManagerName(name)} {
		d, err := kc.AppsV1().Deployments(namespace).Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read Deployment %s/%s: %w", namespace, n, err)
		}
		found = true
		if n == cluster.JobManagerName(name) {
			old.JobManager = d
		} else {
			old.TaskManager = d
		}
	}
	var tms []podSet
	if native {
		pods, err := taskManagerPods(ctx, kc, namespace, name)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range pods {
			tms = append(tms, podSet{what: "Pod " + namespace + "/" + p.Name, replicas: 1, pod: corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}})
		}
	}
	if !found {
		return nil, tms, nil
	}
	return &old, tms, nil
}

// checkPodSecurity evaluates the pod templates against the Pod Security
// level the namespace enforces (label pod-security.kubernetes.io/enforce
// and -version). A namespace the daemon may not read is not checked.
func checkPodSecurity(ctx context.Context, kc kubernetes.Interface, namespace string, pods []podSet) error {
	ns, err := kc.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return nil // the dry-run would have failed on a missing namespace
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	return podSecurityRejection(ns.Name, ns.Labels, pods)
}

// podSecurityRejection is the pure part of checkPodSecurity: the first pod
// template that violates the enforced level, as a Rejection.
func podSecurityRejection(namespace string, labels map[string]string, pods []podSet) error {
	lvl := labels[psaapi.EnforceLevelLabel]
	if lvl == "" {
		return nil
	}
	level, err := psaapi.ParseLevel(lvl)
	if err != nil {
		return nil // the apiserver treats an invalid level as restricted; it answers the pods, not us
	}
	version := psaapi.LatestVersion()
	if v := labels[psaapi.EnforceVersionLabel]; v != "" {
		if pv, err := psaapi.ParseVersion(v); err == nil {
			version = pv
		}
	}
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		return fmt.Errorf("pod security checks: %w", err)
	}
	lv := psaapi.LevelVersion{Level: level, Version: version}
	for _, ps := range pods {
		res := psapolicy.AggregateCheckResults(eval.EvaluatePod(lv, &ps.pod.ObjectMeta, &ps.pod.Spec))
		if !res.Allowed {
			return &Rejection{Object: ps.what, Message: fmt.Sprintf("its pods would violate PodSecurity %q enforced on namespace %s: %s; "+
				"set the securityContext in spec.podTemplate (or jobManager/taskManager.podTemplate) to meet the level",
				lv.String(), namespace, res.ForbiddenDetail())}
		}
	}
	return nil
}

// checkQuota reads the namespace's ResourceQuotas and LimitRanges and
// checks the new pods against them. Objects the daemon may not list are
// not checked (the apiserver still refuses the pods).
func checkQuota(ctx context.Context, kc kubernetes.Interface, namespace string, pods, freed []podSet) error {
	lrs, err := kc.CoreV1().LimitRanges(namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		lrs, err = &corev1.LimitRangeList{}, nil
	}
	if err != nil {
		return fmt.Errorf("list LimitRanges in %s: %w", namespace, err)
	}
	rqs, err := kc.CoreV1().ResourceQuotas(namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		rqs, err = &corev1.ResourceQuotaList{}, nil
	}
	if err != nil {
		return fmt.Errorf("list ResourceQuotas in %s: %w", namespace, err)
	}
	return quotaRejection(rqs.Items, lrs.Items, pods, freed)
}

// quotaRejection is the pure part of checkQuota: LimitRange defaults are
// applied to every container and its min/max checked; then for every
// quota that applies to the pods, hard − used + freed must cover the new
// pods' usage, and every resource the quota tracks must be set.
func quotaRejection(quotas []corev1.ResourceQuota, ranges []corev1.LimitRange, pods, freed []podSet) error {
	need := corev1.ResourceList{}
	frees := corev1.ResourceList{}
	defaulted := make([]corev1.PodSpec, len(pods))
	for i, ps := range pods {
		spec := withLimitRangeDefaults(ps.pod.Spec, ranges)
		if msg := limitRangeViolation(spec, ranges); msg != "" {
			return &Rejection{Object: ps.what, Message: msg}
		}
		defaulted[i] = spec
		addTimes(need, podUsage(spec), ps.replicas)
	}
	for _, ps := range freed {
		addTimes(frees, podUsage(withLimitRangeDefaults(ps.pod.Spec, ranges)), ps.replicas)
	}
	for _, q := range quotas {
		if !quotaApplies(q) {
			continue
		}
		qname := "ResourceQuota " + q.Namespace + "/" + q.Name
		for i, ps := range pods {
			if r := missingTracked(q, defaulted[i]); r != "" {
				return &Rejection{Object: ps.what, Message: fmt.Sprintf("%s tracks %s, and a container of the pods sets none, so the pods would be refused; "+
					"set resources (or a LimitRange default) for every container", qname, r)}
			}
		}
		keys := make([]string, 0, len(q.Spec.Hard))
		for k := range q.Spec.Hard {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		for _, k := range keys {
			r := corev1.ResourceName(k)
			want, ok := need[r]
			if !ok || want.IsZero() {
				continue
			}
			hard := q.Spec.Hard[r]
			room := hard.DeepCopy()
			used := q.Status.Used[r]
			room.Sub(used)
			free := frees[r]
			room.Add(free)
			if want.Cmp(room) > 0 {
				return &Rejection{Object: qname, Message: fmt.Sprintf("exceeded quota %s: the new pods need %s=%s, room is %s (hard %s, used %s, the old cluster frees %s); "+
					"lower the resources or replicas, or raise the quota", q.Name, r, want.String(), room.String(), hard.String(), used.String(), free.String())}
			}
		}
	}
	return nil
}

// quotaApplies reports whether a quota counts a Deployment's pods: no
// scopes, or only scopes such pods match (NotTerminating, NotBestEffort).
// Quotas with a scope selector are left to the apiserver.
func quotaApplies(q corev1.ResourceQuota) bool {
	if q.Spec.ScopeSelector != nil && len(q.Spec.ScopeSelector.MatchExpressions) > 0 {
		return false
	}
	for _, s := range q.Spec.Scopes {
		if s != corev1.ResourceQuotaScopeNotTerminating && s != corev1.ResourceQuotaScopeNotBestEffort {
			return false
		}
	}
	return true
}

// missingTracked returns a compute resource the quota tracks that a
// container of spec does not set ("" when all are set).
func missingTracked(q corev1.ResourceQuota, spec corev1.PodSpec) string {
	for r := range q.Spec.Hard {
		var name corev1.ResourceName
		limits := false
		switch r {
		case corev1.ResourceCPU, corev1.ResourceRequestsCPU:
			name = corev1.ResourceCPU
		case corev1.ResourceMemory, corev1.ResourceRequestsMemory:
			name = corev1.ResourceMemory
		case corev1.ResourceLimitsCPU:
			name, limits = corev1.ResourceCPU, true
		case corev1.ResourceLimitsMemory:
			name, limits = corev1.ResourceMemory, true
		default:
			continue
		}
		for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
			l := c.Resources.Requests
			if limits {
				l = c.Resources.Limits
			}
			if _, ok := l[name]; !ok {
				return string(r)
			}
		}
	}
	return ""
}

// withLimitRangeDefaults fills in container requests and limits the way
// the LimitRanger admission plugin does: a missing limit from default, a
// missing request from defaultRequest, else from the limit.
func withLimitRangeDefaults(spec corev1.PodSpec, ranges []corev1.LimitRange) corev1.PodSpec {
	spec = *spec.DeepCopy()
	fill := func(cs []corev1.Container) {
		for i := range cs {
			res := &cs[i].Resources
			for _, lr := range ranges {
				for _, it := range lr.Spec.Limits {
					if it.Type != corev1.LimitTypeContainer {
						continue
					}
					for r, q := range it.Default {
						if _, ok := res.Limits[r]; !ok {
							if res.Limits == nil {
								res.Limits = corev1.ResourceList{}
							}
							res.Limits[r] = q.DeepCopy()
						}
					}
					for r, q := range it.DefaultRequest {
						if _, ok := res.Requests[r]; !ok {
							if res.Requests == nil {
								res.Requests = corev1.ResourceList{}
							}
							res.Requests[r] = q.DeepCopy()
						}
					}
				}
			}
			for r, q := range res.Limits {
				if _, ok := res.Requests[r]; !ok {
					if res.Requests == nil {
						res.Requests = corev1.ResourceList{}
					}
					res.Requests[r] = q.DeepCopy()
				}
			}
		}
	}
	fill(spec.InitContainers)
	fill(spec.Containers)
	return spec
}

// limitRangeViolation checks containers against the Container min/max of
// the LimitRanges ("" when none is violated).
func limitRangeViolation(spec corev1.PodSpec, ranges []corev1.LimitRange) string {
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			if it.Type != corev1.LimitTypeContainer {
				continue
			}
			for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
				for r, mn := range it.Min {
					if q, ok := c.Resources.Requests[r]; ok && q.Cmp(mn) < 0 {
						return fmt.Sprintf("LimitRange %s/%s: minimum %s usage per container is %s, container %s requests %s", lr.Namespace, lr.Name, r, mn.String(), c.Name, q.String())
					}
				}
				for r, mx := range it.Max {
					if q, ok := c.Resources.Limits[r]; ok && q.Cmp(mx) > 0 {
						return fmt.Sprintf("LimitRange %s/%s: maximum %s usage per container is %s, container %s limits %s", lr.Namespace, lr.Name, r, mx.String(), c.Name, q.String())
					}
				}
			}
		}
	}
	return ""
}

// podUsage is what one pod counts against a quota: the larger of the sum
// of its containers and its largest init container, per resource.
func podUsage(spec corev1.PodSpec) corev1.ResourceList {
	sum := func(get func(corev1.Container) corev1.ResourceList, r corev1.ResourceName) resource.Quantity {
		var total resource.Quantity
		for _, c := range spec.Containers {
			if q, ok := get(c)[r]; ok {
				total.Add(q)
			}
		}
		for _, c := range spec.InitContainers {
			if q, ok := get(c)[r]; ok && q.Cmp(total) > 0 {
				total = q.DeepCopy()
			}
		}
		return total
	}
	req := func(c corev1.Container) corev1.ResourceList { return c.Resources.Requests }
	lim := func(c corev1.Container) corev1.ResourceList { return c.Resources.Limits }
	out := corev1.ResourceList{
		corev1.ResourcePods: *resource.NewQuantity(1, resource.DecimalSI),
		"count/pods":        *resource.NewQuantity(1, resource.DecimalSI),
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		out[r] = sum(req, r)
		out["requests."+r] = sum(req, r)
		out["limits."+r] = sum(lim, r)
	}
	return out
}

// addTimes adds n times each quantity of add to total.
func addTimes(total, add corev1.ResourceList, n int64) {
	for r, q := range add {
		t := total[r]
		for range min(n, math.MaxInt16) {
			t.Add(q)
		}
		total[r] = t
	}
}

// dryRunApply server-side applies one object with dryRun All: the
// apiserver runs validation and admission and persists nothing.
func dryRunApply(ctx context.Context, kc kubernetes.Interface, obj cluster.Object) error {
	body, err := applyBody(obj)
	if err != nil {
		return err
	}
	_, err = patchApply(ctx, kc, obj, body, metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue(), DryRun: []string{metav1.DryRunAll}})
	return err
}

// objectName is "Kind namespace/name" of a built object.
func objectName(o cluster.Object) string {
	kind := strings.TrimPrefix(fmt.Sprintf("%T", o), "*")
	if i := strings.LastIndex(kind, "."); i >= 0 {
		kind = kind[i+1:]
	}
	return kind + " " + o.GetNamespace() + "/" + o.GetName()
}

// apiMessage is the apiserver's message of an error (its status message
// when it has one).
func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

// preflightStep runs PhasePreflight: it builds the target's objects as
// applyTarget will and checks them; on success the operation goes on with
// the phase it was started with, on a rejection it ends with nothing
// stopped, and the spec is checked again only when it changes or after a
// backoff.
func (p *pass) preflightStep(ctx context.Context) error {
	op := p.rec.Operation
	start := p.now()
	objs, err := p.targetObjects()
	if err == nil {
		err = Preflight(ctx, p.r.Kube, objs, p.native())
	}
	if err == nil {
		p.log.Info("pre-flight passed", "took", p.now().Sub(start).Round(time.Millisecond))
		p.rec.Refused = nil
		next := op.AfterPreflight
		op.AfterPreflight = ""
		return p.to(ctx, next)
	}
	var rj *Rejection
	if !errors.As(err, &rj) && !isPermanent(err) {
		return err // transient: retried with backoff
	}
	p.refuse(ctx, err)
	return nil
}

// targetObjects builds the operation's target cluster as applyTarget
// will (the job id and restore path are not known yet; they change no
// object's acceptability).
func (p *pass) targetObjects() (*cluster.Objects, error) {
	op := p.rec.Operation
	tgt, err := deploymentSpec(op.TargetSpec)
	if err != nil {
		return nil, permanent(err)
	}
	commit := ""
	if op.Source != nil {
		commit = op.Source.Commit
	}
	in := cluster.Input{Name: p.rec.Name, Namespace: p.rec.Namespace, Spec: tgt, FlinkDefaults: p.set.FlinkDefaults,
		SpecHash: op.TargetHash, SourceCommit: commit, JobID: op.JobID, SavepointPath: op.RestorePath}
	if tgt.Job != nil && in.JobID == "" {
		in.JobID = "00000000000000000000000000000000"
	}
	objs, err := cluster.Build(in)
	if err != nil {
		return nil, permanent(err)
	}
	return objs, nil
}

// refuse ends an operation pre-flight refused: nothing was stopped, the
// lifecycle state stays what it was, and status.error says why.
func (p *pass) refuse(ctx context.Context, cause error) {
	op := p.rec.Operation
	verb, untouched := "upgrade", "the running job is untouched"
	switch {
	case op.Kind == OpDeploy && p.rec.Deployed == nil && p.rec.Reconciliation().LastReconciledSpec == "":
		verb, untouched = "deploy", "nothing was deployed"
	case op.Kind == OpDeploy && isSuspendedJSON(p.rec.Reconciliation().LastReconciledSpec):
		verb, untouched = "resume", "the job stays suspended"
	case op.Kind == OpRestart:
		verb = "restart"
	}
	msg := fmt.Sprintf("%s refused: %v; %s", verb, cause, untouched)
	p.holdOff(op.TargetHash, op.Source, msg)
	p.log.Warn("pre-flight refused the spec", "err", cause, "retryAt", p.rec.Refused.NextAttempt.Format(time.RFC3339))
	p.r.Events.Warn(ctx, p.rec, ReasonPreflightFailed, msg)
	p.rec.Common().Error = msg
	p.rec.Operation = nil
	p.failed = true
	p.dirty = true
}

// needsPreflight reports whether op starts a new spec whose objects
// pre-flight can check before anything is stopped or deleted.
func needsPreflight(kind string, op *Operation) bool {
	if kind != KindDeployment || op.TargetSpec == "" {
		return false
	}
	switch op.Kind {
	case OpUpgrade, OpRestart, OpDeploy:
		s, err := deploymentSpec(op.TargetSpec)
		return err == nil && s != nil && !cluster.Suspended(s)
	}
	return false
}

// withPreflight makes op start with PhasePreflight.
func withPreflight(op *Operation) {
	op.AfterPreflight, op.Phase = op.Phase, PhasePreflight
}

// refusedNow reports whether the desired spec was refused and is not due
// for another check; the refusal is dropped when the spec changed (its
// status error with it).
func (p *pass) refusedNow() bool {
	rf := p.rec.Refused
	if rf == nil || p.desired == nil || p.desired.observeOnly() {
		return false
	}
	if p.desired.Hash != rf.TargetHash {
		if c := p.rec.Common(); c.Error == rf.Reason {
			c.Error = ""
		}
		p.rec.Refused = nil
		p.dirty = true
		return false
	}
	return p.now().Before(rf.NextAttempt)
}

// whileRefused is what may still start while a refused spec waits for its
// next check: the running job's periodic savepoints.
func (p *pass) whileRefused(obs *observation) *Operation {
	last, err := deploymentSpec(p.rec.Reconciliation().LastReconciledSpec)
	if err != nil || last == nil || last.Job == nil || obs.job == nil || obs.job.State != flinkclient.JobRunning {
		return nil
	}
	if due, _ := p.periodicDue(last.FlinkConfiguration); due {
		return &Operation{Kind: OpSavepoint, Phase: PhaseTriggerSavepoint, TriggerID: flinkclient.NewTriggerID(),
			TriggerType: v1beta1.TriggerPeriodic, StoppedJobID: obs.job.ID}
	}
	return nil
}

// PreflightPlanned runs Preflight for a planned change that starts a new
// FlinkDeployment spec (deploy, upgrade, resume, restart), with the
// daemon's Flink defaults and default mode, as the reconciler would before
// stopping anything; other changes return nil. A *Rejection says what the
// apiserver would refuse; the pull-request plan shows it.
func PreflightPlanned(ctx context.Context, kc kubernetes.Interface, p Planned, defaults map[string]string, mode v1beta1.DeploymentMode) error {
	switch p.Action.Kind {
	case ActionDeploy, ActionUpgrade, ActionResume, ActionRestart:
	default:
		return nil
	}
	if p.Desired == nil || p.Desired.Deployment == nil {
		return nil
	}
	spec := p.Desired.Deployment.Spec
	if spec.Mode == "" {
		spec.Mode = mode
	}
	if spec.Mode == "" {
		spec.Mode = v1beta1.ModeStandalone
	}
	if cluster.Suspended(&spec) {
		return nil
	}
	in := cluster.Input{Name: p.Name, Namespace: p.Namespace, Spec: &spec, FlinkDefaults: defaults,
		SpecHash: p.Desired.Hash, SourceCommit: p.Desired.Source.Commit}
	if spec.Job != nil {
		in.JobID = "00000000000000000000000000000000"
	}
	objs, err := cluster.Build(in)
	if err != nil {
		return &Rejection{Object: "FlinkDeployment " + p.Namespace + "/" + p.Name, Message: "its cluster objects cannot be built: " + err.Error()}
	}
	return Preflight(ctx, kc, objs, spec.Mode == v1beta1.ModeNative)
}
