package nodeagent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	appsv1 "k8s.io/api/apps/v1"

	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// nativeSession creates what Flink's KubernetesClusterDescriptor creates for
// "kubernetes-session" (and what the daemon's native mode will create): the
// ConfigMap flink-config-<id>, the JobManager Deployment <id> running
// "kubernetes-jobmanager.sh kubernetes-session" in the bash wrapper of
// CmdJobManagerDecorator, the Service <id>-rest and, without HA, the
// internal Service <id> the TaskManagers reach the JobManager through.
// Flink itself then creates the TaskManager Pods.
func nativeSession(t *testing.T, cs kubernetes.Interface, ns, id string, extra map[string]string) {
	nativeCluster(t, cs, ns, id, "kubernetes-session", extra)
}

// nativeCluster creates a native cluster of target kubernetes-session or
// kubernetes-application (see nativeSession).
func nativeCluster(t *testing.T, cs kubernetes.Interface, ns, id, target string, extra map[string]string) {
	t.Helper()
	ctx := context.Background()
	// Runs before the agent stops (cleanups run last-in first-out): a test
	// that failed half-way leaves no Deployment or Pod for the next test's
	// agent to run again.
	t.Cleanup(func() { removeWorkloads(cs, ns) })
	conf := map[string]string{
		"kubernetes.cluster-id":             id,
		"kubernetes.namespace":              ns,
		"kubernetes.container.image.ref":    "flink:2.2",
		"kubernetes.taskmanager.cpu.amount": "0.5",
		"execution.target":                  target,
		"jobmanager.rpc.port":               "6123",
		"blob.server.port":                  "6124",
		"rest.port":                         "8081",
		"taskmanager.rpc.port":              "6122",
		"taskmanager.numberOfTaskSlots":     "2",
		"jobmanager.memory.process.size":    "1024m",
		"taskmanager.memory.process.size":   "1280m",
		"metrics.fetcher.update-interval":   "1000",
		"execution.checkpointing.dir":       "file://" + t.TempDir(),
	}
	ha := extra["high-availability.type"] != ""
	if !ha {
		// The client points non-HA TaskManagers at the internal Service.
		conf["jobmanager.rpc.address"] = id + "." + ns
	}
	for k, v := range extra {
		conf[k] = v
	}
	image := conf["kubernetes.container.image.ref"]
	version, err := nodeagent.VersionForImage(image)
	must(t, err)
	if version == flinktb.Version1 {
		conf["state.checkpoints.dir"] = conf["execution.checkpointing.dir"]
	}
	confFile := flinktb.ConfigFileName(version)
	dir := t.TempDir()
	must(t, flinktb.WriteConfig(dir, version, conf))
	data, err := os.ReadFile(filepath.Join(dir, confFile))
	must(t, err)
	labels := map[string]string{"type": "flink-native-kubernetes", "app": id, "component": "jobmanager"}
	must(t, create(ctx, cs.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "flink-config-" + id, Labels: map[string]string{"type": "flink-native-kubernetes", "app": id}},
		Data:       map[string]string{confFile: string(data)},
	}))
	must(t, create(ctx, cs.CoreV1().Services(ns).Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: id + "-rest"},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "rest", Port: 8081, TargetPort: intstr.FromInt32(8081)}}},
	}))
	if !ha {
		must(t, create(ctx, cs.CoreV1().Services(ns).Create, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: id},
			Spec: corev1.ServiceSpec{ClusterIP: "None", Selector: labels, Ports: []corev1.ServicePort{
				{Name: "jobmanager-rpc", Port: 6123, TargetPort: intstr.FromInt32(6123)},
				{Name: "blobserver", Port: 6124, TargetPort: intstr.FromInt32(6124)},
			}},
		}))
	}
	must(t, create(ctx, cs.AppsV1().Deployments(ns).Create, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: id, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "flink-main-container", Image: image,
						Command: []string{"/docker-entrypoint.sh"},
						Args:    []string{"bash", "-c", "kubernetes-jobmanager.sh " + target + " "},
						Env: []corev1.EnvVar{{Name: "_POD_IP_ADDRESS", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}}},
						Ports: []corev1.ContainerPort{
							{Name: "rest", ContainerPort: 8081},
							{Name: "jobmanager-rpc", ContainerPort: 6123},
							{Name: "blobserver", ContainerPort: 6124},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "flink-config-volume", MountPath: "/opt/flink/conf"}},
					}},
					Volumes: []corev1.Volume{{Name: "flink-config-volume", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "flink-config-" + id},
							Items:                []corev1.KeyToPath{{Key: confFile, Path: confFile}},
						}}}},
				},
			},
		},
	}))
}

