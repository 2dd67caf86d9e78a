package v1beta1

import "testing"

func TestIsSensitiveKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"s3.secret-key", true},
		{"s3.access-key", false},
		{"fs.azure.account.key.acct.blob.core.windows.net", true},
		{"FS.AZURE.ACCOUNT.KEY", true},
		{"security.ssl.keystore-password", true},
		{"metrics.reporter.dghttp.apikey", true},
		{"my.api-key", true},
		{"gs.auth-params", true},
		{"oss.service-key", true},
		{"kubernetes.token", true},
		{"rest.basic-auth", true},
		{"security.kerberos.login.jaas.config", true},
		{"source.http-headers", true},
		{`spec.flinkConfiguration["s3.secret-key"]`, true},
		{"taskmanager.numberOfTaskSlots", false},
		{"state.savepoints.dir", false},
		{"", false},
	} {
		if got := IsSensitiveKey(tc.key); got != tc.want {
			t.Errorf("IsSensitiveKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestRedactAndHash(t *testing.T) {
	conf := map[string]string{"s3.secret-key": "hunter2", "s3.access-key": "AKIA", "parallelism.default": "2"}
	r := RedactConfig(conf)
	if r["s3.secret-key"] != Redacted || r["s3.access-key"] != "AKIA" || r["parallelism.default"] != "2" || conf["s3.secret-key"] != "hunter2" {
		t.Errorf("RedactConfig = %v (input %v)", r, conf)
	}
	h := HashSensitive(conf)
	if h["s3.secret-key"] == "hunter2" || len(h["s3.secret-key"]) != len("sha256:")+64 || h["s3.access-key"] != "AKIA" {
		t.Errorf("HashSensitive = %v", h)
	}
	if again := HashSensitive(h); again["s3.secret-key"] != h["s3.secret-key"] {
		t.Error("hashing a hashed value again changed it")
	}
	if HashSensitive(map[string]string{"a.password": "x"})["a.password"] == HashSensitive(map[string]string{"a.password": "y"})["a.password"] {
		t.Error("different secrets hash the same")
	}
}
