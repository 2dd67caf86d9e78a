package cluster

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// loadSpec reads a FlinkDeployment from testdata, decoded through the
// v1beta1 types so the operator's defaults apply as in render.
func loadSpec(t *testing.T, file string) *v1beta1.FlinkDeployment {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	d := &v1beta1.FlinkDeployment{}
	if err := yaml.Unmarshal(j, d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d
}

func inputFor(t *testing.T, file string) Input {
	d := loadSpec(t, file)
	return Input{
		Name: d.Name, Namespace: d.Namespace, Spec: &d.Spec,
		SpecHash:     "3f2a9c",
		SourceCommit: "9b1de0c1a2b3c4d5e6f708192a3b4c5d6e7f8091",
	}
}

// marshalObjects renders objects as a multi-document YAML stream.
func marshalObjects(t *testing.T, objs []Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		spec string
		edit func(*Input)
	}{
		{name: "app-v1_20", spec: "app-v1_20.spec.yaml", edit: func(in *Input) {
			in.JobID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
		}},
		{name: "app-v2_2", spec: "app-v2_2.spec.yaml", edit: func(in *Input) {
			in.JobID = "00000000000000000000000000000042"
		}},
		{name: "session", spec: "session.spec.yaml"},
		{name: "podtemplate", spec: "podtemplate.spec.yaml"},
		{name: "ingress", spec: "ingress.spec.yaml"},
		{name: "logging", spec: "logging.spec.yaml"},
		{name: "restore", spec: "restore.spec.yaml", edit: func(in *Input) {
			in.JobID = "5e1f0c0ffee0000000000000000000ab"
			in.SavepointPath = "file:///flink-data/savepoints/savepoint-5e1f0c-0123456789ab"
			in.AllowNonRestoredState = true
			in.OwnerUID = "4c6f1a52-0d9e-4b8e-9d0a-7f3e2b1c0a99"
		}},
		// Native mode: the same specs with spec.mode native.
		{name: "native-app-v2_2", spec: "app-v2_2.spec.yaml", edit: func(in *Input) {
			in.Spec.Mode = v1beta1.ModeNative
			in.Spec.Job.Args = []string{"--window", "5 min", "--sinks", "a;b"}
			in.JobID = "00000000000000000000000000000042"
			in.SavepointPath = "s3://bucket/clicks/savepoints/savepoint-000000-0123456789ab"
		}},
		{name: "native-session", spec: "session.spec.yaml", edit: func(in *Input) {
			in.Spec.Mode = v1beta1.ModeNative
		}},
		{name: "native-podtemplate", spec: "podtemplate.spec.yaml", edit: func(in *Input) {
			in.Spec.Mode = ""
			in.OwnerUID = "4c6f1a52-0d9e-4b8e-9d0a-7f3e2b1c0a99"
		}},
		{name: "defaults", spec: "defaults.spec.yaml", edit: func(in *Input) {
			in.FlinkDefaults = map[string]string{
				"taskmanager.numberOfTaskSlots": "4",
				"rest.port":                     "8082",
				"state.backend.type":            "rocksdb",
				"kubernetes.operator.savepoint.history.max.count":           "5",
				"kubernetes.jobmanager.cpu.amount":                          "0.25",
				"execution.checkpointing.externalized-checkpoint-retention": "DELETE_ON_CANCELLATION",
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := inputFor(t, tc.spec)
			if tc.edit != nil {
				tc.edit(&in)
			}
			objs, err := Build(in)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			got := marshalObjects(t, objs.List())
			golden := filepath.Join("testdata", tc.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./lifecycle/cluster -run TestGolden -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got); if the change is intended, run go test ./lifecycle/cluster -run TestGolden -update:\n%s", golden, diff)
			}
			// Building twice gives the same objects: the builders are pure.
			again, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(got), string(marshalObjects(t, again.List()))); diff != "" {
				t.Errorf("second Build differs:\n%s", diff)
			}
		})
	}
}
