package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// TestShutdownIsNotAFailure: a pass that fails because the daemon is
// shutting down is not counted as a failed reconcile (nor kept as the
// resource's failure); the same failure while running is.
func TestShutdownIsNotAFailure(t *testing.T) {
	kube := fake.NewClientset()
	kube.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	c := config.Default()
	c.Kubernetes.AllowedNamespaces = []string{"flink"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &Daemon{cfg: config.NewStore(c), log: log, metrics: NewMetrics(),
		desired: map[string]*lifecycle.Desired{}, removed: map[string]bool{}, records: map[string]*lifecycle.Record{}, failures: map[string]string{},
		rec: &lifecycle.Reconciler{Kube: kube, Store: &lifecycle.Store{Client: kube}, Log: log, Settings: func() lifecycle.Settings { return lifecycle.Settings{} }}}
	key := Key(lifecycle.KindDeployment, "flink", "orders")
	failed := func() float64 {
		var m dto.Metric
		if err := d.metrics.reconciles.WithLabelValues(lifecycle.KindDeployment, "error").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}

	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if next := d.reconcile(stopped, key); next != 0 {
		t.Errorf("a pass cut by shutdown asks to come back in %s", next)
	}
	if n := failed(); n != 0 || d.failures[key] != "" {
		t.Fatalf("a pass cut by shutdown counted %v failures, failure %q", n, d.failures[key])
	}
	d.reconcile(context.Background(), key)
	if n := failed(); n != 1 || d.failures[key] == "" {
		t.Fatalf("a failed pass while running counted %v failures, failure %q; want 1 and a message", n, d.failures[key])
	}
}
