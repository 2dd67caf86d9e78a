package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

// EnableNativeMode prepares namespaces for native Flink clusters the way a
// user does: deploy/flink-serviceaccount (the JobManager's ServiceAccount
// "flink" and its Role) is built with kustomize for each namespace and
// created, and the node agent gives every container a kubeconfig of its
// pod's own service account (written under dir), as a kubelet mounts its
// token. What a JobManager may do is then exactly what that Role grants.
func EnableNativeMode(ctx context.Context, kc *kube.Cluster, agent *nodeagent.Agent, dir string, namespaces ...string) error {
	for _, ns := range namespaces {
		if err := ApplyFlinkServiceAccount(ctx, kc, ns); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	agent.SetServiceAccountKubeconfig(func(ns, sa string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg, err := kc.ServiceAccountConfig(ctx, ns, sa)
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, ns+"-"+sa+".kubeconfig")
		return path, kube.WriteKubeconfig(path, cfg)
	})
	return nil
}

// ApplyFlinkServiceAccount builds deploy/flink-serviceaccount with its
// namespace set to ns and creates its objects (existing ones are kept).
func ApplyFlinkServiceAccount(ctx context.Context, kc *kube.Cluster, ns string) error {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "flink-serviceaccount")
	dir, err := os.MkdirTemp("", "flink-serviceaccount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if e.Name() == "kustomization.yaml" {
			b = regexp.MustCompile(`(?m)^namespace: flink$`).ReplaceAll(b, []byte("namespace: "+ns))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return fmt.Errorf("kustomize build %s: %w", src, err)
	}
	cs := kc.Client()
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			return err
		}
		if r.GetNamespace() != ns {
			return fmt.Errorf("deploy/flink-serviceaccount: %s %s is in namespace %q, not %q", r.GetKind(), r.GetName(), r.GetNamespace(), ns)
		}
		switch r.GetKind() {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			if err = k8sruntime.DefaultUnstructuredConverter.FromUnstructured(obj, &o); err == nil {
				_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		case "Role":
			var o rbacv1.Role
			if err = k8sruntime.DefaultUnstructuredConverter.FromUnstructured(obj, &o); err == nil {
				_, err = cs.RbacV1().Roles(ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		case "RoleBinding":
			var o rbacv1.RoleBinding
			if err = k8sruntime.DefaultUnstructuredConverter.FromUnstructured(obj, &o); err == nil {
				for _, s := range o.Subjects {
					if s.Kind == "ServiceAccount" && s.Namespace != ns {
						return fmt.Errorf("deploy/flink-serviceaccount: RoleBinding subject %s is in namespace %q after kustomize set %q", s.Name, s.Namespace, ns)
					}
				}
				_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		default:
			return fmt.Errorf("deploy/flink-serviceaccount: unexpected %s", r.GetKind())
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s/%s: %w", r.GetKind(), ns, r.GetName(), err)
		}
	}
	return nil
}
