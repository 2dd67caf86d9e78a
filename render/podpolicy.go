package render

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// PodSecurityLevel is a Kubernetes Pod Security Standards level.
type PodSecurityLevel string

// The Pod Security Standards levels (kubernetes.io/docs/concepts/security/pod-security-standards).
const (
	PodSecurityPrivileged PodSecurityLevel = "privileged"
	PodSecurityBaseline   PodSecurityLevel = "baseline"
	PodSecurityRestricted PodSecurityLevel = "restricted"
)

// PodPolicy limits what the pods of a FlinkDeployment may do. Anyone who can
// push to the watched branch chooses the pod templates, so without it a push
// could run privileged pods, mount host paths, or read the daemon's own
// credentials in the namespaces the daemon deploys to.
type PodPolicy struct {
	// Level is checked against spec.podTemplate and the JobManager and
	// TaskManager pod templates; empty means baseline.
	Level PodSecurityLevel
	// AllowedServiceAccounts are the service accounts Flink pods may run
	// as. Empty: spec.serviceAccount may name any, and a pod template's
	// serviceAccountName must equal it. Otherwise both must be listed (a pod
	// template may always repeat spec.serviceAccount).
	AllowedServiceAccounts []string
	// ForbiddenSecrets are Secrets no pod may mount or read through env
	// (the daemon's own credentials).
	ForbiddenSecrets []string
}

// baselineCapabilities may be added under baseline.
var baselineCapabilities = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// safeSysctls are the sysctls baseline allows.
var safeSysctls = []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}

// seLinuxTypes are the SELinux types baseline allows (besides none).
var seLinuxTypes = []string{"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// restrictedVolumes are the volume sources restricted allows.
var restrictedVolumes = []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}

// mainContainer is the container the cluster builder fills in.
const mainContainer = "flink-main-container"

// podPolicy checks a FlinkDeployment's pod templates against the policy.
func (v *validator) podPolicy(d *v1beta1.FlinkDeployment) []fieldError {
	pol := v.opts.PodPolicy
	s := &d.Spec
	type template struct {
		field string
		t     *v1beta1.PodTemplate
	}
	templates := []template{{"spec.podTemplate", s.PodTemplate}}
	var jm, tm *v1beta1.PodTemplate
	if s.JobManager != nil {
		jm = s.JobManager.PodTemplate
		templates = append(templates, template{"spec.jobManager.podTemplate", jm})
	}
	if s.TaskManager != nil {
		tm = s.TaskManager.PodTemplate
		templates = append(templates, template{"spec.taskManager.podTemplate", tm})
	}
	var errs []fieldError
	if sa := s.ServiceAccount; sa != "" && len(pol.AllowedServiceAccounts) > 0 && !slices.Contains(pol.AllowedServiceAccounts, sa) {
		errs = append(errs, fieldError{Field: "spec.serviceAccount", Message: fmt.Sprintf("service account %q is not allowed by the daemon's pod policy", sa),
			Fix: "use one of " + strings.Join(pol.AllowedServiceAccounts, ", ") + ", or ask the daemon's operators to add it to podPolicy.allowedServiceAccounts"})
	}
	for _, t := range templates {
		if t.t != nil {
			errs = append(errs, checkPod(pol, s.ServiceAccount, t.field+".spec", &t.t.Spec, t.t.Annotations)...)
		}
	}
	if pol.Level == PodSecurityRestricted {
		errs = append(errs, restrictedEffective("spec.jobManager.podTemplate", s.PodTemplate, jm)...)
		errs = append(errs, restrictedEffective("spec.taskManager.podTemplate", s.PodTemplate, tm)...)
	}
	return dedupe(errs)
}

