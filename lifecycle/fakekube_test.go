package lifecycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes/fake"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// The client-go fake clientset of v0.37 does server-side apply:
// fake.NewClientset (not the deprecated NewSimpleClientset) has a
// field-managed object tracker, and the reconciler's apply bodies go through
// it (TestServerSideApplyFake). But every apply costs some 15 ms of
// field-manager work, which makes the exhaustive crash tests (thousands of
// passes) take many minutes, so the simulated world uses a plain tracker by
// default and turns an apply into a create or a replace: exact for this
// daemon, which is the only field manager of its objects and always applies
// whole objects with force. Status, written by the simulated kubelet, is
// kept across applies as the apiserver keeps it.
//
// Neither tracker keeps object metadata: resourceVersion stays empty and is
// not checked on update, generation never moves, there are no UIDs and
// generateName is not honoured. The reconciler depends on all four (the
// Store's optimistic concurrency, the JobManager's observedGeneration,
// owner references, Events), so apiserverReactor adds them in front of the
// tracker.

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	deploymentsGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	eventsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "events"}
	eventsGVK      = schema.GroupVersionKind{Version: "v1", Kind: "Event"}
)

// apiserverReactor gives creates, updates and server-side applies the
// metadata an apiserver would: a new resourceVersion on every write and a
// Conflict for a stale one, a UID and creationTimestamp on create, a name
// from generateName, and a generation that moves when anything but
// metadata and status changes.
// With ssa, applies go through the tracker's field manager; otherwise an
// apply creates or replaces the object, keeping its status.
func apiserverReactor(tracker k8stesting.ObjectTracker, clock *simClock, ssa bool) k8stesting.ReactionFunc {
	rv := 1000
	next := func() string { rv++; return fmt.Sprint(rv) }
	delegate := k8stesting.ObjectReaction(tracker)
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		gvr, ns := action.GetResource(), action.GetNamespace()
		switch a := action.(type) {
		case k8stesting.CreateActionImpl:
			obj := a.GetObject().DeepCopyObject()
			m, err := meta.Accessor(obj)
			if err != nil {
				return true, nil, err
			}
			if m.GetName() == "" && m.GetGenerateName() != "" {
				m.SetName(m.GetGenerateName() + rand.String(5))
			}
			m.SetUID(types.UID(fmt.Sprintf("uid-%s-%s", m.GetName(), next())))
			m.SetResourceVersion(next())
			m.SetGeneration(1)
			m.SetCreationTimestamp(metav1.NewTime(clock.Now()))
			if err := tracker.Create(gvr, obj, ns, metav1.CreateOptions{}); err != nil {
				return true, nil, err
			}
			out, err := tracker.Get(gvr, ns, m.GetName())
			return true, out, err
		case k8stesting.UpdateActionImpl:
			obj := a.GetObject().DeepCopyObject()
			m, err := meta.Accessor(obj)
			if err != nil {
				return true, nil, err
			}
			old, err := tracker.Get(gvr, ns, m.GetName())
			if err != nil {
				return true, nil, err
			}
			om, _ := meta.Accessor(old)
			if m.GetResourceVersion() != "" && m.GetResourceVersion() != om.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), m.GetName(),
					fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
			}
			m.SetUID(om.GetUID())
			m.SetCreationTimestamp(om.GetCreationTimestamp())
			m.SetGeneration(om.GetGeneration())
			if !sameContent(old, obj) {
				m.SetGeneration(om.GetGeneration() + 1)
			}
			m.SetResourceVersion(next())
			if err := tracker.Update(gvr, obj, ns, metav1.UpdateOptions{}); err != nil {
				return true, nil, err
			}
			out, err := tracker.Get(gvr, ns, m.GetName())
			return true, out, err
		case k8stesting.PatchActionImpl:
			if a.GetPatchType() != types.ApplyPatchType {
				return false, nil, nil
			}
			if len(a.PatchOptions.DryRun) > 0 { // validated and admitted, not stored
				obj, _, err := clientscheme.Codecs.UniversalDeserializer().Decode(a.GetPatch(), nil, nil)
				if err != nil {
					return true, nil, apierrors.NewBadRequest(err.Error())
				}
				return true, obj, nil
			}
			old, oldErr := tracker.Get(gvr, ns, a.GetName())
			if oldErr != nil && !apierrors.IsNotFound(oldErr) {
				return true, nil, oldErr
			}
			var obj runtime.Object
			if ssa {
				if _, _, err := delegate(action); err != nil {
					return true, nil, err
				}
				var err error
				if obj, err = tracker.Get(gvr, ns, a.GetName()); err != nil {
					return true, nil, err
				}
			} else {
				var err error
				if obj, _, err = clientscheme.Codecs.UniversalDeserializer().Decode(a.GetPatch(), nil, nil); err != nil {
					return true, nil, apierrors.NewBadRequest(err.Error())
				}
				if oldErr == nil {
					if st := reflect.ValueOf(obj).Elem().FieldByName("Status"); st.IsValid() {
						st.Set(reflect.ValueOf(old).Elem().FieldByName("Status"))
					}
				}
			}
			m, _ := meta.Accessor(obj)
			if oldErr != nil { // created by this apply
				m.SetUID(types.UID(fmt.Sprintf("uid-%s-%s", m.GetName(), next())))
				m.SetGeneration(1)
				m.SetCreationTimestamp(metav1.NewTime(clock.Now()))
				m.SetResourceVersion(next())
				if !ssa {
					if err := tracker.Create(gvr, obj, ns, metav1.CreateOptions{}); err != nil {
						return true, nil, err
					}
					out, err := tracker.Get(gvr, ns, a.GetName())
					return true, out, err
				}
			} else {
				om, _ := meta.Accessor(old)
				m.SetUID(om.GetUID())
				m.SetCreationTimestamp(om.GetCreationTimestamp())
				m.SetGeneration(om.GetGeneration())
				if !sameContent(old, obj) {
					m.SetGeneration(om.GetGeneration() + 1)
				}
				m.SetResourceVersion(next())
			}
			if err := tracker.Update(gvr, obj, ns, metav1.UpdateOptions{}); err != nil {
				return true, nil, err
			}
			out, err := tracker.Get(gvr, ns, a.GetName())
			return true, out, err
		}
		return false, nil, nil
	}
}

