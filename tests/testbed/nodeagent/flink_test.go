package nodeagent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// sessionCluster creates the objects of a standalone session cluster the way
// the operator's standalone mode lays them out: ConfigMap flink-config-<name>
// mounted at /opt/flink/conf, JobManager Deployment <name> running
// "jobmanager", TaskManager Deployment <name>-taskmanager running
// "taskmanager", Services <name> (rpc, blob) and <name>-rest.
func sessionCluster(t *testing.T, cs kubernetes.Interface, ns, name, image, confFile string) {
	t.Helper()
	ctx := context.Background()
	conf := strings.Join([]string{
		"jobmanager.rpc.address: " + name,
		"jobmanager.rpc.port: 6123",
		"blob.server.port: 6124",
		"rest.port: 8081",
		"taskmanager.numberOfTaskSlots: 2",
		"jobmanager.memory.process.size: 1024m",
		"taskmanager.memory.process.size: 1280m",
	}, "\n") + "\n"
	must(t, create(ctx, cs.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "flink-config-" + name},
		Data:       map[string]string{confFile: conf},
	}))
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
			ClusterIP: "None",
			Selector:  map[string]string{"app": name, "component": "jobmanager"},
			Ports: []corev1.ServicePort{
				{Name: "rpc", Port: 6123, TargetPort: intstr.FromInt32(6123)},
				{Name: "blob", Port: 6124, TargetPort: intstr.FromInt32(6124)},
			}}},
		{ObjectMeta: metav1.ObjectMeta{Name: name + "-rest"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name, "component": "jobmanager"},
			Ports:    []corev1.ServicePort{{Name: "rest", Port: 8081, TargetPort: intstr.FromString("rest")}}}},
	} {
		must(t, create(ctx, cs.CoreV1().Services(ns).Create, svc))
	}
	deploy := func(dname, component string, args []string, ports []corev1.ContainerPort) *appsv1.Deployment {
		labels := map[string]string{"app": name, "component": component}
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: dname},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{
							Name: "flink-main-container", Image: image, Args: args, Ports: ports,
							VolumeMounts: []corev1.VolumeMount{{Name: "flink-config-volume", MountPath: "/opt/flink/conf"}},
						}},
						Volumes: []corev1.Volume{{Name: "flink-config-volume", VolumeSource: corev1.VolumeSource{
							ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "flink-config-" + name}}}}},
					},
				},
			},
		}
	}
	must(t, create(ctx, cs.AppsV1().Deployments(ns).Create, deploy(name, "jobmanager", []string{"jobmanager"},
		[]corev1.ContainerPort{{Name: "rpc", ContainerPort: 6123}, {Name: "blob", ContainerPort: 6124}, {Name: "rest", ContainerPort: 8081}})))
	must(t, create(ctx, cs.AppsV1().Deployments(ns).Create, deploy(name+"-taskmanager", "taskmanager", []string{"taskmanager"},
		[]corev1.ContainerPort{{Name: "rpc", ContainerPort: 6122}})))
}

func create[T any](ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) error {
	_, err := fn(ctx, obj, metav1.CreateOptions{})
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFlinkSessionClusterFromDeployments: Deployments in the apiserver become
// a running Flink cluster whose TaskManager registers with the JobManager
// through the Service, reachable over the Service proxy, and gone on delete.
func TestFlinkSessionClusterFromDeployments(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	for _, v := range []struct{ image, confFile, version string }{
		{"flink:1.20", "flink-conf.yaml", flinktb.Version1},
		{"flink:2.2", "config.yaml", flinktb.Version2},
	} {
		t.Run(v.version, func(t *testing.T) {
			ns := kc.Namespace(t)
			h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
			sessionCluster(t, cs, ns, "session", v.image, v.confFile)
			waitReady(t, cs, ns, "session", 1)

			var overview struct {
				TaskManagers int    `json:"taskmanagers"`
				SlotsTotal   int    `json:"slots-total"`
				FlinkVersion string `json:"flink-version"`
			}
			eventually(t, 90*time.Second, "a registered TaskManager over the proxy", func() (bool, error) {
				resp, err := http.Get(h.ProxyURL + "/" + ns + "/session-rest/overview")
				if err != nil {
					return false, err
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					return false, fmt.Errorf("status %d", resp.StatusCode)
				}
				if err := json.NewDecoder(resp.Body).Decode(&overview); err != nil {
					return false, err
				}
				return overview.TaskManagers == 1 && overview.SlotsTotal == 2, fmt.Errorf("overview %+v", overview)
			})
			if overview.FlinkVersion != v.version {
				t.Errorf("flink-version %q, want %q", overview.FlinkVersion, v.version)
			}
			waitReady(t, cs, ns, "session-taskmanager", 1)

			for _, d := range []string{"session-taskmanager", "session"} {
				must(t, cs.AppsV1().Deployments(ns).Delete(context.Background(), d, metav1.DeleteOptions{}))
			}
			eventually(t, 30*time.Second, "the JVMs to be gone", func() (bool, error) {
				return javaCount(ns) == 0, nil
			})
		})
	}
}

// TestUnknownImageNeverBecomesReady: a tag the test bed does not have
// behaves like an image that cannot be pulled.
func TestUnknownImageNeverBecomesReady(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	sessionCluster(t, cs, ns, "broken", "flink:0.0-does-not-exist", "config.yaml")
	eventually(t, 20*time.Second, "status written with no ready replica", func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "broken", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue && strings.Contains(c.Message, "no such image") {
				return d.Status.ReadyReplicas == 0 && d.Status.UnavailableReplicas == 1, fmt.Errorf("status %+v", d.Status)
			}
		}
		return false, fmt.Errorf("no ReplicaFailure condition: %+v", d.Status.Conditions)
	})
	if n := javaCount(ns); n != 0 {
		t.Fatalf("%d JVMs started for an unknown image", n)
	}
}

// javaCount counts java processes whose working directory lies in ns.
func javaCount(ns string) int {
	return processCountIn("java", "/"+ns+"/")
}

// TestFlinkApplicationClusterFromDeployments: a "standalone-job" JobManager
// whose jar is local:///opt/flink/usrlib/… runs the test job, which makes
// progress, with a fixed job id.
func TestFlinkApplicationClusterFromDeployments(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	ctx := context.Background()
	const jobID = "00000000000000000000000000000042"
	sessionCluster(t, cs, ns, "app", "flink:2.2", "config.yaml")
	// Turn the session JobManager into an application one.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "flink-config-app", metav1.GetOptions{})
	must(t, err)
	cm.Data["config.yaml"] += "pipeline.jars: local:///opt/flink/usrlib/testjob.jar\n$internal.pipeline.job-id: " + jobID + "\nexecution.checkpointing.dir: file://" + t.TempDir() + "\n"
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	must(t, err)
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
	must(t, err)
	d.Spec.Template.Spec.Containers[0].Args = []string{"standalone-job", "--job-classname", flinktb.TestJobClass, "--job-id", jobID, "--rate", "50"}
	_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	must(t, err)
	waitReady(t, cs, ns, "app", 1)

	rest := h.ProxyURL + "/" + ns + "/app-rest"
	pctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	n, err := flinktb.WaitProgress(pctx, rest, jobID, 20)
	if err != nil {
		t.Fatalf("application job made no progress: %v", err)
	}
	t.Logf("job %s counted to %d", jobID, n)
}