func dedupe(errs []fieldError) []fieldError {
	var out []fieldError
	for _, e := range errs {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// checkPod checks one pod spec (a template's) at field.
func checkPod(pol PodPolicy, specSA, field string, p *corev1.PodSpec, annotations map[string]string) []fieldError {
	var errs []fieldError
	add := func(f, msg, fix string) { errs = append(errs, fieldError{Field: f, Message: msg, Fix: fix}) }

	// Service account.
	for _, sa := range []struct{ f, v string }{{"serviceAccountName", p.ServiceAccountName}, {"serviceAccount", p.DeprecatedServiceAccount}} {
		if sa.v == "" || sa.v == specSA || slices.Contains(pol.AllowedServiceAccounts, sa.v) {
			continue
		}
		add(field+"."+sa.f, fmt.Sprintf("pod template runs as service account %q, not the spec's serviceAccount %q", sa.v, specSA),
			"remove it and set spec.serviceAccount instead (or ask the daemon's operators to add it to podPolicy.allowedServiceAccounts)")
	}
	// The daemon's own Secrets.
	forbidden := func(name string) bool { return name != "" && slices.Contains(pol.ForbiddenSecrets, name) }
	secretFix := "do not use the daemon's own credentials in Flink pods; give Flink a Secret of its own"
	for i, vol := range p.Volumes {
		f := fmt.Sprintf("%s.volumes[%d]", field, i)
		if vol.Secret != nil && forbidden(vol.Secret.SecretName) {
			add(f+".secret.secretName", fmt.Sprintf("Secret %q belongs to the daemon", vol.Secret.SecretName), secretFix)
		}
		if vol.Projected != nil {
			for j, src := range vol.Projected.Sources {
				if src.Secret != nil && forbidden(src.Secret.Name) {
					add(fmt.Sprintf("%s.projected.sources[%d].secret.name", f, j), fmt.Sprintf("Secret %q belongs to the daemon", src.Secret.Name), secretFix)
				}
			}
		}
	}
	forContainers(p, field, func(f string, c *corev1.Container) {
		for i, e := range c.EnvFrom {
			if e.SecretRef != nil && forbidden(e.SecretRef.Name) {
				add(fmt.Sprintf("%s.envFrom[%d].secretRef.name", f, i), fmt.Sprintf("Secret %q belongs to the daemon", e.SecretRef.Name), secretFix)
			}
		}
		for i, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && forbidden(e.ValueFrom.SecretKeyRef.Name) {
				add(fmt.Sprintf("%s.env[%d].valueFrom.secretKeyRef.name", f, i), fmt.Sprintf("Secret %q belongs to the daemon", e.ValueFrom.SecretKeyRef.Name), secretFix)
			}
		}
	})

	level := pol.Level
	if level == "" {
		level = PodSecurityBaseline
	}
	if level == PodSecurityPrivileged {
		return errs
	}
	levelFix := func(what string) string {
		return what + " (the daemon's pod policy is " + string(level) + "; a namespace that needs more must be given a policy by the daemon's operators)"
	}

	// Baseline.
	if p.HostNetwork {
		add(field+".hostNetwork", "host networking is not allowed", levelFix("remove hostNetwork"))
	}
	if p.HostPID {
		add(field+".hostPID", "sharing the host's process namespace is not allowed", levelFix("remove hostPID"))
	}
	if p.HostIPC {
		add(field+".hostIPC", "sharing the host's IPC namespace is not allowed", levelFix("remove hostIPC"))
	}
	for i, vol := range p.Volumes {
		if vol.HostPath != nil {
			add(fmt.Sprintf("%s.volumes[%d].hostPath", field, i), fmt.Sprintf("volume %q mounts a host path", vol.Name), levelFix("use an emptyDir, configMap, secret or persistentVolumeClaim volume"))
		}
	}
	if sc := p.SecurityContext; sc != nil {
		for i, s := range sc.Sysctls {
			if !slices.Contains(safeSysctls, s.Name) {
				add(fmt.Sprintf("%s.securityContext.sysctls[%d]", field, i), fmt.Sprintf("sysctl %q is not one of the safe sysctls", s.Name), levelFix("remove it"))
			}
		}
		checkSecurity(field+".securityContext", sc.WindowsOptions, sc.SELinuxOptions, sc.SeccompProfile, sc.AppArmorProfile, level, add, levelFix)
		if level == PodSecurityRestricted && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			add(field+".securityContext.runAsUser", "pods may not run as root (uid 0)", levelFix("set a non-zero runAsUser, e.g. 9999 (the Flink image's user)"))
		}
	}
	for k, val := range annotations {
		if strings.HasPrefix(k, "container.apparmor.security.beta.kubernetes.io/") && val != "runtime/default" && !strings.HasPrefix(val, "localhost/") {
			add(mapKey(strings.TrimSuffix(field, ".spec")+".metadata.annotations", k), fmt.Sprintf("AppArmor profile %q is not allowed", val), levelFix("use runtime/default or localhost/<profile>"))
		}
	}
	forContainers(p, field, func(f string, c *corev1.Container) {
		for i, port := range c.Ports {
			if port.HostPort != 0 {
				add(fmt.Sprintf("%s.ports[%d].hostPort", f, i), fmt.Sprintf("host port %d is not allowed", port.HostPort), levelFix("remove hostPort; use a Service"))
			}
		}
		sc := c.SecurityContext
		if sc == nil {
			return
		}
		if sc.Privileged != nil && *sc.Privileged {
			add(f+".securityContext.privileged", "privileged containers are not allowed", levelFix("remove privileged"))
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			add(f+".securityContext.procMount", fmt.Sprintf("procMount %q is not allowed", *sc.ProcMount), levelFix("remove procMount"))
		}
		if caps := sc.Capabilities; caps != nil {
			allowed := baselineCapabilities
			if level == PodSecurityRestricted {
				allowed = []string{"NET_BIND_SERVICE"}
			}
			for i, cp := range caps.Add {
				if !slices.Contains(allowed, string(cp)) {
					add(fmt.Sprintf("%s.securityContext.capabilities.add[%d]", f, i), fmt.Sprintf("capability %s may not be added", cp), levelFix("remove it"))
				}
			}
		}
		checkSecurity(f+".securityContext", sc.WindowsOptions, sc.SELinuxOptions, sc.SeccompProfile, sc.AppArmorProfile, level, add, levelFix)
		if level == PodSecurityRestricted {
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				add(f+".securityContext.runAsUser", "containers may not run as root (uid 0)", levelFix("set a non-zero runAsUser, e.g. 9999 (the Flink image's user)"))
			}
		}
	})

	// Restricted: volume types (the settings every container must carry
	// are checked on the merged pods, restrictedEffective).
	if level == PodSecurityRestricted {
		for i, vol := range p.Volumes {
			if t := volumeType(vol.VolumeSource); !slices.Contains(restrictedVolumes, t) {
				add(fmt.Sprintf("%s.volumes[%d]", field, i), fmt.Sprintf("volume %q of type %s is not allowed", vol.Name, t),
					levelFix("use one of "+strings.Join(restrictedVolumes, ", ")))
			}
		}
	}
	return errs
}

