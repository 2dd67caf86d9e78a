package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	gosync "sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
)

// Cache is the daemon's view of its own Kubernetes objects — status
// ConfigMaps and every cluster's ConfigMaps, Services and Deployments, all
// labelled app.kubernetes.io/managed-by=flink-gitops — kept by watches
// (shared informers, one set per allowed namespace, or one across all when
// every namespace is allowed). Reads of these objects come from it instead
// of the apiserver, and at rest nothing is re-applied that the watch shows
// unchanged since the daemon's own last apply of the same body.
//
// It only answers when it is sure: a namespace whose watches have not
// synced, an object it does not hold (absent, or not labelled as the
// daemon's) and an object the daemon itself wrote more recently than the
// watch has delivered all fall back to a read from the apiserver, so a
// stale copy never decides anything. A nil *Cache answers nothing.
type Cache struct {
	client kubernetes.Interface
	log    *slog.Logger
	// onDrift is called (from the watch) when someone else changed or
	// deleted one of cluster's objects; see Cache.OnDrift.
	onDrift func(namespace, cluster string)

	mu     gosync.Mutex
	spaces map[string]*nsWatch // by namespace; "" watches all namespaces
	// applied is what the daemon's last apply of each object left: the
	// hash of the body it sent and the resourceVersion the apiserver
	// answered with.
	applied map[objKey]appliedState
	// written is the resourceVersion of the daemon's last write of each
	// status ConfigMap.
	written map[objKey]string
}

type objKey struct{ kind, namespace, name string }

type appliedState struct {
	hash, resourceVersion string
	generation            int64
	// meta identifies the labels, annotations and owner references the
	// object had after the apply (see sameObject).
	meta string
}

type nsWatch struct {
	stop        chan struct{}
	configMaps  corelisters.ConfigMapLister
	services    corelisters.ServiceLister
	deployments appslisters.DeploymentLister
	synced      []cache.InformerSynced
}

// NewCache returns a cache that watches nothing yet: call SetNamespaces.
func NewCache(client kubernetes.Interface, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.Default()
	}
	return &Cache{client: client, log: log, spaces: map[string]*nsWatch{},
		applied: map[objKey]appliedState{}, written: map[objKey]string{}}
}

// OnDrift sets the function called when someone other than the daemon
// changes (beyond status) or deletes one of a cluster's objects, with the
// namespace and the FlinkDeployment's name: the daemon reconciles it at
// once instead of at the next resync. Set it before SetNamespaces.
func (c *Cache) OnDrift(fn func(namespace, cluster string)) { c.onDrift = fn }

// SetNamespaces watches exactly the given namespaces ("*" among them:
// all namespaces with one set of watches), starting watches for new ones
// and stopping those no longer listed. It does not wait for them to sync;
// until they have, reads go to the apiserver.
func (c *Cache) SetNamespaces(namespaces []string) {
	want := map[string]bool{}
	if slices.Contains(namespaces, "*") {
		want[""] = true
	} else {
		for _, ns := range namespaces {
			if ns != "" {
				want[ns] = true
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ns, w := range c.spaces {
		if !want[ns] {
			close(w.stop)
			delete(c.spaces, ns)
		}
	}
	for ns := range want {
		if _, ok := c.spaces[ns]; !ok {
			c.spaces[ns] = c.watch(ns)
		}
	}
}

// Stop ends every watch.
func (c *Cache) Stop() { c.SetNamespaces(nil) }

// WaitSynced waits until every namespace watched has synced or ctx ends.
func (c *Cache) WaitSynced(ctx context.Context) bool {
	c.mu.Lock()
	var synced []cache.InformerSynced
	for _, w := range c.spaces {
		synced = append(synced, w.synced...)
	}
	c.mu.Unlock()
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

func (c *Cache) watch(ns string) *nsWatch {
	opts := []informers.SharedInformerOption{
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = cluster.LabelManagedBy + "=" + cluster.ManagedBy
		}),
		// The daemon never reads managed fields: keep them out of memory.
		informers.WithTransform(stripManagedFields),
	}
	if ns != "" {
		opts = append(opts, informers.WithNamespace(ns))
	}
	f := informers.NewSharedInformerFactoryWithOptions(c.client, 0, opts...)
	cms, svcs, deps := f.Core().V1().ConfigMaps(), f.Core().V1().Services(), f.Apps().V1().Deployments()
	w := &nsWatch{stop: make(chan struct{}), configMaps: cms.Lister(), services: svcs.Lister(), deployments: deps.Lister()}
	for _, inf := range []cache.SharedIndexInformer{cms.Informer(), svcs.Informer(), deps.Informer()} {
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: c.updated, DeleteFunc: c.deleted})
		w.synced = append(w.synced, inf.HasSynced)
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			c.log.Warn("watch of the daemon's objects failed; reads go to the apiserver until it recovers", "namespace", ns, "err", err)
		})
	}
	f.Start(w.stop)
	return w
}

func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// space is the synced watch set that holds namespace, or nil.
func (c *Cache) space(namespace string) *nsWatch {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	w := c.spaces[""]
	if w == nil {
		w = c.spaces[namespace]
	}
	c.mu.Unlock()
	if w == nil {
		return nil
	}
	for _, s := range w.synced {
		if !s() {
			return nil
		}
	}
	return w
}

