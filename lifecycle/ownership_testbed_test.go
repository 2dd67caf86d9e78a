package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// foreignObjects are objects someone else made in ns, of the names a
// FlinkDeployment called name would use for its Flink ConfigMap, its
// JobManager Deployment and its REST Service.
func foreignObjects(ns, name string) map[string]func(context.Context, kubernetes.Interface) (metav1.Object, error) {
	labels := map[string]string{"team": "other"}
	one := int32(0)
	return map[string]func(context.Context, kubernetes.Interface) (metav1.Object, error){
		"ConfigMap " + ns + "/flink-config-" + name: func(ctx context.Context, kc kubernetes.Interface) (metav1.Object, error) {
			return kc.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "flink-config-" + name, Labels: labels},
				Data: map[string]string{"config.yaml": "theirs: true\n"}}, metav1.CreateOptions{})
		},
		"Deployment " + ns + "/" + name: func(ctx context.Context, kc kubernetes.Interface) (metav1.Object, error) {
			sel := map[string]string{"run": name}
			return kc.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: sel},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "theirs:1"}}}}}}, metav1.CreateOptions{})
		},
		"Service " + ns + "/" + name + "-rest": func(ctx context.Context, kc kubernetes.Interface) (metav1.Object, error) {
			return kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name + "-rest", Labels: labels},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 1234}}}}, metav1.CreateOptions{})
		},
	}
}

// readAgain reads an object of a kind foreignObjects makes.
func readAgain(ctx context.Context, kc kubernetes.Interface, ns string, o metav1.Object) (metav1.Object, error) {
	switch o.(type) {
	case *corev1.ConfigMap:
		return kc.CoreV1().ConfigMaps(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
	case *appsv1.Deployment:
		return kc.AppsV1().Deployments(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
	case *corev1.Service:
		return kc.CoreV1().Services(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
	case *networkingv1.Ingress:
		return kc.NetworkingV1().Ingresses(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
	}
	return nil, fmt.Errorf("unexpected %T", o)
}

// deleteDeploymentsAtEnd removes the namespace's Deployments when the test
// ends: the namespace outlives it (no namespace controller), and a later
// test's node agent must not start JVMs for them.
func deleteDeploymentsAtEnd(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.AppsV1().Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Logf("delete the test's Deployments: %v", err)
		}
	})
}

// noFlinkReconciler is a reconciler on the real apiserver without Flink:
// for tests in which nothing gets as far as running a job.
func noFlinkReconciler(cs kubernetes.Interface) *lifecycle.Reconciler {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &lifecycle.Reconciler{
		Kube: cs, Store: &lifecycle.Store{Client: cs, Log: log},
		Flink:  func(string, string) (lifecycle.Flink, error) { return nil, errors.New("no Flink in this test") },
		Events: &lifecycle.Events{Client: cs, Log: log},
		Log:    log,
		Settings: func() lifecycle.Settings {
			return lifecycle.Settings{FastPoll: 100 * time.Millisecond, Resync: time.Second, OperationTimeout: time.Minute}
		},
	}
}

// TestTakeoverRefused runs against the real apiserver: a FlinkDeployment
// named like an existing ConfigMap, Deployment or Service someone else made
// leaves that object untouched (same resourceVersion, no owner, no
// managed-by label) and the operation names it and the fix.
func TestTakeoverRefused(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	deleteDeploymentsAtEnd(t, cs, ns)
	ctx := context.Background()
	rec := noFlinkReconciler(cs)
	b := &bed{t: t, ns: ns, state: t.TempDir(), renderer: render.NewRenderer()}
	for i, kind := range []string{"ConfigMap", "Deployment", "Service"} {
		name := fmt.Sprintf("taken%d", i)
		t.Run(kind, func(t *testing.T) {
			b.t = t
			var obj metav1.Object
			var what string
			for w, create := range foreignObjects(ns, name) {
				if strings.HasPrefix(w, kind+" ") {
					var err error
					if obj, err = create(ctx, cs); err != nil {
						t.Fatal(err)
					}
					what = w
				}
			}
			d := b.render(b.appSpec(name, "flink:2.2", "v2_2", "savepoint", "", 1))
			var r *lifecycle.Record
			deadline := time.Now().Add(time.Minute)
			for {
				res, err := rec.Reconcile(ctx, lifecycle.KindDeployment, ns, name, d)
				if err != nil {
					t.Fatalf("reconcile: %v", err)
				}
				r = res.Record
				if op := r.Operation; op != nil && op.Attempts >= 2 {
					break
				}
				// Pre-flight refuses the clash before anything is stopped.
				if strings.Contains(r.Common().Error, "not managed by flink-gitops") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no refusal: %s", dump(r))
				}
				time.Sleep(100 * time.Millisecond)
			}
			want := what + " exists and is not managed by flink-gitops: rename the FlinkDeployment " + name
			got := r.Common().Error
			if r.Operation != nil {
				got = r.Operation.Message
			}
			if !strings.Contains(got, want) {
				t.Fatalf("refusal %q, want it to contain %q", got, want)
			}
			again, err := readAgain(ctx, cs, ns, obj)
			if err != nil {
				t.Fatalf("%s gone: %v", what, err)
			}
			if again.GetResourceVersion() != obj.GetResourceVersion() || len(again.GetOwnerReferences()) != 0 || again.GetLabels()["app.kubernetes.io/managed-by"] != "" {
				t.Fatalf("%s changed: resourceVersion %s -> %s, owners %v, labels %v", what, obj.GetResourceVersion(), again.GetResourceVersion(), again.GetOwnerReferences(), again.GetLabels())
			}
		})
	}
}