// submitTestJob uploads the test job jar over REST and runs it with a fixed
// job id, as a user of a session cluster would.
func submitTestJob(t *testing.T, version, rest, jobID string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jar, err := flinktb.TestJobJar(ctx, version)
	must(t, err)
	content, err := os.ReadFile(jar)
	must(t, err)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("jarfile", "testjob.jar")
	must(t, err)
	_, _ = fw.Write(content)
	must(t, mw.Close())
	var up struct {
		Filename string `json:"filename"`
	}
	restCall(ctx, t, http.MethodPost, rest+"/jars/upload", mw.FormDataContentType(), &buf, &up)
	body, _ := json.Marshal(map[string]any{
		"entryClass": flinktb.TestJobClass, "programArgsList": args, "parallelism": 2, "jobId": jobID,
	})
	var run struct {
		JobID string `json:"jobid"`
	}
	restCall(ctx, t, http.MethodPost, rest+"/jars/"+filepath.Base(up.Filename)+"/run", "application/json", bytes.NewReader(body), &run)
	if run.JobID != jobID {
		t.Fatalf("submitted job id %q, want %q", run.JobID, jobID)
	}
}

func restCall(ctx context.Context, t *testing.T, method, url, contentType string, body io.Reader, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	must(t, err)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
	}
}

