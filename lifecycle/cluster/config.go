package cluster

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Flink configuration keys the builder reads or writes.
const (
	KeyRPCAddress       = "jobmanager.rpc.address"
	KeyRPCPort          = "jobmanager.rpc.port"
	KeyBlobPort         = "blob.server.port"
	KeyRESTPort         = "rest.port"
	KeyTaskManagerPort  = "taskmanager.rpc.port"
	KeyClusterID        = "kubernetes.cluster-id"
	KeyNamespace        = "kubernetes.namespace"
	KeyHAClusterID      = "high-availability.cluster-id"
	KeyHAType           = "high-availability.type"
	KeyHALegacy         = "high-availability"
	KeySlots            = "taskmanager.numberOfTaskSlots"
	KeyParallelism      = "parallelism.default"
	KeyParallelismOver  = "pipeline.jobvertex-parallelism-overrides"
	KeyPipelineName     = "pipeline.name"
	KeyPipelineJars     = "pipeline.jars"
	KeyPipelineClasspth = "pipeline.classpaths"
	KeyShutdownOnFinish = "execution.shutdown-on-application-finish"
	KeySubmitFailedJob  = "execution.submit-failed-job-on-application-error"
	KeyCheckpointRetain = "execution.checkpointing.externalized-checkpoint-retention"
	KeyCheckpointIntvl  = "execution.checkpointing.interval"
	KeyWebCancel        = "web.cancel.enable"
	KeyRESTServiceType  = "kubernetes.rest-service.exposed.type"
	KeyEntryPath        = "kubernetes.entry.path"
	KeyJMCPU            = "kubernetes.jobmanager.cpu.amount"
	KeyTMCPU            = "kubernetes.taskmanager.cpu.amount"
	KeyJMCPULimit       = "kubernetes.jobmanager.cpu.limit-factor"
	KeyTMCPULimit       = "kubernetes.taskmanager.cpu.limit-factor"
	KeyJMMemLimit       = "kubernetes.jobmanager.memory.limit-factor"
	KeyTMMemLimit       = "kubernetes.taskmanager.memory.limit-factor"
	KeyJMProcessMemory  = "jobmanager.memory.process.size"
	KeyTMProcessMemory  = "taskmanager.memory.process.size"
	KeyMergeByName      = "kubernetes.operator.pod-template.merge-arrays-by-name"
	KeyStartupProbe     = "kubernetes.operator.jm-deployment.startup.probe.enabled"
	envPrefixJM         = "containerized.master.env."
	envPrefixTM         = "containerized.taskmanager.env."
	operatorKeyPrefix   = "kubernetes.operator."
)

// Default ports of a Flink cluster.
const (
	DefaultRPCPort         = 6123
	DefaultBlobPort        = 6124
	DefaultRESTPort        = 8081
	DefaultTaskManagerPort = 6122
)

// FlinkConfig returns the Flink configuration written to the cluster's
// ConfigMap. Precedence follows the operator's FlinkConfigBuilder, lowest first:
//
//  1. builder defaults, set only where nothing else sets the key (ports 6123,
//     6124, 8081, 6122; web.cancel.enable false; for an application
//     pipeline.name, checkpoint retention on cancellation, submitting a failed
//     job on application error, and a 5 min checkpoint interval in last-state
//     mode);
//  2. in.FlinkDefaults, the daemon's defaults;
//  3. spec.flinkConfiguration;
//  4. values derived from explicit spec fields, which win over
//     flinkConfiguration as in the operator: memory and cpu of
//     jobManager/taskManager resource(s), parallelism.default from the job
//     (or taskManager.replicas × slots), the job jar (pipeline.jars and
//     pipeline.classpaths) and execution.shutdown-on-application-finish false;
//  5. identity keys nobody may set: kubernetes.cluster-id, kubernetes.namespace,
//     jobmanager.rpc.address (<name>, the headless Service) and, with HA,
//     high-availability.cluster-id.
//
// kubernetes.operator.* keys are read by flink-gitops and left out, as the
// operator removes them before deploying.
func FlinkConfig(in Input) (map[string]string, error) {
	conf, err := effectiveConfig(in)
	if err != nil {
		return nil, err
	}
	return flinkOnly(conf), nil
}

