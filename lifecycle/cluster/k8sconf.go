package cluster

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Flink's Kubernetes options that shape the pods (KubernetesConfigOptions).
const (
	KeyServiceAccount   = "kubernetes.service-account"
	KeyJMServiceAccount = "kubernetes.jobmanager.service-account"
	KeyTMServiceAccount = "kubernetes.taskmanager.service-account"
	KeyJMLabels         = "kubernetes.jobmanager.labels"
	KeyTMLabels         = "kubernetes.taskmanager.labels"
	KeyJMAnnotations    = "kubernetes.jobmanager.annotations"
	KeyTMAnnotations    = "kubernetes.taskmanager.annotations"
	KeyJMNodeSelector   = "kubernetes.jobmanager.node-selector"
	KeyTMNodeSelector   = "kubernetes.taskmanager.node-selector"
	KeyJMTolerations    = "kubernetes.jobmanager.tolerations"
	KeyTMTolerations    = "kubernetes.taskmanager.tolerations"
	KeyPullSecrets      = "kubernetes.container.image.pull-secrets"
	KeyRESTAnnotations  = "kubernetes.rest-service.annotations"
)

// podOptions are the Flink options of one component's pod.
type podOptions struct {
	serviceAccount string
	labels         map[string]string
	annotations    map[string]string
	nodeSelector   map[string]string
	tolerations    []corev1.Toleration
	pullSecrets    []corev1.LocalObjectReference
}

// readPodOptions reads a component's pod options from the configuration.
// The service account is, as in Flink, the component's option, else
// spec.serviceAccount (the operator's kubernetes.service-account), else
// kubernetes.service-account from flinkConfiguration; "" keeps the template's.
func readPodOptions(conf map[string]string, specSA, component string) (podOptions, error) {
	saKey, labelsKey, annKey, nodeKey, tolKey := KeyJMServiceAccount, KeyJMLabels, KeyJMAnnotations, KeyJMNodeSelector, KeyJMTolerations
	if component == ComponentTaskManager {
		saKey, labelsKey, annKey, nodeKey, tolKey = KeyTMServiceAccount, KeyTMLabels, KeyTMAnnotations, KeyTMNodeSelector, KeyTMTolerations
	}
	var o podOptions
	var err error
	o.serviceAccount = firstNonBlank(conf[saKey], specSA, conf[KeyServiceAccount])
	if o.labels, err = FlinkMap(conf, labelsKey); err != nil {
		return o, err
	}
	if o.annotations, err = FlinkMap(conf, annKey); err != nil {
		return o, err
	}
	if o.nodeSelector, err = FlinkMap(conf, nodeKey); err != nil {
		return o, err
	}
	if o.tolerations, err = tolerations(conf, tolKey); err != nil {
		return o, err
	}
	for _, s := range strings.Split(conf[KeyPullSecrets], ";") {
		if s = strings.TrimSpace(s); s != "" {
			o.pullSecrets = append(o.pullSecrets, corev1.LocalObjectReference{Name: s})
		}
	}
	return o, nil
}

func firstNonBlank(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// FlinkMap parses a map option in Flink's "k1:v1,k2:v2" form; an unset key
// gives nil.
func FlinkMap(conf map[string]string, key string) (map[string]string, error) {
	v := strings.TrimSpace(conf[key])
	if v == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("flinkConfiguration %s: %q is not a list of key:value pairs; write e.g. %s: team:data,tier:gold", key, v, key)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out, nil
}

// tolerations parses Flink's "key:k,operator:Equal,value:v,effect:NoSchedule;..."
// form.
func tolerations(conf map[string]string, key string) ([]corev1.Toleration, error) {
	var out []corev1.Toleration
	for _, item := range strings.Split(conf[key], ";") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		m, err := FlinkMap(map[string]string{key: item}, key)
		if err != nil {
			return nil, err
		}
		var tol corev1.Toleration
		for k, v := range m {
			switch strings.ToLower(k) {
			case "key":
				tol.Key = v
			case "operator":
				tol.Operator = corev1.TolerationOperator(v)
			case "value":
				tol.Value = v
			case "effect":
				tol.Effect = corev1.TaintEffect(v)
			case "tolerationseconds":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("flinkConfiguration %s: tolerationSeconds %q is not a whole number", key, v)
				}
				tol.TolerationSeconds = &n
			default:
				return nil, fmt.Errorf("flinkConfiguration %s: unknown toleration field %q; use key, operator, value, effect, tolerationSeconds", key, k)
			}
		}
		out = append(out, tol)
	}
	return out, nil
}
