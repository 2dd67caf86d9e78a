// Package access holds what the daemon's RBAC must allow and must deny,
// checked with access reviews against a real kube-apiserver. The kustomize
// manifests (tests/e2e) and the Helm chart (deploy/helm) are checked against
// the same tables, so neither can grant more or less than the other.
package access

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Review is one request the daemon's ServiceAccount may or may not make.
type Review struct {
	Verb, Group, Resource, Namespace, Name string
}

func (r Review) String() string {
	return fmt.Sprintf("%s %s.%s %s/%s", r.Verb, r.Resource, r.Group, r.Namespace, r.Name)
}

// Install names where the daemon runs and where it deploys.
type Install struct {
	// Namespace is the daemon's own namespace (its Lease is there).
	Namespace string
	// Lease is the name of its leader-election Lease.
	Lease string
	// Target is a namespace it deploys Flink into (the same as Namespace
	// in a namespace-scoped install).
	Target string
	// Other is a namespace it must not touch.
	Other string
}

// Tables returns the requests the daemon needs (want) and the ones it must
// be refused (deny).
func Tables(in Install) (want, deny []Review) {
	ns, own, lease, other := in.Target, in.Namespace, in.Lease, in.Other
	for _, v := range []string{"get", "list", "watch", "create", "update", "patch", "delete"} {
		want = append(want, Review{v, "", "configmaps", ns, ""})
	}
	// The daemon watches its own Services and Deployments (lifecycle.Cache).
	for _, v := range []string{"list", "watch"} {
		want = append(want, Review{v, "", "services", ns, ""}, Review{v, "apps", "deployments", ns, ""})
	}
	for _, v := range []string{"create", "patch", "delete"} {
		want = append(want, Review{v, "", "services", ns, ""}, Review{v, "apps", "deployments", ns, ""}, Review{v, "networking.k8s.io", "ingresses", ns, ""})
	}
	want = append(want, Review{"get", "apps", "deployments", ns, ""}, Review{"update", "apps", "deployments/finalizers", ns, ""},
		// Ownership: an object of a cluster's name is read before it is applied.
		Review{"get", "", "services", ns, ""}, Review{"get", "networking.k8s.io", "ingresses", ns, ""},
		Review{"create", "", "events", ns, ""}, Review{"list", "", "pods", ns, ""}, Review{"deletecollection", "", "pods", ns, ""},
		Review{"get", "", "namespaces", ns, ns}, Review{"list", "", "resourcequotas", ns, ""}, Review{"list", "", "limitranges", ns, ""},
		Review{"create", "coordination.k8s.io", "leases", own, ""}, Review{"get", "coordination.k8s.io", "leases", own, lease},
		Review{"update", "coordination.k8s.io", "leases", own, lease})

	deny = []Review{
		{"create", "apps", "deployments", other, ""}, {"get", "", "configmaps", other, ""}, {"create", "", "events", other, ""},
		{"list", "", "configmaps", "", ""}, {"create", "apps", "deployments", "", ""}, // cluster-wide
		{"get", "", "secrets", ns, ""}, {"list", "", "secrets", ns, ""}, {"get", "", "secrets", own, ""},
		{"create", "", "pods", ns, ""}, {"delete", "", "pods", ns, ""}, // TaskManagers are not the daemon's
		{"watch", "", "configmaps", other, ""}, {"watch", "apps", "deployments", "", ""}, {"update", "apps", "deployments", ns, ""}, {"update", "apps", "deployments/status", ns, ""},
		{"update", "coordination.k8s.io", "leases", own, "another-lease"},
		{"create", "rbac.authorization.k8s.io", "rolebindings", ns, ""}, {"create", "", "namespaces", "", ""},
		{"get", "", "namespaces", other, other}, {"list", "", "namespaces", "", ""},
	}
	if ns != own {
		deny = append(deny,
			Review{"create", "apps", "deployments", own, ""}, // its own namespace is not a target
			Review{"update", "coordination.k8s.io", "leases", ns, lease})
	}
	return want, deny
}

// Allowed asks the apiserver whether the client's user may do r.
func Allowed(ctx context.Context, cs kubernetes.Interface, r Review) (bool, error) {
	res, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: r.Verb, Group: r.Group, Resource: r.Resource, Namespace: r.Namespace, Name: r.Name,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("access review %s: %w", r, err)
	}
	return res.Status.Allowed, nil
}

// Check asserts that sa (the daemon's ServiceAccount) may make every
// request of Tables(in)'s want and none of its deny, and that a real
// Deployment create in in.Other is forbidden. what names the manifests
// under test in the failures.
func Check(t *testing.T, sa *rest.Config, in Install, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	want, deny := Tables(in)
	for _, r := range want {
		ok, err := Allowed(ctx, cs, r)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("the daemon needs %s, which %s does not grant", r, what)
		}
	}
	for _, r := range deny {
		ok, err := Allowed(ctx, cs, r)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("%s grants %s, which the daemon does not need", what, r)
		}
	}
	// And the real call, not only the review: a Deployment outside the
	// bound namespaces is forbidden.
	_, err = cs.AppsV1().Deployments(in.Other).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}},
		},
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Errorf("creating a Deployment in %s as the daemon's ServiceAccount: want Forbidden, got %v", in.Other, err)
	}
}
