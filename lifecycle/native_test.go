package lifecycle_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	"github.com/flink-gitops/flink-gitops/tests/stack"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// nativeBed is a bed whose Flink JobManagers may create TaskManager pods:
// deploy/flink-serviceaccount is applied to the test's namespace and the
// node agent gives each container a kubeconfig of its pod's own service
// account (see stack.EnableNativeMode).
func nativeBed(t *testing.T) *bed {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	b := newBed(t)
	kc := kube.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := stack.EnableNativeMode(ctx, kc, b.agent.Agent, t.TempDir(), b.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = kc.Client().CoreV1().Pods(b.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
	})
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// nativeSpec is a native application cluster with Kubernetes HA running the
// test job as ServiceAccount flink.
func (b *bed) nativeSpec(name, mode string, parallelism, rate int) string {
	s := b.appSpec(name, "flink:2.2", "v2_2", mode, fmt.Sprintf(`    high-availability.type: kubernetes
    high-availability.storageDir: file://%s/ha`, b.state), parallelism)
	s = strings.Replace(s, "  mode: standalone\n", "  mode: native\n  serviceAccount: flink\n", 1)
	// A TaskManager pod template: Flink reads it from the file the
	// ConfigMap carries and starts every TaskManager pod from it.
	s = strings.Replace(s, "  taskManager:\n    resource: {memory: 1280m, cpu: 0.5}\n", `  taskManager:
    resource: {memory: 1280m, cpu: 0.5}
    podTemplate:
      metadata:
        labels: {pool: native-test}
      spec:
        containers:
          - name: flink-main-container
            env:
              - {name: FROM_TEMPLATE, value: "yes"}
`, 1)
	return strings.Replace(s, `"--rate", "40"`, fmt.Sprintf(`"--rate", "%d"`, rate), 1)
}

// haConfigMaps lists the HA ConfigMaps Flink wrote for cluster.
func (b *bed) haConfigMaps(cluster string) map[string]map[string]string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := b.rec.Kube.CoreV1().ConfigMaps(b.ns).List(ctx, metav1.ListOptions{})
	must(b.t, err)
	out := map[string]map[string]string{}
	for _, cm := range l.Items {
		if strings.HasPrefix(cm.Name, cluster+"-") && strings.HasSuffix(cm.Name, "-config-map") {
			out[cm.Name] = cm.Data
		}
	}
	return out
}

func (b *bed) taskManagerPods(cluster string) []corev1.Pod {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := b.rec.Kube.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{LabelSelector: "type=flink-native-kubernetes,component=taskmanager,app=" + cluster})
	must(b.t, err)
	return l.Items
}

