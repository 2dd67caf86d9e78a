package lifecycle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
)

// Ownership: the daemon only ever changes or deletes objects it made. An
// object is the daemon's when it carries the managed-by label and the app
// label of the cluster it belongs to (the builders set both). A same-named
// object without them — a Service, Deployment or ConfigMap someone else
// created — is never taken over by the server-side apply (which would
// force its fields) and never deleted; the operation reports it instead.

// ReasonNotOwned is the event reason of an object left alone because it is
// not the daemon's.
const ReasonNotOwned = "NotOwned"

// NotOwnedError is an existing object of the name the daemon would write
// that it did not create.
type NotOwnedError struct {
	Kind, Namespace, Name string
	// Cluster is the FlinkDeployment the daemon wanted the object for.
	Cluster string
}

// Error says which object it is and how to resolve the clash.
func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("%s %s/%s exists and is not managed by flink-gitops: rename the FlinkDeployment %s, "+
		"or delete the object, or hand it over by labelling it %s=%s and %s=%s",
		e.Kind, e.Namespace, e.Name, e.Cluster, cluster.LabelManagedBy, cluster.ManagedBy, cluster.LabelApp, e.Cluster)
}

// ownedBy reports whether an object's metadata marks it as one of cluster
// name's objects made by the daemon.
func ownedBy(m metav1.Object, name string) bool {
	l := m.GetLabels()
	return l[cluster.LabelManagedBy] == cluster.ManagedBy && l[cluster.LabelApp] == name
}

// existing reads the object of a kind the cluster builder makes; nil when
// there is none.
func existing(ctx context.Context, kc kube, kind, namespace, name string) (metav1.Object, error) {
	var (
		o   metav1.Object
		err error
	)
	if o, ok := kc.cache.object(kind, namespace, name); ok {
		return o, nil
	}
	get := metav1.GetOptions{}
	switch kind {
	case "ConfigMap":
		o, err = kc.CoreV1().ConfigMaps(namespace).Get(ctx, name, get)
	case "Service":
		o, err = kc.CoreV1().Services(namespace).Get(ctx, name, get)
	case "Deployment":
		o, err = kc.AppsV1().Deployments(namespace).Get(ctx, name, get)
	case "Ingress":
		o, err = kc.NetworkingV1().Ingresses(namespace).Get(ctx, name, get)
	default:
		return nil, fmt.Errorf("read %s %s/%s: unsupported kind", kind, namespace, name)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s/%s: %w", kind, namespace, name, err)
	}
	return o, nil
}

// checkOwned refuses to write obj when an object of its kind and name
// exists that is not the daemon's (see ownedBy). It costs one read per
// object, which keeps the check where it must be: right before the write.
func checkOwned(ctx context.Context, kc kube, kind string, obj cluster.Object) error {
	name := obj.GetLabels()[cluster.LabelApp]
	cur, err := existing(ctx, kc, kind, obj.GetNamespace(), obj.GetName())
	if err != nil || cur == nil {
		return err
	}
	if !ownedBy(cur, name) {
		return &NotOwnedError{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Cluster: name}
	}
	return nil
}

// deleteOwned deletes one of cluster name's objects if it exists and is the
// daemon's; an object that is not is left alone and returned as kept. The
// delete is conditional on the UID read, so an object replaced in between
// is not deleted either.
func deleteOwned(ctx context.Context, kc kube, ref cluster.Ref, name string) (kept *NotOwnedError, err error) {
	cur, err := existing(ctx, kc, ref.Kind, ref.Namespace, ref.Name)
	if err != nil || cur == nil {
		return nil, err
	}
	if !ownedBy(cur, name) {
		return &NotOwnedError{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Cluster: name}, nil
	}
	uid := cur.GetUID()
	// What the daemon applied is gone with it: the next apply must not be
	// skipped for a copy the watch still holds.
	kc.cache.forget(ref.Kind, ref.Namespace, ref.Name)
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}
	switch ref.Kind {
	case "Deployment":
		err = kc.AppsV1().Deployments(ref.Namespace).Delete(ctx, ref.Name, opts)
	case "Service":
		err = kc.CoreV1().Services(ref.Namespace).Delete(ctx, ref.Name, opts)
	case "ConfigMap":
		err = kc.CoreV1().ConfigMaps(ref.Namespace).Delete(ctx, ref.Name, opts)
	case "Ingress":
		err = kc.NetworkingV1().Ingresses(ref.Namespace).Delete(ctx, ref.Name, opts)
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone, or replaced since it was read (the UID precondition): not
		// ours to delete now; the next pass looks again.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delete %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
	}
	return nil, nil
}

// trustRecord checks that a decoded status record belongs to the ConfigMap
// it was read from: the ConfigMap carries the managed-by and status labels,
// its kind and name labels and its own name match the record, and the
// record's namespace is the ConfigMap's. Anything else may have been planted
// by another ConfigMap writer (Flink's own service account can write
// ConfigMaps) and must not steer the daemon — in particular not into
// deleting anything.
func trustRecord(cm *corev1.ConfigMap, r *Record) error {
	l := cm.Labels
	switch {
	case l[LabelManagedBy] != ManagedBy || l[LabelRole] != RoleStatus:
		return fmt.Errorf("ConfigMap %s/%s is not a flink-gitops status ConfigMap (it lacks the labels %s=%s and %s=%s): "+
			"delete it, or rename the resource", cm.Namespace, cm.Name, LabelManagedBy, ManagedBy, LabelRole, RoleStatus)
	case r.Kind != KindDeployment && r.Kind != KindSessionJob && (r.Kind != KindSnapshot || r.Snapshot == nil):
		return fmt.Errorf("status ConfigMap %s/%s records unknown kind %q: delete it", cm.Namespace, cm.Name, r.Kind)
	case cm.Name != StatusConfigMapName(r.Kind, r.Name) || r.Namespace != cm.Namespace ||
		l[LabelKind] != r.Kind || l[LabelName] != r.Name:
		return fmt.Errorf("status ConfigMap %s/%s records %s %s/%s, which does not match its name and labels: delete it",
			cm.Namespace, cm.Name, r.Kind, r.Namespace, r.Name)
	}
	return nil
}

// reportNotOwned warns about objects deleteCluster left alone: the
// resource is gone, but objects of its names that someone else made stay.
func (p *pass) reportNotOwned(ctx context.Context, kept []*NotOwnedError) {
	for _, k := range kept {
		p.log.Warn("object not deleted: not managed by flink-gitops", "object", k.Kind+" "+k.Namespace+"/"+k.Name)
		p.r.Events.Warn(ctx, p.rec, ReasonNotOwned, k.Kind+" "+k.Namespace+"/"+k.Name+" was left in place: it is not managed by flink-gitops")
	}
}
