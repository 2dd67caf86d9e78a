package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
)

// FieldManager is the server-side apply field manager of every object the
// daemon writes; a stable name lets apply take back fields someone edited.
const FieldManager = "flink-gitops"

// applyCluster server-side applies a cluster's objects: the JobManager
// Deployment first among the owned ones, so the others can be owned by it.
// Force takes back fields someone else changed (drift is corrected). An
// object the watch shows unchanged since the daemon applied the same body
// is not sent again. It returns the objects whose apply undid someone
// else's change to what the daemon had applied (drift corrected).
func applyCluster(ctx context.Context, kc kube, objs *cluster.Objects) (corrected []string, err error) {
	note := func(o cluster.Object, fixed bool) {
		if fixed {
			corrected = append(corrected, kindOf(o)+" "+o.GetName())
		}
	}
	if objs.JobManager == nil {
		return nil, fmt.Errorf("cluster has no JobManager Deployment")
	}
	// The ConfigMaps go first (the pods mount them), owned by the
	// JobManager Deployment when it exists already: applied without the
	// owner reference and then with it, they would be written twice.
	if jm, err := jobManagerDeployment(ctx, kc, objs.JobManager.GetLabels()[cluster.LabelApp], objs.JobManager.Namespace); err != nil {
		return nil, err
	} else if jm != nil && jm.Name == objs.JobManager.Name {
		objs.SetOwner(jm.UID)
	}
	for _, cm := range []*corev1.ConfigMap{objs.ConfigMap, objs.PodTemplate} {
		if cm != nil {
			_, fixed, err := apply(ctx, kc, cm)
			if err != nil {
				return corrected, err
			}
			note(cm, fixed)
		}
	}
	jm, fixed, err := apply(ctx, kc, objs.JobManager)
	if err != nil {
		return corrected, err
	}
	note(objs.JobManager, fixed)
	objs.SetOwner(jm.GetUID())
	for _, o := range objs.List() {
		if o == cluster.Object(objs.JobManager) {
			continue
		}
		// (The ConfigMaps again: now with the owner reference.)
		_, fixed, err := apply(ctx, kc, o)
		if err != nil {
			return corrected, err
		}
		note(o, fixed)
	}
	return corrected, nil
}

// apply server-side applies one object of a kind the cluster builder makes
// and returns the object as stored. An existing object of that name which
// is not the daemon's is refused (NotOwnedError), never taken over. When
// the watch shows the object exactly as the daemon's last apply of the
// same body left it, nothing is sent. fixed reports that the apply changed
// an object the daemon had already applied this body to: someone had
// edited it.
func apply(ctx context.Context, kc kube, obj cluster.Object) (stored metav1.Object, fixed bool, err error) {
	kind, ns, name := kindOf(obj), obj.GetNamespace(), obj.GetName()
	body, err := applyBody(obj)
	if err != nil {
		return nil, false, err
	}
	hash := bodyHash(body)
	// The same body applied before, and the watch shows the object as that
	// apply left it: applying again would change nothing.
	prev, known := kc.cache.object(kind, ns, name)
	last, applied := kc.cache.lastApply(kind, ns, name)
	again := known && applied && last.hash == hash
	if again && sameObject(kind, stateOf(prev, ""), last) {
		return prev, false, nil
	}
	if err := checkOwned(ctx, kc, kind, obj); err != nil {
		return nil, false, err
	}
	stored, err = patchApply(ctx, kc, obj, body, metav1.PatchOptions{FieldManager: FieldManager, Force: ptrTrue()})
	if err != nil {
		return nil, false, fmt.Errorf("apply %T %s/%s: %w", obj, ns, name, err)
	}
	// The apply set back what someone changed when the stored object
	// differs from the one the watch held (a no-op apply keeps it as it was).
	now := stateOf(stored, hash)
	fixed = again && !sameObject(kind, stateOf(prev, ""), now)
	kc.cache.didApply(kind, stored, now)
	return stored, fixed, nil
}