// haCheckpointed waits until the job's HA ConfigMap points at a checkpoint
// taken after the job's counter reached atLeast, and returns its id.
func (b *bed) haCheckpointed(cluster, jobID string, atLeast int64) int64 {
	b.t.Helper()
	b.progress(cluster, jobID, atLeast)
	deadline := time.Now().Add(time.Minute)
	var first int64 = -1
	for time.Now().Before(deadline) {
		var newest int64
		for k := range b.haConfigMaps(cluster)[cluster+"-"+jobID+"-config-map"] {
			if n, err := strconv.ParseInt(strings.TrimPrefix(k, "checkpointID-"), 10, 64); err == nil && strings.HasPrefix(k, "checkpointID-") && n > newest {
				newest = n
			}
		}
		if first < 0 && newest > 0 {
			first = newest
		}
		if first > 0 && newest > first {
			return newest
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.t.Fatalf("no new checkpoint of job %s in its HA ConfigMap: %v", jobID, b.haConfigMaps(cluster))
	return 0
}

// javaPID is the pid of the JVM running mainClass for the test's namespace.
func (b *bed) javaPID(mainClass string) int {
	out, _ := exec.Command("pgrep", "-f", mainClass).Output()
	for _, pid := range strings.Fields(string(out)) {
		cwd, err := os.Readlink("/proc/" + pid + "/cwd")
		if err == nil && strings.Contains(cwd, "/"+b.ns+"/") {
			n, _ := strconv.Atoi(pid)
			return n
		}
	}
	return 0
}

// noFlinkJVMs checks that no Flink JVM of the test's namespace is left
// (the node agent stops them shortly after their pods go).
func (b *bed) noFlinkJVMs() {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for b.javaPID("org.apache.flink") != 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if pid := b.javaPID("org.apache.flink"); pid != 0 {
		b.t.Errorf("a Flink JVM (pid %d) still runs for the deleted cluster", pid)
	}
}

// TestNativeMode drives a native application cluster with Kubernetes HA on
// Flink 2.2 through what the operator's native mode does: deploy (Flink
// creates the TaskManager pods), savepoint upgrade with state continuity,
// last-state upgrade through the HA metadata (same job id, newest
// checkpoint, job graph replaced), a JobManager process killed (Flink
// recovers from HA, the daemon starts nothing), a stateless upgrade (the
// old job's HA data goes, the new job starts empty), and deletion leaving no
// object, pod, HA ConfigMap or JVM behind.
func TestNativeMode(t *testing.T) {
	b := nativeBed(t)
	ctx := context.Background()
	kc := b.rec.Kube
	const name = "native"

	// Deploy.
	d := b.render(b.nativeSpec(name, "savepoint", 1, 40))
	r := b.until(lifecycle.KindDeployment, name, d, "native deploy to be stable", 4*time.Minute, stable)
	job1 := r.Common().JobStatus.JobID
	before := b.progress(name, job1, warm)
	if _, err := kc.AppsV1().Deployments(b.ns).Get(ctx, name+"-taskmanager", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a native cluster has a TaskManager Deployment: %v", err)
	}
	tms := b.taskManagerPods(name)
	if len(tms) != 1 {
		t.Fatalf("%d TaskManager pods, want 1 requested by Flink", len(tms))
	}
	if ref := metav1.GetControllerOf(&tms[0]); ref == nil || ref.Kind != "Deployment" || ref.Name != name {
		t.Errorf("TaskManager pod %s owned by %+v, want the JobManager Deployment", tms[0].Name, tms[0].OwnerReferences)
	}
	if tms[0].Spec.ServiceAccountName != "flink" {
		t.Errorf("TaskManager pod service account %q, want flink (kubernetes.service-account)", tms[0].Spec.ServiceAccountName)
	}
	if tms[0].Labels["pool"] != "native-test" || !hasEnv(tms[0], "FROM_TEMPLATE", "yes") {
		t.Errorf("TaskManager pod not made from spec.taskManager.podTemplate: labels %v, containers %+v", tms[0].Labels, tms[0].Spec.Containers)
	}
	cm, err := kc.CoreV1().ConfigMaps(b.ns).Get(ctx, "flink-config-"+name, metav1.GetOptions{})
	must(t, err)
	for _, want := range []string{"execution.target: kubernetes-application", "kubernetes.container.image.ref: flink:2.2", "$internal.pipeline.job-id: " + job1} {
		if !strings.Contains(cm.Data["config.yaml"], want) {
			t.Errorf("flink-config-%s lacks %q:\n%s", name, want, cm.Data["config.yaml"])
		}
	}
	t.Logf("native job %s runs with TaskManager pod %s, counter %d", job1, tms[0].Name, before)

	// Savepoint upgrade: parallelism 1 -> 2; state continues; the old job's
	// HA metadata goes with the old cluster.
	d = b.render(b.nativeSpec(name, "savepoint", 2, 40))
	r = b.until(lifecycle.KindDeployment, name, d, "savepoint upgrade", 4*time.Minute, newJob(job1))
	job2 := r.Common().JobStatus.JobID
	sp := r.Common().JobStatus.UpgradeSavepointPath
	if sp == "" || r.Deployed.RestorePath != sp {
		t.Fatalf("savepoint upgrade: restore path %q, upgrade savepoint %q", r.Deployed.RestorePath, sp)
	}
	if got := b.restoredFrom(name, job2); got != sp {
		t.Fatalf("Flink restored job %s from %q, want the upgrade savepoint %q", job2, got, sp)
	}
	after := b.continues(name, job2, before)
	if _, ok := b.haConfigMaps(name)[name+"-"+job1+"-config-map"]; ok {
		t.Errorf("the old job's HA ConfigMap survived the savepoint upgrade")
	}
	b.logOverhead("native savepoint upgrade", name, name, job2)
	t.Logf("savepoint upgrade to job %s from %s: counter %d -> %d", job2, sp, before, after)

	// Last-state upgrade through the HA metadata: a new job graph (rate
	// 40 -> 41) under the same job id, from the newest checkpoint the HA
	// ConfigMap names; no cancel, no savepoint.
	d = b.render(b.nativeSpec(name, "last-state", 2, 41))
	ckpt := b.haCheckpointed(name, job2, after+warm)
	atUpgrade := b.progress(name, job2, 0)
	r = b.until(lifecycle.KindDeployment, name, d, "last-state upgrade from HA", 4*time.Minute, func(r *lifecycle.Record) bool {
		return stable(r) && r.Deployed != nil && r.Deployed.SpecHash == d.Hash
	})
	if got := r.Common().JobStatus.JobID; got != job2 {
		t.Fatalf("last-state upgrade through HA changed the job id %s -> %s", job2, got)
	}
	if r.Deployed.RestorePath != "" {
		t.Errorf("last-state upgrade through HA deployed with restore path %q; Flink should recover the checkpoint itself", r.Deployed.RestorePath)
	}
	restored := b.restoredFrom(name, job2)
	if m := regexp.MustCompile(`/chk-([0-9]+)/?$`).FindStringSubmatch(restored); m == nil {
		t.Fatalf("job %s restored from %q, want a checkpoint (chk-N)", job2, restored)
	} else if n, _ := strconv.ParseInt(m[1], 10, 64); n < ckpt {
		t.Fatalf("job %s restored from checkpoint %d, older than %d which the HA metadata named before the upgrade", job2, n, ckpt)
	}
	first := b.continues(name, job2, atUpgrade-slack)
	if info := b.haConfigMaps(name)[name+"-cluster-config-map"]; info == nil {
		t.Errorf("no cluster HA ConfigMap after the upgrade")
	}
	b.logOverhead("native last-state upgrade (HA)", name, name, job2)
	t.Logf("last-state upgrade kept job %s, restored %s (HA named checkpoint %d), counter %d -> %d", job2, restored, ckpt, atUpgrade, first)

	// The JobManager process dies: the container restarts and Flink
	// recovers the job from HA by itself; the daemon starts no operation.
	b.haCheckpointed(name, job2, first+warm)
	killedAt := b.progress(name, job2, 0)
	pid := b.javaPID(flinktb.MainKubernetesApplication)
	if pid == 0 {
		t.Fatalf("no JobManager JVM (%s) in %s", flinktb.MainKubernetesApplication, b.ns)
	}
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	b.until(lifecycle.KindDeployment, name, d, "the job running again after the JobManager was killed", 4*time.Minute, func(r *lifecycle.Record) bool {
		if r.Operation != nil {
			t.Fatalf("the daemon started %s after a JobManager crash that Flink recovers from by itself", r.Operation.Kind)
		}
		np := b.javaPID(flinktb.MainKubernetesApplication)
		return stable(r) && np != 0 && np != pid && r.Common().JobStatus.JobID == job2
	})
	recovered := b.continues(name, job2, killedAt-slack)
	t.Logf("JobManager pid %d killed at counter %d; job %s recovered from HA at %d", pid, killedAt, job2, recovered)

	// Stateless upgrade: the old job's HA metadata goes with the old
	// cluster, so the new JobManager runs the new job empty instead of
	// recovering the old one.
	d = b.render(b.nativeSpec(name, "stateless", 2, 42))
	r = b.until(lifecycle.KindDeployment, name, d, "stateless upgrade", 4*time.Minute, newJob(job2))
	job3 := r.Common().JobStatus.JobID
	if r.Deployed.RestorePath != "" {
		t.Errorf("stateless upgrade restores from %q", r.Deployed.RestorePath)
	}
	if got := b.restoredFrom(name, job3); got != "" {
		t.Errorf("stateless job %s restored from %q, want empty", job3, got)
	}
	if n := b.firstProgress(name, job3); n >= recovered {
		t.Errorf("stateless job %s starts at %d, not empty (old job was at %d)", job3, n, recovered)
	}
	if _, ok := b.haConfigMaps(name)[name+"-"+job2+"-config-map"]; ok {
		t.Errorf("the old job's HA ConfigMap survived the stateless upgrade")
	}
	if jobs, err := b.flinkOf(name).Jobs(ctx); err != nil || len(jobs) != 1 || jobs[0].ID != job3 {
		t.Errorf("the new JobManager runs %+v (err %v), want only job %s", jobs, err, job3)
	}

	// Deletion: nothing is left.
	b.until(lifecycle.KindDeployment, name, nil, "deleted", 3*time.Minute, settled(v1beta1.LifecycleDeleted))
	if _, err := kc.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("JobManager Deployment still there: %v", err)
	}
	for _, svc := range []string{name, name + "-rest"} {
		if _, err := kc.CoreV1().Services(b.ns).Get(ctx, svc, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Service %s still there: %v", svc, err)
		}
	}
	for _, cm := range []string{"flink-config-" + name, "pod-template-" + name} {
		if _, err := kc.CoreV1().ConfigMaps(b.ns).Get(ctx, cm, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap %s still there: %v", cm, err)
		}
	}
	if pods := b.taskManagerPods(name); len(pods) != 0 {
		t.Errorf("%d TaskManager pods left", len(pods))
	}
	if ha := b.haConfigMaps(name); len(ha) != 0 {
		t.Errorf("HA ConfigMaps left: %v", keys(ha))
	}
	b.noFlinkJVMs()
}

// hasEnv reports whether the pod's main container has the variable.
func hasEnv(p corev1.Pod, name, value string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name != "flink-main-container" {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name && e.Value == value {
				return true
			}
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestNativeSessionFlink120: a native session cluster on Flink 1.20 (no HA:
// TaskManagers reach the JobManager through the headless Service), a
// session job whose TaskManager Flink requests through the API, a savepoint
// upgrade of the job, and deletion of both leaving no TaskManager pod.
func TestNativeSessionFlink120(t *testing.T) {
	b := nativeBed(t)
	ctx := context.Background()
	const cl = "nsession"
	jar, err := flinktb.TestJobJar(ctx, flinktb.Version1)
	must(t, err)
	clusterDoc := b.appSpec(cl, "flink:1.20", "v1_20", "stateless", "", 1)
	clusterDoc = clusterDoc[:strings.Index(clusterDoc, "  job:\n")]
	clusterDoc = strings.Replace(clusterDoc, "  mode: standalone\n", "  mode: native\n  serviceAccount: flink\n", 1)
	jobDoc := func(rate int) string {
		s := b.sessionJobSpec("job", cl, jar, rate)
		s = strings.Replace(s, "execution.checkpointing.dir", "state.checkpoints.dir", 1)
		return strings.Replace(s, "execution.checkpointing.savepoint-dir", "state.savepoints.dir", 1)
	}
	specs := b.renderAll(clusterDoc, jobDoc(40))
	b.until(lifecycle.KindDeployment, cl, specs[cl], "native session cluster", 4*time.Minute, func(r *lifecycle.Record) bool {
		return settled(v1beta1.LifecycleStable)(r) && r.Deployment.JobManagerDeploymentStatus == v1beta1.JMReady
	})
	if pods := b.taskManagerPods(cl); len(pods) != 0 {
		t.Fatalf("a native session cluster without jobs has %d TaskManager pods, want none", len(pods))
	}
	if _, err := b.rec.Kube.CoreV1().Services(b.ns).Get(ctx, cl, metav1.GetOptions{}); err != nil {
		t.Fatalf("no internal Service %s for the TaskManagers of a non-HA native cluster: %v", cl, err)
	}
	r := b.until(lifecycle.KindSessionJob, "job", specs["job"], "session job running", 3*time.Minute, stable)
	job1 := r.Common().JobStatus.JobID
	before := b.progress(cl, job1, warm)
	if pods := b.taskManagerPods(cl); len(pods) != 1 {
		t.Fatalf("%d TaskManager pods for a job of parallelism 1, want 1 requested by Flink", len(pods))
	}

	specs = b.renderAll(clusterDoc, jobDoc(60))
	r = b.until(lifecycle.KindSessionJob, "job", specs["job"], "session job savepoint upgrade", 3*time.Minute, newJob(job1))
	job2 := r.Common().JobStatus.JobID
	if got := b.restoredFrom(cl, job2); got == "" || got != r.Deployed.RestorePath {
		t.Fatalf("job %s restored from %q, want the upgrade savepoint %q", job2, got, r.Deployed.RestorePath)
	}
	after := b.continues(cl, job2, before)
	t.Logf("native 1.20 session job %s -> %s, counter %d -> %d", job1, job2, before, after)

	b.until(lifecycle.KindSessionJob, "job", nil, "session job deleted", 2*time.Minute, settled(v1beta1.LifecycleDeleted))
	b.until(lifecycle.KindDeployment, cl, nil, "session cluster deleted", 2*time.Minute, settled(v1beta1.LifecycleDeleted))
	if pods := b.taskManagerPods(cl); len(pods) != 0 {
		t.Errorf("%d TaskManager pods left after deletion", len(pods))
	}
	b.noFlinkJVMs()
}

// TestNativeWithoutRights: a native JobManager whose service account may not
// create pods never gets a TaskManager; the deploy fails after the
// readiness timeout with an error that names the account and the fix.
func TestNativeWithoutRights(t *testing.T) {
	b := nativeBed(t)
	spec := strings.Replace(b.nativeSpec("norights", "savepoint", 1, 40), "  serviceAccount: flink\n", "  serviceAccount: nobody\n", 1)
	spec = strings.Replace(spec, "    taskmanager.numberOfTaskSlots", "    kubernetes.operator.deployment.readiness.timeout: 40s\n    taskmanager.numberOfTaskSlots", 1)
	r := b.until(lifecycle.KindDeployment, "norights", b.render(spec), "the deploy to fail", 3*time.Minute, settled(v1beta1.LifecycleFailed))
	msg := r.Common().Error
	for _, want := range []string{`service account "nobody"`, "deploy/flink-serviceaccount", "no TaskManager pod"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	t.Logf("error: %s", msg)
}
