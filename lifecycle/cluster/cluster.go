// Package cluster builds the Kubernetes objects of a Flink cluster from a
// FlinkDeployment spec. Standalone (mode: standalone): the JobManager and
// TaskManager Deployments, the Services <name> and <name>-rest, the ConfigMap
// flink-config-<name> and an optional Ingress. Native (mode: native, see
// native.go): what Flink's own Kubernetes client makes — the JobManager
// Deployment, which creates its TaskManager pods itself, the Services, the
// ConfigMap with the kubernetes.* options, and pod-template-<name>. Every function here is pure:
// the same input gives the same objects, so they are golden-tested and the
// reconciler can compare what it would apply with what exists.
//
// The semantics follow the Flink Kubernetes Operator's standalone mode
// (StandaloneKubernetesJobManagerFactory/TaskManagerFactory, FlinkConfigBuilder)
// and Flink's Kubernetes decorators, with these deliberate differences:
//
//   - The job's restore settings and id go into the JobManager's arguments
//     (--fromSavepoint, --allowNonRestoredState, --job-id), not into the
//     configuration: StandaloneApplicationClusterEntryPoint writes the
//     arguments' restore settings over the configuration's, so the arguments
//     are the one place where they take effect.
//   - No emptyDir is mounted over /opt/flink/usrlib (the operator's
//     UserLibMountDecorator does when pipeline.classpaths is set), because
//     that would hide a job jar baked into the image there.
//   - The main container comes first in the pod (Flink appends it last), so
//     kubectl logs/exec pick it by default; the JobManager Deployment uses the
//     Recreate strategy so two JobManagers of one job never run at once.
//   - Client-side keys (kubernetes.container.image.ref, execution.target,
//     pod template paths, kubernetes.internal.*) are not written to the
//     ConfigMap: no process in the cluster reads them.
//   - When the spec has no log4j-console.properties, a default one is written:
//     the ConfigMap hides the image's conf directory.
//
// Like the operator, the JobManager of an HA cluster gets "-D jobmanager.rpc.address=
// $(_POD_IP_ADDRESS)" so standby JobManagers announce themselves, and the
// JobManager gets a startup probe on the REST API unless
// kubernetes.operator.jm-deployment.startup.probe.enabled is false.
package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Labels, annotations and names shared with the reconciler and the test bed.
const (
	LabelApp       = "app"
	LabelComponent = "component"
	LabelType      = "type"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"

	TypeStandalone       = "flink-standalone-kubernetes"
	TypeNative           = "flink-native-kubernetes"
	ManagedBy            = "flink-gitops"
	ComponentJobManager  = "jobmanager"
	ComponentTaskManager = "taskmanager"
	ComponentIngress     = "ingress"

	// AnnotationSpecHash holds Input.SpecHash on every object and pod template.
	AnnotationSpecHash = "flink-gitops.io/spec-hash"
	// AnnotationSourceCommit holds Input.SourceCommit on every object (not on
	// the pod templates: a new commit alone must not restart the pods).
	AnnotationSourceCommit = "flink-gitops.io/source-commit"
	// AnnotationConfigHash holds a hash of the ConfigMap's data on the pod
	// templates, so a configuration change rolls the pods.
	AnnotationConfigHash = "flink-gitops.io/config-hash"
	// AnnotationResource names the resource ("FlinkDeployment namespace/name")
	// on the JobManager Deployment, which owns the cluster's other objects,
	// and on status ConfigMaps.
	AnnotationResource = "flink-gitops.io/resource"

	// ConfigVolume is the pod volume of the ConfigMap, mounted at ConfigDir.
	ConfigVolume = "flink-config-volume"
	// ConfigDir is Flink's configuration directory in the official image.
	ConfigDir = "/opt/flink/conf"
	// DefaultEntryPath is the official image's entrypoint (kubernetes.entry.path).
	DefaultEntryPath = "/docker-entrypoint.sh"
	// EnvPodIP is the JobManager's pod IP variable, as Flink names it.
	EnvPodIP = "_POD_IP_ADDRESS"

	PortNameREST        = "rest"
	PortNameRPC         = "jobmanager-rpc"
	PortNameBlob        = "blobserver"
	PortNameTaskManager = "taskmanager-rpc"

	// Log configuration files a spec may give in logConfiguration.
	LogFileLog4j   = "log4j-console.properties"
	LogFileLogback = "logback-console.xml"
)

