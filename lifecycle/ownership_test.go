package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestTrustRecord(t *testing.T) {
	t.Parallel()
	good := func() (*corev1.ConfigMap, *Record) {
		r := &Record{Kind: KindDeployment, Namespace: "apps", Name: "app"}
		cm, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		return cm, r
	}
	tests := []struct {
		name string
		edit func(*corev1.ConfigMap, *Record)
		want string // "" trusted, else a part of the error
	}{
		{"as written", func(*corev1.ConfigMap, *Record) {}, ""},
		{"no managed-by label", func(cm *corev1.ConfigMap, _ *Record) { delete(cm.Labels, LabelManagedBy) }, "not a flink-gitops status ConfigMap"},
		{"no labels at all", func(cm *corev1.ConfigMap, _ *Record) { cm.Labels = nil }, "not a flink-gitops status ConfigMap"},
		{"no role label", func(cm *corev1.ConfigMap, _ *Record) { delete(cm.Labels, LabelRole) }, "not a flink-gitops status ConfigMap"},
		{"other resource's name", func(_ *corev1.ConfigMap, r *Record) { r.Name = "victim" }, "does not match"},
		{"other namespace", func(_ *corev1.ConfigMap, r *Record) { r.Namespace = "prod" }, "does not match"},
		{"other kind", func(_ *corev1.ConfigMap, r *Record) { r.Kind = KindSessionJob }, "does not match"},
		{"unknown kind", func(_ *corev1.ConfigMap, r *Record) { r.Kind = "Service" }, "unknown kind"},
		{"name label differs", func(cm *corev1.ConfigMap, _ *Record) { cm.Labels[LabelName] = "victim" }, "does not match"},
		{"kind label differs", func(cm *corev1.ConfigMap, _ *Record) { cm.Labels[LabelKind] = KindSessionJob }, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cm, r := good()
			tc.edit(cm, r)
			err := trustRecord(cm, r)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("not trusted: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// foreignService is a Service someone else made, of a name a cluster "app"
// would use.
func foreignService(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"team": "other"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 1234}}}}
}

