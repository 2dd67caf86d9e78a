package helm

import (
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/tests/manifests"
)

// filesValues mounts every credential file the daemon can read: git over
// SSH with a passphrase, signature keys, Flink REST TLS with a client
// certificate, artifact header/CA/S3 files, and a jar directory through
// extraVolumes.
func filesValues() map[string]any {
	return map[string]any{
		"secrets": map[string]any{
			"webhook":   map[string]any{"existingSecret": "hooks"},
			"ssh":       map[string]any{"existingSecret": "git-ssh", "withPassphrase": true},
			"verify":    map[string]any{"existingSecret": "signers", "openpgpKeys": []any{"alice.asc", "bob.asc"}, "sshAllowedSigners": "allowed_signers"},
			"flinkTLS":  map[string]any{"existingSecret": "flink-rest-tls", "clientCertificate": true},
			"artifacts": map[string]any{"existingSecret": "artifact-creds"},
		},
		"extraVolumes":      []any{map[string]any{"name": "jars", "persistentVolumeClaim": map[string]any{"claimName": "flink-jars", "readOnly": true}}},
		"extraVolumeMounts": []any{map[string]any{"name": "jars", "mountPath": "/opt/jars", "readOnly": true}},
		"config": map[string]any{
			"git": map[string]any{"url": "ssh://git@git.example.com/platform/flink.git", "entryPoints": []any{"prod"}},
			"artifacts": map[string]any{
				"allowedSchemes": []any{"https", "s3", "file"},
				"fileDirectory":  "/opt/jars/releases",
				"headers":        []any{"repo.example.com:Authorization:/var/run/secrets/flink-gitops/artifacts/repo-token"},
				"caFile":         "/var/run/secrets/flink-gitops/artifacts/ca.crt",
				"s3": map[string]any{"allowedBuckets": []any{"jars"},
					"accessKeyIDFile":     "/var/run/secrets/flink-gitops/artifacts/s3-key-id",
					"secretAccessKeyFile": "/var/run/secrets/flink-gitops/artifacts/s3-secret"},
			},
		},
	}
}

// configFiles walks a rendered config and returns every file or directory
// path it names (keys ending in File, Files or Directory, and the value
// file of each artifacts.headers rule), keyed by path.
func configFiles(key string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			configFiles(strings.TrimPrefix(key+"."+k, "."), e, out)
		}
	case []any:
		for _, e := range v {
			configFiles(key, e, out)
		}
	case string:
		last := key[strings.LastIndex(key, ".")+1:]
		switch {
		case key == "artifacts.headers":
			if parts := strings.SplitN(v, ":", 3); len(parts) == 3 {
				out[parts[2]] = key
			}
		case strings.HasSuffix(last, "File") || strings.HasSuffix(last, "Files") || strings.HasSuffix(last, "Directory"):
			out[v] = key
		}
	}
}

// TestConfigFilesMounted: every file the rendered config names is in a
// directory the rendered pod mounts (a directory key: at or under a
// mount), each mount is of a volume of the pod, and the Secret volumes are
// the Secrets the values name; the config then loads in the daemon with
// those files present.
func TestConfigFilesMounted(t *testing.T) {
	for name, vals := range map[string]map[string]any{"default": withSecrets(), "files": filesValues(), "namespaced": namespacedValues()} {
		t.Run(name, func(t *testing.T) {
			objs := manifests.Split(t, must(render(t, "flink-gitops", "flink-gitops", vals)))
			cm := manifests.Convert[corev1.ConfigMap](t, manifests.Find(objs, "ConfigMap", "", ""))
			pod := manifests.Convert[appsv1.Deployment](t, manifests.Find(objs, "Deployment", "", "")).Spec.Template.Spec
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{}
			configFiles("", cfg, files)
			mounts := map[string]string{}
			for _, m := range pod.Containers[0].VolumeMounts {
				mounts[m.MountPath] = m.Name
				if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
					t.Errorf("mount %s is of volume %s, which the pod does not have", m.MountPath, m.Name)
				}
			}
			var secretFiles []string
			for p, key := range files {
				dir := path.Dir(p)
				if strings.HasSuffix(key, "Directory") {
					dir = p
					for dir != "/" && mounts[dir] == "" {
						dir = path.Dir(dir)
					}
				}
				if mounts[dir] == "" || !path.IsAbs(p) {
					t.Errorf("config %s names %s, but the pod mounts nothing at %s", key, p, dir)
				}
				if rel, ok := strings.CutPrefix(p, "/var/run/secrets/flink-gitops/"); ok {
					secretFiles = append(secretFiles, rel)
				}
			}
			if name == "files" {
				if len(files) != 15 {
					t.Errorf("config names %d files, want 15 (every group of filesValues and the webhook secret): %v", len(files), files)
				}
				want := map[string]string{"ssh-key": "git-ssh", "verify-keys": "signers", "flink-tls": "flink-rest-tls", "artifacts": "artifact-creds", "webhook-secret": "hooks"}
				for _, v := range pod.Volumes {
					if s, ok := want[v.Name]; ok {
						if v.Secret == nil || v.Secret.SecretName != s || v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
							t.Errorf("volume %s: %+v, want Secret %s with mode 0440", v.Name, v.VolumeSource, s)
						}
						delete(want, v.Name)
					}
				}
				if len(want) != 0 {
					t.Errorf("volumes missing: %v", want)
				}
			}
			loadConfig(t, cm, "flink-gitops", secretFiles...)
		})
	}
}

