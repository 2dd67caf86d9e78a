package nodeagent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// TestBarePods: Pods created through the API are bound to the agent's node
// and run; their status follows the process and the restartPolicy as a
// kubelet's would; a deleted Pod's process stops and the object goes; a Pod
// whose owning Deployment does not exist is collected.
func TestBarePods(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	nodeagent.Start(t, cs, nodeagent.ExecRuntime{})
	t.Cleanup(func() { removeWorkloads(cs, ns) })
	ctx := context.Background()

	pod := func(name string, policy corev1.RestartPolicy, script string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{
				Name: "main", Image: "sh", Command: []string{"sh", "-c", script},
				Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			}}},
		}
	}
	for _, p := range []*corev1.Pod{
		pod("runs", corev1.RestartPolicyNever, `[ "$NODE" = testbed-node ] && exec sleep 300`),
		pod("fails", corev1.RestartPolicyNever, "exit 3"),
		pod("crashes", corev1.RestartPolicyOnFailure, "exit 1"),
		pod("completes", corev1.RestartPolicyOnFailure, "true"),
	} {
		must(t, create(ctx, cs.CoreV1().Pods(ns).Create, p))
	}
	orphan := pod("orphan", corev1.RestartPolicyAlways, "exec sleep 300")
	orphan.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "gone", UID: types.UID("0d1e7e7e-0000-0000-0000-000000000000")}}
	must(t, create(ctx, cs.CoreV1().Pods(ns).Create, orphan))

	get := func(name string) (*corev1.Pod, error) {
		return cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	}
	eventually(t, time.Minute, "pod runs to be Running and Ready on the node", func() (bool, error) {
		p, err := get("runs")
		if err != nil {
			return false, err
		}
		return p.Spec.NodeName == nodeagent.NodeName && p.Status.Phase == corev1.PodRunning && podReady(*p) &&
			p.Status.PodIP == "127.0.0.1" && p.Status.ContainerStatuses[0].State.Running != nil, fmt.Errorf("%+v", p.Status)
	})
	eventually(t, time.Minute, "pod fails to be Failed with exit code 3", func() (bool, error) {
		p, err := get("fails")
		if err != nil {
			return false, err
		}
		cs := p.Status.ContainerStatuses
		return p.Status.Phase == corev1.PodFailed && len(cs) == 1 && cs[0].State.Terminated != nil &&
			cs[0].State.Terminated.ExitCode == 3 && cs[0].RestartCount == 0, fmt.Errorf("%+v", p.Status)
	})
	eventually(t, time.Minute, "pod crashes to be restarted", func() (bool, error) {
		p, err := get("crashes")
		if err != nil {
			return false, err
		}
		cs := p.Status.ContainerStatuses
		return p.Status.Phase == corev1.PodRunning && len(cs) == 1 && cs[0].RestartCount >= 2 &&
			cs[0].LastTerminationState.Terminated != nil && cs[0].LastTerminationState.Terminated.ExitCode == 1, fmt.Errorf("%+v", p.Status)
	})
	eventually(t, time.Minute, "pod completes to be Succeeded", func() (bool, error) {
		p, err := get("completes")
		if err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodSucceeded, fmt.Errorf("%+v", p.Status)
	})
	eventually(t, time.Minute, "the orphan to be collected", func() (bool, error) {
		_, err := get("orphan")
		return apierrors.IsNotFound(err), err
	})

	must(t, cs.CoreV1().Pods(ns).Delete(ctx, "runs", metav1.DeleteOptions{}))
	eventually(t, time.Minute, "the deleted pod and its process to be gone", func() (bool, error) {
		_, err := get("runs")
		return apierrors.IsNotFound(err) && processCountIn("sleep 300", "/"+ns+"/") == 0, err
	})
}
