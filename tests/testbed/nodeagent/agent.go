// Package nodeagent plays kubelet, Deployment controller and kube-proxy for
// the test bed: it watches Deployments in a real kube-apiserver, turns each
// replica's main container into a local process (through a Runtime, e.g. the
// Flink one), restarts crashed processes, writes Deployment status the way
// the Deployment controller does, and proxies Service traffic to the local
// ports the processes listen on.
//
// Only what Flink clusters need is modelled: one main container per pod,
// ConfigMap volumes, env values and field refs, Recreate-style rollouts
// (every template change replaces all replicas) and scaling. Bare Pods (the
// TaskManager Pods Flink's native mode creates) are run too, see pods.go.
package nodeagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	gosync "sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Container is one replica's main container, ready for a Runtime.
type Container struct {
	// Namespace and Pod name the replica; Deployment owns it.
	Namespace, Pod, Deployment string
	// Spec is the main container (the first one, or flink-main-container).
	Spec corev1.Container
	// Labels of the pod template.
	Labels map[string]string
	// Files holds the ConfigMap volumes mounted into Spec, keyed by mount
	// path, then file name.
	Files map[string]map[string]string
	// Env is Spec.Env resolved to values (field refs and ConfigMap refs).
	Env map[string]string
	// Dir is a fresh working directory for this replica.
	Dir string
	// PodSpec is the whole pod spec (volumes, service account, security
	// context), for runtimes that model more of a pod than its files.
	PodSpec corev1.PodSpec
	// Resolve maps a Service address (name, name.ns, name.ns.svc…) and
	// port to the local address of a ready process behind it.
	Resolve func(host string, port int32) (string, int32, error)
}

// Process is a prepared replica process.
type Process struct {
	// Cmd is the program to run. Nil makes a virtual replica: no process
	// is started, the replica runs until the agent stops it (then Stop is
	// called) and never crashes. The scale harness simulates fleets so.
	Cmd *exec.Cmd
	// Stop, if set, is called when a virtual replica (nil Cmd) is stopped.
	Stop func()
	// Ports maps each container port to the local port the process uses.
	Ports map[int32]int32
	// Ready, if set, reports readiness; otherwise a replica is ready once
	// every port in Ports accepts connections.
	Ready func(ctx context.Context) bool
	// Refresh, if set, is called on every agent tick while the process
	// runs (e.g. to update mounted volumes in place, see ImageRuntime).
	Refresh func(ctx context.Context)
}

// liveVolumes is a Runtime whose pods of some images see ConfigMap and
// Secret changes in place (as with a kubelet) instead of being replaced.
type liveVolumes interface {
	LiveVolumes(image string) bool
}

// ErrNotYet means a dependency (e.g. a Service with no ready backend) is not
// there yet: the agent retries without counting a crash.
var ErrNotYet = errors.New("dependency not ready yet")

// Runtime turns containers into processes.
type Runtime interface {
	Prepare(ctx context.Context, c Container) (*Process, error)
}

// Agent is a running node agent.
type Agent struct {
	client  kubernetes.Interface
	runtime Runtime
	dir     string
	log     *slog.Logger

	deployLister appslisters.DeploymentLister
	svcLister    corelisters.ServiceLister
	queue        workqueue.TypedRateLimitingInterface[string]

	mu        gosync.Mutex
	deploys   map[string]*deployState      // by namespace/name; replicas are touched by the worker only
	endpoints map[string][]map[int32]int32 // by namespace/name: port maps of ready replicas

	tick         time.Duration // see WithTick
	cachedConfig bool          // see WithCachedConfigMaps
	cmLister     corelisters.ConfigMapLister

	pods       *podRunner                                             // bare Pods (e.g. Flink's native TaskManagers), see pods.go
	kubeconfig string                                                 // handed to every container as KUBECONFIG, see SetKubeconfig; under mu
	saConfig   func(namespace, serviceAccount string) (string, error) // see SetServiceAccountKubeconfig; under mu
	saConfigs  map[string]string                                      // its results by namespace/account; under mu
}

type deployState struct {
	hash string
	// uid is the Deployment's: one deleted and created again under the
	// same name between two syncs is a new Deployment, whose pods are new
	// (as the garbage collector and the Deployment controller would make them).
	uid      types.UID
	replicas []*replica
}

type replica struct {
	pod      string
	dir      string
	proc     *Process
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process exits
	exitErr  error
	ready    bool
	restarts int
	nextTry  time.Time
	lastErr  error
}

// Option tunes an agent.
type Option func(*Agent)

// WithTick sets how often every Deployment is synced again (status,
// readiness, crash restarts); the default is 250 ms. A fleet of thousands
// of virtual replicas wants seconds.
func WithTick(d time.Duration) Option { return func(a *Agent) { a.tick = d } }

