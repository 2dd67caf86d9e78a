package lifecycle_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// TestPreflightOnTestBed (issue 26) pushes specs the real apiserver would
// refuse at a running job — a ValidatingAdmissionPolicy, the namespace's
// Pod Security level, a ResourceQuota without room — and checks that
// nothing is stopped: the old job keeps RUNNING with its counter going on,
// no savepoint is taken, and status.error says why. Then a policy appears
// only after pre-flight passed: the upgrade's savepoint is taken, the old
// cluster is deleted, the new one is refused, and the last stable spec
// runs again from that savepoint, no step repeated.
func TestPreflightOnTestBed(t *testing.T) {
	if testing.Short() {
		t.Skip("test bed")
	}
	b := newBed(t)
	ctx := context.Background()
	kc := b.rec.Kube
	const name = "guarded"

	d := b.render(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 1))
	r := b.until(lifecycle.KindDeployment, name, d, "first deploy to be stable", 3*time.Minute, stable)
	job := r.Common().JobStatus.JobID
	counter := b.progress(name, job, 20)
	history := savepoints(r)

	refused := func(what, spec, want string) {
		t.Helper()
		d := b.render(spec)
		r := b.until(lifecycle.KindDeployment, name, d, what+" refused", 2*time.Minute, func(r *lifecycle.Record) bool {
			return r.Operation == nil && r.Refused != nil && r.Refused.TargetHash == d.Hash
		})
		c := r.Common()
		if !strings.HasPrefix(c.Error, "upgrade refused: ") || !strings.Contains(c.Error, want) || !strings.HasSuffix(c.Error, "; the running job is untouched") {
			t.Fatalf("%s: status error %q, want the refusal naming %q", what, c.Error, want)
		}
		if c.LifecycleState != v1beta1.LifecycleStable || c.JobStatus.JobID != job || c.JobStatus.State != v1beta1.JobRunning {
			t.Fatalf("%s: the running job was touched: %s", what, dump(r))
		}
		if n := savepoints(r); n != history {
			t.Fatalf("%s: %d savepoints taken", what, n-history)
		}
		next := b.progress(name, job, counter+1)
		t.Logf("%s: refused (%s); job %s still counting %d -> %d", what, c.Error, job, counter, next)
		counter = next
	}

	// 1. A ValidatingAdmissionPolicy refusing the new Deployment.
	denyLabel(t, kc, b.ns, "preflight-deny")
	refused("admission policy", b.appSpec(name, "flink:2.2", "v2_2", "savepoint", podLabel("preflight-deny"), 1),
		"Deployment "+b.ns+"/"+name+": ")

	// 2. Pod Security: the namespace enforces restricted, the pods are not.
	setNamespaceLabel(t, kc, b.ns, "pod-security.kubernetes.io/enforce", "restricted")
	refused("pod security", b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 3), `would violate PodSecurity "restricted:latest"`)
	setNamespaceLabel(t, kc, b.ns, "pod-security.kubernetes.io/enforce", "")

	// 3. A ResourceQuota without room: the running pods use it all, and
	// the new spec needs a second TaskManager.
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "cpu"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}}}
	q, err := kc.CoreV1().ResourceQuotas(b.ns).Create(ctx, q, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No quota controller runs here: the status says what the old pods use.
	q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}}
	if _, err := kc.CoreV1().ResourceQuotas(b.ns).UpdateStatus(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	refused("resource quota", b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 4), "exceeded quota cpu: the new pods need requests.cpu=1500m")
	if err := kc.CoreV1().ResourceQuotas(b.ns).Delete(ctx, "cpu", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// 4. Refused only after the old cluster is gone: a policy appears
	// while the upgrade savepoint is taken.
	stableSpec := r.Reconciliation().LastStableSpec
	d = b.render(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", podLabel("preflight-late"), 2))
	b.until(lifecycle.KindDeployment, name, d, "pre-flight passed, savepoint under way", 2*time.Minute, func(r *lifecycle.Record) bool {
		op := r.Operation
		return op != nil && (op.Phase == lifecycle.PhaseAwaitSavepoint || op.Phase == lifecycle.PhaseAwaitStopped)
	})
	denyLabel(t, kc, b.ns, "preflight-late")
	r = b.until(lifecycle.KindDeployment, name, d, "last stable spec running again", 4*time.Minute, func(r *lifecycle.Record) bool {
		c := r.Common()
		return r.Operation == nil && c.LifecycleState == v1beta1.LifecycleRolledBack && c.JobStatus.State == v1beta1.JobRunning
	})
	c := r.Common()
	si := c.JobStatus.SavepointInfo
	if n := savepoints(r); n != history+1 || si.LastSavepoint.TriggerType != v1beta1.TriggerUpgrade {
		t.Fatalf("%d savepoints taken by the failed upgrade, want 1 upgrade savepoint: %+v", n-history, si.LastSavepoint)
	}
	if r.Deployed == nil || r.Deployed.RestorePath != si.LastSavepoint.Location || r.Deployed.Spec != stableSpec {
		t.Fatalf("not the last stable spec from the upgrade savepoint %s: deployed %+v", si.LastSavepoint.Location, r.Deployed)
	}
	if !strings.HasPrefix(c.Error, "upgrade failed: ") || !strings.Contains(c.Error, "preflight-late") {
		t.Fatalf("status error %q", c.Error)
	}
	restored := c.JobStatus.JobID
	if first := b.firstProgress(name, restored); first < counter {
		t.Fatalf("restored job %s started at counter %d, below %d seen before the upgrade: state lost", restored, first, counter)
	}
	t.Logf("upgrade refused after the cluster was gone; job %s runs the last stable spec from %s", restored, si.LastSavepoint.Location)

	// No step of the failed upgrade ran twice.
	events, _ := b.trace.snapshot()
	start := -1
	for i, e := range events {
		if e.Name == name && e.Msg == "operation started" && e.Op == string(lifecycle.OpUpgrade) {
			start = i
		}
	}
	if start < 0 {
		t.Fatal("no upgrade in the operation log")
	}
	seen := map[string]int{}
	for _, e := range events[start:] {
		if e.Name == name && e.Msg == "step" {
			seen[e.Op+":"+e.To]++
			if seen[e.Op+":"+e.To] > 1 {
				t.Errorf("step %s -> %s of %s repeated", e.From, e.To, e.Op)
			}
		}
	}
	t.Logf("steps of the failed upgrade and its redeploy: %v", seen)
	logPreflightTimes(t, events, name)
}

// savepoints counts the savepoints in the record's history.
func savepoints(r *lifecycle.Record) int {
	if si := r.Common().JobStatus.SavepointInfo; si != nil {
		return len(si.SavepointHistory)
	}
	return 0
}

// podLabel is appSpec's extra for a pod template label key.
func podLabel(key string) string {
	return fmt.Sprintf("  podTemplate:\n    metadata:\n      labels:\n        %s: \"yes\"", key)
}

// denyLabel installs a ValidatingAdmissionPolicy (CEL) and its binding that
// refuse Deployments in namespace ns whose pods carry label key, and waits
// until the apiserver enforces it.
func denyLabel(t *testing.T, kc kubernetes.Interface, ns, key string) {
	t.Helper()
	ctx := context.Background()
	polName := "deny-" + key + "-" + ns
	fail := admissionv1.Fail
	pol := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: polName}, Spec: admissionv1.ValidatingAdmissionPolicySpec{
		FailurePolicy: &fail,
		MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
			Rule:       admissionv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
		}}}},
		Validations: []admissionv1.Validation{{
			Expression: fmt.Sprintf("!has(object.spec.template.metadata.labels) || !('%s' in object.spec.template.metadata.labels)", key),
			Message:    "pods labelled " + key + " are not allowed here",
		}},
	}}
	if _, err := kc.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: polName}, Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
		PolicyName:        polName,
		ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
	}}
	if _, err := kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, polName, metav1.DeleteOptions{})
		_ = kc.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, polName, metav1.DeleteOptions{})
	})
	// The apiserver picks policies up from an informer: wait until a
	// dry-run of a labelled Deployment is refused.
	one := int32(1)
	sel := map[string]string{"app": "probe"}
	probe := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "probe-" + key}, Spec: appsv1.DeploymentSpec{Replicas: &one,
		Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe", key: "yes"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "probe"}}}}}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := kc.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), polName) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy %s not enforced after 60s (last answer %v)", polName, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setNamespaceLabel sets (or, with value "", removes) a namespace label.
func setNamespaceLabel(t *testing.T, kc kubernetes.Interface, ns, key, value string) {
	t.Helper()
	ctx := context.Background()
	n, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if value == "" {
		delete(n.Labels, key)
	} else {
		n.Labels[key] = value
	}
	if _, err := kc.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// logPreflightTimes logs how long each pre-flight that passed took (from
// the operation's start to its step out of Preflight), for
// docs/benchmarks.md. Lines start with PREFLIGHT.
func logPreflightTimes(t *testing.T, events []traceEvent, name string) {
	var started time.Time
	for _, e := range events {
		if e.Name != name {
			continue
		}
		switch {
		case e.Msg == "operation started" && e.To == string(lifecycle.PhasePreflight):
			started = e.At
		case e.Msg == "step" && e.From == string(lifecycle.PhasePreflight) && !started.IsZero():
			t.Logf("PREFLIGHT %s before %s: %s", e.Op, e.To, e.At.Sub(started).Round(time.Millisecond))
			started = time.Time{}
		}
	}
}
