package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// TestResourcesAsTheOperator: jobManager/taskManager resources in both
// forms become the Flink options the operator's FlinkConfigBuilder sets
// (process memory, cpu amount, limit factors), requests falling back to
// limits, the newer form winning over the deprecated one.
func TestResourcesAsTheOperator(t *testing.T) {
	t.Parallel()
	cpu := func(f float64) *float64 { return &f }
	reqs := func(requests, limits map[string]string) *v1beta1.ResourceRequirements {
		r := &v1beta1.ResourceRequirements{}
		for k, v := range requests {
			if r.Requests == nil {
				r.Requests = map[corev1.ResourceName]v1beta1.Quantity{}
			}
			r.Requests[corev1.ResourceName(k)] = v1beta1.Quantity(v)
		}
		for k, v := range limits {
			if r.Limits == nil {
				r.Limits = map[corev1.ResourceName]v1beta1.Quantity{}
			}
			r.Limits[corev1.ResourceName(k)] = v1beta1.Quantity(v)
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		res     *v1beta1.Resource
		reqs    *v1beta1.ResourceRequirements
		want    map[string]string
		wantErr string
	}{
		{name: "requests in Flink syntax", reqs: reqs(map[string]string{"memory": "2048m", "cpu": "500m"}, nil),
			want: map[string]string{KeyJMProcessMemory: "2 gb", KeyJMCPU: "0.5"}},
		{name: "requests as quantities", reqs: reqs(map[string]string{"memory": "1.5Gi", "cpu": "1"}, nil),
			want: map[string]string{KeyJMProcessMemory: "1536 mb", KeyJMCPU: "1"}},
		{name: "limits only: requests fall back", reqs: reqs(nil, map[string]string{"memory": "2g", "cpu": "2"}),
			want: map[string]string{KeyJMProcessMemory: "2 gb", KeyJMCPU: "2"}},
		{name: "limit factors", reqs: reqs(map[string]string{"memory": "2048m", "cpu": "1"}, map[string]string{"memory": "4096m", "cpu": "1500m"}),
			want: map[string]string{KeyJMProcessMemory: "2 gb", KeyJMCPU: "1", KeyJMMemLimit: "2", KeyJMCPULimit: "1.5"}},
		{name: "limit factor across forms", reqs: reqs(map[string]string{"memory": "1024m"}, map[string]string{"memory": "2Gi"}),
			want: map[string]string{KeyJMProcessMemory: "1 gb", KeyJMMemLimit: "2"}},
		{name: "the newer form wins", res: &v1beta1.Resource{Memory: "8g", CPU: cpu(4)}, reqs: reqs(map[string]string{"memory": "1g"}, nil),
			want: map[string]string{KeyJMProcessMemory: "1 gb"}},
		{name: "empty resources keep the deprecated block", res: &v1beta1.Resource{Memory: "1500M", CPU: cpu(0.5)}, reqs: &v1beta1.ResourceRequirements{},
			want: map[string]string{KeyJMProcessMemory: "1500 mb", KeyJMCPU: "0.5"}},
		{name: "deprecated block, Kubernetes quantity", res: &v1beta1.Resource{Memory: "2Gi"}, want: map[string]string{KeyJMProcessMemory: "2 gb"}},
		{name: "bad memory", reqs: reqs(map[string]string{"memory": "2 gigs"}, nil), wantErr: "spec.jobManager.resources memory"},
		{name: "bad cpu", reqs: reqs(map[string]string{"cpu": "lots"}, nil), wantErr: "spec.jobManager.resources cpu"},
		{name: "bad cpu limit", reqs: reqs(map[string]string{"cpu": "1"}, map[string]string{"cpu": "x"}), wantErr: "spec.jobManager.resources.limits.cpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := map[string]string{}
			err := applyResources(conf, "jobmanager", "spec.jobManager", tc.res, tc.reqs, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, conf); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

// TestMemoryMinimum: a process size below what Flink's memory model can
// start with is refused with the smallest size that fits, and that size
// (and nothing below it) fits, for both components and with tuned options.
func TestMemoryMinimum(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		component string
		conf      map[string]string
		wantMin   string
	}{
		{ComponentJobManager, map[string]string{}, "577 mb"},
		{ComponentTaskManager, map[string]string{}, ""},
		{ComponentJobManager, map[string]string{"jobmanager.memory.off-heap.size": "512m"}, "961 mb"},
		{ComponentTaskManager, map[string]string{"taskmanager.memory.managed.fraction": "0"}, ""},
	} {
		key := "jobmanager.memory.process.size"
		if tc.component == ComponentTaskManager {
			key = "taskmanager.memory.process.size"
		}
		conf := func(size string) map[string]string {
			c := map[string]string{key: size}
			for k, v := range tc.conf {
				c[k] = v
			}
			return c
		}
		err := CheckProcessMemory(conf("256m"), tc.component, "spec.x")
		if err == nil || !strings.Contains(err.Error(), "spec.x: 256 mb is below") {
			t.Fatalf("%s %v: 256m accepted or unclear: %v", tc.component, tc.conf, err)
		}
		_, min, _ := strings.Cut(err.Error(), "give it at least ")
		if tc.wantMin != "" && min != tc.wantMin {
			t.Errorf("%s %v: minimum %q, want %q", tc.component, tc.conf, min, tc.wantMin)
		}
		b, perr := ParseFlinkMemory(min)
		if perr != nil {
			t.Fatalf("minimum %q does not parse: %v", min, perr)
		}
		if err := CheckProcessMemory(conf(FormatFlinkMemory(b)), tc.component, "spec.x"); err != nil {
			t.Errorf("%s %v: the named minimum %s is refused: %v", tc.component, tc.conf, min, err)
		}
		if err := CheckProcessMemory(conf(FormatFlinkMemory(b-mib)), tc.component, "spec.x"); err == nil {
			t.Errorf("%s %v: 1 MiB below the named minimum %s is accepted", tc.component, tc.conf, min)
		}
		t.Logf("%s %v: minimum %s", tc.component, tc.conf, min)
	}
	// Fine-grained memory is Flink's to check.
	if err := CheckProcessMemory(map[string]string{"jobmanager.memory.process.size": "256m", "jobmanager.memory.heap.size": "64m"}, ComponentJobManager, "f"); err != nil {
		t.Errorf("fine-grained options: %v", err)
	}
}

// TestConfigErrorsHideSecrets: an error about a secret key's value does not
// print the value.
func TestConfigErrorsHideSecrets(t *testing.T) {
	_, err := RenderConfig(v1beta1.FlinkV1_20, map[string]string{"s3.secret-key": "abc#hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "s3.secret-key") {
		t.Errorf("error %v: want the key named and the value hidden", err)
	}
	_, err = RenderConfig(v1beta1.FlinkV1_20, map[string]string{"a.plain": "x#y"})
	if err == nil || !strings.Contains(err.Error(), `"x#y"`) {
		t.Errorf("error %v: a plain value should be shown", err)
	}
}
