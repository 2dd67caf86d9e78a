package cluster

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Flink options of native mode: what Flink's Kubernetes client
// (KubernetesClusterDescriptor) and the operator's native FlinkConfigBuilder
// put into the cluster's configuration. The JobManager reads them to create
// its TaskManager pods, so unlike in standalone mode they go into the
// ConfigMap.
const (
	KeyImageRef          = "kubernetes.container.image.ref"
	KeyImagePullPolicy   = "kubernetes.container.image.pull-policy"
	KeyExecutionTarget   = "execution.target"
	KeyJMReplicas        = "kubernetes.jobmanager.replicas"
	KeyTMPodTemplateFile = "kubernetes.pod-template-file.taskmanager"
	KeyApplicationMain   = "$internal.application.main"
	KeyApplicationArgs   = "$internal.application.program-args"
	KeyPipelineJobID     = "$internal.pipeline.job-id"

	TargetApplication = "kubernetes-application"
	TargetSession     = "kubernetes-session"

	// TaskManagerPodTemplate is the file of a native cluster's TaskManager
	// pod template in PodTemplateDir, and its key in the ConfigMap
	// pod-template-<name>. The JobManager reads it from that fixed path
	// when it creates TaskManager pods (Flink's KubernetesUtils); the
	// kubernetes.pod-template-file.taskmanager option only tells Flink's
	// client what to put there.
	TaskManagerPodTemplate = "taskmanager-pod-template.yaml"
	// PodTemplateDir is where the JobManager finds the TaskManager pod
	// template; PodTemplateVolume the volume mounted there.
	PodTemplateDir    = "/opt/flink/pod-template"
	PodTemplateVolume = "pod-template-volume"

	// keyPrefixFlinkGitOps marks flink-gitops' own settings in
	// flinkConfiguration (e.g. flink-gitops.ha.keep-on-deletion); like
	// kubernetes.operator.* keys they never reach Flink.
	keyPrefixFlinkGitOps = "flink-gitops."
)

// RestoreKeys are the configuration keys of a restore in Flink version v:
// the state path and whether state of removed operators may be skipped.
// Flink 2 renamed them (the 1.x names still work as deprecated keys).
func RestoreKeys(v v1beta1.FlinkVersion) (path, allowNonRestored string) {
	if v.Major() >= 2 {
		return "execution.state-recovery.path", "execution.state-recovery.ignore-unclaimed-state"
	}
	return "execution.savepoint.path", "execution.savepoint.ignore-unclaimed-state"
}

// nativeConfig adds to conf what Flink's Kubernetes client would: the image
// and pull policy, the deployment target, the JobManager replicas, the
// service account and, for an application, the job (entry class, arguments,
// job id, restore path). Native JobManagers are reached through the headless
// Service <name>.<namespace> without HA and announce their pod IP with it.
func nativeConfig(in Input, conf map[string]string) {
	s := in.Spec
	conf[KeyImageRef] = s.Image
	if s.ImagePullPolicy != "" {
		conf[KeyImagePullPolicy] = s.ImagePullPolicy
	}
	if s.ServiceAccount != "" {
		conf[KeyServiceAccount] = s.ServiceAccount
	}
	replicas := int32(v1beta1.DefaultJobManagerReps)
	if s.JobManager != nil && s.JobManager.Replicas > 0 {
		replicas = s.JobManager.Replicas
	}
	conf[KeyJMReplicas] = fmt.Sprint(replicas)
	if haEnabled(conf) {
		delete(conf, KeyRPCAddress)
	} else {
		conf[KeyRPCAddress] = in.Name + "." + in.Namespace
	}
	if s.Job == nil {
		conf[KeyExecutionTarget] = TargetSession
		return
	}
	conf[KeyExecutionTarget] = TargetApplication
	// The JobManager loads pipeline.jars itself; the standalone classpath
	// entry is not needed (and the operator does not set it in native mode).
	delete(conf, KeyPipelineClasspth)
	if s.Job.EntryClass != "" {
		conf[KeyApplicationMain] = s.Job.EntryClass
	}
	if len(s.Job.Args) > 0 {
		conf[KeyApplicationArgs] = flinkList(s.Job.Args)
	}
	if in.JobID != "" {
		conf[KeyPipelineJobID] = strings.ToLower(in.JobID)
	}
	pathKey, allowKey := RestoreKeys(s.FlinkVersion)
	if in.SavepointPath != "" {
		conf[pathKey] = in.SavepointPath
		if in.AllowNonRestoredState || (s.Job.AllowNonRestoredState != nil && *s.Job.AllowNonRestoredState) {
			conf[allowKey] = "true"
		}
	} else {
		// A path in flinkConfiguration would restore every new job from it.
		delete(conf, pathKey)
	}
}

