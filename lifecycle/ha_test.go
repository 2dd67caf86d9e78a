package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// withKubernetesHA turns on Flink's Kubernetes HA services.
var withKubernetesHA = withConf("high-availability.type", "kubernetes", "high-availability.storageDir", "file:/state/ha")

// writeHA creates the HA ConfigMaps Flink would have written for job
// jobID of cluster app: the cluster's (with a job graph) and the job's
// (with checkpoint pointers, when checkpoints > 0).
func (w *simWorld) writeHA(jobID string, checkpoints int) {
	w.t.Helper()
	ctx := context.Background()
	// Flink's labels on its HA ConfigMaps (KubernetesUtils).
	labels := map[string]string{"app": "app", "configmap-type": "high-availability", "type": "flink-native-kubernetes"}
	cluster := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-cluster-config-map", Namespace: w.ns, Labels: labels},
		Data: map[string]string{"address": "pekko.tcp://flink@10.0.0.1:6123/user/rpc/dispatcher_1", "executionPlan-" + jobID: "rO0AB…", "jobGraph-" + jobID: "rO0AB…"}}
	job := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-" + jobID + "-config-map", Namespace: w.ns, Labels: labels},
		Data: map[string]string{"counter": "7"}}
	for i := 1; i <= checkpoints; i++ {
		job.Data["checkpointID-000000000000000000"+string(rune('0'+i))] = "rO0AB…"
	}
	for _, cm := range []*corev1.ConfigMap{cluster, job} {
		if _, err := w.kube.CoreV1().ConfigMaps(w.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// configMap reads a ConfigMap straight from the tracker (not counted as a
// reconciler call).
func (w *simWorld) configMap(name string) *corev1.ConfigMap {
	w.t.Helper()
	obj, err := w.tracker.Get(configMapsGVR, w.ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return obj.(*corev1.ConfigMap)
}

// TestLastStateThroughHA: with Kubernetes HA a last-state upgrade neither
// cancels the job (Flink would delete its HA data) nor restores from a
// path: the cluster goes, the HA ConfigMaps stay with their job graphs
// removed, and the new cluster runs the job under the same id.
func TestLastStateThroughHA(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeLastState, 2, withKubernetesHA)).Common().JobStatus.JobID
	w.writeHA(old, 3)
	r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4, withKubernetesHA)), "upgraded", func(r *Record) bool {
		return stableRunning(r) && r.Deployed != nil && strings.Contains(r.Deployed.Spec, `"parallelism":4`)
	})
	if r.Common().JobStatus.JobID != old || r.Deployed.JobID != old {
		t.Fatalf("job id %s -> %s (deployed %s): the HA metadata is keyed by the job id", old, r.Common().JobStatus.JobID, r.Deployed.JobID)
	}
	if r.Deployed.RestorePath != "" {
		t.Errorf("restore path %q: Flink recovers the checkpoint from HA itself", r.Deployed.RestorePath)
	}
	if n := w.callsOf("Cancel") + w.callsOf("StopWithSavepoint") + w.callsOf("TriggerSavepoint"); n != 0 {
		t.Errorf("%d cancel/savepoint calls: a last-state upgrade through HA must leave the HA data to the new JobManager", n)
	}
	cluster, job := w.configMap("app-cluster-config-map"), w.configMap("app-"+old+"-config-map")
	if cluster == nil || job == nil {
		t.Fatalf("HA ConfigMaps deleted by the upgrade: cluster %v, job %v", cluster != nil, job != nil)
	}
	for k := range cluster.Data {
		if strings.HasPrefix(k, "jobGraph-") || strings.HasPrefix(k, "executionPlan-") {
			t.Errorf("job graph %s left in the cluster HA ConfigMap: the new JobManager would run the old job graph", k)
		}
	}
	if cluster.Data["address"] == "" || len(job.Data) != 4 {
		t.Errorf("HA data other than job graphs touched: cluster %v, job %v", cluster.Data, job.Data)
	}
	if !w.hasEvent(ReasonSpecChanged, "checkpoint 3") {
		t.Errorf("no event naming the HA checkpoint: %v", w.events())
	}

	// Deletion deletes the HA data too.
	w.until(KindDeployment, "app", nil, "deleted", deleted)
	if w.configMap("app-cluster-config-map") != nil || w.configMap("app-"+old+"-config-map") != nil {
		t.Errorf("HA ConfigMaps left after deletion")
	}
	if !w.hasEvent(ReasonCleanup, "HA metadata deleted") {
		t.Errorf("no cleanup event: %v", w.events())
	}
}

// TestLastStateHAMetadataMissing: without a checkpoint in the HA metadata a
// last-state upgrade through HA would start the job empty; it fails before
// touching anything and says what to do.
func TestLastStateHAMetadataMissing(t *testing.T) {
	for _, checkpoints := range []int{-1, 0} { // no ConfigMap; a ConfigMap without checkpoints
		w := newSimWorld(t)
		old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeLastState, 2, withKubernetesHA)).Common().JobStatus.JobID
		if checkpoints >= 0 {
			w.writeHA(old, checkpoints)
		}
		started, jm := len(w.flink.Started), w.deploymentObj("app").UID
		r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(v1beta1.UpgradeModeLastState, 4, withKubernetesHA)), "upgrade refused", func(r *Record) bool {
			return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed
		})
		msg := r.Common().Error
		for _, want := range []string{"HA metadata", "app-" + old + "-config-map", "start empty", "initialSavepointPath"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %q", msg, want)
			}
		}
		if j := w.flink.job(old); len(w.flink.Started) != started || j == nil || j.State != flinkclient.JobRunning || w.deploymentObj("app").UID != jm {
			t.Errorf("the refused upgrade touched the cluster: %d jobs started, job %+v", len(w.flink.Started)-started, j)
		}
	}
}

