package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestIsPermanent(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"builder error", permanent(errors.New("jobManager.resource.memory: bad")), true},
		{"wrapped builder error", fmt.Errorf("apply: %w", permanent(errors.New("x"))), true},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Deployment"}, "app", nil), true},
		{"forbidden (admission, RBAC, quota)", apierrors.NewForbidden(gr, "app", errors.New("exceeded quota")), true},
		{"bad request", apierrors.NewBadRequest("no"), true},
		{"conflict", apierrors.NewConflict(gr, "app", errors.New("modified")), false},
		{"429", apierrors.NewTooManyRequests("slow down", 1), false},
		{"500", apierrors.NewInternalError(errors.New("etcd")), false},
		{"503", apierrors.NewServiceUnavailable("down"), false},
		{"server timeout", apierrors.NewServerTimeout(gr, "patch", 1), false},
		{"timeout", apierrors.NewTimeoutError("slow", 1), false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"deadline", context.DeadlineExceeded, false},
		{"unknown", errors.New("something"), false},
		{"flink REST", flinkclient.ErrNotFound, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := isPermanent(c.err); got != c.want {
				t.Errorf("isPermanent(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	base, limit := time.Second, time.Minute
	for n := 1; n <= 12; n++ {
		want := min(base<<(n-1), limit)
		for range 50 {
			d := retryDelay(n, base, limit)
			if lo, hi := want*8/10, want*12/10; d < lo || d > hi {
				t.Fatalf("retryDelay(%d) = %s, want %s ±20%%", n, d, want)
			}
		}
	}
	// Jittered: not every delay is the same.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[retryDelay(3, base, limit)] = true
	}
	if len(seen) < 2 {
		t.Errorf("retryDelay has no jitter: %v", seen)
	}
}

func podWith(cpuReq, memReq, cpuLim, memLim string) corev1.PodTemplateSpec {
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "flink", Image: "flink:2.2",
		Resources: corev1.ResourceRequirements{Requests: rl(cpuReq, memReq), Limits: rl(cpuLim, memLim)}}}}}
}

func quota(hard, used map[corev1.ResourceName]string) corev1.ResourceQuota {
	q := corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "apps"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{}}}
	for k, v := range hard {
		q.Spec.Hard[k] = resource.MustParse(v)
	}
	for k, v := range used {
		q.Status.Used[k] = resource.MustParse(v)
	}
	return q
}

func TestQuotaRejection(t *testing.T) {
	jm := podSet{what: "Deployment apps/app", replicas: 1, pod: podWith("1", "1Gi", "1", "1Gi")}
	tm := podSet{what: "Deployment apps/app-taskmanager", replicas: 2, pod: podWith("1", "2Gi", "1", "2Gi")}
	noReq := podSet{what: "Deployment apps/app", replicas: 1, pod: podWith("", "", "", "")}
	lr := corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr", Namespace: "apps"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		Default:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
		Max:            corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
	}}}}
	cases := []struct {
		name   string
		quotas []corev1.ResourceQuota
		ranges []corev1.LimitRange
		pods   []podSet
		freed  []podSet
		want   string // substring of the rejection; "" for none
	}{
		{name: "no quota", pods: []podSet{jm, tm}},
		{name: "room", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"requests.cpu": "4", "pods": "4"}, map[corev1.ResourceName]string{"requests.cpu": "1"})}, pods: []podSet{jm, tm}},
		{name: "no room", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"requests.cpu": "3"}, map[corev1.ResourceName]string{"requests.cpu": "1"})}, pods: []podSet{jm, tm},
			want: "exceeded quota q: the new pods need requests.cpu=3, room is 2 (hard 3, used 1, the old cluster frees 0)"},
		{name: "room once the old cluster is gone", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"requests.cpu": "4"}, map[corev1.ResourceName]string{"requests.cpu": "3"})},
			pods: []podSet{jm, tm}, freed: []podSet{jm, tm}},
		{name: "memory limits", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"limits.memory": "4Gi"}, nil)}, pods: []podSet{jm, tm},
			want: "limits.memory=5Gi"},
		{name: "pod count", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"pods": "2"}, nil)}, pods: []podSet{jm, tm}, want: "pods=3"},
		{name: "tracked resource not set", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"requests.memory": "100Gi"}, nil)}, pods: []podSet{noReq},
			want: "tracks requests.memory"},
		{name: "LimitRange default fills the request", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"requests.cpu": "1"}, nil)},
			ranges: []corev1.LimitRange{lr}, pods: []podSet{noReq}},
		{name: "LimitRange default counts", quotas: []corev1.ResourceQuota{quota(map[corev1.ResourceName]string{"requests.cpu": "400m"}, nil)},
			ranges: []corev1.LimitRange{lr}, pods: []podSet{noReq}, want: "requests.cpu=500m"},
		{name: "LimitRange max", ranges: []corev1.LimitRange{lr}, pods: []podSet{{what: "Deployment apps/app", replicas: 1, pod: podWith("3", "", "3", "")}},
			want: "LimitRange apps/lr: maximum cpu usage per container is 2, container flink limits 3"},
		{name: "scoped to terminating pods: not ours", quotas: []corev1.ResourceQuota{func() corev1.ResourceQuota {
			q := quota(map[corev1.ResourceName]string{"pods": "0"}, nil)
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating}
			return q
		}()}, pods: []podSet{jm}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := quotaRejection(c.quotas, c.ranges, c.pods, c.freed)
			if c.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var rj *Rejection
			if !errors.As(err, &rj) || !strings.Contains(rj.Error(), c.want) {
				t.Fatalf("got %v, want a rejection containing %q", err, c.want)
			}
		})
	}
}

