package prcomment

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flink-gitops/flink-gitops/lifecycle"
)

// TestPlanShowsPreflightRejection: with a cluster client, the plan dry-runs
// each change and shows what the apiserver would refuse.
func TestPlanShowsPreflightRejection(t *testing.T) {
	h := newHarness(t)
	kc := fake.NewClientset()
	dryRuns := 0
	kc.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchActionImpl)
		if len(pa.PatchOptions.DryRun) == 0 {
			t.Errorf("the plan applied %s for real", pa.GetName())
		}
		dryRuns++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, pa.GetName(),
			errors.New("ValidatingAdmissionPolicy 'max-parallelism' with binding 'max-parallelism' denied request: too many TaskManagers"))
	})
	h.r.opts.Preflight = func(ctx context.Context, p lifecycle.Planned) error {
		return lifecycle.PreflightPlanned(ctx, kc, p, renderOpts.DefaultConfiguration, "")
	}
	h.push(12, "h1", appSpec(4, "savepoint"))
	if err := h.r.Report(context.Background(), 12); err != nil {
		t.Fatal(err)
	}
	c := h.comment(12)
	want := `the apiserver would reject this: Deployment flink/counter: deployments.apps "counter" is forbidden: ValidatingAdmissionPolicy 'max-parallelism'`
	if !strings.Contains(c, want) || dryRuns == 0 {
		t.Errorf("comment lacks the pre-flight rejection %q (dry-runs %d):\n%s", want, dryRuns, c)
	}
}
