package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func testRecord(name string) *Record {
	return &Record{Kind: KindDeployment, Namespace: "apps", Name: name,
		Deployment: &v1beta1.FlinkDeploymentStatus{
			CommonStatus:               v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable, JobStatus: v1beta1.JobStatus{JobID: "0123456789abcdef0123456789abcdef", State: v1beta1.JobRunning}},
			JobManagerDeploymentStatus: v1beta1.JMReady,
			ReconciliationStatus:       v1beta1.ReconciliationStatus{LastReconciledSpec: `{"image":"flink:2.2"}`},
		},
		Operation: &Operation{Kind: OpUpgrade, Phase: PhaseAwaitSavepoint, TriggerID: "fedcba9876543210fedcba9876543210"},
	}
}

var recordCmp = cmp.Options{cmpopts.IgnoreUnexported(Record{})}

func TestStoreCreateGetListDelete(t *testing.T) {
	w := newSimWorld(t)
	s := &Store{Client: w.kube}
	ctx := context.Background()
	if r, err := s.Get(ctx, KindDeployment, "apps", "a"); r != nil || err != nil {
		t.Fatalf("Get of nothing: %v, %v", r, err)
	}
	r := testRecord("a")
	if err := s.Save(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.resourceVersion == "" {
		t.Fatal("Save did not keep the resourceVersion")
	}
	got, err := s.Get(ctx, KindDeployment, "apps", "a")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got, recordCmp); d != "" {
		t.Fatalf("read back (-saved +read):\n%s", d)
	}
	obj, _ := w.tracker.Get(configMapsGVR, "apps", StatusConfigMapName(KindDeployment, "a"))
	cm := obj.(*corev1.ConfigMap)
	for k, v := range map[string]string{LabelManagedBy: ManagedBy, LabelRole: RoleStatus, LabelKind: KindDeployment, LabelName: "a"} {
		if cm.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, cm.Labels[k], v)
		}
	}
	if _, ok := cm.Data[recordKey]; !ok {
		t.Errorf("small record not stored as plain %s", recordKey)
	}
	// A second record of the same name created from scratch conflicts.
	if err := s.Save(ctx, testRecord("a")); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	// Another resource's ConfigMaps are not listed.
	other := &corev1.ConfigMap{}
	other.Name, other.Namespace = "unrelated", "apps"
	if err := w.tracker.Add(other); err != nil {
		t.Fatal(err)
	}
	sj := testRecord("j")
	sj.Kind, sj.Deployment, sj.SessionJob = KindSessionJob, nil, &v1beta1.FlinkSessionJobStatus{}
	if err := s.Save(ctx, sj); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx, "apps")
	if err != nil || len(l) != 2 {
		t.Fatalf("List: %d records, %v", len(l), err)
	}
	if err := s.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, KindDeployment, "apps", "a"); r != nil || err != nil {
		t.Fatalf("Get after Delete: %v, %v", r, err)
	}
	if err := s.Delete(ctx, got); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestStoreConflict(t *testing.T) {
	w := newSimWorld(t)
	s := &Store{Client: w.kube}
	ctx := context.Background()
	if err := s.Save(ctx, testRecord("a")); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Get(ctx, KindDeployment, "apps", "a")
	b, _ := s.Get(ctx, KindDeployment, "apps", "a")
	a.Operation.Phase = PhaseAwaitStopped
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.Operation = nil
	if err := s.Save(ctx, b); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale save: %v, want ErrConflict", err)
	}
	got, _ := s.Get(ctx, KindDeployment, "apps", "a")
	if got.Operation == nil || got.Operation.Phase != PhaseAwaitStopped {
		t.Fatalf("the stale save overwrote the newer record: %+v", got.Operation)
	}
	// Saving twice in a row from the same copy works (it follows its own writes).
	a.Operation.Phase = PhaseDeleteCluster
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	// A record whose ConfigMap was deleted meanwhile conflicts too.
	_ = s.Delete(ctx, a)
	if err := s.Save(ctx, a); !errors.Is(err, ErrConflict) {
		t.Fatalf("save after delete: %v, want ErrConflict", err)
	}
}