// JobManagerName is the JobManager Deployment of cluster name: name.
func JobManagerName(name string) string { return name }

// ResourceName is the value of AnnotationResource for FlinkDeployment
// namespace/name.
func ResourceName(namespace, name string) string {
	return "FlinkDeployment " + namespace + "/" + name
}

// TaskManagerName is the TaskManager Deployment of cluster name: name-taskmanager.
func TaskManagerName(name string) string { return name + "-taskmanager" }

// ConfigMapName is the Flink configuration ConfigMap of cluster name: flink-config-name.
func ConfigMapName(name string) string { return "flink-config-" + name }

// ServiceName is the headless rpc/blob Service of cluster name: name.
func ServiceName(name string) string { return name }

// RESTServiceName is the REST Service of cluster name: name-rest.
func RESTServiceName(name string) string { return name + "-rest" }

// IngressName is the Ingress of cluster name: name.
func IngressName(name string) string { return name }

// Input is everything a cluster's objects are built from.
type Input struct {
	// Name and Namespace of the FlinkDeployment (the cluster id).
	Name, Namespace string
	// Spec is the rendered, validated spec (mode native or standalone).
	Spec *v1beta1.FlinkDeploymentSpec
	// FlinkDefaults is the daemon's default Flink configuration.
	FlinkDefaults map[string]string
	// SpecHash and SourceCommit are written as annotations on every object;
	// SpecHash also on the pod templates, so a change of it rolls the pods:
	// hash what should restart the cluster (not nonces or
	// kubernetes.operator.* keys, which the reconciler acts on itself).
	SpecHash, SourceCommit string
	// JobID is the job's id, chosen by the reconciler (32 hex digits); "" lets Flink choose.
	JobID string
	// SavepointPath to restore the job from; "" for none. The reconciler
	// passes spec.job.initialSavepointPath here on a first deployment.
	SavepointPath string
	// AllowNonRestoredState lets the restore skip state of removed operators;
	// spec.job.allowNonRestoredState: true has the same effect. It only
	// matters with a SavepointPath (the entrypoint ignores it otherwise).
	AllowNonRestoredState bool
	// OwnerUID is the UID of the JobManager Deployment once it exists; the
	// other objects are then owned by it. Empty before the JobManager exists.
	OwnerUID types.UID
}

// Objects are the Kubernetes objects of one cluster.
type Objects struct {
	ConfigMap *corev1.ConfigMap
	// PodTemplate is a native cluster's TaskManager pod template
	// (pod-template-<name>), nil without one.
	PodTemplate *corev1.ConfigMap
	Service     *corev1.Service
	RESTService *corev1.Service
	JobManager  *appsv1.Deployment
	TaskManager *appsv1.Deployment
	// Ingress is nil unless spec.ingress is set.
	Ingress *networkingv1.Ingress
}

// Object is a Kubernetes object with metadata (what client.Object is in
// controller-runtime).
type Object interface {
	metav1.Object
	runtime.Object
}

// List returns the objects in apply order: the ConfigMap the pods mount, the
// Services, the JobManager, the TaskManager, the Ingress. Absent objects are
// skipped; an empty Objects lists nothing.
func (o *Objects) List() []Object {
	var out []Object
	if o.ConfigMap != nil {
		out = append(out, o.ConfigMap)
	}
	if o.PodTemplate != nil {
		out = append(out, o.PodTemplate)
	}
	if o.Service != nil {
		out = append(out, o.Service)
	}
	if o.RESTService != nil {
		out = append(out, o.RESTService)
	}
	if o.JobManager != nil {
		out = append(out, o.JobManager)
	}
	if o.TaskManager != nil {
		out = append(out, o.TaskManager)
	}
	if o.Ingress != nil {
		out = append(out, o.Ingress)
	}
	return out
}

// SetOwner makes the JobManager Deployment (with the given UID) the owner of
// every other object, replacing an earlier reference to it, so deleting the
// JobManager Deployment deletes the cluster (as Flink's native integration does).
func (o *Objects) SetOwner(uid types.UID) {
	for _, obj := range o.List() {
		if obj == Object(o.JobManager) {
			continue
		}
		SetOwner(obj, obj.GetLabels()[LabelApp], uid)
	}
}

// OwnerReference is the reference to the JobManager Deployment of cluster name.
func OwnerReference(name string, uid types.UID) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "Deployment", Name: JobManagerName(name), UID: uid,
		Controller: &t, BlockOwnerDeletion: &t,
	}
}

