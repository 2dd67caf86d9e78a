package e2e

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
)

// TestPreflightThroughGit (issue 26): pushes a running job cannot take —
// refused by a ValidatingAdmissionPolicy, by the namespace's Pod Security
// level, by a ResourceQuota without room — leave the old job RUNNING with
// its counter going on and no savepoint taken, and the status branch says
// why.
func TestPreflightThroughGit(t *testing.T) {
	e := newEnv(t, map[string]string{
		"apps/counter/kustomization.yaml":   kustomization,
		"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 1, ""),
	}, nil)
	rs := e.wait("FlinkDeployment", "counter", "first deploy", 4*time.Minute, stableAt(""))
	job, deployed := rs.JobID, rs.LastReconciledCommit
	counter := e.progress("counter", job, 20)
	kc := e.s.Kube.Client()
	ctx := context.Background()

	refused := func(what, spec, want string) {
		t.Helper()
		c := e.push("counter: "+what, map[string]string{"apps/counter/flinkdeployment.yaml": spec})
		rs := e.wait("FlinkDeployment", "counter", what+" refused on the status branch", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
			// The status branch can name the new commit (rendered) before its
			// pass has run pre-flight: wait for this refusal's reason.
			return r.SourceCommit == c && r.Operation == "" && strings.HasPrefix(r.Error, "upgrade refused: ") && strings.Contains(r.Error, want)
		})
		if !strings.Contains(rs.Error, want) || !strings.HasSuffix(rs.Error, "; the running job is untouched") {
			t.Fatalf("%s: error %q, want it to name %q", what, rs.Error, want)
		}
		if rs.JobID != job || rs.JobState != "RUNNING" || rs.LifecycleState != "STABLE" || rs.LastReconciledCommit != deployed || len(rs.Savepoints) != 0 {
			t.Fatalf("%s: the running job was touched: %+v", what, rs)
		}
		if rs.Attempts < 1 || rs.NextAttempt == "" {
			t.Errorf("%s: no retry time on the status branch: %+v", what, rs)
		}
		next := e.progress("counter", job, counter+1)
		t.Logf("%s: %s; job %s counting %d -> %d", what, rs.Error, job, counter, next)
		counter = next
	}

	denyPodLabel(t, kc, e.ns, "preflight-deny")
	refused("admission policy", appSpec("counter", "savepoint", 1, "  podTemplate:\n    metadata:\n      labels:\n        preflight-deny: \"yes\"\n"),
		"Deployment "+e.ns+"/counter: ")

	labelNamespace(t, kc, e.ns, "pod-security.kubernetes.io/enforce", "restricted")
	refused("pod security", appSpec("counter", "savepoint", 3, ""), `would violate PodSecurity "restricted:latest"`)
	labelNamespace(t, kc, e.ns, "pod-security.kubernetes.io/enforce", "")

	q, err := kc.CoreV1().ResourceQuotas(e.ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "cpu"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No quota controller runs here: the status says what the old pods use.
	q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}}
	if _, err := kc.CoreV1().ResourceQuotas(e.ns).UpdateStatus(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	refused("resource quota", appSpec("counter", "savepoint", 4, ""), "exceeded quota cpu")
	if err := kc.CoreV1().ResourceQuotas(e.ns).Delete(ctx, "cpu", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The fix goes through at once (a new commit is checked without waiting
	// for the refusal's retry time), and the error is gone.
	fixed := e.push("counter: parallelism 2", map[string]string{"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 2, "")})
	rs = e.wait("FlinkDeployment", "counter", "upgrade after the fix", 4*time.Minute, stableAt(fixed))
	if rs.Error != "" || rs.JobID == job || len(rs.Savepoints) != 1 {
		t.Fatalf("after the fix: %+v", rs)
	}
}

// denyPodLabel installs a ValidatingAdmissionPolicy (CEL) refusing
// Deployments in ns whose pods carry label key, and waits until it is
// enforced.
func denyPodLabel(t *testing.T, kc kubernetes.Interface, ns, key string) {
	t.Helper()
	ctx := context.Background()
	name := "deny-" + key + "-" + ns
	fail := admissionv1.Fail
	pol := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: admissionv1.ValidatingAdmissionPolicySpec{
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
	bind := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
		PolicyName: name, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
	}}
	if _, err := kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = kc.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	one := int32(1)
	probe := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: appsv1.DeploymentSpec{Replicas: &one,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe", key: "yes"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "probe"}}}}}}
	eventually(t, time.Minute, "policy "+name+" enforced", func() (bool, string) {
		_, err := kc.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), name), fmt.Sprint(err)
	})
}

// labelNamespace sets (value "": removes) a label of namespace ns.
func labelNamespace(t *testing.T, kc kubernetes.Interface, ns, key, value string) {
	t.Helper()
	n, err := kc.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
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
	if _, err := kc.CoreV1().Namespaces().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