// WithCachedConfigMaps reads mounted ConfigMaps from the agent's informer
// cache instead of one GET per volume and sync. For fleets: the GETs
// would load the apiserver the harness measures. The default (GET) sees a
// ConfigMap written just before its Deployment without waiting for the
// watch, which keeps real JVMs from starting twice.
func WithCachedConfigMaps() Option { return func(a *Agent) { a.cachedConfig = true } }

// New returns an agent; call Run to start it. dir holds per-replica working
// directories and logs.
func New(client kubernetes.Interface, rt Runtime, dir string, log *slog.Logger, opts ...Option) *Agent {
	a := &Agent{
		client:    client,
		runtime:   rt,
		dir:       dir,
		log:       log,
		tick:      250 * time.Millisecond,
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		deploys:   map[string]*deployState{},
		endpoints: map[string][]map[int32]int32{},
		pods:      newPodRunner(),
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Run watches and acts until ctx is done, then stops every process.
func (a *Agent) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(a.client, 0)
	di := f.Apps().V1().Deployments()
	si := f.Core().V1().Services()
	ci := f.Core().V1().ConfigMaps()
	a.deployLister = di.Lister()
	a.svcLister = si.Lister()
	a.cmLister = ci.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := di.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	// A ConfigMap change rolls the Deployments that mount it (the hash
	// includes mounted files), as a config checksum annotation would.
	onCM := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return
		}
		ds, _ := a.deployLister.Deployments(cm.Namespace).List(labels.Everything())
		for _, d := range ds {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
					a.queue.Add(d.Namespace + "/" + d.Name)
				}
			}
		}
	}
	if _, err := ci.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onCM, UpdateFunc: func(_, n any) { onCM(n) },
	}); err != nil {
		return err
	}
	if err := a.watchPods(f); err != nil {
		return err
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("node agent: cache for %v did not sync", typ)
		}
	}
	a.log.Info("node agent running", "dir", a.dir)

	var wg gosync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for a.processNext(ctx) {
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for a.processNextPod(ctx) {
		}
	}()
	// Status, readiness and crash restarts are driven by a steady tick.
	tick := time.NewTicker(a.tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.queue.ShutDown()
			a.pods.queue.ShutDown()
			wg.Wait()
			a.stopAll()
			return nil
		case <-tick.C:
			a.mu.Lock()
			for key := range a.deploys {
				a.queue.Add(key)
			}
			a.mu.Unlock()
			a.pods.tick()
		}
	}
}

func (a *Agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		a.log.Warn("node agent sync failed", "deployment", key, "err", err)
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// sync makes the processes of one Deployment match it and writes status.
func (a *Agent) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	d, err := a.deployLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.mu.Lock()
		st := a.deploys[key]
		delete(a.deploys, key)
		delete(a.endpoints, key)
		a.mu.Unlock()
		if st != nil {
			a.log.Info("deployment deleted; stopping its processes", "deployment", key)
			for _, r := range st.replicas {
				stop(r)
			}
		}
		return nil
	}
	if err != nil {
		return err
	}

	files, err := a.mountedFiles(ctx, d)
	if err != nil {
		return err
	}
	hashed := files
	if lv, ok := a.runtime.(liveVolumes); ok && lv.LiveVolumes(mainContainer(d.Spec.Template.Spec.Containers).Image) {
		hashed = nil // the runtime updates mounted files in place: no restart
	}
	hash := templateHash(d, hashed)
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}

	a.mu.Lock()
	st := a.deploys[key]
	if st == nil {
		st = &deployState{hash: hash, uid: d.UID}
		a.deploys[key] = st
	}
	a.mu.Unlock()

	if st.hash != hash || st.uid != d.UID { // Recreate: stop the old replicas before new ones start.
		a.log.Info("pod template changed or Deployment recreated; replacing replicas", "deployment", key)
		st.uid = d.UID
		for _, r := range st.replicas {
			stop(r)
		}
		st.replicas = nil
		st.hash = hash
	}
	for len(st.replicas) > want {
		last := st.replicas[len(st.replicas)-1]
		stop(last)
		st.replicas = st.replicas[:len(st.replicas)-1]
	}
	for len(st.replicas) < want {
		i := len(st.replicas)
		st.replicas = append(st.replicas, &replica{pod: fmt.Sprintf("%s-%s-%d", d.Name, hash[:10], i)})
	}
	var eps []map[int32]int32
	for _, r := range st.replicas {
		a.drive(ctx, d, files, r)
		if r.cmd != nil && r.ready {
			eps = append(eps, r.proc.Ports)
		}
	}
	a.mu.Lock()
	a.endpoints[key] = eps
	a.mu.Unlock()
	return a.writeStatus(ctx, d, st)
}