// TestFilesRefusals: values that would mount a file nothing reads, or point
// the config at a file nothing mounts, fail the install with the fix.
func TestFilesRefusals(t *testing.T) {
	with := func(mod func(v map[string]any)) map[string]any {
		v := filesValues()
		mod(v)
		return v
	}
	secrets := func(v map[string]any) map[string]any { return v["secrets"].(map[string]any) }
	artifacts := func(v map[string]any) map[string]any {
		return v["config"].(map[string]any)["artifacts"].(map[string]any)
	}
	cases := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"token and ssh", with(func(v map[string]any) { secrets(v)["git"] = map[string]any{"token": "x"} }), "secrets.git and secrets.ssh"},
		{"passphrase without secret", with(func(v map[string]any) { secrets(v)["ssh"] = map[string]any{"withPassphrase": true} }), "withPassphrase"},
		{"verify secret without keys", with(func(v map[string]any) { secrets(v)["verify"] = map[string]any{"existingSecret": "s"} }), "openpgpKeys"},
		{"verify keys without secret", with(func(v map[string]any) { secrets(v)["verify"] = map[string]any{"openpgpKeys": []any{"a.asc"}} }), "secrets.verify names keys"},
		{"tls secret without files", with(func(v map[string]any) {
			secrets(v)["flinkTLS"] = map[string]any{"existingSecret": "s", "ca": false}
		}), "clientCertificate"},
		{"client certificate without secret", with(func(v map[string]any) { secrets(v)["flinkTLS"] = map[string]any{"clientCertificate": true} }), "flinkTLS.existingSecret is empty"},
		{"artifact file without secret", with(func(v map[string]any) { delete(secrets(v), "artifacts") }), "secrets.artifacts.existingSecret is empty"},
		{"file directory not mounted", with(func(v map[string]any) { artifacts(v)["fileDirectory"] = "/srv/jars" }), "extraVolumeMounts"},
		{"file directory a prefix of a mount", with(func(v map[string]any) { artifacts(v)["fileDirectory"] = "/opt/ja" }), "/opt/ja"},
		{"chart-owned flink.tls", with(func(v map[string]any) {
			v["config"].(map[string]any)["flink"] = map[string]any{"tls": map[string]any{"caFile": "/x"}}
		}), "tls"},
		{"chart-owned sshKeyFile", with(func(v map[string]any) {
			v["config"].(map[string]any)["git"].(map[string]any)["auth"] = map[string]any{"sshKeyFile": "/x"}
		}), "sshKeyFile"},
		{"unknown ssh key", with(func(v map[string]any) { secrets(v)["ssh"] = map[string]any{"existingSecret": "s", "key": "id_ed25519"} }), "key"},
		{"mount without path", with(func(v map[string]any) { v["extraVolumeMounts"] = []any{map[string]any{"name": "jars"}} }), "mountPath"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, "flink-gitops", "flink-gitops", c.vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want an error naming %q, got %v", c.want, err)
			}
		})
	}
}
