package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/flinkclient"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
	"github.com/flink-gitops/flink-gitops/tests/testbed/nodeagent"
)

func TestMain(m *testing.M) { os.Exit(kube.Main(m)) }

// eventually polls cond every 200 ms until it holds or the deadline passes.
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
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func decodeSpec(t *testing.T, b []byte) *v1beta1.FlinkDeployment {
	t.Helper()
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	d := &v1beta1.FlinkDeployment{}
	if err := yaml.Unmarshal(j, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// create creates every object in order.
func create(ctx context.Context, cs kubernetes.Interface, objs []cluster.Object) error {
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.ConfigMap:
			_, err = cs.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *networkingv1.Ingress:
			_, err = cs.NetworkingV1().Ingresses(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("unexpected object %T", o)
		}
		if err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// get reads the object a Ref names; a missing one is a NotFound error.
func get(ctx context.Context, cs kubernetes.Interface, r cluster.Ref) (metav1.Object, error) {
	switch r.Kind {
	case "ConfigMap":
		return cs.CoreV1().ConfigMaps(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	case "Service":
		return cs.CoreV1().Services(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	case "Deployment":
		return cs.AppsV1().Deployments(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	case "Ingress":
		return cs.NetworkingV1().Ingresses(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	}
	return nil, fmt.Errorf("unknown kind %s", r.Kind)
}

// deleteDeploymentsAtEnd deletes the namespace's Deployments when the test
// ends: without a controller manager a deleted namespace keeps them, and the
// node agent of a later test would run them again.
func deleteDeploymentsAtEnd(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.AppsV1().Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Logf("delete deployments in %s: %v", ns, err)
		}
	})
}

// TestObjectsAcceptedByAPIServer: the objects of every golden spec pass the
// real apiserver's validation and read back unchanged in what we set.
func TestObjectsAcceptedByAPIServer(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	specs, err := filepath.Glob("../testdata/*.spec.yaml")
	if err != nil || len(specs) == 0 {
		t.Fatalf("no specs in ../testdata: %v", err)
	}
	for _, file := range specs {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".spec.yaml"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			d := decodeSpec(t, b)
			ns := kc.Namespace(t)
			deleteDeploymentsAtEnd(t, cs, ns)
			in := cluster.Input{Name: d.Name, Namespace: ns, Spec: &d.Spec, SpecHash: "h1", SourceCommit: "c1"}
			if d.Spec.Job != nil {
				in.JobID = flinkclient.NewJobID()
				in.SavepointPath = "file:///savepoints/sp-1"
			}
			objs, err := cluster.Build(in)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := create(ctx, cs, objs.List()); err != nil {
				t.Fatal(err)
			}
			jm, err := cs.AppsV1().Deployments(ns).Get(ctx, cluster.JobManagerName(d.Name), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := objs.JobManager.Spec.Template.Spec.Containers[0]
			got := jm.Spec.Template.Spec.Containers[0]
			if strings.Join(got.Args, " ") != strings.Join(want.Args, " ") || got.Image != want.Image {
				t.Errorf("JobManager container read back as %v %q, want %v %q", got.Args, got.Image, want.Args, want.Image)
			}
		})
	}
}

// TestOwnerReferencesCascade: objects created before the JobManager get it
// as owner afterwards, and deleting the JobManager Deployment deletes them
// all through the real garbage collector.
func TestOwnerReferencesCascade(t *testing.T) {
	kc := kube.Shared(t, kube.WithControllerManager())
	cs := kc.Client()
	ns := kc.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := os.ReadFile("../testdata/ingress.spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := decodeSpec(t, b)
	in := cluster.Input{Name: d.Name, Namespace: ns, Spec: &d.Spec}
	objs, err := cluster.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	// Apply order: ConfigMap and Services exist before the JobManager.
	if err := create(ctx, cs, []cluster.Object{objs.ConfigMap, objs.Service, objs.RESTService, objs.JobManager}); err != nil {
		t.Fatal(err)
	}
	jm, err := cs.AppsV1().Deployments(ns).Get(ctx, cluster.JobManagerName(d.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The reconciler's next pass: build with the owner and update/create.
	in.OwnerUID = jm.UID
	owned, err := cluster.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []cluster.Object{owned.ConfigMap, owned.Service, owned.RESTService} {
		cur, err := get(ctx, cs, cluster.Ref{Kind: o.GetObjectKind().GroupVersionKind().Kind, Namespace: ns, Name: o.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		o.SetResourceVersion(cur.GetResourceVersion())
		switch o := o.(type) {
		case *corev1.ConfigMap:
			_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, o, metav1.UpdateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(ns).Update(ctx, o, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatalf("update %s with owner: %v", o.GetName(), err)
		}
	}
	if err := create(ctx, cs, []cluster.Object{owned.TaskManager, owned.Ingress}); err != nil {
		t.Fatal(err)
	}
	refs := cluster.Refs(d.Name, ns, false)
	for _, r := range refs {
		if _, err := get(ctx, cs, r); err != nil {
			t.Fatalf("%s %s before delete: %v", r.Kind, r.Name, err)
		}
	}
	bg := metav1.DeletePropagationBackground
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, jm.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the garbage collector to delete every object of the cluster", func() (bool, error) {
		var left []string
		for _, r := range refs {
			_, err := get(ctx, cs, r)
			if err == nil {
				left = append(left, r.Kind+"/"+r.Name)
			} else if !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return len(left) == 0, fmt.Errorf("still there: %v", left)
	})
}

const testSpec = `
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: counter
spec:
  mode: standalone
  image: flink:%s
  flinkVersion: %s
  flinkConfiguration:
    execution.checkpointing.interval: 2 s
    execution.checkpointing.dir: file://%s/checkpoints
    execution.checkpointing.savepoint-dir: file://%s/savepoints
  jobManager:
    resource:
      memory: 1024m
      cpu: 0.5
  taskManager:
    resource:
      memory: 1280m
      cpu: 0.5
  job:
    jarURI: local:///opt/flink/usrlib/testjob.jar
    entryClass: %s
    args: ["--rate", "100"]
    parallelism: 2
    upgradeMode: savepoint
`

// TestApplicationClusterRunsAndRestores runs the built application cluster
// as real Flink through the node agent: the job runs under the chosen job id
// on ceil(2/1) TaskManagers, is stopped with a savepoint, and the cluster
// rebuilt with SavepointPath restores it (--fromSavepoint reaches Flink's
// StandaloneApplicationClusterEntryPoint), continuing the count.
func TestApplicationClusterRunsAndRestores(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	for _, v := range []struct {
		image   string
		version v1beta1.FlinkVersion
	}{{"1.20", v1beta1.FlinkV1_20}, {"2.2", v1beta1.FlinkV2_2}} {
		t.Run(string(v.version), func(t *testing.T) {
			ns := kc.Namespace(t)
			h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
			deleteDeploymentsAtEnd(t, cs, ns)
			dir := t.TempDir()
			d := decodeSpec(t, []byte(fmt.Sprintf(testSpec, v.image, v.version, dir, dir, flinktb.TestJobClass)))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			in := cluster.Input{Name: d.Name, Namespace: ns, Spec: &d.Spec, JobID: flinkclient.NewJobID()}
			objs, err := cluster.Build(in)
			if err != nil {
				t.Fatal(err)
			}
			if err := create(ctx, cs, objs.List()); err != nil {
				t.Fatal(err)
			}
			rest := h.ProxyURL + "/" + ns + "/" + cluster.RESTServiceName(d.Name)
			fc := flinkclient.New(rest, flinkclient.WithTimeout(10*time.Second))
			n1, err := flinktb.WaitProgress(ctx, rest, in.JobID, 300)
			if err != nil {
				t.Fatalf("job %s made no progress: %v\n%s", in.JobID, err, nodeagent.LogTails(h.Dir, 40))
			}
			ov, err := fc.Overview(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ov.TaskManagers != 2 {
				t.Errorf("%d TaskManagers registered, want 2 (parallelism 2, 1 slot each)", ov.TaskManagers)
			}

			trigger, err := fc.StopWithSavepoint(ctx, in.JobID, flinkclient.StopOptions{TargetDir: "file://" + dir + "/savepoints"})
			if err != nil {
				t.Fatal(err)
			}
			sp, err := fc.AwaitSavepoint(ctx, in.JobID, trigger, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("job %s counted to %d, stopped with savepoint %s", in.JobID, n1, sp)

			// The upgrade: delete the Deployments, rebuild restoring from the savepoint.
			for _, name := range []string{cluster.JobManagerName(d.Name), cluster.TaskManagerName(d.Name)} {
				if err := cs.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			// As the reconciler waits for the pods to go, wait for the
			// node agent to stop the processes (a quick delete and create of
			// an identical Deployment would otherwise look like no change).
			eventually(t, 60*time.Second, "the old JobManager and TaskManagers to stop", func() (bool, error) {
				n := processesIn(ns)
				return n == 0, fmt.Errorf("%d processes still run in %s", n, ns)
			})
			in.JobID = flinkclient.NewJobID()
			in.SavepointPath = sp
			in.AllowNonRestoredState = true
			objs, err = cluster.Build(in)
			if err != nil {
				t.Fatal(err)
			}
			if err := create(ctx, cs, []cluster.Object{objs.JobManager, objs.TaskManager}); err != nil {
				t.Fatal(err)
			}
			first := int64(-1)
			eventually(t, 2*time.Minute, "the restored job's first counter value", func() (bool, error) {
				n, err := flinktb.JobProgress(ctx, rest, in.JobID)
				if err != nil {
					return false, err
				}
				first = n
				return true, nil
			})
			if first < n1 {
				t.Fatalf("restored job %s counts from %d, below %d at the savepoint: it did not restore", in.JobID, first, n1)
			}
			var cps struct {
				Latest struct {
					Restored *struct {
						ExternalPath string `json:"external_path"`
						IsSavepoint  bool   `json:"is_savepoint"`
					} `json:"restored"`
				} `json:"latest"`
			}
			if err := getJSON(ctx, rest+"/jobs/"+in.JobID+"/checkpoints", &cps); err != nil {
				t.Fatal(err)
			}
			if r := cps.Latest.Restored; r == nil || !r.IsSavepoint || strings.TrimPrefix(r.ExternalPath, "file:") != strings.TrimPrefix(sp, "file:") {
				t.Errorf("restored from %+v, want the savepoint %s", r, sp)
			}
			t.Logf("restored job %s continues at %d", in.JobID, first)
		})
	}
}

// TestSessionClusterRuns: the built session cluster's TaskManagers register
// with their slots.
func TestSessionClusterRuns(t *testing.T) {
	kc := kube.Shared(t)
	cs := kc.Client()
	ns := kc.Namespace(t)
	h := nodeagent.Start(t, cs, nodeagent.FlinkRuntime{})
	deleteDeploymentsAtEnd(t, cs, ns)
	d := decodeSpec(t, []byte(`
metadata: {name: shared}
spec:
  mode: standalone
  image: flink:2.2
  flinkVersion: v2_2
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: 3
  jobManager: {resource: {memory: 1024m, cpu: 0.5}}
  taskManager: {replicas: 2, resource: {memory: 1280m, cpu: 0.5}}
`))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	objs, err := cluster.Build(cluster.Input{Name: d.Name, Namespace: ns, Spec: &d.Spec})
	if err != nil {
		t.Fatal(err)
	}
	if err := create(ctx, cs, objs.List()); err != nil {
		t.Fatal(err)
	}
	rest := h.ProxyURL + "/" + ns + "/" + cluster.RESTServiceName(d.Name)
	fc := flinkclient.New(rest, flinkclient.WithTimeout(10*time.Second))
	eventually(t, 2*time.Minute, "2 TaskManagers with 6 slots", func() (bool, error) {
		ov, err := fc.Overview(ctx)
		if err != nil {
			return false, err
		}
		return ov.TaskManagers == 2 && ov.SlotsTotal == 6, fmt.Errorf("overview %+v", ov)
	})
	// The default log4j configuration writes the log file the REST API serves.
	var logs struct {
		Logs []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"logs"`
	}
	if err := getJSON(ctx, rest+"/jobmanager/logs", &logs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range logs.Logs {
		found = found || strings.HasSuffix(l.Name, ".log") && l.Size > 0
	}
	if !found {
		t.Errorf("the JobManager serves no non-empty .log file: %+v", logs.Logs)
	}
}

// processesIn counts processes whose working directory lies under the node
// agent's directory for namespace ns.
func processesIn(ns string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, d := range dirs {
		cwd, err := os.Readlink(d + "/cwd")
		if err == nil && strings.Contains(cwd, "/"+ns+"/") {
			n++
		}
	}
	return n
}