// SetOwner sets obj's owner to the JobManager Deployment of cluster name,
// keeping other owner references.
func SetOwner(obj metav1.Object, name string, uid types.UID) {
	ref := OwnerReference(name, uid)
	refs := slices.DeleteFunc(slices.Clone(obj.GetOwnerReferences()), func(r metav1.OwnerReference) bool {
		return r.Kind == ref.Kind && r.APIVersion == ref.APIVersion && r.Name == ref.Name
	})
	obj.SetOwnerReferences(append(refs, ref))
}

// Ref names an object a cluster may own.
type Ref struct {
	APIVersion, Kind, Namespace, Name string
}

// Refs lists every object a cluster called name may have, JobManager
// first: what the reconciler deletes when a job is suspended or the
// resource is removed (deleting the JobManager Deployment alone cascades
// only to objects that already carry the owner reference). A standalone
// cluster has a TaskManager Deployment, a native one a TaskManager pod
// template ConfigMap instead (its TaskManager pods are Flink's).
func Refs(name, namespace string, native bool) []Ref {
	tm := Ref{"apps/v1", "Deployment", namespace, TaskManagerName(name)}
	if native {
		tm = Ref{"v1", "ConfigMap", namespace, PodTemplateConfigMapName(name)}
	}
	return []Ref{
		{"apps/v1", "Deployment", namespace, JobManagerName(name)},
		tm,
		{"v1", "Service", namespace, ServiceName(name)},
		{"v1", "Service", namespace, RESTServiceName(name)},
		{"v1", "ConfigMap", namespace, ConfigMapName(name)},
		{"networking.k8s.io/v1", "Ingress", namespace, IngressName(name)},
	}
}

var jobIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// checkInput rejects inputs the builder cannot turn into a cluster.
func checkInput(in Input) error {
	switch {
	case in.Name == "":
		return fmt.Errorf("metadata.name: the name is empty; set metadata.name")
	case in.Namespace == "":
		return fmt.Errorf("metadata.namespace: the namespace is empty; set metadata.namespace")
	case in.Spec == nil:
		return fmt.Errorf("spec: the spec is missing")
	}
	s := in.Spec
	if m := s.EffectiveMode(); m != v1beta1.ModeStandalone && m != v1beta1.ModeNative {
		return fmt.Errorf("spec.mode: %q is not a mode; set spec.mode: native or standalone", m)
	}
	if strings.TrimSpace(s.Image) == "" {
		return fmt.Errorf("spec.image: the image is missing; set spec.image, e.g. flink:2.2")
	}
	if m := s.FlinkVersion.Major(); m != 1 && m != 2 {
		return fmt.Errorf("spec.flinkVersion: %q is not a Flink version; write e.g. v1_20 or v2_2", s.FlinkVersion)
	}
	if in.JobID != "" && !jobIDPattern.MatchString(in.JobID) {
		return fmt.Errorf("job id %q is not a Flink JobID (32 hex digits)", in.JobID)
	}
	if s.Job == nil && (in.SavepointPath != "" || in.JobID != "") {
		return fmt.Errorf("a session cluster (no spec.job) has no job to restore or name; the savepoint path and job id must be empty")
	}
	return nil
}

// Suspended reports whether the spec is an application whose job is
// suspended: its cluster has no objects.
func Suspended(s *v1beta1.FlinkDeploymentSpec) bool {
	return s != nil && s.Job != nil && s.Job.State == v1beta1.JobStateSuspended
}

