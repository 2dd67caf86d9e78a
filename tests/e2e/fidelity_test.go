package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// operatorFormSpec is a FlinkDeployment written the way the operator's
// current documentation writes it: the newer resources form with memory in
// Flink's MemorySize syntax ("2048m" is 2048 MiB, not 2.048 bytes), limits
// for the TaskManager, and nested flinkConfiguration.
func operatorFormSpec(name, jmMemory string) string {
	return fmt.Sprintf(`apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: %s
  namespace: NAMESPACE
spec:
  image: flink:2.2
  flinkVersion: v2_2
  mode: standalone
  flinkConfiguration:
    taskmanager:
      numberOfTaskSlots: 2
    kubernetes.operator.job.upgrade.ignore-pending-savepoint: "true"
  jobManager:
    resources:
      requests: {memory: %q, cpu: 500m}
  taskManager:
    resources:
      requests: {memory: 1280m, cpu: "0.5"}
      limits: {memory: 1280m, cpu: "1"}
  job:
    jarURI: local:///opt/flink/usrlib/testjob.jar
    entryClass: %s
    args: ["--rate", "40", "--checkpoint-interval-ms", "1000"]
    parallelism: 1
    upgradeMode: stateless
`, name, jmMemory, flinktb.TestJobClass)
}

// TestOperatorResourcesForm deploys a spec in the operator's resources form
// through Git: the JobManager JVM gets 2048 MiB of process memory (Flink's
// own derivation: its -Xmx and its configuration), the TaskManager 1280 MiB
// with a cpu limit factor of 2, and the Deployments request what the
// operator would. A push of a JobManager too small for Flink's memory model
// is refused up front, naming the smallest size, and the job keeps running.
// A key accepted but not acted on is a warning on the status branch.
func TestOperatorResourcesForm(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	e := newEnv(t, map[string]string{
		"apps/sized/kustomization.yaml":   kustomization,
		"apps/sized/flinkdeployment.yaml": operatorFormSpec("sized", "2048m"),
	}, nil)
	rs := e.wait("FlinkDeployment", "sized", "first deploy", 4*time.Minute, stableAt(""))
	e.progress("sized", rs.JobID, 5)
	if w := strings.Join(rs.Warnings, "\n"); !strings.Contains(w, "kubernetes.operator.job.upgrade.ignore-pending-savepoint has no effect") {
		t.Errorf("status branch warnings %q, want the key accepted but not acted on", w)
	}
	rest := e.s.Agent.ProxyURL + "/" + e.ns + "/sized-rest"

	var conf []struct{ Key, Value string }
	getJSON(t, rest+"/jobmanager/config", &conf)
	got := map[string]string{}
	for _, kv := range conf {
		got[kv.Key] = kv.Value
	}
	if v := got["jobmanager.memory.process.size"]; !isMiB(v, 2048) {
		t.Errorf("JobManager jobmanager.memory.process.size is %q, want 2048 MiB", v)
	}
	var env struct {
		JVM struct {
			Options []string `json:"options"`
		} `json:"jvm"`
	}
	getJSON(t, rest+"/jobmanager/environment", &env)
	xmx := int64(-1)
	for _, o := range env.JVM.Options {
		if v, ok := strings.CutPrefix(o, "-Xmx"); ok {
			xmx, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	// 2048 MiB less 256 MiB metaspace, ~205 MiB overhead and 128 MiB
	// off-heap: ~1459 MiB of heap. (2048 MB read as decimal would give
	// ~1374 MiB; "2048m" read as a Kubernetes quantity would not build.)
	if xmx < 1450<<20 || xmx > 1470<<20 {
		t.Errorf("JobManager -Xmx is %d (%d MiB), want the heap of a 2048 MiB process (~1459 MiB); JVM options %v", xmx, xmx>>20, env.JVM.Options)
	}
	var tms struct {
		TaskManagers []struct {
			Memory struct {
				TotalProcessMemory int64 `json:"totalProcessMemory"`
			} `json:"memoryConfiguration"`
		} `json:"taskmanagers"`
	}
	getJSON(t, rest+"/taskmanagers", &tms)
	if len(tms.TaskManagers) == 0 || tms.TaskManagers[0].Memory.TotalProcessMemory != 1280<<20 {
		t.Errorf("TaskManagers %+v, want one with a total process memory of 1280 MiB", tms.TaskManagers)
	}
	ctx := context.Background()
	cs := e.s.Kube.Client()
	jm, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "sized", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := jm.Spec.Template.Spec.Containers[0].Resources
	if c.Requests.Memory().Value() != 2048<<20 || c.Requests.Cpu().MilliValue() != 500 {
		t.Errorf("JobManager container requests %v, want memory 2Gi and cpu 500m", c.Requests)
	}
	tm, err := cs.AppsV1().Deployments(e.ns).Get(ctx, "sized-taskmanager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c = tm.Spec.Template.Spec.Containers[0].Resources
	if c.Requests.Memory().Value() != 1280<<20 || c.Limits.Memory().Value() != 1280<<20 || c.Limits.Cpu().MilliValue() != 1000 {
		t.Errorf("TaskManager container resources %+v, want memory 1280Mi request and limit, cpu limit 1", c)
	}

	small := e.push("sized: JobManager 512m", map[string]string{"apps/sized/flinkdeployment.yaml": operatorFormSpec("sized", "512m")})
	refused := e.wait("FlinkDeployment", "sized", "the too-small JobManager refused", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return len(r.Problems) > 0
	})
	problems := strings.Join(refused.Problems, "\n")
	if !strings.Contains(problems, "spec.jobManager.resources") || !strings.Contains(problems, "give it at least 577 mb") {
		t.Errorf("problems %q, want the JobManager memory refused with its minimum (577 mb)", problems)
	}
	if refused.JobID != rs.JobID || refused.LastReconciledCommit == small || refused.Operation != "" {
		t.Fatalf("the refused spec touched the running job: %+v", refused)
	}
	e.progress("sized", rs.JobID, 20)
}

func isMiB(v string, mib int64) bool {
	for _, form := range []string{"%dm", "%d mb", "%dmb"} {
		if strings.EqualFold(v, fmt.Sprintf(form, mib)) {
			return true
		}
	}
	return mib%1024 == 0 && (strings.EqualFold(v, fmt.Sprintf("%d gb", mib/1024)) || strings.EqualFold(v, fmt.Sprintf("%dg", mib/1024)))
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}
