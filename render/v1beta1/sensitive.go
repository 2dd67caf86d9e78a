package v1beta1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// sensitiveKeyParts are the substrings that make a configuration key
// sensitive: the list of Flink's GlobalConfiguration (Flink 2.x:
// password, secret, fs.azure.account.key, apikey, auth-params,
// service-key, token, basic-auth, jaas.config, http-headers) plus
// "api-key".
var sensitiveKeyParts = []string{
	"password", "secret", "fs.azure.account.key", "apikey", "api-key", "auth-params",
	"service-key", "token", "basic-auth", "jaas.config", "http-headers",
}

// Redacted is what a sensitive value is shown as (Flink's own
// GlobalConfiguration.HIDDEN_CONTENT).
const Redacted = "******"

// IsSensitiveKey reports whether key (a Flink configuration key, or any
// path that contains one, e.g. spec.flinkConfiguration["s3.secret-key"])
// holds a value Flink itself hides: the rule of Flink's
// GlobalConfiguration.isSensitive, a case-insensitive substring match.
// Logs, events, the status branch, pull-request comments and plan output
// show such values as Redacted.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, p := range sensitiveKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// RedactConfig returns a copy of conf with the values of sensitive keys
// replaced by Redacted (nil for nil).
func RedactConfig(conf map[string]string) map[string]string {
	if conf == nil {
		return nil
	}
	out := make(map[string]string, len(conf))
	for k, v := range conf {
		if IsSensitiveKey(k) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// HashSensitive returns conf with each sensitive value replaced by
// "sha256:<hex>" of it: still compared for a change, no longer readable.
func HashSensitive(conf map[string]string) map[string]string {
	if conf == nil {
		return nil
	}
	out := make(map[string]string, len(conf))
	for k, v := range conf {
		if IsSensitiveKey(k) && !strings.HasPrefix(v, "sha256:") {
			sum := sha256.Sum256([]byte(v))
			v = "sha256:" + hex.EncodeToString(sum[:])
		}
		out[k] = v
	}
	return out
}