func TestPodSecurityRejection(t *testing.T) {
	plain := podSet{what: "Deployment apps/app", replicas: 1, pod: podWith("1", "1Gi", "1", "1Gi")}
	f := false
	tr := true
	hardened := plain
	hardened.pod = *plain.pod.DeepCopy()
	hardened.pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: &tr, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	hardened.pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: &f, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	privileged := plain
	privileged.pod = *plain.pod.DeepCopy()
	privileged.pod.Spec.HostNetwork = true
	cases := []struct {
		name   string
		labels map[string]string
		pod    podSet
		want   string
	}{
		{"no level", nil, privileged, ""},
		{"privileged", map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}, privileged, ""},
		{"baseline allows plain", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}, plain, ""},
		{"baseline refuses hostNetwork", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}, privileged, "host namespaces"},
		{"restricted refuses plain", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}, plain, `violate PodSecurity "restricted:latest"`},
		{"restricted allows hardened", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}, hardened, ""},
		{"pinned version", map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.30"}, plain, "restricted:v1.30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := podSecurityRejection("apps", c.labels, []podSet{c.pod})
			if c.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// countDryRuns counts the dry-run applies of Deployments.
func countDryRuns(w *simWorld) *int {
	n := new(int)
	w.kube.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if pa, ok := a.(k8stesting.PatchActionImpl); ok && len(pa.PatchOptions.DryRun) > 0 {
			*n++
		}
		return false, nil, nil
	})
	return n
}

// TestRefusedSpecBacksOff: a refused spec is checked again only after its
// backoff (not on every pass), a new commit at once, and a spec that passes
// goes on to upgrade.
func TestRefusedSpecBacksOff(t *testing.T) {
	w := newSimWorld(t)
	w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
	w.kube.PrependReactor("patch", "deployments", rejectImage(rejectedImage, true))
	dry := countDryRuns(w)
	bad := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, withImage(rejectedImage)))
	r := w.until(KindDeployment, "app", bad, "refused", func(r *Record) bool { return r.Refused != nil })
	first := r.Refused.NextAttempt
	if wait := first.Sub(w.clock.Now()); wait < refusalRetryBase*8/10 || wait > refusalRetryBase*12/10 {
		t.Fatalf("first re-check in %s, want about %s", wait, refusalRetryBase)
	}
	checks := *dry
	for w.clock.Now().Add(time.Second).Before(first) {
		w.tick()
		w.pass(KindDeployment, "app", bad)
	}
	if *dry != checks {
		t.Fatalf("pre-flight ran %d more times before its retry time", *dry-checks)
	}
	r = w.until(KindDeployment, "app", bad, "checked again", func(r *Record) bool { return r.Refused != nil && r.Refused.Attempts == 2 })
	if *dry <= checks {
		t.Fatalf("pre-flight not run again after its retry time")
	}
	if d := r.Refused.NextAttempt.Sub(w.clock.Now()); d < 2*refusalRetryBase*8/10 {
		t.Errorf("second backoff %s, want about %s", d, 2*refusalRetryBase)
	}
	if c := r.Common(); c.LifecycleState != v1beta1.LifecycleStable || c.JobStatus.State != v1beta1.JobRunning {
		t.Errorf("refusal changed the running job's status: %s", dumpRecord(r))
	}
	// The fix: a new commit is checked at once and upgrades; the refusal
	// and its error are gone.
	r = w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4)), "upgraded", func(r *Record) bool {
		return stableRunning(r) && r.Deployed != nil && strings.Contains(r.Deployed.Spec, `"parallelism":4`)
	})
	if r.Refused != nil || r.Common().Error != "" {
		t.Errorf("refusal kept after the fix: %+v, error %q", r.Refused, r.Common().Error)
	}
}