// drive starts, restarts (with back-off) and probes one replica.
func (a *Agent) drive(ctx context.Context, d *appsv1.Deployment, files map[string]map[string]string, r *replica) {
	if r.cmd != nil {
		select {
		case <-r.done:
			r.restarts++
			backoff := min(time.Duration(1<<min(r.restarts-1, 5))*time.Second, 30*time.Second)
			a.log.Warn("process exited; restarting after back-off", "pod", r.pod, "err", r.exitErr, "restarts", r.restarts, "backoff", backoff)
			r.cmd, r.proc, r.ready = nil, nil, false
			r.nextTry = time.Now().Add(backoff)
		default:
			if r.proc.Refresh != nil {
				r.proc.Refresh(ctx)
			}
			if !r.ready {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				r.ready = probe(pctx, r.proc)
				cancel()
				if r.ready {
					a.log.Info("replica ready", "pod", r.pod, "ports", r.proc.Ports)
				}
			}
			return
		}
	}
	if time.Now().Before(r.nextTry) {
		return
	}
	c, err := a.container(d, files, r)
	if err == nil {
		var p *Process
		p, err = a.runtime.Prepare(ctx, c)
		if err == nil {
			err = a.start(r, p)
		}
	}
	if err != nil {
		if !errors.Is(err, ErrNotYet) {
			r.restarts++
			if r.lastErr == nil || r.lastErr.Error() != err.Error() {
				a.log.Warn("cannot start replica", "pod", r.pod, "err", err)
			}
		}
		r.lastErr = err
		r.nextTry = time.Now().Add(min(time.Duration(1<<min(r.restarts, 5))*time.Second, 30*time.Second))
	}
}

func (a *Agent) start(r *replica, p *Process) error {
	cmd := p.Cmd
	if cmd == nil {
		// Virtual: running at once, ready as soon as the probe says so.
		r.cmd, r.proc, r.done, r.ready, r.lastErr = virtualCmd, p, make(chan struct{}), p.Ready == nil, nil
		return nil
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.Stdout == nil {
		logf, err := os.OpenFile(filepath.Join(r.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	r.cmd, r.proc, r.done, r.ready, r.lastErr = cmd, p, make(chan struct{}), false, nil
	done := r.done
	go func() {
		r.exitErr = cmd.Wait()
		close(done)
	}()
	a.log.Info("replica started", "pod", r.pod, "pid", cmd.Process.Pid, "dir", r.dir)
	return nil
}

// virtualCmd marks a running virtual replica (Process.Cmd nil) in replica.cmd.
var virtualCmd = &exec.Cmd{}

// stop kills the replica's process group and waits for it to go.
func stop(r *replica) {
	if r.cmd == virtualCmd {
		if r.proc != nil && r.proc.Stop != nil {
			r.proc.Stop()
		}
		r.cmd = nil
		return
	}
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
	r.cmd = nil
}

func (a *Agent) stopAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, st := range a.deploys {
		for _, r := range st.replicas {
			stop(r)
		}
		delete(a.deploys, key)
		delete(a.endpoints, key)
	}
	a.pods.stopAll()
}

// container assembles what the runtime needs for one replica.
func (a *Agent) container(d *appsv1.Deployment, files map[string]map[string]string, r *replica) (Container, error) {
	return a.podContainer(d.Namespace, d.Name, d.Spec.Template, files, r)
}

// podContainer assembles what the runtime needs for pod r.pod of template
// tmpl (owner names the Deployment, if any).
func (a *Agent) podContainer(ns, owner string, tmpl corev1.PodTemplateSpec, files map[string]map[string]string, r *replica) (Container, error) {
	spec := tmpl.Spec
	if len(spec.Containers) == 0 {
		return Container{}, fmt.Errorf("pod %s/%s has no containers", ns, r.pod)
	}
	main := mainContainer(spec.Containers)
	mounts := map[string]map[string]string{}
	for _, m := range main.VolumeMounts {
		if f, ok := files[m.Name]; ok {
			mounts[m.MountPath] = f
		}
	}
	r.dir = filepath.Join(a.dir, ns, r.pod)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return Container{}, err
	}
	env := map[string]string{}
	for _, e := range main.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "status.podIP", "status.hostIP":
				env[e.Name] = "127.0.0.1"
			case "metadata.name":
				env[e.Name] = r.pod
			case "metadata.namespace":
				env[e.Name] = ns
			case "spec.nodeName": // Flink's native TaskManagers need it (_POD_NODE_ID)
				env[e.Name] = NodeName
			}
		}
	}
	if _, ok := env["KUBECONFIG"]; !ok {
		path, err := a.kubeconfigFor(ns, spec.ServiceAccountName)
		if err != nil {
			return Container{}, fmt.Errorf("pod %s/%s: service account token: %w", ns, r.pod, err)
		}
		if path != "" {
			env["KUBECONFIG"] = path
		}
	}
	return Container{
		Namespace: ns, Pod: r.pod, Deployment: owner,
		Spec: main, Labels: tmpl.Labels, Files: mounts, Env: env, Dir: r.dir, PodSpec: spec,
		Resolve: func(host string, port int32) (string, int32, error) {
			return a.Resolve(ns, host, port)
		},
	}, nil
}

