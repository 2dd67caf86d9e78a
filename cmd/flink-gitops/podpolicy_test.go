package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanRefusesPodPolicyViolations: plan exits 2 (invalid) and names
// file, field and fix for a pod template the default policy (baseline,
// the daemon's own Secrets forbidden) refuses, and for an impossible cron.
func TestPlanRefusesPodPolicyViolations(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("repo/app/kustomization.yaml", "resources: [app.yaml]\n")
	write("repo/app/app.yaml", `apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: app, namespace: flink}
spec:
  image: flink:2.2
  flinkVersion: v2_2
  serviceAccount: flink
  flinkConfiguration:
    execution.checkpointing.dir: s3://b/cp
    execution.checkpointing.savepoint-dir: s3://b/sp
    kubernetes.operator.periodic.savepoint.interval: "0 0 0 30 2 ?"
  podTemplate:
    spec:
      hostNetwork: true
      serviceAccountName: flink-gitops
      volumes:
        - {name: creds, secret: {secretName: flink-gitops-git}}
        - {name: root, hostPath: {path: /}}
  jobManager: {resource: {memory: 1g, cpu: 1}}
  taskManager: {resource: {memory: 1g, cpu: 1}}
  job: {jarURI: "local:///opt/flink/usrlib/job.jar", parallelism: 1, upgradeMode: stateless}
`)
	write("config.yaml", "git:\n  url: https://git.example.com/x.git\n  entryPoints: [app]\nkubernetes:\n  allowedNamespaces: [flink]\n  defaultNamespace: flink\n")
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"plan", "--repo", filepath.Join(dir, "repo"), "--config", filepath.Join(dir, "config.yaml")}, &out, &errOut)
	if code != exitInvalid {
		t.Fatalf("plan exit %d, want %d\n%s%s", code, exitInvalid, out.String(), errOut.String())
	}
	for _, want := range []string{
		"app/app.yaml: FlinkDeployment flink/app: spec.podTemplate.spec.hostNetwork: host networking is not allowed (fix: remove hostNetwork",
		"spec.podTemplate.spec.serviceAccountName: pod template runs as service account \"flink-gitops\", not the spec's serviceAccount \"flink\" (fix: ",
		"spec.podTemplate.spec.volumes[0].secret.secretName: Secret \"flink-gitops-git\" belongs to the daemon (fix: ",
		"spec.podTemplate.spec.volumes[1].hostPath: volume \"root\" mounts a host path (fix: ",
		"never fires",
	} {
		if !strings.Contains(out.String()+errOut.String(), want) {
			t.Errorf("plan output lacks %q:\n%s%s", want, out.String(), errOut.String())
		}
	}
}