// TestTransientApplyFailureBacksOff: a step that fails transiently is
// retried from that step with a growing backoff recorded in the
// operation; nothing before it runs again.
func TestTransientApplyFailureBacksOff(t *testing.T) {
	w := newSimWorld(t)
	w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
	before := len(w.flink.Savepoints)
	fails := 4
	w.kube.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa, ok := a.(k8stesting.PatchActionImpl)
		if !ok || len(pa.PatchOptions.DryRun) > 0 || fails == 0 || pa.GetName() != "app" {
			return false, nil, nil
		}
		fails--
		return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
	})
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4))
	var delays []time.Duration
	var last int
	r := w.until(KindDeployment, "app", d, "upgraded", func(r *Record) bool {
		if op := r.Operation; op != nil && op.Attempts > last {
			if op.Phase != PhaseApply {
				t.Fatalf("failure recorded in phase %s", op.Phase)
			}
			last = op.Attempts
			delays = append(delays, op.NextAttempt.Sub(w.clock.Now()))
		}
		return stableRunning(r) && r.Deployed != nil && strings.Contains(r.Deployed.Spec, `"parallelism":4`)
	})
	if len(delays) != 4 {
		t.Fatalf("%d retries recorded, want 4: %v", len(delays), delays)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] <= delays[i-1] {
			t.Errorf("backoff does not grow: %v", delays)
		}
	}
	if n := len(w.flink.Savepoints) - before; n != 1 {
		t.Errorf("%d savepoints taken, want 1", n)
	}
	steps := strings.Count(w.logs.String(), "to=DeleteCluster")
	if steps != 1 {
		t.Errorf("DeleteCluster entered %d times, want 1", steps)
	}
	_ = r
}

// TestRestoreOnApplyFailureOff: with flink-gitops.upgrade.restore-on-apply-failure
// false a permanent apply failure stops with an error that says so, and
// the spec is not tried again in a loop.
func TestRestoreOnApplyFailureOff(t *testing.T) {
	w := newSimWorld(t)
	w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2)), "deployed", stableRunning)
	w.kube.PrependReactor("patch", "deployments", rejectImage(rejectedImage, false))
	before := len(w.flink.Savepoints)
	bad := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4, withImage(rejectedImage), withConf(keyRestoreOnApplyFailure, "false")))
	r := w.until(KindDeployment, "app", bad, "failed", func(r *Record) bool {
		return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed
	})
	if !strings.Contains(r.Common().Error, "upgrade failed at step Apply") || r.Refused == nil {
		t.Fatalf("record: %s refused %+v", dumpRecord(r), r.Refused)
	}
	for range 20 {
		w.tick()
		w.pass(KindDeployment, "app", bad)
	}
	if n := len(w.flink.Savepoints) - before; n != 1 {
		t.Errorf("%d savepoints, want 1 (no loop)", n)
	}
	if n := strings.Count(w.logs.String(), "operation started"); n > 2 {
		t.Errorf("%d operations started, want 2 (deploy, upgrade): the failed spec looped", n)
	}
}
