package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	gosync "sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// NodeName is the node the agent plays: Pods are bound to it, and
// spec.nodeName field refs resolve to it.
const NodeName = "testbed-node"

// SetKubeconfig makes every container the agent starts see path as
// KUBECONFIG (unless its env sets one), the test bed's stand-in for the
// service account token a kubelet mounts: Flink's native mode (fabric8)
// reads it to create TaskManager Pods and, with Kubernetes HA, ConfigMaps.
// Containers started before the call do not get it.
func (a *Agent) SetKubeconfig(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kubeconfig = path
}

// SetServiceAccountKubeconfig makes every container the agent starts see as
// KUBECONFIG the file fn returns for its pod's namespace and service account
// ("default" when the pod names none): the test bed's stand-in for the
// token a kubelet mounts for the pod's own account, so what a JobManager may
// do is what its account's RBAC grants. fn is called once per account; it
// takes precedence over SetKubeconfig.
func (a *Agent) SetServiceAccountKubeconfig(fn func(namespace, serviceAccount string) (string, error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.saConfig, a.saConfigs = fn, map[string]string{}
}

// kubeconfigFor is the KUBECONFIG of a container of a pod running as
// account sa in ns ("" for none).
func (a *Agent) kubeconfigFor(ns, sa string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.saConfig == nil {
		return a.kubeconfig, nil
	}
	if sa == "" {
		sa = "default"
	}
	key := ns + "/" + sa
	if p, ok := a.saConfigs[key]; ok {
		return p, nil
	}
	p, err := a.saConfig(ns, sa)
	if err != nil {
		return "", err
	}
	a.saConfigs[key] = p
	return p, nil
}

// podRunner holds the bare Pods the agent runs: Pods created directly
// through the API, such as the TaskManager Pods of Flink's native
// Kubernetes mode. (Deployment replicas are not Pod objects here.) It plays
// scheduler and kubelet for them: binds them to NodeName, runs the main
// container through the Runtime, restarts it per restartPolicy, writes Pod
// status, finishes deletions, and collects Pods whose owning Deployment is
// gone (the garbage collector's job, when no kube-controller-manager runs).
type podRunner struct {
	lister corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu   gosync.Mutex
	pods map[string]*podState // by namespace/name; touched by the pod worker, stopAll under mu
}

type podState struct {
	uid      types.UID
	r        *replica
	started  time.Time // first start
	running  time.Time // current container start
	finished *corev1.ContainerStateTerminated
	last     *corev1.ContainerStateTerminated // of the previous run, after a restart
}

func newPodRunner() *podRunner {
	return &podRunner{
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		pods:  map[string]*podState{},
	}
}

// watchPods registers the Pod informer on f.
func (a *Agent) watchPods(f informers.SharedInformerFactory) error {
	pi := f.Core().V1().Pods()
	a.pods.lister = pi.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.pods.queue.Add(key)
		}
	}
	_, err := pi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
		DeleteFunc: enqueue,
	})
	return err
}

// tick re-examines every known Pod: process exits, readiness, back-off.
func (p *podRunner) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key := range p.pods {
		p.queue.Add(key)
	}
}

func (p *podRunner) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, st := range p.pods {
		stop(st.r)
		delete(p.pods, key)
	}
}

func (a *Agent) processNextPod(ctx context.Context) bool {
	key, quit := a.pods.queue.Get()
	if quit {
		return false
	}
	defer a.pods.queue.Done(key)
	if err := a.syncPod(ctx, key); err != nil {
		a.log.Warn("node agent pod sync failed", "pod", key, "err", err)
		a.pods.queue.AddRateLimited(key)
		return true
	}
	a.pods.queue.Forget(key)
	return true
}