// Build returns the objects of the cluster described by in. For a
// suspended application (job.state: suspended) it returns an empty Objects:
// the cluster must not exist, and Refs names what to delete.
func Build(in Input) (*Objects, error) {
	if err := checkInput(in); err != nil {
		return nil, err
	}
	if Suspended(in.Spec) {
		return &Objects{}, nil
	}
	conf, err := effectiveConfig(in)
	if err != nil {
		return nil, err
	}
	if err := checkMemory(in.Spec, conf); err != nil {
		return nil, err
	}
	cm, err := buildConfigMap(in, conf)
	if err != nil {
		return nil, err
	}
	ports, err := clusterPorts(conf)
	if err != nil {
		return nil, err
	}
	b := &builder{in: in, conf: conf, ports: ports, configHash: dataHash(cm.Data)}
	o := &Objects{ConfigMap: cm}
	if o.PodTemplate, err = b.podTemplateConfigMap(); err != nil {
		return nil, err
	}
	if o.JobManager, err = b.jobManager(); err != nil {
		return nil, err
	}
	if o.PodTemplate != nil {
		if err := mountPodTemplate(&o.JobManager.Spec.Template, b.in.Name); err != nil {
			return nil, err
		}
	}
	// A native JobManager creates its TaskManager pods itself, and its
	// TaskManagers find an HA leader through the HA services, not a Service.
	if !b.native() {
		if o.TaskManager, err = b.taskManager(); err != nil {
			return nil, err
		}
	}
	if !b.native() || !haEnabled(conf) {
		o.Service = b.internalService()
	}
	if o.RESTService, err = b.restService(); err != nil {
		return nil, err
	}
	if o.Ingress, err = b.ingress(); err != nil {
		return nil, err
	}
	if in.OwnerUID != "" {
		o.SetOwner(in.OwnerUID)
	}
	return o, nil
}

// checkMemory refuses JobManager and TaskManager memory that is undefined
// or too small for Flink to start with, in both modes (a native cluster's
// TaskManagers are started by Flink from the same configuration).
func checkMemory(s *v1beta1.FlinkDeploymentSpec, conf map[string]string) error {
	for _, c := range []struct {
		component, field, key string
		res                   *v1beta1.Resource
		reqs                  *v1beta1.ResourceRequirements
	}{
		{ComponentJobManager, "spec.jobManager", KeyJMProcessMemory, nil, nil},
		{ComponentTaskManager, "spec.taskManager", KeyTMProcessMemory, nil, nil},
	} {
		if c.component == ComponentJobManager && s.JobManager != nil {
			c.res, c.reqs = s.JobManager.Resource, s.JobManager.Resources
		}
		if c.component == ComponentTaskManager && s.TaskManager != nil {
			c.res, c.reqs = s.TaskManager.Resource, s.TaskManager.Resources
		}
		if _, err := ProcessMemory(conf, c.component); err != nil {
			return err
		}
		field := "flinkConfiguration " + c.key
		if _, ok := c.reqs.RequestOrLimit(corev1.ResourceMemory); ok && c.reqs.IsSet() {
			field = c.field + ".resources.limits.memory"
			if _, ok := c.reqs.Requests[corev1.ResourceMemory]; ok {
				field = c.field + ".resources.requests.memory"
			}
		} else if !c.reqs.IsSet() && c.res != nil && c.res.Memory != "" {
			field = c.field + ".resource.memory"
		}
		if err := CheckProcessMemory(conf, c.component, field); err != nil {
			return err
		}
	}
	return nil
}

type portSet struct{ rpc, blob, rest, tm int32 }

func clusterPorts(conf map[string]string) (portSet, error) {
	var p portSet
	var err error
	for _, f := range []struct {
		dst *int32
		key string
	}{{&p.rpc, KeyRPCPort}, {&p.blob, KeyBlobPort}, {&p.rest, KeyRESTPort}, {&p.tm, KeyTaskManagerPort}} {
		if *f.dst, err = port(conf, f.key); err != nil {
			return p, err
		}
	}
	return p, nil
}

type builder struct {
	in         Input
	conf       map[string]string
	ports      portSet
	configHash string
}

// typ is the type label of the cluster's objects.
func (b *builder) typ() string { return TypeOf(b.in.Spec.EffectiveMode()) }

// native reports whether the cluster is a native one.
func (b *builder) native() bool { return b.in.Spec.EffectiveMode() == v1beta1.ModeNative }

// TypeOf is the value of the type label of a cluster in mode: Flink's own
// for native clusters (its TaskManager pods and HA ConfigMaps carry it too),
// the operator's for standalone ones.
func TypeOf(mode v1beta1.DeploymentMode) string {
	if mode == v1beta1.ModeNative {
		return TypeNative
	}
	return TypeStandalone
}

// Labels returns the labels of the objects of a cluster of type typ (see
// TypeOf); component may be empty.
func Labels(typ, name, component string) map[string]string {
	l := map[string]string{
		LabelApp: name, LabelType: typ,
		LabelManagedBy: ManagedBy, LabelName: name,
	}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// Selector returns the labels that select a component's pods, as the
// operator's StandaloneKubernetesUtils and Flink's KubernetesUtils do.
func Selector(typ, name, component string) map[string]string {
	return map[string]string{LabelApp: name, LabelType: typ, LabelComponent: component}
}

func (b *builder) meta(name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: b.in.Namespace,
		Labels:      Labels(b.typ(), b.in.Name, component),
		Annotations: b.annotations(),
	}
}