// sameContent compares two objects without metadata and status.
func sameContent(a, b runtime.Object) bool {
	ua, err1 := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	ub, err2 := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, k := range []string{"metadata", "status", "apiVersion", "kind"} {
		delete(ua, k)
		delete(ub, k)
	}
	return reflect.DeepEqual(ua, ub)
}

// crasher counts the external calls of one reconciler (Kubernetes and
// Flink) and, armed at call k, lets call k happen and then kills the
// "process": every later call panics with errCrashed, which the test
// recovers at the Reconcile boundary.
type crasher struct {
	n     int
	at    int
	down  bool
	calls []string
}

type crashed struct{ at int }

func (c *crasher) hit(what string) {
	if c.down {
		panic(crashed{c.at})
	}
	c.n++
	c.calls = append(c.calls, what)
	if c.at > 0 && c.n == c.at {
		c.down = true
	}
}

// simWorld is a fake Kubernetes, simulated Flink JobManagers, a kubelet
// that starts them from Deployments, one clock, and a reconciler.
type simWorld struct {
	t        *testing.T
	ns       string
	clock    *simClock
	kube     *fake.Clientset
	tracker  k8stesting.ObjectTracker
	flink    *flinkSim
	crash    *crasher
	rec      *Reconciler
	logs     *bytes.Buffer
	settings Settings
	commit   int
	// brokenImage names an image whose JobManager never becomes ready.
	brokenImage string
	// retired worlds keep their logs to themselves when the test fails
	// later (the crash tests make hundreds of worlds).
	retired bool
}

// newSimWorld makes a world whose fake clientset applies by replacing.
func newSimWorld(t *testing.T) *simWorld { return newSimWorldWith(t, false) }

// newSimWorldWith makes a world; ssa selects the fake clientset's real
// server-side apply (fake.NewClientset) instead of apply-as-replace.
func newSimWorldWith(t *testing.T, ssa bool) *simWorld {
	t.Helper()
	clock := newSimClock()
	w := &simWorld{t: t, ns: "apps", clock: clock, flink: newFlinkSim(clock), crash: &crasher{}, logs: &bytes.Buffer{},
		settings: Settings{FastPoll: time.Second, Resync: time.Minute, OperationTimeout: 2 * time.Minute, Artifacts: testArtifacts}}
	if ssa {
		w.kube = fake.NewClientset()
		w.tracker = w.kube.Tracker()
	} else {
		w.kube = &fake.Clientset{}
		w.tracker = k8stesting.NewObjectTracker(clientscheme.Scheme, clientscheme.Codecs.UniversalDecoder())
		w.kube.AddReactor("*", "*", k8stesting.ObjectReaction(w.tracker))
	}
	w.kube.PrependReactor("*", "*", apiserverReactor(w.tracker, clock, ssa))
	w.kube.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := ""
		if n, ok := a.(interface{ GetName() string }); ok {
			name = n.GetName()
		}
		w.crash.hit(fmt.Sprintf("kube %s %s %s", a.GetVerb(), a.GetResource().Resource, name))
		return false, nil, nil
	})
	w.rec = w.newReconciler()
	t.Cleanup(func() {
		if t.Failed() && !w.retired {
			lines := strings.Split(strings.TrimRight(w.logs.String(), "\n"), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("last reconciler log lines:\n%s", strings.Join(lines, "\n"))
		}
	})
	return w
}

