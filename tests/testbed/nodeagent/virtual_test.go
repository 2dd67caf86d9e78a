package nodeagent_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// virtualRuntime runs every replica virtually and counts starts and stops.
type virtualRuntime struct{ started, stopped *atomic.Int32 }

func (r virtualRuntime) Prepare(_ context.Context, c nodeagent.Container) (*nodeagent.Process, error) {
	r.started.Add(1)
	return &nodeagent.Process{Stop: func() { r.stopped.Add(1) }}, nil
}

// TestVirtualReplicas: replicas without a process are reported ready, a
// change of a mounted ConfigMap (read from the cache) replaces them, and
// deleting the Deployment stops them — the scale harness's fleet mode.
func TestVirtualReplicas(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	rt := virtualRuntime{started: new(atomic.Int32), stopped: new(atomic.Int32)}
	nodeagent.Start(t, cs, rt, nodeagent.WithTick(100*time.Millisecond), nodeagent.WithCachedConfigMaps())
	ctx := context.Background()
	cms := cs.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "site"}, Data: map[string]string{"index.html": "v1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, webDeployment(ns, "virt", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ready := func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "virt", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2 && d.Status.ObservedGeneration == d.Generation, err
	}
	eventually(t, time.Minute, "2 virtual replicas ready", ready)
	if s, st := rt.started.Load(), rt.stopped.Load(); s != 2 || st != 0 {
		t.Fatalf("after start: %d started, %d stopped; want 2, 0", s, st)
	}
	if n := processCount(t, ns); n != 0 {
		t.Fatalf("%d http.server processes run for virtual replicas", n)
	}

	cm, err := cms.Get(ctx, "site", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["index.html"] = "v2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the ConfigMap change replacing both replicas", func() (bool, error) {
		return rt.started.Load() == 4 && rt.stopped.Load() == 2, nil
	})
	eventually(t, time.Minute, "2 virtual replicas ready again", ready)

	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "virt", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the deletion stopping every replica", func() (bool, error) {
		return rt.stopped.Load() == 4, nil
	})
	if s := rt.started.Load(); s != 4 {
		t.Fatalf("%d starts in all, want 4", s)
	}
}