// effectiveConfig is FlinkConfig with the kubernetes.operator.* keys kept.
func effectiveConfig(in Input) (map[string]string, error) {
	if err := checkInput(in); err != nil {
		return nil, err
	}
	s := in.Spec
	conf := map[string]string{}
	maps.Copy(conf, in.FlinkDefaults)
	maps.Copy(conf, s.FlinkConfiguration)

	app := s.Job != nil
	setDefault(conf, KeyRPCPort, strconv.Itoa(DefaultRPCPort))
	setDefault(conf, KeyBlobPort, strconv.Itoa(DefaultBlobPort))
	setDefault(conf, KeyRESTPort, strconv.Itoa(DefaultRESTPort))
	setDefault(conf, KeyTaskManagerPort, strconv.Itoa(DefaultTaskManagerPort))
	setDefault(conf, KeyWebCancel, "false")
	if app {
		setDefault(conf, KeyPipelineName, in.Name)
		setDefault(conf, KeySubmitFailedJob, "true")
		setDefault(conf, KeyCheckpointRetain, "RETAIN_ON_CANCELLATION")
		if s.Job.UpgradeMode == v1beta1.UpgradeModeLastState {
			setDefault(conf, KeyCheckpointIntvl, "5 min")
		}
	}
	// Flink's Kubernetes integration replaces a port range or 0 by the
	// default port, as the Services need one fixed port.
	fixPort(conf, KeyBlobPort, DefaultBlobPort)
	fixPort(conf, KeyTaskManagerPort, DefaultTaskManagerPort)

	legacyCPU := s.FlinkVersion.Known() && !versionAtLeast(s.FlinkVersion, v1beta1.FlinkV1_17)
	if jm := s.JobManager; jm != nil {
		if err := applyResources(conf, "jobmanager", "spec.jobManager", jm.Resource, jm.Resources, legacyCPU); err != nil {
			return nil, err
		}
	}
	if tm := s.TaskManager; tm != nil {
		if err := applyResources(conf, "taskmanager", "spec.taskManager", tm.Resource, tm.Resources, legacyCPU); err != nil {
			return nil, err
		}
	}
	if app {
		p, err := Parallelism(s, conf)
		if err != nil {
			return nil, err
		}
		conf[KeyParallelism] = strconv.Itoa(int(p))
		conf[KeyShutdownOnFinish] = "false"
		if s.Job.JarURI != "" {
			cp, err := classpathURI(s.Job.JarURI)
			if err != nil {
				return nil, err
			}
			conf[KeyPipelineJars] = s.Job.JarURI
			conf[KeyPipelineClasspth] = cp
		}
	}
	conf[KeyClusterID] = in.Name
	conf[KeyNamespace] = in.Namespace
	conf[KeyRPCAddress] = in.Name
	if haEnabled(conf) {
		conf[KeyHAClusterID] = in.Name
	}
	if s.EffectiveMode() == v1beta1.ModeNative {
		nativeConfig(in, conf)
		if hasTaskManagerTemplate(s) {
			conf[KeyTMPodTemplateFile] = PodTemplateDir + "/" + TaskManagerPodTemplate
		}
	}
	return conf, nil
}

// flinkOnly drops the keys Flink never sees: kubernetes.operator.* (read by
// flink-gitops, removed as the operator removes them) and flink-gitops.*.
func flinkOnly(conf map[string]string) map[string]string {
	out := make(map[string]string, len(conf))
	for k, v := range conf {
		if !strings.HasPrefix(k, operatorKeyPrefix) && !strings.HasPrefix(k, keyPrefixFlinkGitOps) {
			out[k] = v
		}
	}
	return out
}