// TestApplyRefusesForeignObject: a Service of the REST Service's name that
// the daemon did not make is neither changed nor adopted; the refusal says
// which object and what to do (apply itself refuses it too, should the
// object appear after pre-flight: TestApplyRefusesObjectAfterPreflight).
func TestApplyRefusesForeignObject(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	if _, err := w.kube.CoreV1().Services(w.ns).Create(ctx, foreignService(w.ns, "app-rest"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	// Pre-flight refuses the clash before anything would be stopped.
	w.until(KindDeployment, "app", d, "refusal reported", func(r *Record) bool {
		return r.Operation == nil &&
			strings.Contains(r.Common().Error, "Service apps/app-rest exists and is not managed by flink-gitops") &&
			strings.Contains(r.Common().Error, "rename the FlinkDeployment app")
	})
	svc, err := w.kube.CoreV1().Services(w.ns).Get(ctx, "app-rest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Labels["team"] != "other" || svc.Labels[LabelManagedBy] != "" || len(svc.OwnerReferences) != 0 ||
		len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 1234 {
		t.Fatalf("foreign Service changed: labels %v, owners %v, ports %v", svc.Labels, svc.OwnerReferences, svc.Spec.Ports)
	}

	// Handing it over (the labels the error names) lets the deploy finish.
	svc.Labels = map[string]string{LabelManagedBy: ManagedBy, "app": "app"}
	if _, err := w.kube.CoreV1().Services(w.ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until(KindDeployment, "app", d, "deployed after hand-over", stableRunning)
}

// TestDeleteLeavesForeignObjects: deleting a resource deletes its own
// objects and leaves a same-named object someone else made (here an
// Ingress, which this spec does not have) in place, with a warning.
func TestDeleteLeavesForeignObjects(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: w.ns}}
	if _, err := w.kube.NetworkingV1().Ingresses(w.ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until(KindDeployment, "app", nil, "deleted", deleted)
	if w.deploymentObj("app") != nil || w.deploymentObj("app-taskmanager") != nil {
		t.Fatal("own Deployments not deleted")
	}
	if _, err := w.kube.NetworkingV1().Ingresses(w.ns).Get(ctx, "app", metav1.GetOptions{}); err != nil {
		t.Fatalf("foreign Ingress deleted: %v", err)
	}
	if !w.hasEvent(ReasonNotOwned, "Ingress apps/app was left in place") {
		t.Fatalf("no NotOwned event: %v", w.events())
	}
}

// TestPlantedStatusConfigMap: status ConfigMaps another writer planted —
// without the labels, or labelled but naming another resource — are not
// trusted, and a removal of the resource deletes nothing.
func TestPlantedStatusConfigMap(t *testing.T) {
	w := newSimWorld(t)
	ctx := context.Background()
	// A running cluster "victim" that the daemon did not make (no labels).
	victim := foreignService(w.ns, "victim")
	if _, err := w.kube.CoreV1().Services(w.ns).Create(ctx, victim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	plant := func(cmName string, labelled bool, r *Record) {
		t.Helper()
		cm, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		cm.Name = cmName
		if !labelled {
			cm.Labels = nil
		}
		if _, err := w.kube.CoreV1().ConfigMaps(w.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stable := func(name string) *Record {
		r := &Record{Kind: KindDeployment, Namespace: w.ns, Name: name,
			Deployment: &v1beta1.FlinkDeploymentStatus{JobManagerDeploymentStatus: v1beta1.JMReady}}
		r.Common().LifecycleState = v1beta1.LifecycleStable
		return r
	}
	plant(StatusConfigMapName(KindDeployment, "victim"), false, stable("victim"))
	plant(StatusConfigMapName(KindDeployment, "decoy"), true, stable("victim"))

	recs, err := w.rec.Store.List(ctx, w.ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("planted records listed: %+v", recs[0])
	}
	// The daemon would now think "victim" is gone from Git.
	for i := 0; i < 5; i++ {
		w.tick()
		if _, err, _ := w.pass(KindDeployment, "victim", nil); err == nil || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("pass over the planted record: err %v, want not trusted", err)
		}
	}
	if _, err := w.kube.CoreV1().Services(w.ns).Get(ctx, "victim", metav1.GetOptions{}); err != nil {
		t.Fatalf("victim Service deleted: %v", err)
	}
	for _, n := range []string{StatusConfigMapName(KindDeployment, "victim"), StatusConfigMapName(KindDeployment, "decoy")} {
		if _, err := w.kube.CoreV1().ConfigMaps(w.ns).Get(ctx, n, metav1.GetOptions{}); err != nil {
			t.Fatalf("planted ConfigMap %s removed: %v", n, err)
		}
	}
}

// TestApplyRefusesObjectAfterPreflight: should an object of a cluster's
// name appear after pre-flight passed, apply itself refuses it, unchanged.
func TestApplyRefusesObjectAfterPreflight(t *testing.T) {
	ctx := context.Background()
	kc := fake.NewClientset(foreignService("apps", "app-rest"))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app-rest", Namespace: "apps",
		Labels: map[string]string{LabelManagedBy: ManagedBy, "app": "app"}}}
	_, _, err := apply(ctx, kube{Interface: kc}, svc)
	var foreign *NotOwnedError
	if !errors.As(err, &foreign) || foreign.Name != "app-rest" {
		t.Fatalf("apply over a foreign Service: %v, want a NotOwnedError", err)
	}
	got, err := kc.CoreV1().Services("apps").Get(ctx, "app-rest", metav1.GetOptions{})
	if err != nil || got.Labels["team"] != "other" || got.Labels[LabelManagedBy] != "" {
		t.Fatalf("foreign Service changed: %+v, %v", got, err)
	}
}