// TestPlantedStatusDeletesNothing runs against the real apiserver: status
// ConfigMaps planted by another ConfigMap writer — without the labels, or
// labelled but naming another resource — are not trusted, and a pass for
// the resource as removed from Git deletes nothing.
func TestPlantedStatusDeletesNothing(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	deleteDeploymentsAtEnd(t, cs, ns)
	ctx := context.Background()
	rec := noFlinkReconciler(cs)
	store := rec.Store
	// The victim: objects someone else made, of a cluster "victim"'s names.
	var victims []metav1.Object
	for _, c := range foreignObjects(ns, "victim") {
		o, err := c(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		victims = append(victims, o)
	}
	status := func(cmName string, labels map[string]string, name string) {
		rec := fmt.Sprintf(`{"kind":"FlinkDeployment","namespace":%q,"name":%q,"deployment":{"lifecycleState":"STABLE","jobManagerDeploymentStatus":"READY",`+
			`"reconciliationStatus":{"lastReconciledSpec":"{\"job\":{\"state\":\"running\"}}","state":"DEPLOYED"}}}`, ns, name)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmName, Labels: labels}, Data: map[string]string{"status.json": rec}}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	status(lifecycle.StatusConfigMapName(lifecycle.KindDeployment, "victim"), nil, "victim")
	status(lifecycle.StatusConfigMapName(lifecycle.KindDeployment, "decoy"), map[string]string{
		lifecycle.LabelManagedBy: lifecycle.ManagedBy, lifecycle.LabelRole: lifecycle.RoleStatus,
		lifecycle.LabelKind: lifecycle.KindDeployment, lifecycle.LabelName: "decoy"}, "victim")

	recs, err := store.List(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("%d planted records listed, e.g. %s/%s", len(recs), recs[0].Namespace, recs[0].Name)
	}
	for _, name := range []string{"victim", "decoy"} {
		for i := 0; i < 5; i++ {
			_, err := rec.Reconcile(ctx, lifecycle.KindDeployment, ns, name, nil)
			if err == nil || !strings.Contains(err.Error(), "not trusted") && !strings.Contains(err.Error(), "instead of") {
				t.Fatalf("pass over planted status of %s: err %v, want it refused", name, err)
			}
		}
	}
	for _, o := range victims {
		again, err := readAgain(ctx, cs, ns, o)
		if err != nil {
			t.Fatalf("%T %s deleted: %v", o, o.GetName(), err)
		}
		if again.GetResourceVersion() != o.GetResourceVersion() {
			t.Fatalf("%T %s changed", o, o.GetName())
		}
	}
}
