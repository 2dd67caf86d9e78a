package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// nativeSpec is a native application cluster with Kubernetes HA and the
// adaptive scheduler whose JobManager runs as the ServiceAccount of
// deploy/flink-serviceaccount.
func nativeSpec(name, haDir string, rate, parallelism int) string {
	return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: %s
  namespace: NAMESPACE
spec:
  image: flink:2.2
  flinkVersion: v2_2
  mode: native
  serviceAccount: flink
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    jobmanager.scheduler: adaptive
    high-availability.type: kubernetes
    high-availability.storageDir: file://%s
  jobManager:
    resource: {memory: 1024m, cpu: 0.5}
  taskManager:
    resource: {memory: 1280m, cpu: 0.5}
  job:
    jarURI: local:///opt/flink/usrlib/testjob.jar
    entryClass: %s
    args: ["--rate", "%d", "--checkpoint-interval-ms", "1000"]
    parallelism: %d
    upgradeMode: last-state
`, name, haDir, flinktb.TestJobClass, rate, parallelism)
}

// TestNativeModeThroughGit: the daemon binary, driven only through git,
// deploys a native application cluster with Kubernetes HA (Flink creates
// the TaskManager pod), upgrades it with last-state through the HA metadata
// (same job id, state continues), rescales it in place (parallelism 2 to
// 4: Flink requests a second TaskManager pod; same job id and JobManager),
// and deletes it leaving no TaskManager pod or HA ConfigMap.
func TestNativeModeThroughGit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	e := newEnv(t, map[string]string{"README.md": "# Flink specs\n"}, nil)
	ctx := context.Background()
	if err := stack.EnableNativeMode(ctx, e.s.Kube, e.s.Agent.Agent, filepath.Join(t.TempDir(), "tokens"), e.ns); err != nil {
		t.Fatal(err)
	}
	haDir := filepath.Join(e.s.StateDir, "ha")
	cs := e.s.Kube.Client()

	c1 := e.push("native: deploy", map[string]string{
		"apps/native/kustomization.yaml":   kustomization,
		"apps/native/flinkdeployment.yaml": nativeSpec("native", haDir, 40, 2),
	})
	rs := e.wait("FlinkDeployment", "native", "native deploy", 5*time.Minute, stableAt(c1))
	job := rs.JobID
	before := e.progress("native", job, 100)
	pods, err := cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "type=flink-native-kubernetes,component=taskmanager,app=native"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("TaskManager pods requested by Flink: %v (err %v), want 1", len(pods.Items), err)
	}

	// Wait for a checkpoint in the HA metadata, then push a new job graph.
	deadline := time.Now().Add(time.Minute)
	for {
		cm, err := cs.CoreV1().ConfigMaps(e.ns).Get(ctx, "native-"+job+"-config-map", metav1.GetOptions{})
		if err == nil && strings.Contains(fmt.Sprint(cm.Data), "checkpointID-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint in the job's HA ConfigMap: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	before = e.progress("native", job, before+20)
	c2 := e.push("native: rate 41", map[string]string{"apps/native/flinkdeployment.yaml": nativeSpec("native", haDir, 41, 2)})
	rs = e.wait("FlinkDeployment", "native", "last-state upgrade through HA", 5*time.Minute, stableAt(c2))
	if rs.JobID != job {
		t.Fatalf("last-state upgrade through HA changed the job id %s -> %s", job, rs.JobID)
	}
	e.continues("native last-state upgrade through HA (job "+job+")", before, e.firstCount("native", job), 30)

	// In-place rescale: only the parallelism changes. In native mode Flink's
	// resource manager asks for the second TaskManager pod itself.
	jm, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "native", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c3 := e.push("native: parallelism 4", map[string]string{"apps/native/flinkdeployment.yaml": nativeSpec("native", haDir, 41, 4)})
	rs = e.wait("FlinkDeployment", "native", "native in-place rescale", 5*time.Minute, func(r lifecycle.ResourceStatus) bool {
		if r.Operation != "" && !strings.HasPrefix(r.Operation, "Rescale") {
			t.Fatalf("a parallelism-only push on the adaptive scheduler ran %q, want an in-place rescale", r.Operation)
		}
		return stableAt(c3)(r)
	})
	if rs.JobID != job {
		t.Fatalf("in-place rescale changed the job id %s -> %s", job, rs.JobID)
	}
	fl := flinkclient.New(e.restURL("native"))
	eventually(t, 2*time.Minute, "every vertex at parallelism 4 in Flink's job details", func() (bool, string) {
		p := e.parallelism(fl, job)
		return allAt(p, 4), fmt.Sprint(p)
	})
	pods, err = cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "type=flink-native-kubernetes,component=taskmanager,app=native"})
	if err != nil || len(pods.Items) != 2 {
		t.Errorf("TaskManager pods after the rescale: %d (err %v), want 2 (Flink asks for the second)", len(pods.Items), err)
	}
	if after, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "native", metav1.GetOptions{}); err != nil || after.UID != jm.UID || after.Generation != jm.Generation {
		t.Errorf("the JobManager Deployment changed in an in-place rescale (err %v)", err)
	}

	e.push("native: remove", map[string]string{"apps/native/flinkdeployment.yaml": "", "apps/native/kustomization.yaml": ""})
	e.wait("FlinkDeployment", "native", "deleted", 3*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LifecycleState == "DELETED" && r.Operation == ""
	})
	if _, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "native", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("JobManager Deployment still there: %v", err)
	}
	pods, err = cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=native"})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left: %d (err %v)", len(pods.Items), err)
	}
	cms, err := cs.CoreV1().ConfigMaps(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		if strings.HasPrefix(cm.Name, "native-") && strings.HasSuffix(cm.Name, "-config-map") {
			t.Errorf("HA ConfigMap %s left after deletion", cm.Name)
		}
	}
}
