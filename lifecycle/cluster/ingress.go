package cluster

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	ingressName      = regexp.MustCompile(`(?i)\{\{name\}\}`)
	ingressNamespace = regexp.MustCompile(`(?i)\{\{namespace\}\}`)
	ingressScheme    = regexp.MustCompile(`(?i)^https?://`)
)

// IngressHostPath expands an ingress template as the operator's IngressUtils
// does: {{name}} and {{namespace}} (any case) are replaced, http:// is assumed
// when no scheme is given, and the URL's host and path become the rule's host
// and path. Either may be empty.
func IngressHostPath(template, name, namespace string) (host, path string, err error) {
	s := strings.TrimSpace(template)
	if s == "" {
		return "", "", fmt.Errorf("spec.ingress.template: the template is empty; write e.g. {{name}}.{{namespace}}.example.com")
	}
	if !ingressScheme.MatchString(s) {
		s = "http://" + s
	}
	s = ingressName.ReplaceAllLiteralString(s, name)
	s = ingressNamespace.ReplaceAllLiteralString(s, namespace)
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("spec.ingress.template: %q does not expand to a URL: %v; write e.g. {{name}}.example.com or example.com/{{namespace}}/{{name}}", template, err)
	}
	// The path is taken as written (url.URL would re-escape regex characters
	// that ingress controllers such as nginx expect verbatim).
	rest := s[len(u.Scheme)+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && rest[i] == '/' {
		path = rest[i:]
		if j := strings.IndexAny(path, "?#"); j >= 0 {
			path = path[:j]
		}
	}
	return u.Hostname(), path, nil
}

func (b *builder) ingress() (*networkingv1.Ingress, error) {
	spec := b.in.Spec.Ingress
	if spec == nil {
		return nil, nil
	}
	host, path, err := IngressHostPath(spec.Template, b.in.Name, b.in.Namespace)
	if err != nil {
		return nil, err
	}
	meta := b.meta(IngressName(b.in.Name), ComponentIngress)
	labels := map[string]string{}
	maps.Copy(labels, spec.Labels)
	maps.Copy(labels, meta.Labels)
	meta.Labels = labels
	if len(spec.Annotations) > 0 {
		ann := map[string]string{}
		maps.Copy(ann, spec.Annotations)
		maps.Copy(ann, meta.Annotations)
		meta.Annotations = ann
	}
	pathType := networkingv1.PathTypeImplementationSpecific
	rule := networkingv1.IngressRule{
		Host: host,
		IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{
				Path:     path,
				PathType: &pathType,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: RESTServiceName(b.in.Name),
					Port: networkingv1.ServiceBackendPort{Number: b.ports.rest},
				}},
			}},
		}},
	}
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: meta,
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{rule},
			TLS:   spec.TLS,
		},
	}
	if spec.ClassName != "" {
		c := spec.ClassName
		ing.Spec.IngressClassName = &c
	}
	return ing, nil
}