func setDefault(conf map[string]string, k, v string) {
	if _, ok := conf[k]; !ok {
		conf[k] = v
	}
}

func fixPort(conf map[string]string, k string, def int) {
	if p, err := strconv.Atoi(strings.TrimSpace(conf[k])); err != nil || p == 0 {
		conf[k] = strconv.Itoa(def)
	}
}

// versionAtLeast reports whether v is min or newer in the operator's enum.
func versionAtLeast(v, min v1beta1.FlinkVersion) bool {
	return slices.Index(v1beta1.FlinkVersions, v) >= slices.Index(v1beta1.FlinkVersions, min)
}

// haEnabled reports whether Flink high availability is switched on.
func haEnabled(conf map[string]string) bool {
	v := strings.TrimSpace(conf[KeyHAType])
	if v == "" {
		v = strings.TrimSpace(conf[KeyHALegacy])
	}
	return v != "" && !strings.EqualFold(v, "none")
}

// classpathURI turns a job jar URI into the pipeline.classpaths entry, as the
// operator does for standalone mode: local:// becomes file://.
func classpathURI(jar string) (string, error) {
	u, err := url.Parse(jar)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("spec.job.jarURI: %q is not a URI; write e.g. local:///opt/flink/usrlib/job.jar", jar)
	}
	if u.Scheme == "local" {
		u.Scheme = "file"
		return u.Scheme + "://" + u.Host + u.EscapedPath() + query(u), nil
	}
	return jar, nil
}

func query(u *url.URL) string {
	s := ""
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		s += "#" + u.EscapedFragment()
	}
	return s
}

// applyResources writes the memory and cpu of one component's resource(s)
// into the configuration: the resources field (requests, else limits) when it
// has any entry, else the deprecated resource block.
func applyResources(conf map[string]string, comp, field string, res *v1beta1.Resource, reqs *v1beta1.ResourceRequirements, legacyCPU bool) error {
	memKey, cpuKey, cpuLimitKey, memLimitKey := KeyJMProcessMemory, KeyJMCPU, KeyJMCPULimit, KeyJMMemLimit
	if comp == "taskmanager" {
		memKey, cpuKey, cpuLimitKey, memLimitKey = KeyTMProcessMemory, KeyTMCPU, KeyTMCPULimit, KeyTMMemLimit
	}
	setCPU := func(cpu float64) {
		conf[cpuKey] = formatFloat(cpu)
		if legacyCPU {
			conf["kubernetes."+comp+".cpu"] = formatFloat(cpu)
		}
	}
	if reqs.IsSet() {
		// As the operator: requests give the values, a missing request
		// falls back to the limit, and limit/request is the limit factor.
		if q, ok := reqs.RequestOrLimit(corev1.ResourceMemory); ok {
			b, err := v1beta1.ParseMemory(string(q))
			if err != nil {
				return fmt.Errorf("%s.resources memory: %w; write a size such as 2048m, 2g or 2Gi", field, err)
			}
			conf[memKey] = FormatFlinkMemory(b)
		}
		if q, ok := reqs.RequestOrLimit(corev1.ResourceCPU); ok {
			cpu, err := v1beta1.ParseCPU(string(q))
			if err != nil || cpu <= 0 {
				return fmt.Errorf("%s.resources cpu: %q is not a positive number of cores; write e.g. 1, 0.5 or 500m", field, q)
			}
			setCPU(cpu)
		}
		if f, ok, err := limitFactor(reqs, corev1.ResourceCPU, v1beta1.ParseCPU); err != nil {
			return fmt.Errorf("%s.resources.limits.cpu: %w; write e.g. 2 or 1500m", field, err)
		} else if ok {
			conf[cpuLimitKey] = formatFloat(f)
		}
		parseMem := func(s string) (float64, error) { b, err := v1beta1.ParseMemory(s); return float64(b), err }
		if f, ok, err := limitFactor(reqs, corev1.ResourceMemory, parseMem); err != nil {
			return fmt.Errorf("%s.resources.limits.memory: %w; write a size such as 4096m or 4Gi", field, err)
		} else if ok {
			conf[memLimitKey] = formatFloat(f)
		}
		return nil
	}
	if res == nil {
		return nil
	}
	if res.Memory != "" {
		b, err := ParseResourceMemory(res.Memory)
		if err != nil {
			return fmt.Errorf("%s.resource.memory: %w; write a size such as 2048m, 2g or 2Gi", field, err)
		}
		conf[memKey] = FormatFlinkMemory(b)
	}
	if res.CPU != nil {
		if *res.CPU <= 0 {
			return fmt.Errorf("%s.resource.cpu: %v is not a positive number of cores; write e.g. 1 or 0.5", field, *res.CPU)
		}
		setCPU(*res.CPU)
	}
	return nil
}