func (b *builder) annotations() map[string]string {
	a := map[string]string{}
	if b.in.SpecHash != "" {
		a[AnnotationSpecHash] = b.in.SpecHash
	}
	if b.in.SourceCommit != "" {
		a[AnnotationSourceCommit] = b.in.SourceCommit
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

// dataHash is a stable hash of ConfigMap data.
func dataHash(data map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(data[k]), data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func buildConfigMap(in Input, conf map[string]string) (*corev1.ConfigMap, error) {
	text, err := RenderConfig(in.Spec.FlinkVersion, flinkOnly(conf))
	if err != nil {
		return nil, err
	}
	data := map[string]string{ConfigFileName(in.Spec.FlinkVersion): text}
	for k, v := range in.Spec.LogConfiguration {
		if k != LogFileLog4j && k != LogFileLogback {
			return nil, fmt.Errorf("spec.logConfiguration[%s]: unknown log configuration file; use %s or %s", k, LogFileLog4j, LogFileLogback)
		}
		data[k] = v
	}
	if _, ok := data[LogFileLog4j]; !ok {
		data[LogFileLog4j] = DefaultLog4jConsole
	}
	b := &builder{in: in}
	meta := b.meta(ConfigMapName(in.Name), "")
	if b.native() {
		// As Flink's client labels it: no component.
		meta.Labels = Labels(b.typ(), in.Name, "")
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta,
		Data:       data,
	}, nil
}

// DefaultLog4jConsole is the log4j configuration written when the spec's
// logConfiguration has none: the ConfigMap replaces the image's conf
// directory, and without this file Flink would log nothing useful. Like the
// image's own, it logs to the console and to the file the start scripts name
// in log.file, which the web UI and the REST API's log endpoints serve.
const DefaultLog4jConsole = `monitorInterval = 30
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
rootLogger.appenderRef.rolling.ref = RollingFileAppender
logger.pekko.name = org.apache.pekko
logger.pekko.level = INFO
logger.akka.name = akka
logger.akka.level = INFO
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = INFO
logger.shaded_zookeeper.name = org.apache.flink.shaded.zookeeper3
logger.shaded_zookeeper.level = INFO
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
appender.rolling.name = RollingFileAppender
appender.rolling.type = RollingFile
appender.rolling.append = true
appender.rolling.fileName = ${sys:log.file}
appender.rolling.filePattern = ${sys:log.file}.%i
appender.rolling.layout.type = PatternLayout
appender.rolling.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
appender.rolling.policies.type = Policies
appender.rolling.policies.size.type = SizeBasedTriggeringPolicy
appender.rolling.policies.size.size = 100MB
appender.rolling.policies.startup.type = OnStartupTriggeringPolicy
appender.rolling.strategy.type = DefaultRolloverStrategy
appender.rolling.strategy.max = ${env:MAX_LOG_FILE_NUMBER:-10}
`

// jobManagerArgs are the main container's arguments for the official image's
// entrypoint. An application cluster runs StandaloneApplicationClusterEntryPoint:
// options first (the parser stops at the first non-option), the job's own
// arguments last.
func (b *builder) jobManagerArgs() []string {
	s := b.in.Spec
	var args []string
	if s.Job == nil {
		args = []string{"jobmanager"}
	} else {
		args = []string{"standalone-job"}
		if s.Job.EntryClass != "" {
			args = append(args, "--job-classname", s.Job.EntryClass)
		}
		if b.in.JobID != "" {
			args = append(args, "--job-id", strings.ToLower(b.in.JobID))
		}
		if b.in.SavepointPath != "" {
			args = append(args, "--fromSavepoint", b.in.SavepointPath)
			if b.in.AllowNonRestoredState || (s.Job.AllowNonRestoredState != nil && *s.Job.AllowNonRestoredState) {
				args = append(args, "--allowNonRestoredState")
			}
		}
	}
	if haEnabled(b.conf) {
		// Standby JobManagers announce their own pod IP, not the Service.
		args = append(args, "-D", KeyRPCAddress+"=$("+EnvPodIP+")")
	}
	if s.Job != nil {
		args = append(args, s.Job.Args...)
	}
	return args
}

func (b *builder) mergeByName() bool {
	return strings.EqualFold(strings.TrimSpace(b.conf[KeyMergeByName]), "true")
}

// template merges the common and the component's pod templates and applies
// the component's non-cpu/memory resources.
func (b *builder) template(own *v1beta1.PodTemplate, field string, res *v1beta1.Resource, reqs *v1beta1.ResourceRequirements) (*corev1.PodTemplateSpec, error) {
	t, err := MergePodTemplates(podTemplate(b.in.Spec.PodTemplate), podTemplate(own), b.mergeByName())
	if err != nil {
		return nil, fmt.Errorf("%s.podTemplate: %w", field, err)
	}
	if err := applyTemplateResources(t, field, res, reqs); err != nil {
		return nil, err
	}
	return t, nil
}

func (b *builder) jobManager() (*appsv1.Deployment, error) {
	s := b.in.Spec
	var own *v1beta1.PodTemplate
	var res *v1beta1.Resource
	var reqs *v1beta1.ResourceRequirements
	replicas := int32(v1beta1.DefaultJobManagerReps)
	if jm := s.JobManager; jm != nil {
		own, res, reqs, replicas = jm.PodTemplate, jm.Resource, jm.Resources, jm.Replicas
	}
	if replicas < 1 {
		return nil, fmt.Errorf("spec.jobManager.replicas: %d is less than 1; set 1 (or more with high availability)", replicas)
	}
	t, err := b.template(own, "spec.jobManager", res, reqs)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(strings.TrimSpace(b.conf[KeyStartupProbe]), "false") {
		c := &t.Spec.Containers[mainContainer(&t.Spec)]
		if c.StartupProbe == nil {
			// As the operator: the JobManager is started once its REST API answers.
			c.StartupProbe = &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/config", Port: intstr.FromString(PortNameREST),
				}},
				PeriodSeconds: 1, FailureThreshold: math.MaxInt32,
			}
		}
	}
	mem, err := ProcessMemory(b.conf, ComponentJobManager)
	if err != nil {
		return nil, err
	}
	cpu, err := b.float(KeyJMCPU, 1)
	if err != nil {
		return nil, err
	}
	env := prefixedEnv(b.conf, envPrefixJM)
	env = append(env, corev1.EnvVar{Name: EnvPodIP, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"},
	}})
	args := b.jobManagerArgs()
	if b.native() {
		args = b.nativeJobManagerArgs()
	}
	pod, err := b.pod(t, podParams{
		component: ComponentJobManager, field: "spec.jobManager",
		args: args, env: env, memory: mem, cpu: cpu,
		memKey: KeyJMMemLimit, cpuKey: KeyJMCPULimit,
		ports: []corev1.ContainerPort{
			{Name: PortNameREST, ContainerPort: b.ports.rest, Protocol: corev1.ProtocolTCP},
			{Name: PortNameRPC, ContainerPort: b.ports.rpc, Protocol: corev1.ProtocolTCP},
			{Name: PortNameBlob, ContainerPort: b.ports.blob, Protocol: corev1.ProtocolTCP},
		},
	})
	if err != nil {
		return nil, err
	}
	d := b.deployment(JobManagerName(b.in.Name), ComponentJobManager, replicas, pod)
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[AnnotationResource] = ResourceName(b.in.Namespace, b.in.Name)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return d, nil
}