// newReconciler builds a reconciler that knows nothing but the cluster:
// a new Store over the same clientset, new Flink clients over the same
// simulated JobManagers, and a fresh call counter.
func (w *simWorld) newReconciler() *Reconciler {
	w.crash = &crasher{}
	c := w.crash
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &Reconciler{
		Kube:  w.kube,
		Store: &Store{Client: w.kube},
		Flink: func(namespace, name string) (Flink, error) {
			return &fakeFlink{sim: w.flink, namespace: namespace, name: name, hit: c.hit}, nil
		},
		Events:   &Events{Client: w.kube, Log: log},
		Log:      log,
		Settings: func() Settings { return w.settings },
		Now:      w.clock.Now,
	}
}

// restart replaces the reconciler by a fresh one (a new process).
func (w *simWorld) restart() { w.rec = w.newReconciler() }

// tick lets a second pass: the kubelet starts and stops JobManagers, and
// running jobs advance and checkpoint.
func (w *simWorld) tick() {
	w.clock.Advance(time.Second)
	w.kubelet()
	w.flink.advance()
}

// kubelet plays kubelet and Deployment controller: a JobManager Deployment
// that is new or changed (generation) starts a JobManager from its args; its
// status reports it ready. A Deployment that is gone takes its JobManager.
func (w *simWorld) kubelet() {
	tr := w.tracker
	l, err := tr.List(deploymentsGVR, deploymentsGVK, "")
	if err != nil {
		w.t.Fatalf("kubelet: %v", err)
	}
	seen := map[string]bool{}
	for _, d := range l.(*appsv1.DeploymentList).Items {
		d := d
		c := mainContainerOf(&d)
		if c == nil || len(c.Args) == 0 {
			continue
		}
		jm := c.Args[0] == "standalone-job" || c.Args[0] == "jobmanager"
		broken := w.brokenImage != "" && c.Image == w.brokenImage
		if jm {
			seen[simKey(d.Namespace, d.Name)] = true
			cur := w.flink.jm(d.Namespace, d.Name)
			if !broken && (cur == nil || cur.UID != string(d.UID) || cur.Generation != d.Generation) {
				w.flink.startJM(d.Namespace, d.Name, string(d.UID), d.Generation, append([]string(nil), c.Args...))
				w.flink.setParallelism(d.Namespace, d.Name, w.configuredParallelism(d.Namespace, d.Name))
			}
		}
		want := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
		if d.Spec.Replicas != nil {
			want.Replicas, want.UpdatedReplicas, want.ReadyReplicas, want.AvailableReplicas = *d.Spec.Replicas, *d.Spec.Replicas, *d.Spec.Replicas, *d.Spec.Replicas
		}
		if broken {
			want.ReadyReplicas, want.AvailableReplicas, want.UnavailableReplicas = 0, 0, want.Replicas
		}
		if !reflect.DeepEqual(d.Status, want) {
			d.Status = want
			if err := tr.Update(deploymentsGVR, &d, d.Namespace, metav1.UpdateOptions{}); err != nil {
				w.t.Fatalf("kubelet: status of %s: %v", d.Name, err)
			}
		}
	}
	w.flink.mu.Lock()
	var gone []*simJM
	for k, jm := range w.flink.jms {
		if !seen[k] {
			gone = append(gone, jm)
		}
	}
	w.flink.mu.Unlock()
	for _, jm := range gone {
		w.flink.stopJM(jm.Namespace, jm.Name)
	}
}

func mainContainerOf(d *appsv1.Deployment) *corev1.Container {
	cs := d.Spec.Template.Spec.Containers
	for i := range cs {
		if cs[i].Name == "flink-main-container" {
			return &cs[i]
		}
	}
	if len(cs) > 0 {
		return &cs[0]
	}
	return nil
}

// pass runs one Reconcile, recovering a simulated crash.
func (w *simWorld) pass(kind, name string, d *Desired) (res Result, err error, died bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crashed); !ok {
				panic(r)
			}
			died = true
		}
	}()
	res, err = w.rec.Reconcile(context.Background(), kind, w.ns, name, d)
	return res, err, false
}

// maxPasses bounds every wait of the simulated world.
const maxPasses = 300