// longHistory is a record with n savepoints of realistic paths.
func longHistory(n int, path func(i int) string) *Record {
	r := testRecord("big")
	si := &v1beta1.SavepointInfo{}
	for i := 0; i < n; i++ {
		si.SavepointHistory = append(si.SavepointHistory, v1beta1.Savepoint{TimeStamp: 1767323045000 + int64(i)*60000,
			Location: path(i), TriggerType: v1beta1.TriggerPeriodic, FormatType: v1beta1.SavepointCanonical})
	}
	r.Deployment.JobStatus.SavepointInfo = si
	return r
}

func TestStoreLargeRecordIsCompressedUnder1MiB(t *testing.T) {
	w := newSimWorld(t)
	s := &Store{Client: w.kube}
	ctx := context.Background()
	r := longHistory(20000, func(i int) string {
		return fmt.Sprintf("s3://flink-state-prod/savepoints/orders-enrichment/savepoint-3f2a1b-%012x", i*7919)
	})
	if err := s.Save(ctx, r); err != nil {
		t.Fatal(err)
	}
	obj, _ := w.tracker.Get(configMapsGVR, "apps", StatusConfigMapName(KindDeployment, "big"))
	cm := obj.(*corev1.ConfigMap)
	z, ok := cm.BinaryData[recordKeyGz]
	if !ok || len(cm.Data) != 0 {
		t.Fatalf("large record not stored gzipped: data keys %v", cm.Data)
	}
	size := 0
	for k, v := range cm.BinaryData {
		size += len(k) + len(v)
	}
	if size >= 1<<20 {
		t.Fatalf("status ConfigMap holds %d bytes, over 1 MiB", size)
	}
	got, err := s.Get(ctx, KindDeployment, "apps", "big")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got, recordCmp); d != "" {
		t.Fatalf("gzipped record read back differs:\n%s", d)
	}
	t.Logf("%d savepoints: %d bytes gzipped", len(r.Deployment.JobStatus.SavepointInfo.SavepointHistory), len(z))

	// Incompressible and too large: refused, with what to do about it.
	huge := longHistory(20000, func(int) string {
		b := make([]byte, 64)
		_, _ = rand.Read(b)
		return "s3://bucket/" + hex.EncodeToString(b)
	})
	huge.resourceVersion = got.resourceVersion
	err = s.Save(ctx, huge)
	if err == nil || !strings.Contains(err.Error(), keyHistoryMaxCount) {
		t.Fatalf("oversized record: %v, want an error naming %s", err, keyHistoryMaxCount)
	}
	if back, _ := s.Get(ctx, KindDeployment, "apps", "big"); back == nil || len(back.Deployment.JobStatus.SavepointInfo.SavepointHistory) != 20000 {
		t.Fatalf("the refused write damaged the stored record")
	}
}

// TestReconcilerStopsOnConflict: when another writer changed the status
// between the read and the write-ahead save of a step, the pass stops
// before the step's external call, and the next pass carries on.
func TestReconcilerStopsOnConflict(t *testing.T) {
	w := newSimWorld(t)
	deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeSavepoint, 2))
	armed := true
	w.kube.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm := a.(k8stesting.UpdateAction).GetObject().(*corev1.ConfigMap)
		if !armed || cm.Name != StatusConfigMapName(KindDeployment, "app") {
			return false, nil, nil
		}
		armed = false
		// Another replica writes first.
		obj, err := w.tracker.Get(configMapsGVR, w.ns, cm.Name)
		if err != nil {
			return true, nil, err
		}
		other := obj.(*corev1.ConfigMap).DeepCopy()
		other.ResourceVersion = "999999"
		return false, nil, w.tracker.Update(configMapsGVR, other, w.ns)
	})
	d := w.desired("app", appSpecOf(v1beta1.UpgradeModeSavepoint, 4))
	w.tick()
	_, err, _ := w.pass(KindDeployment, "app", d)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("pass after a concurrent write: %v, want ErrConflict", err)
	}
	if n := w.callsOf("StopWithSavepoint") + w.callsOf("Cancel"); n != 0 {
		t.Fatalf("the pass went on to stop the job although its intent was not saved")
	}
	old := w.record(KindDeployment, "app").Common().JobStatus.JobID
	w.until(KindDeployment, "app", d, "upgraded after the conflict", func(r *Record) bool {
		return stableRunning(r) && r.Common().JobStatus.JobID != old
	})
	if len(w.flink.Savepoints) != 1 {
		t.Fatalf("%d savepoints, want 1", len(w.flink.Savepoints))
	}
}