// applyBody is the server-side apply patch of one object the cluster
// builder makes: the object with its type and without its status.
func applyBody(obj cluster.Object) ([]byte, error) {
	typed := cluster.WithTypeMeta(obj)
	switch o := typed.(type) {
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
	case *networkingv1.Ingress:
		o.Status = networkingv1.IngressStatus{}
	}
	return json.Marshal(typed)
}

// patchApply sends body, the apply patch of obj (applyBody), with the
// given options and returns the object as stored.
func patchApply(ctx context.Context, kc kubernetes.Interface, obj cluster.Object, body []byte, opts metav1.PatchOptions) (metav1.Object, error) {
	ns, name := obj.GetNamespace(), obj.GetName()
	switch obj.(type) {
	case *corev1.ConfigMap:
		return kc.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *corev1.Service:
		return kc.CoreV1().Services(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *appsv1.Deployment:
		return kc.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	case *networkingv1.Ingress:
		return kc.NetworkingV1().Ingresses(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	}
	return nil, permanent(fmt.Errorf("apply: unsupported object %T", obj))
}

func ptrTrue() *bool { t := true; return &t }

// kindOf is the Kind of an object the cluster builder makes.
func kindOf(obj cluster.Object) string {
	switch obj.(type) {
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *corev1.Service:
		return "Service"
	case *appsv1.Deployment:
		return "Deployment"
	case *networkingv1.Ingress:
		return "Ingress"
	}
	return fmt.Sprintf("%T", obj)
}

// deleteCluster deletes every object a cluster may have, and for a native
// cluster the TaskManager pods its JobManager created. It does not wait;
// clusterGone tells when the cluster is gone. Objects of those names that
// are not the daemon's are left alone and returned as kept.
func deleteCluster(ctx context.Context, kc kube, name, namespace string, native bool) (kept []*NotOwnedError, err error) {
	for _, ref := range cluster.Refs(name, namespace, native) {
		k, err := deleteOwned(ctx, kc, ref, name)
		if err != nil {
			return kept, err
		}
		if k != nil {
			kept = append(kept, k)
		}
	}
	if native {
		return kept, deleteTaskManagerPods(ctx, kc, namespace, name)
	}
	return kept, nil
}

// jobManagerDeployment returns the JobManager Deployment, nil when missing.
func jobManagerDeployment(ctx context.Context, kc kube, name, namespace string) (*appsv1.Deployment, error) {
	if d, ok := kc.cache.deployment(namespace, cluster.JobManagerName(name)); ok {
		if !ownedBy(d, name) {
			return nil, nil
		}
		return d, nil
	}
	d, err := kc.AppsV1().Deployments(namespace).Get(ctx, cluster.JobManagerName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read JobManager Deployment %s/%s: %w", namespace, name, err)
	}
	if !ownedBy(d, name) {
		return nil, nil // someone else's: not our JobManager (apply refuses it)
	}
	return d, nil
}

// clusterGone reports whether neither the JobManager nor the TaskManager
// Deployment of the daemon exists any more, nor, for a native cluster, a
// TaskManager pod. Same-named Deployments that are not the daemon's do not
// count (deleteCluster leaves them alone).
func clusterGone(ctx context.Context, kc kube, name, namespace string, native bool) (bool, error) {
	for _, n := range []string{cluster.JobManagerName(name), cluster.TaskManagerName(name)} {
		d, err := existing(ctx, kc, "Deployment", namespace, n)
		if err != nil {
			return false, err
		}
		if d != nil && ownedBy(d, name) {
			return false, nil
		}
	}
	if native {
		pods, err := taskManagerPods(ctx, kc, namespace, name)
		if err != nil || len(pods) > 0 {
			return false, err
		}
	}
	// A JobManager pod that is still terminating may still write its HA
	// metadata (which is deleted next), so wait for it too.
	typ := cluster.TypeStandalone
	if native {
		typ = cluster.TypeNative
	}
	sel := labels.SelectorFromSet(cluster.Selector(typ, name, cluster.ComponentJobManager)).String()
	pods, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("list JobManager pods of %s/%s: %w", namespace, name, err)
	}
	return len(pods.Items) == 0, nil
}