// taskManagerParts returns spec.taskManager's pod template and resources
// (nil when unset).
func taskManagerParts(s *v1beta1.FlinkDeploymentSpec) (*v1beta1.PodTemplate, *v1beta1.Resource, *v1beta1.ResourceRequirements) {
	if tm := s.TaskManager; tm != nil {
		return tm.PodTemplate, tm.Resource, tm.Resources
	}
	return nil, nil, nil
}

func (b *builder) taskManager() (*appsv1.Deployment, error) {
	s := b.in.Spec
	own, res, reqs := taskManagerParts(s)
	replicas, err := TaskManagerReplicas(s, b.conf)
	if err != nil {
		return nil, err
	}
	t, err := b.template(own, "spec.taskManager", res, reqs)
	if err != nil {
		return nil, err
	}
	mem, err := ProcessMemory(b.conf, ComponentTaskManager)
	if err != nil {
		return nil, err
	}
	slots, err := Slots(b.conf)
	if err != nil {
		return nil, err
	}
	// Flink gives a TaskManager one core per slot unless told otherwise.
	cpu, err := b.float(KeyTMCPU, float64(slots))
	if err != nil {
		return nil, err
	}
	pod, err := b.pod(t, podParams{
		component: ComponentTaskManager, field: "spec.taskManager",
		args: []string{"taskmanager"}, env: prefixedEnv(b.conf, envPrefixTM),
		memory: mem, cpu: cpu, memKey: KeyTMMemLimit, cpuKey: KeyTMCPULimit,
		ports: []corev1.ContainerPort{{Name: PortNameTaskManager, ContainerPort: b.ports.tm, Protocol: corev1.ProtocolTCP}},
	})
	if err != nil {
		return nil, err
	}
	return b.deployment(TaskManagerName(b.in.Name), ComponentTaskManager, replicas, pod), nil
}

