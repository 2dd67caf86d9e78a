package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	"github.com/flink-gitops/flink-gitops/tests/testbed/kube"
)

// TestPlanAgainstCluster: plan reads status ConfigMaps from a real
// apiserver and prints the action per resource, without writing anything.
func TestPlanAgainstCluster(t *testing.T) {
	kc := kube.Start(t)
	ctx := context.Background()
	for _, ns := range []string{"flink-dev", "flink-prod"} {
		if _, err := kc.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(config.Sources{File: "../../examples-repo/flink-gitops.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := render.PlanDir(ctx, "../../examples-repo", render.Options{EntryPoints: cfg.Git.EntryPoints, DefaultNamespace: cfg.Kubernetes.DefaultNamespace,
		AllowedNamespaces: cfg.Kubernetes.AllowedNamespaces, DefaultConfiguration: cfg.Flink.DefaultConfiguration})
	if err != nil || !res.OK() {
		t.Fatalf("render: %v", err)
	}
	dev, _ := res.Lookup(render.Key{Kind: "FlinkDeployment", Namespace: "flink-dev", Name: "event-counter"})
	deployed := dev.Deployment.Spec
	deployed.Job.Parallelism = 3
	deployed.Mode = v1beta1.ModeStandalone
	js, _ := json.Marshal(deployed)
	store := &lifecycle.Store{Client: kc.Client()}
	stable := v1beta1.CommonStatus{LifecycleState: v1beta1.LifecycleStable}
	for _, r := range []*lifecycle.Record{
		{Kind: lifecycle.KindDeployment, Namespace: "flink-dev", Name: "event-counter", Deployment: &v1beta1.FlinkDeploymentStatus{
			CommonStatus:         withSource(stable, "apps/event-counter/overlays/dev"),
			ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: string(js)}}},
		{Kind: lifecycle.KindDeployment, Namespace: "flink-dev", Name: "retired", Deployment: &v1beta1.FlinkDeploymentStatus{
			CommonStatus:         withSource(stable, "apps/retired/overlays/dev"),
			ReconciliationStatus: v1beta1.ReconciliationStatus{LastReconciledSpec: string(js)}}},
	} {
		if err := store.Save(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := kc.Client().CoreV1().ConfigMaps("flink-dev").List(ctx, metav1.ListOptions{})

	var out, errOut bytes.Buffer
	code := dispatch(ctx, []string{"plan", "--repo", "../../examples-repo", "--config", "../../examples-repo/flink-gitops.yaml", "--kubeconfig", kc.Kubeconfig}, &out, &errOut)
	if code != exitFindings {
		t.Fatalf("exit %d, want %d (changes)\n%s%s", code, exitFindings, out.String(), errOut.String())
	}
	for _, want := range []string{
		"FlinkDeployment flink-dev/event-counter",
		"upgrade (savepoint)",
		"spec.job.parallelism: 3 -> 1",
		"FlinkDeployment flink-dev/retired",
		"delete",
		"! deletes a running job without a savepoint",
		"FlinkDeployment flink-prod/event-counter",
		"deploy",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, out.String())
		}
	}
	after, _ := kc.Client().CoreV1().ConfigMaps("flink-dev").List(ctx, metav1.ListOptions{})
	if len(after.Items) != len(before.Items) || after.ResourceVersion != before.ResourceVersion && !sameRVs(before.Items, after.Items) {
		t.Errorf("plan wrote to the cluster")
	}
}

func withSource(c v1beta1.CommonStatus, ep string) v1beta1.CommonStatus {
	c.Source = &v1beta1.SourceRef{EntryPoint: ep, Commit: "0123456789abcdef"}
	return c
}

func sameRVs(a, b []corev1.ConfigMap) bool {
	rv := map[string]string{}
	for _, c := range a {
		rv[c.Name] = c.ResourceVersion
	}
	for _, c := range b {
		if rv[c.Name] != c.ResourceVersion {
			return false
		}
	}
	return true
}
