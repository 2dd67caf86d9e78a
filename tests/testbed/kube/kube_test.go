package kube_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 100 ms until it returns true or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s (last error: %v)", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReadyAndKubeconfig(t *testing.T) {
	c := kube.Shared(t)
	ctx := ctxT(t)
	body, err := c.Client().Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil || string(body) != "ok" {
		t.Fatalf("/readyz = %q, %v; want ok", body, err)
	}
	v, err := c.Client().Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != kube.KubeVersion {
		t.Errorf("server version %s, want %s", v.GitVersion, kube.KubeVersion)
	}
	// The written kubeconfig works on its own, as kubectl or the daemon would use it.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("load %s: %v", c.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Errorf("get kube-system with the kubeconfig: %v", err)
	}
	for _, p := range c.Processes() {
		if p.PID <= 0 || p.Log == "" {
			t.Errorf("process %+v lacks pid or log", p)
		}
	}
}

func TestServerSideApplyConflict(t *testing.T) {
	c := kube.Shared(t)
	ctx := ctxT(t)
	ns := c.Namespace(t)
	cms := c.Client().CoreV1().ConfigMaps(ns)

	cm, err := cms.Apply(ctx, corev1ac.ConfigMap("status", ns).WithData(map[string]string{"phase": "DEPLOYED"}),
		metav1.ApplyOptions{FieldManager: "flink-gitops"})
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if cm.Data["phase"] != "DEPLOYED" {
		t.Fatalf("data after apply = %v", cm.Data)
	}
	var owners []string
	for _, mf := range cm.ManagedFields {
		owners = append(owners, mf.Manager)
	}
	if len(owners) != 1 || owners[0] != "flink-gitops" {
		t.Errorf("managed fields managers = %v, want [flink-gitops]", owners)
	}

	_, err = cms.Apply(ctx, corev1ac.ConfigMap("status", ns).WithData(map[string]string{"phase": "SUSPENDED"}),
		metav1.ApplyOptions{FieldManager: "someone-else"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply by a second manager: err = %v, want a conflict", err)
	}
	// Forcing takes the field over.
	cm, err = cms.Apply(ctx, corev1ac.ConfigMap("status", ns).WithData(map[string]string{"phase": "SUSPENDED"}),
		metav1.ApplyOptions{FieldManager: "someone-else", Force: true})
	if err != nil || cm.Data["phase"] != "SUSPENDED" {
		t.Fatalf("forced apply: %v, data %v", err, cm.Data)
	}
}

func TestWatchDeployments(t *testing.T) {
	c := kube.Shared(t)
	ctx := ctxT(t)
	ns := c.Namespace(t)
	deps := c.Client().AppsV1().Deployments(ns)
	w, err := deps.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	labels := map[string]string{"app": "jm"}
	d, err := deps.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "jm"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "flink-main-container", Image: "flink:2.2", Args: []string{"jobmanager"},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	d.Status.ReadyReplicas = 1
	d.Status.Replicas = 1
	if _, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	if err := deps.Delete(ctx, "jm", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}

	want := []watch.EventType{watch.Added, watch.Modified, watch.Deleted}
	for i, typ := range want {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d events", i)
			}
			if ev.Type != typ {
				t.Fatalf("event %d: %s, want %s (%v)", i, ev.Type, typ, ev.Object)
			}
			if got := ev.Object.(*appsv1.Deployment); got.Name != "jm" {
				t.Fatalf("event %d for %s, want jm", i, got.Name)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", typ, ctx.Err())
		}
	}
}

func TestRBACEnforcedForServiceAccount(t *testing.T) {
	c := kube.Shared(t)
	ctx := ctxT(t)
	ns := c.Namespace(t)
	cfg, err := c.ServiceAccountConfig(ctx, ns, "flink-gitops")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list pods without a role: err = %v, want forbidden", err)
	}
	// The token really authenticates as the ServiceAccount.
	rev, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	if want := "system:serviceaccount:" + ns + ":flink-gitops"; rev.Status.UserInfo.Username != want {
		t.Errorf("authenticated as %q, want %q", rev.Status.UserInfo.Username, want)
	}

	admin := c.Client().RbacV1()
	if _, err := admin.Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "flink-gitops", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "service account may list pods after the RoleBinding", func() (bool, error) {
		_, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil, err
	})
	// Least privilege: the Role grants pods in ns only.
	if _, err := sa.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list configmaps with a pod-reader role: err = %v, want forbidden", err)
	}
	if _, err := sa.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods in another namespace: err = %v, want forbidden", err)
	}
}

func TestOwnerReferenceCascade(t *testing.T) {
	c := kube.Shared(t, kube.WithControllerManager())
	ctx := ctxT(t)
	ns := c.Namespace(t)
	cms := c.Client().CoreV1().ConfigMaps(ns)
	owner, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}
	for _, name := range []string{"dependent-a", "dependent-b"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: name, OwnerReferences: []metav1.OwnerReference{ref},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// An object owned by a UID that does not exist is collected too.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "orphan", OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "gone", UID: types.UID("00000000-0000-0000-0000-000000000001")}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A bystander without owner stays.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bystander"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	bg := metav1.DeletePropagationBackground
	if err := cms.Delete(ctx, "owner", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dependent-a", "dependent-b", "orphan"} {
		eventually(t, 60*time.Second, name+" garbage-collected", func() (bool, error) {
			_, err := cms.Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
	}
	if _, err := cms.Get(ctx, "bystander", metav1.GetOptions{}); err != nil {
		t.Errorf("bystander: %v", err)
	}
	// The serviceaccount controller gave the namespace its default ServiceAccount.
	eventually(t, 30*time.Second, "default service account", func() (bool, error) {
		_, err := c.Client().CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

func TestNamespaceDeletionCompletesWithControllerManager(t *testing.T) {
	c := kube.Shared(t, kube.WithControllerManager())
	ctx := ctxT(t)
	name := "doomed-" + time.Now().Format("150405")
	if _, err := c.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Client().CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "namespace "+name+" gone", func() (bool, error) {
		_, err := c.Client().CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

func TestStartAndStopOwnCluster(t *testing.T) {
	c := kube.Start(t)
	ctx := ctxT(t)
	if _, err := c.Client().CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("get default namespace: %v", err)
	}
	procs := c.Processes()
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, p := range procs {
		// Stop reaps the processes, so their pids are gone (not zombies).
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat"); err == nil {
			t.Errorf("%s (pid %d) still exists after Stop: %s", p.Name, p.PID, b)
		}
	}
	if _, err := os.Stat(c.Dir + "/etcd-data"); !os.IsNotExist(err) {
		t.Errorf("etcd data still there after Stop: %v", err)
	}
}