func (b *builder) deployment(name, component string, replicas int32, pod corev1.PodTemplateSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: b.meta(name, component),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: Selector(b.typ(), b.in.Name, component)},
			Template: pod,
		},
	}
}

// float reads a positive number from the configuration, def when unset or
// not positive (Flink's -1 means "derive it").
func (b *builder) float(k string, def float64) (float64, error) {
	v := strings.TrimSpace(b.conf[k])
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("flinkConfiguration %s: %q is not a number; write e.g. 1 or 0.5", k, v)
	}
	if f <= 0 {
		return def, nil
	}
	return f, nil
}

func prefixedEnv(conf map[string]string, prefix string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: conf[k]})
		}
	}
	return env
}

type podParams struct {
	component, field string
	args             []string
	env              []corev1.EnvVar
	ports            []corev1.ContainerPort
	memory           int64
	cpu              float64
	memKey, cpuKey   string // limit factor keys
}

// pod decorates a merged template as Flink's Kubernetes decorators do:
// labels and annotations merged (ours win), service account, the main
// container's image, pull policy, cpu and memory, ports and environment
// (ours win by name), command and arguments, and the configuration volume.
func (b *builder) pod(t *corev1.PodTemplateSpec, p podParams) (corev1.PodTemplateSpec, error) {
	s := b.in.Spec
	out := *t.DeepCopy()
	opts, err := readPodOptions(b.conf, s.ServiceAccount, p.component)
	if err != nil {
		return out, err
	}
	// Template, then Flink's label and annotation options, then ours.
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, opts.labels)
	maps.Copy(out.Labels, Labels(b.typ(), b.in.Name, p.component))
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	maps.Copy(out.Annotations, opts.annotations)
	// The spec and config hashes roll the pods when they change; the source
	// commit does not, so a commit that leaves this cluster's spec alone
	// never restarts it.
	if b.in.SpecHash != "" {
		out.Annotations[AnnotationSpecHash] = b.in.SpecHash
	}
	out.Annotations[AnnotationConfigHash] = b.configHash

	ps := &out.Spec
	if sa := opts.serviceAccount; sa != "" {
		ps.ServiceAccountName = sa
		if ps.DeprecatedServiceAccount != "" {
			ps.DeprecatedServiceAccount = sa
		}
	}
	if len(opts.nodeSelector) > 0 {
		if ps.NodeSelector == nil {
			ps.NodeSelector = map[string]string{}
		}
		maps.Copy(ps.NodeSelector, opts.nodeSelector)
	}
	ps.Tolerations = append(ps.Tolerations, opts.tolerations...)
	for _, ref := range opts.pullSecrets {
		ps.ImagePullSecrets = upsert(ps.ImagePullSecrets, ref, func(r corev1.LocalObjectReference) string { return r.Name })
	}
	if ps.RestartPolicy != "" && ps.RestartPolicy != corev1.RestartPolicyAlways {
		ps.RestartPolicy = corev1.RestartPolicyAlways
	}
	for _, v := range ps.Volumes {
		if v.Name == ConfigVolume {
			return out, fmt.Errorf("%s.podTemplate: the volume name %s is reserved for the Flink configuration; rename the volume", p.field, ConfigVolume)
		}
	}
	ps.Volumes = append(ps.Volumes, corev1.Volume{Name: ConfigVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(b.in.Name)}},
	}})

	i := mainContainer(ps)
	c := ps.Containers[i]
	c.Image = s.Image
	switch {
	case s.ImagePullPolicy != "":
		c.ImagePullPolicy = corev1.PullPolicy(s.ImagePullPolicy)
	case c.ImagePullPolicy == "":
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	memLimit, err := b.float(p.memKey, 1)
	if err != nil {
		return out, err
	}
	cpuLimit, err := b.float(p.cpuKey, 1)
	if err != nil {
		return out, err
	}
	mb := p.memory / mib
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	c.Resources.Requests[corev1.ResourceMemory] = *resource.NewQuantity(mb*mib, resource.BinarySI)
	c.Resources.Limits[corev1.ResourceMemory] = *resource.NewQuantity(int64(float64(mb)*memLimit)*mib, resource.BinarySI)
	c.Resources.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Round(p.cpu*1000)), resource.DecimalSI)
	c.Resources.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Round(p.cpu*cpuLimit*1000)), resource.DecimalSI)

	for _, port := range p.ports {
		c.Ports = upsert(c.Ports, port, func(x corev1.ContainerPort) string { return x.Name })
	}
	for _, e := range p.env {
		c.Env = upsert(c.Env, e, func(x corev1.EnvVar) string { return x.Name })
	}
	entry := strings.TrimSpace(b.conf[KeyEntryPath])
	if entry == "" {
		entry = DefaultEntryPath
	}
	c.Command = []string{entry}
	c.Args = p.args
	for _, m := range c.VolumeMounts {
		if m.Name == ConfigVolume || strings.TrimSuffix(m.MountPath, "/") == ConfigDir {
			return out, fmt.Errorf("%s.podTemplate: the main container mounts %s at %s, where flink-gitops mounts the Flink configuration; mount it elsewhere", p.field, m.Name, m.MountPath)
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: ConfigVolume, MountPath: ConfigDir})

	others := slices.Delete(slices.Clone(ps.Containers), i, i+1)
	ps.Containers = append([]corev1.Container{c}, others...)
	return out, nil
}

