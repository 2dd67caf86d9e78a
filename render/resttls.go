package render

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// Configuration keys that decide how the daemon reaches a JobManager's
// REST API. The security.ssl.rest.* keys are Flink's and go to Flink as
// they are; the flink-gitops.rest.tls.* keys are the daemon's own.
const (
	KeyRESTSSLEnabled    = "security.ssl.rest.enabled"
	KeyRESTSSLMutual     = "security.ssl.rest.authentication-enabled"
	KeyRESTTLSSecret     = "flink-gitops.rest.tls.secret"
	KeyRESTTLSServerName = "flink-gitops.rest.tls.server-name"

	keyRESTTruststore   = "security.ssl.rest.truststore"
	keySSLTruststore    = "security.ssl.truststore"
	restTLSSecretLayout = "ca.crt (PEM CA certificates), and tls.crt/tls.key (PEM client certificate and key) for mutual TLS"
)

// RESTTLSDefaults is the TLS material the daemon has of its own (its
// flink.tls configuration), which a cluster that names no Secret uses.
type RESTTLSDefaults struct {
	// CA: the daemon has CA certificates to verify JobManagers with.
	CA bool
	// ClientCert: the daemon has a client certificate and key.
	ClientCert bool
}

// RESTTLS is how a cluster's effective Flink configuration says its REST
// API is reached.
type RESTTLS struct {
	// Enabled: the REST endpoint speaks HTTPS (security.ssl.rest.enabled).
	Enabled bool
	// Mutual: it requires a client certificate
	// (security.ssl.rest.authentication-enabled, with Enabled).
	Mutual bool
	// Secret names a Secret in the cluster's namespace holding ca.crt and,
	// for mutual TLS, tls.crt and tls.key; empty means the daemon's own.
	Secret string
	// ServerName is the name the JobManager's certificate is verified
	// against instead of the REST URL's host.
	ServerName string
}

// RESTTLSOf reads conf (a spec's configuration over the daemon's defaults).
func RESTTLSOf(conf map[string]string) RESTTLS {
	on := func(k string) bool { return strings.EqualFold(strings.TrimSpace(conf[k]), "true") }
	t := RESTTLS{Enabled: on(KeyRESTSSLEnabled), Secret: strings.TrimSpace(conf[KeyRESTTLSSecret]),
		ServerName: strings.TrimSpace(conf[KeyRESTTLSServerName])}
	t.Mutual = t.Enabled && on(KeyRESTSSLMutual)
	return t
}

// restTLS refuses a cluster whose REST API the daemon could not reach the
// way its configuration asks: HTTPS without a CA to verify it with, mutual
// TLS without a client certificate, a Secret or server name that would be
// ignored, a Secret name that cannot exist or is the daemon's own.
func (v *validator) restTLS(conf v1beta1.FlinkConfiguration) []fieldError {
	t := RESTTLSOf(conf)
	field := func(k string) string { return mapKey("spec.flinkConfiguration", k) }
	secretFix := fmt.Sprintf("create a Secret in the resource's namespace with %s, and set %s to its name (cert-manager's Certificate Secrets have this layout); or configure flink.tls in the daemon config",
		restTLSSecretLayout, KeyRESTTLSSecret)
	var errs []fieldError
	if !t.Enabled {
		for _, k := range []string{KeyRESTTLSSecret, KeyRESTTLSServerName} {
			if strings.TrimSpace(conf[k]) != "" {
				errs = append(errs, fieldError{Field: field(k),
					Message: fmt.Sprintf("%s is set but %s is not true, so the daemon talks plain HTTP to the JobManager and would ignore it", k, KeyRESTSSLEnabled),
					Fix:     fmt.Sprintf("set %s: \"true\" (with Flink's security.ssl.rest.keystore settings), or remove %s", KeyRESTSSLEnabled, k)})
			}
		}
		return errs
	}
	if t.Secret != "" {
		if msgs := validation.IsDNS1123Subdomain(t.Secret); len(msgs) > 0 {
			errs = append(errs, fieldError{Field: field(KeyRESTTLSSecret), Message: fmt.Sprintf("%q is not a Secret name: %s", t.Secret, strings.Join(msgs, "; ")),
				Fix: "name a Secret of the resource's namespace"})
		} else if slices.Contains(v.opts.PodPolicy.ForbiddenSecrets, t.Secret) {
			errs = append(errs, fieldError{Field: field(KeyRESTTLSSecret), Message: fmt.Sprintf("Secret %s holds the daemon's own credentials", t.Secret),
				Fix: "give the cluster's REST TLS material a Secret of its own"})
		}
		return errs
	}
	if !v.opts.RESTTLS.CA {
		msg := fmt.Sprintf("%s is true but the daemon has no CA certificate to verify the JobManager's REST certificate with", KeyRESTSSLEnabled)
		fix := secretFix
		if store := confFirst(conf, keyRESTTruststore, keySSLTruststore); store != "" {
			msg += fmt.Sprintf("; the daemon reads PEM only, not the truststore %s (that one is for Flink's own side)", store)
			fix = "export the CA certificate as PEM (keytool -exportcert -rfc -keystore <truststore> -alias <alias>), " + fix
		}
		errs = append(errs, fieldError{Field: field(KeyRESTSSLEnabled), Message: msg, Fix: fix})
	}
	if t.Mutual && !v.opts.RESTTLS.ClientCert {
		errs = append(errs, fieldError{Field: field(KeyRESTSSLMutual),
			Message: fmt.Sprintf("%s is true but the daemon has no client certificate to present to the JobManager", KeyRESTSSLMutual),
			Fix:     "put tls.crt and tls.key (PEM, signed by a CA in the JobManager's security.ssl.rest.truststore) in the Secret named by " + KeyRESTTLSSecret + ", or set flink.tls.certFile and flink.tls.keyFile in the daemon config"})
	}
	return errs
}

// sessionJobRESTTLS refuses REST TLS keys in a session job: the job is
// reached through its session cluster, whose FlinkDeployment says how.
func sessionJobRESTTLS(conf v1beta1.FlinkConfiguration) []fieldError {
	var errs []fieldError
	for _, k := range []string{KeyRESTSSLEnabled, KeyRESTSSLMutual, KeyRESTTLSSecret, KeyRESTTLSServerName} {
		if _, ok := conf[k]; ok {
			errs = append(errs, fieldError{Field: mapKey("spec.flinkConfiguration", k),
				Message: fmt.Sprintf("%s has no effect on a session job: the daemon reaches it through its session cluster's REST API", k),
				Fix:     "set it in the session cluster's FlinkDeployment and remove it here"})
		}
	}
	return errs
}