// until ticks and reconciles until cond holds for the stored record; it
// fails the test after maxPasses.
func (w *simWorld) until(kind, name string, d *Desired, what string, cond func(*Record) bool) *Record {
	w.t.Helper()
	var lastErr error
	for i := 0; i < maxPasses; i++ {
		w.tick()
		_, err, died := w.pass(kind, name, d)
		if died {
			w.t.Fatalf("waiting for %s: the reconciler crashed unexpectedly", what)
		}
		if err != nil {
			lastErr = err
		}
		if r := w.record(kind, name); r != nil && cond(r) {
			return r
		}
	}
	w.t.Fatalf("%s: not reached after %d passes; last error %v; record: %s", what, maxPasses, lastErr, dumpRecord(w.record(kind, name)))
	return nil
}

// record reads the stored record straight from the tracker (not counted
// as a reconciler call).
func (w *simWorld) record(kind, name string) *Record {
	obj, err := w.tracker.Get(configMapsGVR, w.ns, StatusConfigMapName(kind, name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := decodeRecord(obj.(*corev1.ConfigMap))
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// deployment returns the JobManager or TaskManager Deployment, nil if none.
func (w *simWorld) deploymentObj(name string) *appsv1.Deployment {
	obj, err := w.tracker.Get(deploymentsGVR, w.ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return obj.(*appsv1.Deployment)
}

// events lists the recorded events as "Type Reason: message", oldest first.
func (w *simWorld) events() []string {
	l, err := w.tracker.List(eventsGVR, eventsGVK, w.ns)
	if err != nil {
		w.t.Fatal(err)
	}
	items := l.(*corev1.EventList).Items
	sort.SliceStable(items, func(i, j int) bool {
		a, _ := strconv.Atoi(items[i].ResourceVersion)
		b, _ := strconv.Atoi(items[j].ResourceVersion)
		return a < b
	})
	var out []string
	for _, e := range items {
		out = append(out, e.Type+" "+e.Reason+": "+e.Message)
	}
	return out
}

// hasEvent reports whether an event with the reason and a message
// containing substr was recorded.
func (w *simWorld) hasEvent(reason, substr string) bool {
	for _, e := range w.events() {
		if strings.Contains(e, " "+reason+": ") && strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// desired wraps a FlinkDeployment spec as the renderer would hand it over.
func (w *simWorld) desired(name string, spec v1beta1.FlinkDeploymentSpec) *Desired {
	w.commit++
	sum := sha256.Sum256([]byte(specJSON(spec)))
	return &Desired{
		Deployment: &v1beta1.FlinkDeployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: spec},
		Hash:       hex.EncodeToString(sum[:8]),
		Source:     v1beta1.SourceRef{Commit: fmt.Sprintf("%040x", w.commit), EntryPoint: "apps", Path: "apps/" + name + ".yaml"},
	}
}

// desiredJob wraps a FlinkSessionJob spec.
func (w *simWorld) desiredJob(name string, spec v1beta1.FlinkSessionJobSpec) *Desired {
	w.commit++
	sum := sha256.Sum256([]byte(specJSON(spec)))
	return &Desired{
		SessionJob: &v1beta1.FlinkSessionJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: spec},
		Hash:       hex.EncodeToString(sum[:8]),
		Source:     v1beta1.SourceRef{Commit: fmt.Sprintf("%040x", w.commit), EntryPoint: "apps", Path: "apps/" + name + ".yaml"},
	}
}

func dumpRecord(r *Record) string {
	if r == nil {
		return "<nil>"
	}
	c := r.Common()
	s := fmt.Sprintf("lifecycle=%s job=%s/%s error=%q", c.LifecycleState, c.JobStatus.JobID, c.JobStatus.State, c.Error)
	if r.Deployment != nil {
		s += fmt.Sprintf(" jm=%s", r.Deployment.JobManagerDeploymentStatus)
	}
	if op := r.Operation; op != nil {
		s += fmt.Sprintf(" op=%s/%s attempts=%d msg=%q", op.Kind, op.Phase, op.Attempts, op.Message)
	}
	return s
}

// configuredParallelism reads parallelism.default from a cluster's Flink
// configuration ConfigMap (0 when there is none).
func (w *simWorld) configuredParallelism(namespace, name string) int {
	obj, err := w.tracker.Get(configMapsGVR, namespace, cluster.ConfigMapName(name))
	if err != nil {
		return 0
	}
	for _, data := range obj.(*corev1.ConfigMap).Data {
		for _, line := range strings.Split(data, "\n") {
			if v, ok := strings.CutPrefix(line, "parallelism.default:"); ok {
				n, _ := strconv.Atoi(strings.Trim(strings.TrimSpace(v), `"'`))
				return n
			}
		}
	}
	return 0
}