// upsert replaces the element with v's key, or appends v.
func upsert[T any](list []T, v T, key func(T) string) []T {
	for i := range list {
		if key(list[i]) == key(v) {
			list[i] = v
			return list
		}
	}
	return append(list, v)
}

func (b *builder) internalService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(ServiceName(b.in.Name), ComponentJobManager),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  Selector(b.typ(), b.in.Name, ComponentJobManager),
			Ports: []corev1.ServicePort{
				{Name: PortNameRPC, Port: b.ports.rpc, TargetPort: intstr.FromInt32(b.ports.rpc), Protocol: corev1.ProtocolTCP},
				{Name: PortNameBlob, Port: b.ports.blob, TargetPort: intstr.FromInt32(b.ports.blob), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func (b *builder) restService() (*corev1.Service, error) {
	meta := b.meta(RESTServiceName(b.in.Name), ComponentJobManager)
	ann, err := FlinkMap(b.conf, KeyRESTAnnotations)
	if err != nil {
		return nil, err
	}
	if len(ann) > 0 {
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		for k, v := range ann {
			if _, own := meta.Annotations[k]; !own {
				meta.Annotations[k] = v
			}
		}
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta,
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: Selector(b.typ(), b.in.Name, ComponentJobManager),
			Ports: []corev1.ServicePort{
				{Name: PortNameREST, Port: b.ports.rest, TargetPort: intstr.FromInt32(b.ports.rest), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	switch t := strings.TrimSpace(b.conf[KeyRESTServiceType]); t {
	case "", "ClusterIP":
	case "NodePort":
		svc.Spec.Type = corev1.ServiceTypeNodePort
	case "LoadBalancer":
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	case "Headless_ClusterIP":
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	default:
		return nil, fmt.Errorf("flinkConfiguration %s: %q is not a service type; use ClusterIP, NodePort, LoadBalancer or Headless_ClusterIP", KeyRESTServiceType, t)
	}
	return svc, nil
}

// WithTypeMeta returns a copy of an object the builder makes with its
// apiVersion and kind set (the builder leaves them empty; apply and
// printing need them).
func WithTypeMeta(obj Object) Object {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		o = o.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
		return o
	case *corev1.Service:
		o = o.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		return o
	case *appsv1.Deployment:
		o = o.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
		return o
	case *networkingv1.Ingress:
		o = o.DeepCopy()
		o.TypeMeta = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"}
		return o
	}
	return obj
}