// TestKeepHAOnDeletion: flink-gitops.ha.keep-on-deletion keeps the HA data
// when the resource leaves Git, and never reaches Flink's configuration.
func TestKeepHAOnDeletion(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeStateless, 2, withKubernetesHA, withConf(keyKeepHAOnDeletion, "true"))).Common().JobStatus.JobID
	if cm := w.configMap("flink-config-app"); cm == nil || strings.Contains(cm.Data["config.yaml"], keyKeepHAOnDeletion) {
		t.Errorf("%s written into Flink's configuration", keyKeepHAOnDeletion)
	}
	w.writeHA(old, 1)
	w.until(KindDeployment, "app", nil, "deleted", deleted)
	if w.configMap("app-cluster-config-map") == nil || w.configMap("app-"+old+"-config-map") == nil {
		t.Errorf("HA ConfigMaps deleted despite %s", keyKeepHAOnDeletion)
	}
}

// TestFirstDeployNeverRanThenFixed: a first deploy whose JobManager never
// starts ends FAILED; fixing the spec deploys again from what the job
// started from (nothing), in every upgrade mode — a job that never ran has
// no state to lose, so last-state must not refuse for want of a checkpoint.
func TestFirstDeployNeverRanThenFixed(t *testing.T) {
	for _, mode := range []v1beta1.UpgradeMode{v1beta1.UpgradeModeSavepoint, v1beta1.UpgradeModeLastState} {
		for _, ha := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ha=%v", mode, ha), func(t *testing.T) {
				w := newSimWorld(t)
				w.brokenImage = "flink:broken"
				edits := []func(*v1beta1.FlinkDeploymentSpec){withConf(keyReadinessTimeout, "30s")}
				if ha {
					edits = append(edits, withKubernetesHA)
				}
				broken := appSpecOf(mode, 2, append(edits, func(s *v1beta1.FlinkDeploymentSpec) { s.Image = "flink:broken" })...)
				w.until(KindDeployment, "app", w.desired("app", broken), "first deploy failed", func(r *Record) bool {
					return r.Operation == nil && r.Common().LifecycleState == v1beta1.LifecycleFailed
				})
				r := w.until(KindDeployment, "app", w.desired("app", appSpecOf(mode, 2, edits...)), "fixed spec running", stableRunning)
				if j := w.flink.job(r.Common().JobStatus.JobID); j == nil || j.RestoredFrom != "" {
					t.Errorf("fixed deploy: job %+v, want one started empty", j)
				}
			})
		}
	}
}

// TestHADeletionSparesOthersConfigMaps: deleting a cluster's HA metadata
// deletes the ConfigMaps Flink made under the HA names — by its labels, its
// leader annotation (an unlabelled leader ConfigMap) or its data — and
// leaves a ConfigMap of such a name that is someone else's, with a warning.
func TestHADeletionSparesOthersConfigMaps(t *testing.T) {
	w := newSimWorld(t)
	old := deployStable(w, "app", appSpecOf(v1beta1.UpgradeModeStateless, 2, withKubernetesHA)).Common().JobStatus.JobID
	w.writeHA(old, 1)
	ctx := context.Background()
	other := strings.Repeat("ab", 16)
	unlabelled := strings.Repeat("cd", 16)
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "app-" + other + "-config-map", Namespace: w.ns}, Data: map[string]string{"settings.properties": "mine=true"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "app-" + unlabelled + "-config-map", Namespace: w.ns}, Data: map[string]string{"counter": "3", "checkpointID-0000000000000000003": "rO0AB…"}},
	} {
		if _, err := w.kube.CoreV1().ConfigMaps(w.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w.until(KindDeployment, "app", nil, "deleted", deleted)
	for _, gone := range []string{"app-cluster-config-map", "app-" + old + "-config-map", "app-" + unlabelled + "-config-map"} {
		if w.configMap(gone) != nil {
			t.Errorf("Flink's HA ConfigMap %s was not deleted", gone)
		}
	}
	if w.configMap("app-"+other+"-config-map") == nil {
		t.Errorf("a ConfigMap that is not Flink's was deleted")
	}
	if !w.hasEvent(ReasonNotOwned, "app-"+other+"-config-map") {
		t.Errorf("no NotOwned warning for the ConfigMap left alone; events: %v", w.events())
	}
}

func TestFlinkHAConfigMap(t *testing.T) {
	for _, c := range []struct {
		name string
		cm   corev1.ConfigMap
		want bool
	}{
		{"labels", corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "app", "configmap-type": "high-availability"}}}, true},
		{"labels of another cluster", corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "other", "configmap-type": "high-availability"}}}, false},
		{"leader annotation", corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"control-plane.alpha.kubernetes.io/leader": "{}"}}}, true},
		{"job graph", corev1.ConfigMap{Data: map[string]string{"jobGraph-00000000000000000000000000000000": "x"}}, true},
		{"execution plan", corev1.ConfigMap{Data: map[string]string{"executionPlan-00000000000000000000000000000000": "x"}}, true},
		{"checkpoint pointer", corev1.ConfigMap{Data: map[string]string{"checkpointID-0000000000000000001": "x"}}, true},
		{"empty", corev1.ConfigMap{}, false},
		{"someone's settings", corev1.ConfigMap{Data: map[string]string{"application.yaml": "x"}}, false},
	} {
		if got := flinkHAConfigMap(&c.cm, "app"); got != c.want {
			t.Errorf("%s: flinkHAConfigMap = %v, want %v", c.name, got, c.want)
		}
	}
}