// checkSecurity checks the settings a pod and a container security context share.
func checkSecurity(field string, win *corev1.WindowsSecurityContextOptions, se *corev1.SELinuxOptions, seccomp *corev1.SeccompProfile,
	aa *corev1.AppArmorProfile, level PodSecurityLevel, add func(f, msg, fix string), levelFix func(string) string) {
	if win != nil && win.HostProcess != nil && *win.HostProcess {
		add(field+".windowsOptions.hostProcess", "Windows host process containers are not allowed", levelFix("remove hostProcess"))
	}
	if se != nil {
		if se.Type != "" && !slices.Contains(seLinuxTypes, se.Type) {
			add(field+".seLinuxOptions.type", fmt.Sprintf("SELinux type %q is not allowed", se.Type), levelFix("use one of "+strings.Join(seLinuxTypes, ", ")+" or none"))
		}
		if se.User != "" {
			add(field+".seLinuxOptions.user", "a custom SELinux user is not allowed", levelFix("remove seLinuxOptions.user"))
		}
		if se.Role != "" {
			add(field+".seLinuxOptions.role", "a custom SELinux role is not allowed", levelFix("remove seLinuxOptions.role"))
		}
	}
	if seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeUnconfined {
		add(field+".seccompProfile.type", "an unconfined seccomp profile is not allowed", levelFix("use RuntimeDefault or Localhost"))
	}
	if aa != nil && aa.Type != corev1.AppArmorProfileTypeRuntimeDefault && aa.Type != corev1.AppArmorProfileTypeLocalhost {
		add(field+".appArmorProfile.type", fmt.Sprintf("AppArmor profile type %q is not allowed", aa.Type), levelFix("use RuntimeDefault or Localhost"))
	}
}

