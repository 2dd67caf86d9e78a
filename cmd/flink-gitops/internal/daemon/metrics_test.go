package daemon

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestSavepointErrorEventsAreCounted(t *testing.T) {
	m := NewMetrics()
	kc := fake.NewClientset()
	ev := &lifecycle.Events{Client: m.countEvents(kc)}
	rec := &lifecycle.Record{Kind: lifecycle.KindDeployment, Namespace: "flink", Name: "orders"}
	ctx := context.Background()
	ev.Warn(ctx, rec, lifecycle.ReasonSavepointError, "savepoint failed: disk full")
	ev.Warn(ctx, rec, lifecycle.ReasonSavepointError, "savepoint failed: disk full")
	ev.Normal(ctx, rec, lifecycle.ReasonSavepoint, "upgrade savepoint completed: file:/sp/1")

	if got := value(t, m.savepointErrors.WithLabelValues("flink", "orders")); got != 2 {
		t.Errorf("flink_gitops_savepoint_errors_total{namespace=flink,name=orders} = %v, want 2", got)
	}
	// The events still reach the cluster (the fake clientset ignores
	// generateName, so only the first of them is stored).
	l, err := kc.CoreV1().Events("flink").List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 || l.Items[0].Reason != lifecycle.ReasonSavepointError {
		t.Fatalf("events recorded through the counter: %+v, %v", l, err)
	}
}

func TestObserveRecordCountsNewSavepointsOnce(t *testing.T) {
	withSavepoint := func(state, loc string) *lifecycle.Record {
		r := &lifecycle.Record{Kind: lifecycle.KindDeployment, Namespace: "flink", Name: "orders", Deployment: &v1beta1.FlinkDeploymentStatus{}}
		c := r.Common()
		c.LifecycleState = v1beta1.LifecycleState(state)
		if loc != "" {
			c.JobStatus.SavepointInfo = &v1beta1.SavepointInfo{LastSavepoint: &v1beta1.Savepoint{Location: loc, TimeStamp: 1_700_000_000_000, TriggerType: "UPGRADE"}}
		}
		return r
	}
	m := NewMetrics()
	steps := []struct{ prev, cur *lifecycle.Record }{
		{nil, withSavepoint("DEPLOYED", "")},
		{withSavepoint("DEPLOYED", ""), withSavepoint("STABLE", "")},
		{withSavepoint("STABLE", ""), withSavepoint("UPGRADING", "file:/sp/1")}, // new savepoint: counted
		{withSavepoint("UPGRADING", "file:/sp/1"), withSavepoint("STABLE", "file:/sp/1")},
		{nil, withSavepoint("STABLE", "file:/sp/1")}, // after a restart: not a new one
	}
	for _, s := range steps {
		m.observeRecord(s.prev, s.cur)
	}
	if got := value(t, m.savepoints.WithLabelValues("UPGRADE")); got != 1 {
		t.Errorf("savepoints_total{UPGRADE} = %v, want 1", got)
	}
	for state, want := range map[string]float64{"STABLE": 1, "DEPLOYED": 0, "UPGRADING": 0} {
		if got := value(t, m.resources.WithLabelValues(state)); got != want {
			t.Errorf("resources{%s} = %v, want %v", state, got, want)
		}
	}
	if got := value(t, m.lastSavepoint.WithLabelValues(lifecycle.KindDeployment, "flink", "orders")); got != 1_700_000_000 {
		t.Errorf("last savepoint timestamp = %v", got)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &d)
	return 0
}
