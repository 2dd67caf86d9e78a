package lifecycle

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestStatusFiles(t *testing.T) {
	rec := &Record{Kind: KindDeployment, Namespace: "flink", Name: "orders", Deployment: &v1beta1.FlinkDeploymentStatus{
		CommonStatus: v1beta1.CommonStatus{
			LifecycleState: v1beta1.LifecycleStable,
			JobStatus: v1beta1.JobStatus{JobID: "abc", State: v1beta1.JobRunning, UpgradeSavepointPath: "file:/sp/2",
				SavepointInfo: &v1beta1.SavepointInfo{SavepointHistory: []v1beta1.Savepoint{
					{TimeStamp: 1000, Location: "file:/sp/1", TriggerType: v1beta1.TriggerPeriodic},
					{TimeStamp: 2000, Location: "file:/sp/2", TriggerType: v1beta1.TriggerUpgrade, Commit: "c1c1c1c1c1c1c1c1"},
				}}},
			Source: &v1beta1.SourceRef{Commit: "c1c1c1c1c1c1c1c1", EntryPoint: "apps/orders", Path: "apps/orders/fd.yaml"},
		},
		JobManagerDeploymentStatus: v1beta1.JMReady,
	}, Operation: &Operation{Kind: OpUpgrade, Phase: PhaseAwaitSavepoint, UpgradeMode: v1beta1.UpgradeModeSavepoint}}
	problems := map[string][]string{
		"FlinkDeployment/flink/orders": {"spec.job.parallelism: must be positive"},
		"FlinkDeployment/flink/fresh":  {"spec.image: is required"},
	}
	files, err := StatusFiles([]*Record{rec}, problems, map[string]string{"FlinkDeployment/flink/orders": "c2c2c2c2c2c2c2c2"},
		Summary{SourceCommit: "c2c2c2c2c2c2c2c2", Problems: []string{"apps/broken: kustomization.yaml: bad"}, Generated: time.Unix(0, 0),
			Warnings: map[string][]string{"FlinkDeployment/flink/orders": {"job.autoscaler.enabled has no effect in flink-gitops"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got ResourceStatus
	if err := yaml.Unmarshal(files["flink/FlinkDeployment/orders.yaml"], &got); err != nil {
		t.Fatal(err)
	}
	if got.LifecycleState != "STABLE" || got.JobID != "abc" || got.LastReconciledCommit != "c1c1c1c1c1c1c1c1" || got.SourceCommit != "c2c2c2c2c2c2c2c2" ||
		got.Operation != "Upgrade (savepoint): AwaitSavepoint" || len(got.Problems) != 1 || got.JobManager != "READY" ||
		len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "job.autoscaler.enabled") {
		t.Errorf("resource file: %+v", got)
	}
	if len(got.Savepoints) != 2 || got.Savepoints[0].Path != "file:/sp/2" || got.Savepoints[0].Trigger != "UPGRADE" || got.Savepoints[0].Commit != "c1c1c1c1c1c1c1c1" {
		t.Errorf("savepoints not newest first: %+v", got.Savepoints)
	}
	var fresh ResourceStatus
	if err := yaml.Unmarshal(files["flink/FlinkDeployment/fresh.yaml"], &fresh); err != nil {
		t.Fatal(err)
	}
	if fresh.LifecycleState != NotDeployed || fresh.Problems[0] != "spec.image: is required" || fresh.SourceCommit != "c2c2c2c2c2c2c2c2" {
		t.Errorf("never-deployed invalid resource: %+v", fresh)
	}
	readme := string(files["README.md"])
	for _, want := range []string{"## Problems", "apps/broken: kustomization.yaml: bad", "| flink | FlinkDeployment | [orders](flink/FlinkDeployment/orders.yaml) |", "[fresh]", "c1c1c1c1c1c1"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q:\n%s", want, readme)
		}
	}
}