// limitFactor is limit/request of one resource when both are given and the
// request is positive (the operator's computeLimitFactor). Both sides are
// read with parse, so "2048m"/"4096m" memory is a factor of 2 as the
// operator computes it, and mixed forms ("2048m"/"4Gi") compare the sizes
// they mean.
func limitFactor(r *v1beta1.ResourceRequirements, name corev1.ResourceName, parse func(string) (float64, error)) (float64, bool, error) {
	req, okR := r.Requests[name]
	lim, okL := r.Limits[name]
	if !okR || !okL {
		return 0, false, nil
	}
	rq, err := parse(string(req))
	if err != nil {
		return 0, false, err
	}
	lm, err := parse(string(lim))
	if err != nil {
		return 0, false, err
	}
	if rq <= 0 {
		return 0, false, nil
	}
	return lm / rq, true, nil
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Slots returns taskmanager.numberOfTaskSlots from the configuration (1 when
// unset, Flink's default).
func Slots(conf map[string]string) (int32, error) {
	v, ok := conf[KeySlots]
	if !ok || strings.TrimSpace(v) == "" {
		return 1, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("flinkConfiguration %s: %q is not a positive whole number; write e.g. 2", KeySlots, v)
	}
	return int32(n), nil
}

// Parallelism returns the job's parallelism as the operator computes it:
// taskManager.replicas × slots when replicas are given; otherwise the largest
// value of pipeline.jobvertex-parallelism-overrides when set (standalone); else
// job.parallelism. conf is the configuration after flinkConfiguration.
func Parallelism(s *v1beta1.FlinkDeploymentSpec, conf map[string]string) (int32, error) {
	slots, err := Slots(conf)
	if err != nil {
		return 0, err
	}
	if s.TaskManager != nil && s.TaskManager.Replicas != nil {
		return *s.TaskManager.Replicas * slots, nil
	}
	if v := strings.TrimSpace(conf[KeyParallelismOver]); v != "" {
		var best int64
		for _, kv := range strings.Split(v, ",") {
			_, p, ok := strings.Cut(kv, ":")
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if !ok || err != nil {
				return 0, fmt.Errorf("flinkConfiguration %s: %q is not a list of vertex:parallelism pairs; write e.g. 0a448493b4782967b150582570326227:4", KeyParallelismOver, v)
			}
			best = max(best, n)
		}
		if best > 0 {
			return int32(best), nil
		}
	}
	if s.Job == nil {
		return 0, nil
	}
	return s.Job.Parallelism, nil
}

// TaskManagerReplicas returns the number of TaskManager pods:
// spec.taskManager.replicas when set; for an application cluster
// ceil(parallelism / slots) as the operator derives it in standalone mode;
// else 1. conf is the configuration after flinkConfiguration.
func TaskManagerReplicas(s *v1beta1.FlinkDeploymentSpec, conf map[string]string) (int32, error) {
	if s.TaskManager != nil && s.TaskManager.Replicas != nil {
		if *s.TaskManager.Replicas < 1 {
			return 0, fmt.Errorf("spec.taskManager.replicas: %d is less than 1; set 1 or more", *s.TaskManager.Replicas)
		}
		return *s.TaskManager.Replicas, nil
	}
	if s.Job == nil {
		return 1, nil
	}
	p, err := Parallelism(s, conf)
	if err != nil {
		return 0, err
	}
	if p < 1 {
		return 0, fmt.Errorf("spec.job.parallelism: %d is less than 1; set the job's parallelism or spec.taskManager.replicas", p)
	}
	slots, err := Slots(conf)
	if err != nil {
		return 0, err
	}
	return (p + slots - 1) / slots, nil
}

// port returns a port from the configuration.
func port(conf map[string]string, k string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(conf[k]), 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("flinkConfiguration %s: %q is not a single port; flink-gitops needs a fixed port for the Services, write e.g. %s: 8081", k, conf[k], k)
	}
	return int32(n), nil
}

// ConfigFileName is the Flink configuration file of a version: config.yaml
// for Flink 2.x, flink-conf.yaml for 1.x.
func ConfigFileName(v v1beta1.FlinkVersion) string {
	if v.Major() >= 2 {
		return "config.yaml"
	}
	return "flink-conf.yaml"
}

// RenderConfig writes the configuration in the file format of the Flink
// version, keys sorted: standard YAML for 2.x (flat keys; values quoted where
// YAML would read them as something other than the same text), and the legacy
// "key: value" lines of flink-conf.yaml for 1.x, which cannot hold a '#'
// (a comment), a line break, an empty value or surrounding blanks; such a
// value is an error naming the key.
func RenderConfig(v v1beta1.FlinkVersion, conf map[string]string) (string, error) {
	keys := slices.Sorted(maps.Keys(conf))
	if v.Major() >= 2 {
		return renderYAML(keys, conf)
	}
	var b strings.Builder
	for _, k := range keys {
		val := conf[k]
		shown := strconv.Quote(val) // for the errors below, never a secret
		if v1beta1.IsSensitiveKey(k) {
			shown = v1beta1.Redacted
		}
		switch {
		case k == "" || strings.TrimSpace(k) != k || strings.ContainsAny(k, "#\n\r") || strings.Contains(k, ": "):
			return "", fmt.Errorf("flinkConfiguration key %q cannot be written to flink-conf.yaml; use a plain key", k)
		case strings.ContainsAny(val, "\n\r"):
			return "", fmt.Errorf("flinkConfiguration %s: the value has a line break, which flink-conf.yaml (Flink 1.x) cannot hold; write it on one line", k)
		case strings.Contains(val, "#"):
			return "", fmt.Errorf("flinkConfiguration %s: the value %s has a '#', which Flink 1.x reads as the start of a comment; avoid the '#'", k, shown)
		case strings.TrimSpace(val) == "":
			return "", fmt.Errorf("flinkConfiguration %s: the value is empty, and Flink 1.x drops empty values; remove the key or give a value", k)
		case strings.TrimSpace(val) != val:
			return "", fmt.Errorf("flinkConfiguration %s: the value %s has leading or trailing blanks, which Flink 1.x drops; remove them", k, shown)
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(val)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// plainInt matches integers that a YAML 1.2 reader turns back into the same text.
var plainInt = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)

var yaml11Bools = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true}

func renderYAML(keys []string, conf map[string]string) (string, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		if k == "" {
			return "", fmt.Errorf("flinkConfiguration has an empty key; remove it")
		}
		val := conf[k]
		vn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
		switch {
		case plainInt.MatchString(val):
			vn.Tag = "!!int"
		case val == "true" || val == "false":
			vn.Tag = "!!bool"
		case strings.Contains(val, "\n"):
			vn.Style = yaml.LiteralStyle
		case yaml11Bools[strings.ToLower(val)]:
			// YAML 1.1 readers take these for booleans; quote them for any reader.
			vn.Style = yaml.DoubleQuotedStyle
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, vn)
	}
	if len(doc.Content) == 0 {
		return "", nil
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("encode config.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encode config.yaml: %w", err)
	}
	return b.String(), nil
}
