package e2e

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// TestPullRequestShowsPreflightRejection (issue 26) is the pull-request
// side of pre-flight on a real Gitea and a real apiserver: a pull request
// whose new JobManager Deployment a ValidatingAdmissionPolicy refuses gets
// "the apiserver would reject this" with the policy's message in its
// comment, and the plan's dry-run leaves the cluster as it was. No Flink
// runs: main holds a suspended job (recorded, no cluster), and the pull
// request resumes it, which pre-flights the same objects as an upgrade.
func TestPullRequestShowsPreflightRejection(t *testing.T) {
	e := newPREnv(t, map[string]string{
		"apps/counter/kustomization.yaml":   kustomization,
		"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 1, "    state: suspended\n"),
	})
	before := e.wait("FlinkDeployment", "counter", "the suspended job recorded", 2*time.Minute, func(r lifecycle.ResourceStatus) bool {
		return r.LifecycleState == "SUSPENDED" && r.LastReconciledCommit != ""
	})
	kc := e.s.Kube.Client()
	ctx := context.Background()
	denyPodLabel(t, kc, e.ns, "preflight-deny")

	e.branch("denied", "counter: resume with a label the namespace refuses", map[string]string{"apps/counter/flinkdeployment.yaml": appSpec("counter", "savepoint", 1,
		"  podTemplate:\n    metadata:\n      labels:\n        preflight-deny: \"yes\"\n")})
	n, err := e.gitea.OpenPullRequest(ctx, e.repo, "denied", "main", "counter: resume")
	if err != nil {
		t.Fatal(err)
	}
	body, took := e.comment(n, "the pre-flight rejection", time.Minute, has("**resume (savepoint)**",
		"the apiserver would reject this: Deployment "+e.ns+"/counter: ", "pods labelled preflight-deny are not allowed here"))
	t.Logf("pre-flight rejection: comment %s after the pull request was opened:\n%s", took.Round(time.Millisecond), body)

	// The dry-run created nothing, and the daemon did not act on the pull
	// request.
	ds, err := kc.AppsV1().Deployments(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Items) != 0 {
		t.Fatalf("the pull request's plan left %d Deployments in %s, the first %s", len(ds.Items), e.ns, ds.Items[0].Name)
	}
	now := e.wait("FlinkDeployment", "counter", "status after the pull request", time.Minute, func(r lifecycle.ResourceStatus) bool { return true })
	if now.LifecycleState != "SUSPENDED" || now.LastReconciledCommit != before.LastReconciledCommit || now.Error != "" {
		t.Fatalf("the pull request changed the resource: %+v -> %+v", before, now)
	}
}
