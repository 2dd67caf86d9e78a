package nodeagent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}

// webDeployment serves the files of ConfigMap "site" with python's
// http.server on its containerPort 8080.
func webDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:    "web",
						Image:   "python:3",
						Command: []string{"sh", "-c", `cp /dev/null marker; for f in $SITE/*; do :; done; cat "$CONTENT" > index.html; exec python3 -m http.server $(PORT_8080) --bind 127.0.0.1`},
						Env: []corev1.EnvVar{
							{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						},
						Ports:        []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						VolumeMounts: []corev1.VolumeMount{{Name: "site", MountPath: "/site"}},
					}},
					Volumes: []corev1.Volume{{Name: "site", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "site"}}}}},
				},
			},
		},
	}
}

// siteRuntime wraps ExecRuntime, writing the mounted site files where the
// command reads them.
type siteRuntime struct{ nodeagent.ExecRuntime }

func (r siteRuntime) Prepare(ctx context.Context, c nodeagent.Container) (*nodeagent.Process, error) {
	p, err := r.ExecRuntime.Prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	content := c.Dir + "/content"
	if err := os.WriteFile(content, []byte(c.Files["/site"]["index.html"]+" from "+c.Env["POD"]), 0o644); err != nil {
		return nil, err
	}
	p.Cmd.Env = append(p.Cmd.Env, "CONTENT="+content, "SITE="+c.Dir)
	return p, nil
}

func get(url string) (string, int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

func processCount(t *testing.T, dirPart string) int {
	t.Helper()
	return processCountIn("http.server", dirPart)
}

// processCountIn counts processes matching pattern whose working directory
// contains dirPart.
func processCountIn(pattern, dirPart string) int {
	out, _ := exec.Command("pgrep", "-f", pattern).Output()
	n := 0
	for _, pid := range strings.Fields(string(out)) {
		cwd, err := os.Readlink("/proc/" + pid + "/cwd")
		if err == nil && strings.Contains(cwd, dirPart) {
			n++
		}
	}
	return n
}

func TestDeploymentLifecycle(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, siteRuntime{})
	ctx := context.Background()

	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "site", Namespace: ns},
		Data:       map[string]string{"index.html": "v1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Before any backend exists the proxy answers as a Service without endpoints.
	if _, code, err := get(h.ProxyURL + "/" + ns + "/web:80/"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("proxy without backend: code %d err %v, want 503", code, err)
	}

	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, webDeployment(ns, "web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, cs, ns, "web", 2)
	if n := processCount(t, "/"+ns+"/"); n != 2 {
		t.Fatalf("%d processes running, want 2", n)
	}
	eventually(t, 10*time.Second, "site v1 through the service proxy", func() (bool, error) {
		body, code, err := get(h.ProxyURL + "/" + ns + "/web:80/index.html")
		return code == 200 && strings.HasPrefix(body, "v1 from web-"), fmt.Errorf("%d %q %v", code, body, err)
	})

	// A crashed process is restarted, as the kubelet would.
	out, _ := exec.Command("pgrep", "-f", "http.server").Output()
	for _, pid := range strings.Fields(string(out)) {
		if cwd, _ := os.Readlink("/proc/" + pid + "/cwd"); strings.Contains(cwd, "/"+ns+"/") {
			exec.Command("kill", "-9", pid).Run()
			break
		}
	}
	eventually(t, 20*time.Second, "the killed replica to come back", func() (bool, error) {
		return processCount(t, "/"+ns+"/") == 2, nil
	})
	waitReady(t, cs, ns, "web", 2)

	// A ConfigMap change rolls the replicas.
	cm, _ := cs.CoreV1().ConfigMaps(ns).Get(ctx, "site", metav1.GetOptions{})
	cm.Data["index.html"] = "v2"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "site v2 after the config change", func() (bool, error) {
		body, _, err := get(h.ProxyURL + "/" + ns + "/web:80/index.html")
		return strings.HasPrefix(body, "v2 from "), err
	})

	// Scale down to one.
	d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	d.Spec.Replicas = ptr.To[int32](1)
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, cs, ns, "web", 1)
	eventually(t, 10*time.Second, "one process after scale-down", func() (bool, error) {
		return processCount(t, "/"+ns+"/") == 1, nil
	})

	// Deleting the Deployment kills its processes.
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "no process after delete", func() (bool, error) {
		return processCount(t, "/"+ns+"/") == 0, nil
	})
}

func waitReady(t *testing.T, cs kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	// Flink JVMs report ready when their REST API answers: on two busy
	// cores that takes well over 30 s (a deadline, not a sleep).
	eventually(t, 2*time.Minute, fmt.Sprintf("%s/%s to have %d ready replicas", ns, name, n), func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		avail := false
		for _, c := range s.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				avail = true
			}
		}
		return s.ObservedGeneration == d.Generation && s.Replicas == n && s.ReadyReplicas == n && s.AvailableReplicas == n && avail,
			fmt.Errorf("status %+v", s)
	})
}