// syncPod makes the process of one Pod match it and writes its status.
func (a *Agent) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	pod, err := a.pods.lister.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	a.pods.mu.Lock()
	st := a.pods.pods[key]
	if st != nil && (pod == nil || pod.UID != st.uid) { // gone, or replaced by a new Pod of the same name
		delete(a.pods.pods, key)
	}
	a.pods.mu.Unlock()
	if st != nil && (pod == nil || pod.UID != st.uid) {
		a.log.Info("pod deleted; stopping its process", "pod", key)
		stop(st.r)
		st = nil
	}
	if pod == nil {
		return nil
	}
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != NodeName {
		return nil // another node's
	}
	if pod.DeletionTimestamp != nil {
		// The kubelet's part of a graceful delete: stop the containers, then
		// remove the object for good.
		if st != nil {
			a.log.Info("pod terminating; stopping its process", "pod", key)
			stop(st.r)
			a.pods.mu.Lock()
			delete(a.pods.pods, key)
			a.pods.mu.Unlock()
		}
		err := a.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if orphan, err := a.ownerGone(ctx, pod); err != nil {
		return err
	} else if orphan {
		a.log.Info("owner of pod is gone; deleting it as the garbage collector would", "pod", key)
		policy := metav1.DeletePropagationBackground
		err := a.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if pod.Spec.NodeName == "" { // the scheduler's part
		err := a.client.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("bind pod %s: %w", key, err)
		}
		return nil // the update event brings the bound Pod back
	}
	if st == nil {
		st = &podState{uid: pod.UID, r: &replica{pod: name}}
		a.pods.mu.Lock()
		a.pods.pods[key] = st
		a.pods.mu.Unlock()
	}
	a.drivePod(ctx, pod, st)
	return a.writePodStatus(ctx, pod, st)
}

// ownerGone reports whether pod has a Deployment owner that no longer
// exists (looked up through the API, not the cache, so a Deployment created
// a moment ago is never taken for gone).
func (a *Agent) ownerGone(ctx context.Context, pod *corev1.Pod) (bool, error) {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			continue
		}
		if d, err := a.deployLister.Deployments(pod.Namespace).Get(ref.Name); err == nil && d.UID == ref.UID {
			return false, nil
		}
		d, err := a.client.AppsV1().Deployments(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("look up owner of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		case d.UID != ref.UID:
			return true, nil
		}
	}
	return false, nil
}

// drivePod starts, restarts (per restartPolicy, with back-off) and probes
// the Pod's main container.
func (a *Agent) drivePod(ctx context.Context, pod *corev1.Pod, st *podState) {
	r := st.r
	if st.finished != nil {
		return
	}
	if r.cmd != nil {
		select {
		case <-r.done:
			term := terminated(r.exitErr, st.running)
			r.cmd, r.proc, r.ready = nil, nil, false
			restart := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" ||
				pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && term.ExitCode != 0
			if !restart {
				a.log.Info("pod container exited; not restarted (restartPolicy)", "pod", r.pod, "exitCode", term.ExitCode, "policy", pod.Spec.RestartPolicy)
				st.finished = term
				return
			}
			r.restarts++
			st.last = term
			backoff := min(time.Duration(1<<min(r.restarts-1, 5))*time.Second, 30*time.Second)
			a.log.Warn("pod container exited; restarting after back-off", "pod", r.pod, "exitCode", term.ExitCode, "restarts", r.restarts, "backoff", backoff)
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
					a.log.Info("pod ready", "pod", pod.Namespace+"/"+r.pod, "ports", r.proc.Ports)
				}
			}
			return
		}
	}
	if time.Now().Before(r.nextTry) {
		return
	}
	files, err := a.volumeFiles(ctx, pod.Namespace, pod.Spec.Volumes)
	var c Container
	if err == nil {
		owner := ""
		if ref := metav1.GetControllerOf(pod); ref != nil {
			owner = ref.Name
		}
		c, err = a.podContainer(pod.Namespace, owner, corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}, files, r)
	}
	if err == nil {
		var p *Process
		p, err = a.runtime.Prepare(ctx, c)
		if err == nil {
			err = a.start(r, p)
		}
	}
	if err != nil {
		if r.lastErr == nil || r.lastErr.Error() != err.Error() {
			a.log.Warn("cannot start pod container", "pod", pod.Namespace+"/"+r.pod, "err", err)
		}
		r.lastErr = err
		r.nextTry = time.Now().Add(2 * time.Second) // a missing ConfigMap or image: ContainerCreating / ImagePullBackOff
		return
	}
	st.running = time.Now()
	if st.started.IsZero() {
		st.started = st.running
	}
}

