package nodeagent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// TestImageRuntime runs a Deployment of a plain image (testdata/imageprobe)
// through the agent's image runtime and looks from inside the container:
// it runs as the image's user in the image's working directory with its own
// hostname (the pod name), the pod's env and the apiserver's address; the
// ConfigMap, Secret (defaultMode 0440, fsGroup), emptyDir and ServiceAccount
// volumes are where the pod mounts them, the root file system and the
// ConfigMap are read-only, the emptyDir is writable; the token authenticates
// as the pod's ServiceAccount. Then a ConfigMap edit reaches the running
// process through a "..data" swap without a restart, as with a kubelet.
func TestImageRuntime(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	ctx := context.Background()

	hostURL, err := url.Parse(kc.Host)
	must(t, err)
	apiPort, _ := strconv.Atoi(hostURL.Port())
	rt := &nodeagent.ImageRuntime{Client: cs, APIHost: hostURL.Hostname(), APIPort: apiPort, CAData: kc.CAData, Dir: t.TempDir(), SyncPeriod: time.Second}
	rt.Register(nodeagent.ProbeImage, nodeagent.BuildProbeImage(t))
	h := nodeagent.Start(t, cs, nodeagent.ByImage{Images: rt, Default: nodeagent.FlinkRuntime{}})
	t.Cleanup(func() { removeWorkloads(cs, ns) })

	port, err := nodeagent.FreePort()
	must(t, err)
	must(t, create(ctx, cs.CoreV1().ServiceAccounts(ns).Create, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe-sa"}}))
	must(t, create(ctx, cs.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"a.yaml": "one"}}))
	must(t, create(ctx, cs.CoreV1().Secrets(ns).Create, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Data: map[string][]byte{"token": []byte("s3cret")}}))
	one, gid, mode, yes := int32(1), int64(65532), int32(0o440), true
	labels := map[string]string{"app": "probe"}
	must(t, create(ctx, cs.AppsV1().Deployments(ns).Create, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: "probe-sa",
					SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: &yes, FSGroup: &gid},
					Containers: []corev1.Container{{
						Name: "probe", Image: nodeagent.ProbeImage,
						Args:  []string{"-listen", fmt.Sprintf("$(POD_IP):%d", port)},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
						Env: []corev1.EnvVar{{Name: "FOO", Value: "bar"}, {Name: "MY_NS", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
							{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
							{Name: "SEEN", Value: "$(FOO)-$(MY_NS)"}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
							HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}},
						SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: &yes},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "cfg", MountPath: "/etc/cfg", ReadOnly: true},
							{Name: "sec", MountPath: "/etc/sec", ReadOnly: true},
							{Name: "scratch", MountPath: "/scratch"},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
						{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: &mode}}},
						{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}))
	eventually(t, 2*time.Minute, "the probe Deployment to be ready", func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "probe", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ReadyReplicas == 1, fmt.Errorf("status %+v", d.Status)
	})
	pods, err := os.ReadDir(filepath.Join(h.Dir, ns))
	must(t, err)
	if len(pods) != 1 {
		t.Fatalf("pod directories: %v", pods)
	}
	podIP := rt.PodIP(ns, pods[0].Name())
	if !strings.HasPrefix(podIP, "127.0.") || podIP == "127.0.0.1" {
		t.Errorf("pod IP %s: want a loopback address of the pod's own", podIP)
	}

	base := fmt.Sprintf("http://%s:%d", podIP, port)
	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 15 * time.Second}
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var who struct {
		UID, GID, PID int
		Hostname, WD  string
		Env, Args     []string
	}
	_, body := get("/whoami")
	must(t, json.Unmarshal([]byte(body), &who))
	if who.UID != 65532 || who.GID != 65532 || who.WD != "/home/nonroot" || !strings.HasPrefix(who.Hostname, "probe-") {
		t.Errorf("identity inside the container: %s", body)
	}
	for _, kv := range []string{"FOO=bar", "MY_NS=" + ns, "POD_IP=" + podIP, "SEEN=bar-" + ns, "FROM_IMAGE=yes", "HOSTNAME=" + who.Hostname,
		"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=" + hostURL.Port()} {
		if !slices.Contains(who.Env, kv) {
			t.Errorf("env lacks %s: %v", kv, who.Env)
		}
	}
	for _, kv := range who.Env {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "PATH=") {
			t.Errorf("the agent's own env leaked into the container: %s", kv)
		}
	}
	if want := []string{"/imageprobe", "-listen", fmt.Sprintf("%s:%d", podIP, port)}; !slices.Equal(who.Args, want) {
		t.Errorf("argv = %v, want %v (entrypoint + container args)", who.Args, want)
	}

	for path, want := range map[string]string{
		"/etc/cfg/a.yaml": "one", "/etc/sec/token": "s3cret", "/etc/passwd": "nonroot:x:65532",
		"/var/run/secrets/kubernetes.io/serviceaccount/namespace": ns,
	} {
		if code, b := get("/read?path=" + path); code != 200 || !strings.HasPrefix(b, want) {
			t.Errorf("read %s: %d %q, want %q", path, code, b, want)
		}
	}
	for path, ok := range map[string]bool{"/scratch/x": true, "/tmp/x": false, "/etc/cfg/x": false, "/x": false} {
		if code, b := get("/write?path=" + path); (code == 200) != ok {
			t.Errorf("write %s: %d %s, want writable=%v", path, code, b, ok)
		}
	}
	if code, b := get("/api"); code != 201 || !strings.Contains(b, "system:serviceaccount:"+ns+":probe-sa") {
		t.Errorf("SelfSubjectReview with the mounted token: %d %s", code, b)
	}

	// The host side of the volume is in the kubelet's layout.
	volDir := filepath.Join(h.Dir, ns, who.Hostname, "volumes", "cfg")
	before, err := os.Readlink(filepath.Join(volDir, "..data"))
	must(t, err)
	if l, err := os.Readlink(filepath.Join(volDir, "a.yaml")); err != nil || l != "..data/a.yaml" {
		t.Errorf("a.yaml -> %q (%v)", l, err)
	}

	// A ConfigMap edit: new contents in place, same process, same pod.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "cfg", metav1.GetOptions{})
	must(t, err)
	cm.Data = map[string]string{"a.yaml": "two", "b.yaml": "added"}
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	must(t, err)
	eventually(t, time.Minute, "the ConfigMap edit to reach the container", func() (bool, error) {
		_, a := get("/read?path=/etc/cfg/a.yaml")
		_, b := get("/read?path=/etc/cfg/b.yaml")
		return a == "two" && b == "added", fmt.Errorf("a.yaml=%q b.yaml=%q", a, b)
	})
	after, _ := os.Readlink(filepath.Join(volDir, "..data"))
	if after == before {
		t.Errorf("..data still points at %s", before)
	}
	_, body = get("/whoami")
	var again struct {
		PID      int
		Hostname string
	}
	must(t, json.Unmarshal([]byte(body), &again))
	if again.PID != who.PID || again.Hostname != who.Hostname {
		t.Errorf("the container restarted on a ConfigMap change: pid %d → %d, pod %s → %s", who.PID, again.PID, who.Hostname, again.Hostname)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "probe", metav1.GetOptions{})
	must(t, err)
	if d.Status.ReadyReplicas != 1 {
		t.Errorf("status after the edit: %+v", d.Status)
	}
}