// flinkList writes a list option as Flink reads it: elements separated by
// ';', an element that holds ';' or a quote put in single quotes with its
// single quotes doubled.
func flinkList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		if strings.ContainsAny(s, `;'"`) {
			s = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		out[i] = s
	}
	return strings.Join(out, ";")
}

// nativeJobManagerArgs is the JobManager's command in the bash wrapper of
// Flink's CmdJobManagerDecorator.
func (b *builder) nativeJobManagerArgs() []string {
	target := TargetSession
	if b.in.Spec.Job != nil {
		target = TargetApplication
	}
	return []string{"bash", "-c", "kubernetes-jobmanager.sh " + target}
}

// PodTemplateConfigMapName is the ConfigMap holding the TaskManager pod
// template of native cluster name, as Flink's client names it.
func PodTemplateConfigMapName(name string) string { return "pod-template-" + name }

// podTemplateConfigMap is the ConfigMap pod-template-<name> with the
// TaskManager pod template, nil when there is none.
func (b *builder) podTemplateConfigMap() (*corev1.ConfigMap, error) {
	if !b.native() || !hasTaskManagerTemplate(b.in.Spec) {
		return nil, nil
	}
	tmpl, err := b.taskManagerPodTemplate()
	if err != nil {
		return nil, err
	}
	meta := b.meta(PodTemplateConfigMapName(b.in.Name), "")
	meta.Labels = Labels(b.typ(), b.in.Name, "")
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta,
		Data:       map[string]string{TaskManagerPodTemplate: tmpl},
	}, nil
}

// mountPodTemplate mounts the ConfigMap pod-template-<name> at
// PodTemplateDir in the JobManager's main container, as Flink's
// PodTemplateMountDecorator does.
func mountPodTemplate(pod *corev1.PodTemplateSpec, name string) error {
	ps := &pod.Spec
	for _, v := range ps.Volumes {
		if v.Name == PodTemplateVolume {
			return fmt.Errorf("spec.jobManager.podTemplate: the volume name %s is reserved for the TaskManager pod template; rename the volume", PodTemplateVolume)
		}
	}
	c := &ps.Containers[0] // pod puts the main container first
	for _, m := range c.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") == PodTemplateDir {
			return fmt.Errorf("spec.jobManager.podTemplate: the main container mounts %s at %s, where the JobManager reads the TaskManager pod template; mount it elsewhere", m.Name, m.MountPath)
		}
	}
	ps.Volumes = append(ps.Volumes, corev1.Volume{Name: PodTemplateVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: PodTemplateConfigMapName(name)},
			Items:                []corev1.KeyToPath{{Key: TaskManagerPodTemplate, Path: TaskManagerPodTemplate}},
		},
	}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: PodTemplateVolume, MountPath: PodTemplateDir})
	return nil
}

// hasTaskManagerTemplate reports whether the spec gives the TaskManagers
// something only a pod template carries: a common or TaskManager pod
// template, or resources Flink's configuration cannot express.
func hasTaskManagerTemplate(s *v1beta1.FlinkDeploymentSpec) bool {
	own, res, reqs := taskManagerParts(s)
	return s.PodTemplate != nil || own != nil || templateResources(reqs) || !reqs.IsSet() && res != nil && res.EphemeralStorage != ""
}

// templateResources reports whether requirements name a resource other than
// cpu and memory: those go through Flink's configuration, the others only
// through the pod template (as the operator's applyResourceRequirementsToPodTemplate).
func templateResources(r *v1beta1.ResourceRequirements) bool {
	if r == nil {
		return false
	}
	for _, l := range []map[corev1.ResourceName]v1beta1.Quantity{r.Requests, r.Limits} {
		for name := range l {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
				return true
			}
		}
	}
	return false
}

// taskManagerPodTemplate returns the TaskManager pod template the JobManager
// of a native cluster starts its TaskManager pods from (spec.podTemplate
// merged with spec.taskManager.podTemplate, with the resources Flink's
// configuration cannot express), as a Pod manifest. Flink fills in the
// image, cpu, memory, command and configuration itself.
func (b *builder) taskManagerPodTemplate() (string, error) {
	own, res, reqs := taskManagerParts(b.in.Spec)
	t, err := b.template(own, "spec.taskManager", res, reqs)
	if err != nil {
		return "", err
	}
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: t.ObjectMeta,
		Spec:       t.Spec,
	}
	out, err := yaml.Marshal(pod)
	if err != nil {
		return "", fmt.Errorf("spec.taskManager.podTemplate: %w", err)
	}
	return string(out), nil
}
