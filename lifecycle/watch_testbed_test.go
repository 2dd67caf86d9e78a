package lifecycle_test

import (
	"context"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// requestLog records the requests of a Kubernetes client.
type requestLog struct {
	mu   gosync.Mutex
	reqs []string
}

func (l *requestLog) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTrip(func(r *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		return next.RoundTrip(r)
	})
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWatchOnTestbed runs a real Flink cluster with the reconciler reading
// its own objects from watches of the real apiserver: at rest a pass makes
// no request to the apiserver at all (nothing is re-read, nothing applied
// that the watch shows unchanged); a hand edit of the TaskManager
// Deployment and the deletion of the REST Service are seen by the watch
// (the drift callback names the cluster) and the next pass sets both back,
// with a DriftCorrected event; after that, passes are quiet again.
func TestWatchOnTestbed(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	const name = "watched"

	// The reconciler's client counts its requests; its cache reports drift.
	rc := kube.Shared(t).RESTConfig()
	log := &requestLog{}
	rc.Wrap(log.wrap)
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	drift := make(chan string, 16)
	cache := lifecycle.NewCache(cs, nil)
	cache.OnDrift(func(ns, cl string) {
		select {
		case drift <- ns + "/" + cl:
		default:
		}
	})
	cache.SetNamespaces([]string{b.ns})
	t.Cleanup(cache.Stop)
	b.rec.Kube, b.rec.Cache, b.rec.Store = cs, cache, &lifecycle.Store{Client: cs, Cache: cache}
	b.rec.Events = &lifecycle.Events{Client: cs, Log: b.rec.Log}
	if !cache.WaitSynced(ctx) {
		t.Fatal("watches never synced")
	}

	d := b.render(b.appSpec(name, "flink:2.2", "v2_2", "stateless", "", 1))
	b.until(lifecycle.KindDeployment, name, d, "deployed and stable", 3*time.Minute, stable)

	// At rest: the first passes may still apply what the Deployment
	// controller's status writes made look changed; then nothing.
	quiet := func(what string) {
		t.Helper()
		var reqs []string
		for i := 0; i < 10; i++ {
			log.take()
			for j := 0; j < 3; j++ {
				if _, err := b.rec.Reconcile(ctx, lifecycle.KindDeployment, b.ns, name, d); err != nil {
					t.Fatal(err)
				}
			}
			if reqs = log.take(); len(reqs) == 0 {
				return
			}
			time.Sleep(time.Second)
		}
		t.Fatalf("%s: passes at rest still send requests to the apiserver: %v", what, reqs)
	}
	quiet("after the deploy")

	// Someone scales the TaskManagers by hand and deletes the REST Service.
	tm, err := cs.AppsV1().Deployments(b.ns).Get(ctx, cluster.TaskManagerName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := *tm.Spec.Replicas
	three := int32(3)
	tm.Spec.Replicas = &three
	if _, err := cs.AppsV1().Deployments(b.ns).Update(ctx, tm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-drift:
		if got != b.ns+"/"+name {
			t.Fatalf("drift reported for %s, want %s/%s", got, b.ns, name)
		}
	case <-time.After(time.Minute):
		t.Fatal("the watch did not report the hand edit of the TaskManager Deployment")
	}
	if err := cs.CoreV1().Services(b.ns).Delete(ctx, cluster.RESTServiceName(name), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-drift:
	case <-time.After(time.Minute):
		t.Fatal("the watch did not report the deletion of the REST Service")
	}

	// The next passes set both back.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := b.rec.Reconcile(ctx, lifecycle.KindDeployment, b.ns, name, d); err != nil {
			t.Fatal(err)
		}
		tm, err := cs.AppsV1().Deployments(b.ns).Get(ctx, cluster.TaskManagerName(name), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, serr := cs.CoreV1().Services(b.ns).Get(ctx, cluster.RESTServiceName(name), metav1.GetOptions{})
		if *tm.Spec.Replicas == want && serr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not set back: TaskManager replicas %d (want %d), REST Service: %v", *tm.Spec.Replicas, want, serr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	evs, err := cs.CoreV1().Events(b.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found *corev1.Event
	for i := range evs.Items {
		if evs.Items[i].Reason == lifecycle.ReasonDriftCorrected {
			found = &evs.Items[i]
		}
	}
	if found == nil {
		t.Fatal("no DriftCorrected event")
	}
	t.Logf("event: %s", found.Message)
	quiet("after the drift was corrected")
}