// forContainers calls f for every container, init container and ephemeral
// container with its field path.
func forContainers(p *corev1.PodSpec, field string, f func(string, *corev1.Container)) {
	for i := range p.InitContainers {
		f(fmt.Sprintf("%s.initContainers[%d]", field, i), &p.InitContainers[i])
	}
	for i := range p.Containers {
		f(fmt.Sprintf("%s.containers[%d]", field, i), &p.Containers[i])
	}
	for i := range p.EphemeralContainers {
		c := corev1.Container(p.EphemeralContainers[i].EphemeralContainerCommon)
		f(fmt.Sprintf("%s.ephemeralContainers[%d]", field, i), &c)
	}
}

// volumeType is the name of the source a volume uses, as in the Pod schema.
func volumeType(s corev1.VolumeSource) string {
	switch {
	case s.ConfigMap != nil:
		return "configMap"
	case s.CSI != nil:
		return "csi"
	case s.DownwardAPI != nil:
		return "downwardAPI"
	case s.EmptyDir != nil:
		return "emptyDir"
	case s.Ephemeral != nil:
		return "ephemeral"
	case s.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case s.Projected != nil:
		return "projected"
	case s.Secret != nil:
		return "secret"
	case s.HostPath != nil:
		return "hostPath"
	case s.NFS != nil:
		return "nfs"
	case s.ISCSI != nil:
		return "iscsi"
	case s.Image != nil:
		return "image"
	}
	return "another volume source"
}

// restrictedEffective checks what restricted requires to be set on the pod
// a component gets: spec.podTemplate with the component's template over it
// (containers merged by name) and the Flink main container always present.
// Pod-level settings count for every container.
func restrictedEffective(field string, common, own *v1beta1.PodTemplate) []fieldError {
	var podSC *corev1.PodSecurityContext
	containers := map[string]*corev1.SecurityContext{mainContainer: nil}
	order := []string{mainContainer}
	for _, t := range []*v1beta1.PodTemplate{common, own} {
		if t == nil {
			continue
		}
		if t.Spec.SecurityContext != nil {
			podSC = t.Spec.SecurityContext
		}
		all := append(slices.Clone(t.Spec.InitContainers), t.Spec.Containers...)
		for _, c := range all {
			if _, ok := containers[c.Name]; !ok {
				order = append(order, c.Name)
			}
			if c.SecurityContext != nil || containers[c.Name] == nil {
				containers[c.Name] = c.SecurityContext
			}
		}
	}
	var errs []fieldError
	fix := func(what string) string {
		return what + " in spec.podTemplate or " + field + " (the daemon's pod policy is restricted)"
	}
	podNonRoot := podSC != nil && podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot
	podSeccomp := podSC != nil && podSC.SeccompProfile != nil &&
		(podSC.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault || podSC.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost)
	for _, name := range order {
		sc := containers[name]
		f := fmt.Sprintf("%s.spec.containers[%s].securityContext", field, name)
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			errs = append(errs, fieldError{Field: f + ".allowPrivilegeEscalation", Message: fmt.Sprintf("container %s may escalate privileges", name),
				Fix: fix("set allowPrivilegeEscalation: false on container " + name)})
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			errs = append(errs, fieldError{Field: f + ".capabilities.drop", Message: fmt.Sprintf("container %s does not drop all capabilities", name),
				Fix: fix("set capabilities: {drop: [ALL]} on container " + name)})
		}
		if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			errs = append(errs, fieldError{Field: f + ".runAsNonRoot", Message: fmt.Sprintf("container %s may run as root", name),
				Fix: fix("set securityContext.runAsNonRoot: true on the pod")})
		}
		if !podSeccomp && (sc == nil || sc.SeccompProfile == nil ||
			sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault && sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost) {
			errs = append(errs, fieldError{Field: f + ".seccompProfile", Message: fmt.Sprintf("container %s has no RuntimeDefault or Localhost seccomp profile", name),
				Fix: fix("set securityContext.seccompProfile: {type: RuntimeDefault} on the pod")})
		}
	}
	return errs
}