// object returns a copy of the cached object of kind (ConfigMap, Service,
// Deployment); ok is false when the cache cannot say (not synced, not
// held), and the caller must ask the apiserver.
func (c *Cache) object(kind, namespace, name string) (obj metav1.Object, ok bool) {
	w := c.space(namespace)
	if w == nil {
		return nil, false
	}
	var err error
	switch kind {
	case "ConfigMap":
		var o *corev1.ConfigMap
		if o, err = w.configMaps.ConfigMaps(namespace).Get(name); err == nil {
			obj = o.DeepCopy()
		}
	case "Service":
		var o *corev1.Service
		if o, err = w.services.Services(namespace).Get(name); err == nil {
			obj = o.DeepCopy()
		}
	case "Deployment":
		var o *appsv1.Deployment
		if o, err = w.deployments.Deployments(namespace).Get(name); err == nil {
			obj = o.DeepCopy()
		}
	default:
		return nil, false
	}
	if err != nil {
		// Not held: absent, or there but not labelled as the daemon's
		// (which ownership checks must see): only the apiserver can tell.
		return nil, false
	}
	return obj, true
}

// statusConfigMap returns the cached status ConfigMap when it is at least
// as new as the daemon's own last write of it.
func (c *Cache) statusConfigMap(namespace, name string) (*corev1.ConfigMap, bool) {
	o, ok := c.object("ConfigMap", namespace, name)
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	rv, wrote := c.written[objKey{"ConfigMap", namespace, name}]
	c.mu.Unlock()
	if wrote && rv != o.GetResourceVersion() {
		return nil, false // the watch has not delivered our write yet (or someone else wrote after it)
	}
	return o.(*corev1.ConfigMap), true
}

// deletedVersion is what wrote records for a status ConfigMap the daemon
// deleted: no cached copy matches it, so reads go to the apiserver.
const deletedVersion = "deleted"

func (c *Cache) wrote(namespace, name, resourceVersion string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[objKey{"ConfigMap", namespace, name}] = resourceVersion
}

// stateOf is what identifies the version of obj (hash: the apply body
// that made it, if known).
func stateOf(obj metav1.Object, hash string) appliedState {
	return appliedState{hash: hash, resourceVersion: obj.GetResourceVersion(), generation: obj.GetGeneration(), meta: metaHash(obj)}
}

// sameObject reports whether two versions of an object of kind are the
// same but for status. A Deployment's status changes with its pods (and
// only its spec changes its generation), so a Deployment is the same while
// its generation, labels, annotations and owner references are; any other
// object while its resourceVersion is.
func sameObject(kind string, a, b appliedState) bool {
	if kind != "Deployment" {
		return a.resourceVersion == b.resourceVersion
	}
	return a.generation == b.generation && a.meta == b.meta
}

// lastApply is what the daemon's last apply of the object left, if it
// applied it since it started.
func (c *Cache) lastApply(kind, namespace, name string) (appliedState, bool) {
	if c == nil {
		return appliedState{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.applied[objKey{kind, namespace, name}]
	return a, ok
}

// metaHash identifies an object's labels, annotations and owner references.
func metaHash(o metav1.Object) string {
	b, _ := json.Marshal([]any{o.GetLabels(), o.GetAnnotations(), o.GetOwnerReferences()})
	return bodyHash(b)
}

func (c *Cache) didApply(kind string, obj metav1.Object, st appliedState) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied[objKey{kind, obj.GetNamespace(), obj.GetName()}] = st
}

// forget drops what the daemon remembers of a cluster's objects (after
// deleting them).
func (c *Cache) forget(kind, namespace, name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.applied, objKey{kind, namespace, name})
}

// updated and deleted turn watch events into drift notices: a change to one
// of a cluster's objects that the daemon's own apply did not make and that
// is more than status (Deployment status changes with every pod).
func (c *Cache) updated(oldObj, newObj any) {
	o, ok1 := oldObj.(metav1.Object)
	n, ok2 := newObj.(metav1.Object)
	if !ok1 || !ok2 || o.GetResourceVersion() == n.GetResourceVersion() {
		return // a resync of the informer, not a change
	}
	co, ok := newObj.(cluster.Object) // the informers watch nothing else
	if !ok || isStatusConfigMap(n) {
		return
	}
	kind := kindOf(co)
	if a, _ := c.lastApply(kind, n.GetNamespace(), n.GetName()); a.resourceVersion == n.GetResourceVersion() {
		return // the daemon's own apply
	}
	if sameObject(kind, stateOf(o, ""), stateOf(n, "")) {
		return // status only
	}
	c.drift(n)
}

func (c *Cache) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(cluster.Object)
	if !ok || isStatusConfigMap(m) {
		return
	}
	c.drift(m)
}

func (c *Cache) drift(m metav1.Object) {
	name := m.GetLabels()[cluster.LabelApp]
	if name == "" || c.onDrift == nil {
		return
	}
	c.onDrift(m.GetNamespace(), name)
}

func isStatusConfigMap(m metav1.Object) bool { return m.GetLabels()[LabelRole] == RoleStatus }

// deployment returns the cached Deployment when the watch has delivered at
// least the daemon's own last apply of it (its generation): its status is
// then as fresh as a watch gives.
func (c *Cache) deployment(namespace, name string) (*appsv1.Deployment, bool) {
	o, ok := c.object("Deployment", namespace, name)
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	a, applied := c.applied[objKey{"Deployment", namespace, name}]
	c.mu.Unlock()
	if applied && o.GetGeneration() < a.generation {
		return nil, false
	}
	return o.(*appsv1.Deployment), true
}

// kube is how lifecycle reaches Kubernetes: every call goes to the
// apiserver except the reads of the daemon's own objects that cache can
// answer (a nil cache answers none).
type kube struct {
	kubernetes.Interface
	cache *Cache
}

// kube is the reconciler's access to Kubernetes.
func (r *Reconciler) kube() kube { return kube{Interface: r.Kube, cache: r.Cache} }

// bodyHash identifies an apply body.
func bodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}
