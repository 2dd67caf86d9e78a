package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func TestMergePodTemplates(t *testing.T) {
	t.Parallel()
	base := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		NodeSelector: map[string]string{"a": "1"},
		Containers: []corev1.Container{
			{Name: "flink-main-container", Args: []string{"x"}, Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
			{Name: "sidecar", Image: "s:1"},
		},
	}}
	over := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		NodeSelector: map[string]string{"b": "2"},
		Containers: []corev1.Container{
			{Name: "other", Image: "o:1", Args: []string{"y", "z"}},
		},
	}}
	t.Run("by position", func(t *testing.T) {
		got, err := MergePodTemplates(base, over, false)
		if err != nil {
			t.Fatal(err)
		}
		// As in the operator: the first containers merge, the name is replaced,
		// the first arg is kept and the second appended.
		want := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"a": "1", "b": "2"},
			Containers: []corev1.Container{
				{Name: "other", Image: "o:1", Args: []string{"x", "z"}, Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
				{Name: "sidecar", Image: "s:1"},
			},
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("by name", func(t *testing.T) {
		got, err := MergePodTemplates(base, over, true)
		if err != nil {
			t.Fatal(err)
		}
		want := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"a": "1", "b": "2"},
			Containers: []corev1.Container{
				{Name: "flink-main-container", Args: []string{"x"}, Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
				{Name: "sidecar", Image: "s:1"},
				{Name: "other", Image: "o:1", Args: []string{"y", "z"}},
			},
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("nil sides", func(t *testing.T) {
		got, err := MergePodTemplates(nil, over, true)
		if err != nil || !cmp.Equal(got, over) || got == over {
			t.Errorf("MergePodTemplates(nil, over) = %v, %v; want a copy of over", got, err)
		}
		got, err = MergePodTemplates(nil, nil, false)
		if err != nil || !cmp.Equal(got, &corev1.PodTemplateSpec{}) {
			t.Errorf("MergePodTemplates(nil, nil) = %v, %v", got, err)
		}
	})
	t.Run("inputs untouched", func(t *testing.T) {
		b, o := base.DeepCopy(), over.DeepCopy()
		if _, err := MergePodTemplates(b, o, true); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(b, base) || !cmp.Equal(o, over) {
			t.Error("MergePodTemplates changed its inputs")
		}
	})
}

func TestIngressHostPath(t *testing.T) {
	t.Parallel()
	cases := []struct{ tmpl, host, path string }{
		{"{{name}}.{{namespace}}.example.com", "app.ns.example.com", ""},
		{"{{NAME}}.{{Namespace}}.example.com", "app.ns.example.com", ""},
		{"https://flink.example.com/{{namespace}}/{{name}}", "flink.example.com", "/ns/app"},
		{"flink.example.com:8443/{{namespace}}/{{name}}(/|$)(.*)", "flink.example.com", "/ns/app(/|$)(.*)"},
		{"/{{name}}", "", "/app"},
		{"flink.example.com/{{name}}?x=1", "flink.example.com", "/app"},
	}
	for _, tc := range cases {
		host, path, err := IngressHostPath(tc.tmpl, "app", "ns")
		if err != nil {
			t.Errorf("IngressHostPath(%q): %v", tc.tmpl, err)
			continue
		}
		if host != tc.host || path != tc.path {
			t.Errorf("IngressHostPath(%q) = %q, %q; want %q, %q", tc.tmpl, host, path, tc.host, tc.path)
		}
	}
	if _, _, err := IngressHostPath("  ", "app", "ns"); err == nil {
		t.Error("empty template accepted")
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(*Input)
		want string
	}{
		{"unknown mode", func(in *Input) { in.Spec.Mode = "yarn" }, "spec.mode"},
		{"no image", func(in *Input) { in.Spec.Image = "" }, "spec.image"},
		{"no namespace", func(in *Input) { in.Namespace = "" }, "metadata.namespace"},
		{"bad version", func(in *Input) { in.Spec.FlinkVersion = "latest" }, "spec.flinkVersion"},
		{"bad memory", func(in *Input) { in.Spec.JobManager.Resource.Memory = "2 gigs" }, "spec.jobManager.resource.memory"},
		{"bad cpu", func(in *Input) { in.Spec.TaskManager.Resource.CPU = ptr(-1.0) }, "spec.taskManager.resource.cpu"},
		{"bad job id", func(in *Input) { in.JobID = "not-a-job-id" }, "JobID"},
		{"no tm memory", func(in *Input) { in.Spec.TaskManager.Resource = nil }, "spec.taskManager.resource.memory"},
		{"rest port range", func(in *Input) { in.Spec.FlinkConfiguration["rest.port"] = "8081-8090" }, "rest.port"},
		{"hash in 1.x value", func(in *Input) { in.Spec.FlinkConfiguration["metrics.scope.jm"] = "a#b" }, "metrics.scope.jm"},
		{"unknown log file", func(in *Input) { in.Spec.LogConfiguration = map[string]string{"log4j.properties": "x"} }, "spec.logConfiguration[log4j.properties]"},
		{"rest service type", func(in *Input) { in.Spec.FlinkConfiguration[KeyRESTServiceType] = "Ingress" }, KeyRESTServiceType},
		{"conf dir mounted", func(in *Input) {
			in.Spec.PodTemplate = &v1beta1.PodTemplate{PodTemplateSpec: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "flink-main-container", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: "/opt/flink/conf/"}}}},
			}}}
		}, "spec.jobManager.podTemplate"},
		{"reserved volume", func(in *Input) {
			in.Spec.TaskManager.PodTemplate = &v1beta1.PodTemplate{PodTemplateSpec: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Volumes: []corev1.Volume{{Name: ConfigVolume}},
			}}}
		}, "spec.taskManager.podTemplate"},
		{"savepoint for a session", func(in *Input) { in.Spec.Job = nil; in.SavepointPath = "s3://x" }, "session cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := inputFor(t, "app-v1_20.spec.yaml")
			tc.edit(&in)
			_, err := Build(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestBuildSuspended(t *testing.T) {
	t.Parallel()
	in := inputFor(t, "app-v1_20.spec.yaml")
	in.Spec.Job.State = v1beta1.JobStateSuspended
	objs, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := objs.List(); len(got) != 0 {
		t.Errorf("a suspended application has %d objects, want none", len(got))
	}
	refs := Refs(in.Name, in.Namespace, false)
	want := []Ref{
		{"apps/v1", "Deployment", "streaming", "orders"},
		{"apps/v1", "Deployment", "streaming", "orders-taskmanager"},
		{"v1", "Service", "streaming", "orders"},
		{"v1", "Service", "streaming", "orders-rest"},
		{"v1", "ConfigMap", "streaming", "flink-config-orders"},
		{"networking.k8s.io/v1", "Ingress", "streaming", "orders"},
	}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("Refs (-want +got):\n%s", diff)
	}
}

func TestSetOwner(t *testing.T) {
	t.Parallel()
	in := inputFor(t, "ingress.spec.yaml")
	objs, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.List() {
		if len(o.GetOwnerReferences()) != 0 {
			t.Fatalf("%T %s has owners before the JobManager exists", o, o.GetName())
		}
	}
	objs.SetOwner("uid-1")
	objs.SetOwner("uid-2") // replaces, does not add
	for _, o := range objs.List() {
		refs := o.GetOwnerReferences()
		if o == Object(objs.JobManager) {
			if len(refs) != 0 {
				t.Errorf("the JobManager owns itself: %v", refs)
			}
			continue
		}
		if len(refs) != 1 || refs[0].UID != types.UID("uid-2") || refs[0].Name != "payments" || refs[0].Kind != "Deployment" || !*refs[0].Controller {
			t.Errorf("%T %s owners = %+v, want the JobManager Deployment payments/uid-2", o, o.GetName(), refs)
		}
	}
	if len(objs.List()) != 6 {
		t.Errorf("List has %d objects, want 6 with the ingress", len(objs.List()))
	}
}

// A change of configuration, and only of configuration, changes the pod
// templates through the config hash, so the pods roll.
func TestConfigChangeRollsPods(t *testing.T) {
	t.Parallel()
	in := inputFor(t, "app-v1_20.spec.yaml")
	a, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	in2 := inputFor(t, "app-v1_20.spec.yaml")
	in2.Spec.LogConfiguration = map[string]string{LogFileLog4j: "rootLogger.level = WARN\n"}
	b, err := Build(in2)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*corev1.PodTemplateSpec{
		{&a.JobManager.Spec.Template, &b.JobManager.Spec.Template},
		{&a.TaskManager.Spec.Template, &b.TaskManager.Spec.Template},
	} {
		ha, hb := pair[0].Annotations[AnnotationConfigHash], pair[1].Annotations[AnnotationConfigHash]
		if ha == "" || ha == hb {
			t.Errorf("config hash %q -> %q; want a non-empty hash that changes with the configuration", ha, hb)
		}
	}
	same, err := Build(inputFor(t, "app-v1_20.spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if same.JobManager.Spec.Template.Annotations[AnnotationConfigHash] != a.JobManager.Spec.Template.Annotations[AnnotationConfigHash] {
		t.Error("the config hash is not stable")
	}
}

func TestFlinkMapAndTolerations(t *testing.T) {
	t.Parallel()
	m, err := FlinkMap(map[string]string{"k": " a:1, b : x:y "}, "k")
	if err != nil || !cmp.Equal(m, map[string]string{"a": "1", "b": "x:y"}) {
		t.Errorf("FlinkMap = %v, %v", m, err)
	}
	if m, err := FlinkMap(nil, "k"); m != nil || err != nil {
		t.Errorf("FlinkMap of an unset key = %v, %v", m, err)
	}
	if _, err := FlinkMap(map[string]string{"k": "novalue"}, "k"); err == nil || !strings.Contains(err.Error(), "flinkConfiguration k") {
		t.Errorf("FlinkMap(novalue) error = %v", err)
	}
	tols, err := tolerations(map[string]string{"t": "key:a,operator:Exists,effect:NoExecute,tolerationSeconds:30;key:b,operator:Equal,value:v"}, "t")
	secs := int64(30)
	want := []corev1.Toleration{
		{Key: "a", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
		{Key: "b", Operator: corev1.TolerationOpEqual, Value: "v"},
	}
	if err != nil || !cmp.Equal(tols, want) {
		t.Errorf("tolerations = %v, %v; want %v", tols, err, want)
	}
	if _, err := tolerations(map[string]string{"t": "key:a,color:blue"}, "t"); err == nil {
		t.Error("unknown toleration field accepted")
	}
}

// A new commit alone leaves the pod templates as they are; a new spec hash
// changes them.
func TestOnlySpecAndConfigRollPods(t *testing.T) {
	t.Parallel()
	build := func(edit func(*Input)) *Objects {
		in := inputFor(t, "session.spec.yaml")
		edit(&in)
		o, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	base := build(func(*Input) {})
	commit := build(func(in *Input) { in.SourceCommit = "0000000000000000000000000000000000000001" })
	spec := build(func(in *Input) { in.SpecHash = "other" })
	if !cmp.Equal(base.TaskManager.Spec.Template, commit.TaskManager.Spec.Template) || !cmp.Equal(base.JobManager.Spec.Template, commit.JobManager.Spec.Template) {
		t.Error("a new source commit changed the pod templates")
	}
	if commit.JobManager.Annotations[AnnotationSourceCommit] != "0000000000000000000000000000000000000001" {
		t.Error("the Deployment does not record the source commit")
	}
	if cmp.Equal(base.JobManager.Spec.Template, spec.JobManager.Spec.Template) || cmp.Equal(base.TaskManager.Spec.Template, spec.TaskManager.Spec.Template) {
		t.Error("a new spec hash left the pod templates unchanged")
	}
}