// terminated describes a process exit as a container's terminated state.
func terminated(exitErr error, startedAt time.Time) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: metav1.NewTime(startedAt), FinishedAt: metav1.Now()}
	var ee *exec.ExitError
	if errors.As(exitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.ExitCode = 128 + int32(ws.Signal())
		} else {
			t.ExitCode = int32(ee.ExitCode())
		}
	} else if exitErr != nil {
		t.ExitCode = 128
		t.Message = exitErr.Error()
	}
	if t.ExitCode != 0 {
		t.Reason = "Error"
	}
	return t
}

// writePodStatus reports the Pod as a kubelet would.
func (a *Agent) writePodStatus(ctx context.Context, pod *corev1.Pod, st *podState) error {
	r := st.r
	main := mainContainer(pod.Spec.Containers)
	cs := corev1.ContainerStatus{Name: main.Name, Image: main.Image, ImageID: main.Image, RestartCount: int32(r.restarts), LastTerminationState: corev1.ContainerState{Terminated: st.last}}
	status := corev1.PodStatus{HostIP: "127.0.0.1", PodIP: "127.0.0.1", QOSClass: pod.Status.QOSClass}
	status.PodIPs = []corev1.PodIP{{IP: status.PodIP}}
	status.HostIPs = []corev1.HostIP{{IP: status.HostIP}}
	if !st.started.IsZero() {
		status.StartTime = &metav1.Time{Time: st.started}
	} else if pod.Status.StartTime != nil {
		status.StartTime = pod.Status.StartTime
	}
	ready := false
	switch {
	case st.finished != nil:
		cs.State.Terminated = st.finished
		status.Phase = corev1.PodSucceeded
		if st.finished.ExitCode != 0 {
			status.Phase = corev1.PodFailed
		}
	case r.cmd != nil:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(st.running)}
		cs.Started = new(bool)
		*cs.Started = true
		ready = r.ready
		status.Phase = corev1.PodRunning
	default:
		reason, msg := "ContainerCreating", ""
		if r.restarts > 0 {
			reason = "CrashLoopBackOff"
			status.Phase = corev1.PodRunning
		} else {
			status.Phase = corev1.PodPending
		}
		if r.lastErr != nil && !errors.Is(r.lastErr, ErrNotYet) {
			reason, msg = "CreateContainerError", r.lastErr.Error()
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	}
	cs.Ready = ready
	status.ContainerStatuses = []corev1.ContainerStatus{cs}
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	status.Conditions = []corev1.PodCondition{
		podCondition(pod, corev1.PodScheduled, corev1.ConditionTrue),
		podCondition(pod, corev1.PodInitialized, corev1.ConditionTrue),
		podCondition(pod, corev1.ContainersReady, readyStatus),
		podCondition(pod, corev1.PodReady, readyStatus),
	}
	if podStatusEqual(pod.Status, status) {
		return nil
	}
	np := pod.DeepCopy()
	np.Status = status
	_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, np, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is queued
	}
	return err
}

func mainContainer(cs []corev1.Container) corev1.Container {
	if len(cs) == 0 {
		return corev1.Container{}
	}
	for _, c := range cs {
		if c.Name == "flink-main-container" {
			return c
		}
	}
	return cs[0]
}

// podCondition keeps the transition time when the status does not change.
func podCondition(pod *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
	for _, old := range pod.Status.Conditions {
		if old.Type == t && old.Status == s {
			c.LastTransitionTime = old.LastTransitionTime
		}
	}
	return c
}

func podStatusEqual(a, b corev1.PodStatus) bool {
	if a.Phase != b.Phase || a.PodIP != b.PodIP || len(a.Conditions) != len(b.Conditions) || len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status {
			return false
		}
	}
	for i := range a.ContainerStatuses {
		x, y := a.ContainerStatuses[i], b.ContainerStatuses[i]
		if x.Ready != y.Ready || x.RestartCount != y.RestartCount ||
			(x.State.Running == nil) != (y.State.Running == nil) ||
			(x.State.Waiting == nil) != (y.State.Waiting == nil) ||
			(x.State.Terminated == nil) != (y.State.Terminated == nil) ||
			x.State.Waiting != nil && (x.State.Waiting.Reason != y.State.Waiting.Reason || x.State.Waiting.Message != y.State.Waiting.Message) {
			return false
		}
	}
	return true
}