// registeredTaskManagers reads /taskmanagers over the proxy.
func registeredTaskManagers(rest string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rest+"/taskmanagers", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /taskmanagers: %s", resp.Status)
	}
	var tms struct {
		TaskManagers []struct {
			ID string `json:"id"`
		} `json:"taskmanagers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tms); err != nil {
		return nil, err
	}
	var ids []string
	for _, tm := range tms.TaskManagers {
		ids = append(ids, tm.ID)
	}
	return ids, nil
}

// taskManagerPods lists the TaskManager Pods Flink created for cluster id.
func taskManagerPods(cs kubernetes.Interface, ns, id string) ([]corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
		LabelSelector: "type=flink-native-kubernetes,component=taskmanager,app=" + id})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestNativeSessionCluster: a native Flink 2.2 session cluster on the test
// bed. Only the JobManager is created by hand; a submitted job makes
// Flink's ResourceManager request a TaskManager Pod through the API, the
// agent binds and runs it and writes its status, the TaskManager registers,
// the job runs; deleting the JobManager Deployment takes the TaskManager
// Pods (owned by it) and every JVM with it.
func TestNativeSessionCluster(t *testing.T) {
	for _, v := range []struct{ version, image string }{{flinktb.Version2, "flink:2.2"}, {flinktb.Version1, "flink:1.20"}} {
		t.Run(v.version, func(t *testing.T) { testNativeSession(t, v.version, v.image) })
	}
}

func testNativeSession(t *testing.T, version, image string) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	h.Agent.SetKubeconfig(flinkServiceAccount(t, kc, ns))
	const id, jobID = "native", "0000000000000000000000000000cafe"
	rest := h.ProxyURL + "/" + ns + "/" + id + "-rest"

	t0 := time.Now()
	nativeSession(t, cs, ns, id, map[string]string{"kubernetes.container.image.ref": image})
	waitJobManager(t, cs, ns, id)
	jmReady := time.Since(t0)
	var tms []string
	eventually(t, time.Minute, "the ResourceManager to answer /taskmanagers", func() (bool, error) {
		var err error
		tms, err = registeredTaskManagers(rest)
		return err == nil, err
	})
	if len(tms) != 0 {
		t.Fatalf("before any job: TaskManagers %v, want none (native session clusters start empty)", tms)
	}

	t1 := time.Now()
	submitTestJob(t, version, rest, jobID, "--rate", "50", "--checkpoint-interval-ms", "1000")
	var tmID string
	eventually(t, 3*time.Minute, "a TaskManager requested by Flink to register", func() (bool, error) {
		tms, err := registeredTaskManagers(rest)
		if len(tms) > 0 {
			tmID = tms[0]
		}
		return len(tms) > 0, err
	})
	firstTM := time.Since(t1)
	pctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := flinktb.WaitProgress(pctx, rest, jobID, 20)
	if err != nil {
		t.Fatalf("job made no progress: %v", err)
	}
	t.Logf("native session (Flink %s): JobManager ready %.1fs after create; first TaskManager registered %.1fs after submit (%.1fs after create); job counted to %d %.1fs after submit",
		version, jmReady.Seconds(), firstTM.Seconds(), (jmReady + firstTM).Seconds(), n, time.Since(t1).Seconds())

	pods, err := taskManagerPods(cs, ns, id)
	must(t, err)
	if len(pods) != 1 {
		t.Fatalf("%d TaskManager pods, want 1 (2 slots for parallelism 2)", len(pods))
	}
	p := pods[0]
	if p.Name != tmID {
		t.Errorf("registered TaskManager %q is not the pod %q Flink created", tmID, p.Name)
	}
	if p.Spec.NodeName != nodeagent.NodeName || p.Status.Phase != corev1.PodRunning || !podReady(p) || p.Status.PodIP == "" ||
		len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("TaskManager pod not reported running and ready: node %q, status %+v", p.Spec.NodeName, p.Status)
	}
	if ref := metav1.GetControllerOf(&p); ref == nil || ref.Kind != "Deployment" || ref.Name != id {
		t.Errorf("TaskManager pod owner %+v, want the JobManager Deployment %s", p.OwnerReferences, id)
	}
	t.Logf("TaskManager pod %s runs %q %q", p.Name, p.Spec.Containers[0].Command, p.Spec.Containers[0].Args)

	// A TaskManager that dies: restartPolicy Never makes its Pod Failed with
	// the container's exit code, which is how Flink learns of it; Flink
	// deletes the Pod and requests a new one.
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer wcancel()
	w, err := cs.CoreV1().Pods(ns).Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=" + p.Name, ResourceVersion: p.ResourceVersion})
	must(t, err)
	defer w.Stop()
	killJava(t, ns, flinktb.MainKubernetesTaskManager)
	var failed *corev1.Pod
	for ev := range w.ResultChan() {
		if fp, ok := ev.Object.(*corev1.Pod); ok && fp.Status.Phase == corev1.PodFailed {
			failed = fp
			break
		}
	}
	if failed == nil {
		t.Fatalf("TaskManager pod %s never reported Failed after its JVM was killed", p.Name)
	}
	if cs := failed.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 137 {
		t.Errorf("failed pod container statuses %+v, want terminated with exit code 137", cs)
	}
	eventually(t, 3*time.Minute, "Flink to replace the failed TaskManager pod", func() (bool, error) {
		pods, err := taskManagerPods(cs, ns, id)
		if err != nil {
			return false, err
		}
		tms, err := registeredTaskManagers(rest)
		if err != nil {
			return false, err
		}
		return len(pods) == 1 && pods[0].Name != p.Name && podReady(pods[0]) && len(tms) == 1 && tms[0] == pods[0].Name,
			fmt.Errorf("%d pods, registered %v", len(pods), tms)
	})

	must(t, cs.AppsV1().Deployments(ns).Delete(context.Background(), id, metav1.DeleteOptions{}))
	eventually(t, 90*time.Second, "the TaskManager pods and every JVM to be gone", func() (bool, error) {
		pods, err := taskManagerPods(cs, ns, id)
		return err == nil && len(pods) == 0 && javaCount(ns) == 0, fmt.Errorf("%d pods, %d JVMs (err %v)", len(pods), javaCount(ns), err)
	})
}

// TestNativeApplicationCluster: "kubernetes-jobmanager.sh
// kubernetes-application" with the job jar in usrlib runs the job right
// away with the configured job id; Flink requests its TaskManager Pods.
func TestNativeApplicationCluster(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	h.Agent.SetKubeconfig(flinkServiceAccount(t, kc, ns))
	const id, jobID = "native-app", "0000000000000000000000000000a770"
	rest := h.ProxyURL + "/" + ns + "/" + id + "-rest"

	nativeCluster(t, cs, ns, id, "kubernetes-application", map[string]string{
		"pipeline.jars":                      "local:///opt/flink/usrlib/testjob.jar",
		"$internal.application.main":         flinktb.TestJobClass,
		"$internal.application.program-args": "--rate;50",
		"$internal.pipeline.job-id":          jobID,
		"parallelism.default":                "2",
	})
	pctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := flinktb.WaitProgress(pctx, rest, jobID, 20)
	if err != nil {
		t.Fatalf("application job made no progress: %v", err)
	}
	pods, err := taskManagerPods(cs, ns, id)
	must(t, err)
	if len(pods) != 1 {
		t.Errorf("%d TaskManager pods, want 1", len(pods))
	}
	t.Logf("application job %s counted to %d", jobID, n)

	must(t, cs.AppsV1().Deployments(ns).Delete(context.Background(), id, metav1.DeleteOptions{}))
	eventually(t, 90*time.Second, "the TaskManager pods and every JVM to be gone", func() (bool, error) {
		pods, err := taskManagerPods(cs, ns, id)
		return err == nil && len(pods) == 0 && javaCount(ns) == 0, fmt.Errorf("%d pods, %d JVMs (err %v)", len(pods), javaCount(ns), err)
	})
}

// TestNativeApplicationLastState: what a last-state upgrade of a native
// application cluster with Kubernetes HA does — delete the JobManager
// Deployment (its TaskManager Pods go with it) but keep the HA ConfigMaps,
// create the Deployment again, and the job comes back from the HA data with
// its counter continuing.
func TestNativeApplicationLastState(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	h.Agent.SetKubeconfig(flinkServiceAccount(t, kc, ns))
	const id, jobID = "native-app-ha", "0000000000000000000000000000a771"
	rest := h.ProxyURL + "/" + ns + "/" + id + "-rest"
	ctx := context.Background()
	conf := map[string]string{
		"pipeline.jars":                      "local:///opt/flink/usrlib/testjob.jar",
		"$internal.application.main":         flinktb.TestJobClass,
		"$internal.application.program-args": "--rate;50;--keys;1;--checkpoint-interval-ms;1000",
		"$internal.pipeline.job-id":          jobID,
		"parallelism.default":                "2",
		"high-availability.type":             "kubernetes",
		"high-availability.storageDir":       "file://" + t.TempDir(),
	}
	nativeCluster(t, cs, ns, id, "kubernetes-application", conf)
	pctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if _, err := flinktb.WaitProgress(pctx, rest, jobID, 200); err != nil {
		t.Fatalf("application job made no progress: %v", err)
	}
	before, err := flinktb.JobProgress(pctx, rest, jobID)
	must(t, err)
	jobCM := id + "-" + jobID + "-config-map"
	var firstCkpt string
	eventually(t, time.Minute, "a checkpoint in the HA ConfigMap taken after the counter reached "+strconv.FormatInt(before, 10), func() (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, jobCM, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for k := range cm.Data {
			if strings.HasPrefix(k, "checkpointID-") {
				if firstCkpt == "" {
					firstCkpt = k
				}
				if k != firstCkpt {
					return true, nil
				}
			}
		}
		return false, fmt.Errorf("checkpoint keys of %s: %v", jobCM, mapKeys(cm.Data))
	})

	d, err := cs.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
	must(t, err)
	must(t, cs.AppsV1().Deployments(ns).Delete(ctx, id, metav1.DeleteOptions{}))
	eventually(t, 2*time.Minute, "the cluster's pods and JVMs to be gone", func() (bool, error) {
		pods, err := taskManagerPods(cs, ns, id)
		return err == nil && len(pods) == 0 && javaCount(ns) == 0, fmt.Errorf("%d pods, %d JVMs (err %v)", len(pods), javaCount(ns), err)
	})
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, jobCM, metav1.GetOptions{}); err != nil {
		t.Fatalf("HA ConfigMap %s gone with the Deployment: %v", jobCM, err)
	}

	t3 := time.Now()
	d.ObjectMeta = metav1.ObjectMeta{Name: d.Name, Labels: d.Labels}
	d.Status = appsv1.DeploymentStatus{}
	must(t, create(ctx, cs.AppsV1().Deployments(ns).Create, d))
	var after int64
	eventually(t, 4*time.Minute, "the job to run again from the HA data", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := flinktb.JobProgress(rctx, rest, jobID)
		if err != nil || n == 0 {
			return false, err
		}
		if n < before {
			t.Fatalf("counter after redeploy %d < %d before: the job started empty", n, before)
		}
		after = n
		return true, nil
	})
	t.Logf("application job back from HA %.1fs after the Deployment was created again; counter %d (was >= %d)", time.Since(t3).Seconds(), after, before)
}

// TestNativeSessionClusterHA: Kubernetes HA in a native session cluster.
// Flink writes its HA ConfigMaps (the cluster's, and the job's with
// checkpoint pointers); killing the JobManager process makes the agent
// restart it, the new JobManager recovers the job from the HA data, and the
// counter continues from the checkpoint instead of starting again.
func TestNativeSessionClusterHA(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	h.Agent.SetKubeconfig(flinkServiceAccount(t, kc, ns))
	const id, jobID = "native-ha", "0000000000000000000000000000beef"
	const version = flinktb.Version2
	rest := h.ProxyURL + "/" + ns + "/" + id + "-rest"
	ctx := context.Background()

	nativeSession(t, cs, ns, id, map[string]string{
		"high-availability.type":       "kubernetes",
		"high-availability.storageDir": "file://" + t.TempDir(),
	})
	waitJobManager(t, cs, ns, id)
	// One key: the counter gauge is that key's count, so a restored count
	// can be compared with one read before exactly.
	submitTestJob(t, version, rest, jobID, "--rate", "50", "--keys", "1", "--checkpoint-interval-ms", "1000")
	pctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if _, err := flinktb.WaitProgress(pctx, rest, jobID, 200); err != nil {
		t.Fatalf("job made no progress: %v", err)
	}

	// A checkpoint taken after the counter passed before: the restored
	// counter cannot be below it.
	before, err := flinktb.JobProgress(pctx, rest, jobID)
	must(t, err)
	jobCM := id + "-" + jobID + "-config-map"
	var firstCkpt string
	eventually(t, time.Minute, "HA ConfigMaps with a checkpoint taken after the counter reached "+strconv.FormatInt(before, 10), func() (bool, error) {
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, id+"-cluster-config-map", metav1.GetOptions{}); err != nil {
			return false, err
		}
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, jobCM, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var keys []string
		for k := range cm.Data {
			if strings.HasPrefix(k, "checkpointID-") {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return false, fmt.Errorf("no checkpointID-* key in %s: %v", jobCM, mapKeys(cm.Data))
		}
		if firstCkpt == "" {
			firstCkpt = keys[0]
			return false, fmt.Errorf("saw %s; waiting for a later checkpoint", firstCkpt)
		}
		return keys[len(keys)-1] != firstCkpt, nil
	})

	killed := killJava(t, ns, flinktb.MainKubernetesSession)
	t.Logf("killed JobManager pid %d at counter >= %d", killed, before)
	t2 := time.Now()
	var after int64
	eventually(t, 4*time.Minute, "the job to run again with its counter restored", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := flinktb.JobProgress(rctx, rest, jobID)
		if err != nil || n == 0 {
			return false, err
		}
		if n < before {
			t.Fatalf("counter after recovery %d < %d before the JobManager died: the job started empty", n, before)
		}
		after = n
		return javaPID(ns, flinktb.MainKubernetesSession) != killed, fmt.Errorf("counter %d", n)
	})
	t.Logf("job recovered from HA %.1fs after the JobManager was killed; counter %d (was >= %d)", time.Since(t2).Seconds(), after, before)

	must(t, cs.AppsV1().Deployments(ns).Delete(ctx, id, metav1.DeleteOptions{}))
	eventually(t, 90*time.Second, "the TaskManager pods and every JVM to be gone", func() (bool, error) {
		pods, err := taskManagerPods(cs, ns, id)
		return err == nil && len(pods) == 0 && javaCount(ns) == 0, fmt.Errorf("%d pods, %d JVMs (err %v)", len(pods), javaCount(ns), err)
	})
}

// flinkServiceAccount gives ServiceAccount "flink" in ns what Flink's native
// mode and Kubernetes HA use (the documentation grants "edit", whose rules
// only the kube-controller-manager's aggregation fills in, so the test
// grants them itself), and returns a kubeconfig that
// authenticates as it with a token: what the pod's mounted service account
// token would be. (The test bed's admin kubeconfig uses an EC client key in
// PKCS#8, which the fabric8 client inside Flink cannot load without
// KUBERNETES_CLIENT_KEY_ALGO=EC; a token is what pods use anyway.)
func flinkServiceAccount(t *testing.T, kc *kube.Cluster, ns string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := kc.ServiceAccountConfig(ctx, ns, "flink")
	must(t, err)
	must(t, create(ctx, kc.Client().RbacV1().Roles(ns).Create, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flink"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "configmaps", "services"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}},
		},
	}))
	must(t, create(ctx, kc.Client().RbacV1().RoleBindings(ns).Create, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flink"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flink"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "flink", Namespace: ns}},
	}))
	path := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, kube.WriteKubeconfig(path, cfg))
	return path
}

// removeWorkloads deletes every Deployment and Pod in ns at once (grace 0,
// no kubelet needed).
func removeWorkloads(cs kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	_ = cs.AppsV1().Deployments(ns).DeleteCollection(ctx, now, metav1.ListOptions{})
	_ = cs.CoreV1().Pods(ns).DeleteCollection(ctx, now, metav1.ListOptions{})
}

// waitJobManager waits for the JobManager Deployment to be available, with
// room for a JVM start on two busy cores.
func waitJobManager(t *testing.T, cs kubernetes.Interface, ns, id string) {
	t.Helper()
	eventually(t, 3*time.Minute, "the JobManager Deployment to be available", func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), id, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == 1, fmt.Errorf("status %+v", d.Status)
	})
}

func mapKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// javaPID returns the pid of the java process running mainClass with its
// working directory in ns, or 0.
func javaPID(ns, mainClass string) int {
	out, _ := exec.Command("pgrep", "-f", mainClass).Output()
	for _, pid := range strings.Fields(string(out)) {
		cwd, err := os.Readlink("/proc/" + pid + "/cwd")
		if err == nil && strings.Contains(cwd, "/"+ns+"/") {
			n, _ := strconv.Atoi(pid)
			return n
		}
	}
	return 0
}

// killJava SIGKILLs the java process running mainClass in ns, as a crashed
// container.
func killJava(t *testing.T, ns, mainClass string) int {
	t.Helper()
	pid := javaPID(ns, mainClass)
	if pid == 0 {
		t.Fatalf("no %s process in %s", mainClass, ns)
	}
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	return pid
}