// mountedFiles reads the ConfigMap volumes of d's pod template, by volume
// name. A missing ConfigMap is an error: the pod could not start either.
func (a *Agent) mountedFiles(ctx context.Context, d *appsv1.Deployment) (map[string]map[string]string, error) {
	return a.volumeFiles(ctx, d.Namespace, d.Spec.Template.Spec.Volumes)
}

// volumeFiles reads the ConfigMap volumes among vols, by volume name.
func (a *Agent) volumeFiles(ctx context.Context, ns string, vols []corev1.Volume) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, v := range vols {
		if v.ConfigMap == nil {
			continue
		}
		var cm *corev1.ConfigMap
		var err error
		if a.cachedConfig {
			cm, err = a.cmLister.ConfigMaps(ns).Get(v.ConfigMap.Name)
		} else {
			cm, err = a.client.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		}
		if err != nil {
			if apierrors.IsNotFound(err) && v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
				continue
			}
			return nil, fmt.Errorf("configmap volume %s: %w", v.Name, err)
		}
		files := map[string]string{}
		if len(v.ConfigMap.Items) > 0 {
			for _, it := range v.ConfigMap.Items {
				files[it.Path] = cm.Data[it.Key]
			}
		} else {
			for k, val := range cm.Data {
				files[k] = val
			}
		}
		out[v.Name] = files
	}
	return out, nil
}

// templateHash identifies what the replicas run: the pod template and the
// content of every mounted file.
func templateHash(d *appsv1.Deployment, files map[string]map[string]string) string {
	h := sha256.New()
	b, _ := json.Marshal(d.Spec.Template)
	h.Write(b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fb, _ := json.Marshal(files[n]) // map keys are sorted by encoding/json
		h.Write([]byte(n))
		h.Write(fb)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeStatus reports the replicas as the Deployment controller would.
func (a *Agent) writeStatus(ctx context.Context, d *appsv1.Deployment, st *deployState) error {
	var ready int32
	for _, r := range st.replicas {
		if r.cmd != nil && r.ready {
			ready++
		}
	}
	want := int32(len(st.replicas))
	status := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            want,
		UpdatedReplicas:     want,
		ReadyReplicas:       ready,
		AvailableReplicas:   ready,
		UnavailableReplicas: want - ready,
	}
	avail := corev1.ConditionFalse
	reason, msg := "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	if ready >= want {
		avail, reason, msg = corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability."
	}
	status.Conditions = []appsv1.DeploymentCondition{
		condition(d, appsv1.DeploymentAvailable, avail, reason, msg),
		condition(d, appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable", "node agent runs the current template"),
	}
	// A replica that cannot start (unknown image, bad args) is reported the
	// way a failing ReplicaSet surfaces on its Deployment.
	for _, r := range st.replicas {
		if r.cmd == nil && r.lastErr != nil && !errors.Is(r.lastErr, ErrNotYet) {
			status.Conditions = append(status.Conditions, condition(d, appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, "FailedCreate", r.pod+": "+r.lastErr.Error()))
			break
		}
	}
	if statusEqual(d.Status, status) {
		return nil
	}
	nd := d.DeepCopy()
	nd.Status = status
	_, err := a.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, nd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is queued
	}
	return err
}

// condition keeps the transition time when the status does not change.
func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
	now := metav1.Now()
	c := appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
	for _, old := range d.Status.Conditions {
		if old.Type == t && old.Status == s && old.Message == msg {
			c.LastTransitionTime = old.LastTransitionTime
			c.LastUpdateTime = old.LastUpdateTime
		}
	}
	return c
}

func statusEqual(a, b appsv1.DeploymentStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Replicas != b.Replicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.AvailableReplicas != b.AvailableReplicas || a.UpdatedReplicas != b.UpdatedReplicas || a.UnavailableReplicas != b.UnavailableReplicas ||
		len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status ||
			a.Conditions[i].Reason != b.Conditions[i].Reason || a.Conditions[i].Message != b.Conditions[i].Message {
			return false
		}
	}
	return true
}
