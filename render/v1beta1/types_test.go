package v1beta1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// docs splits a multi-document YAML file into JSON documents.
func docs(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, d := range strings.Split(string(b), "\n---\n") {
		j, err := yaml.YAMLToJSON([]byte(d))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, j)
	}
	return out
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// contains reports the first place where want has something got lacks;
// flinkConfiguration in want is flattened first, since flat keys are what
// the types keep.
func contains(got, want any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %v", path, got)
		}
		if strings.HasSuffix(path, ".flinkConfiguration") {
			flat, err := Flatten(w)
			if err != nil {
				return err.Error()
			}
			for k, v := range flat {
				if fmt.Sprint(g[k]) != v {
					return fmt.Sprintf("%s[%s]: want %q, got %v", path, k, v, g[k])
				}
			}
			return ""
		}
		for k, v := range w {
			if msg := contains(g[k], v, path+"."+k); msg != "" {
				return msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %v, got %v", path, w, got)
		}
		for i := range w {
			if msg := contains(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); msg != "" {
				return msg
			}
		}
	default:
		if strings.Contains(path, ".resources.") {
			// Quantities are kept by value: 2048Mi encodes as 2Gi.
			g, err1 := resource.ParseQuantity(fmt.Sprint(got))
			w, err2 := resource.ParseQuantity(fmt.Sprint(want))
			if err1 == nil && err2 == nil && g.Cmp(w) == 0 {
				return ""
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Sprintf("%s: want %v, got %v", path, want, got)
		}
	}
	return ""
}

// TestRoundTrip decodes the operator's documented example shapes and checks
// that encoding keeps every field (nothing silently dropped) and that a
// second round trip is stable.
func TestRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("want the example files, got %v (%v)", files, err)
	}
	for _, f := range files {
		for i, in := range docs(t, f) {
			t.Run(fmt.Sprintf("%s#%d", filepath.Base(f), i), func(t *testing.T) {
				var kind struct{ Kind string }
				if err := json.Unmarshal(in, &kind); err != nil {
					t.Fatal(err)
				}
				var obj any
				switch kind.Kind {
				case KindFlinkDeployment:
					obj = &FlinkDeployment{}
				case KindFlinkSessionJob:
					obj = &FlinkSessionJob{}
				default:
					t.Fatalf("unexpected kind %q", kind.Kind)
				}
				if err := json.Unmarshal(in, obj); err != nil {
					t.Fatal(err)
				}
				out, err := json.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				if msg := contains(generic(t, out), generic(t, in), ""); msg != "" {
					t.Errorf("field lost in the round trip: %s\nout: %s", msg, out)
				}
				again := obj
				switch obj.(type) {
				case *FlinkDeployment:
					again = &FlinkDeployment{}
				case *FlinkSessionJob:
					again = &FlinkSessionJob{}
				}
				if err := json.Unmarshal(out, again); err != nil {
					t.Fatal(err)
				}
				out2, _ := json.Marshal(again)
				if diff := cmp.Diff(string(out), string(out2)); diff != "" {
					t.Errorf("second round trip differs (-first +second):\n%s", diff)
				}
			})
		}
	}
}

// TestDefaults checks the operator's defaults for absent fields, and that
// explicit zero values are kept (so validation can reject them).
func TestDefaults(t *testing.T) {
	var d FlinkDeployment
	if err := json.Unmarshal(docs(t, "testdata/basic.yaml")[0], &d); err != nil {
		t.Fatal(err)
	}
	j := d.Spec.Job
	if j.State != JobStateRunning || j.UpgradeMode != UpgradeModeStateless || j.Args == nil || len(j.Args) != 0 {
		t.Errorf("job defaults: state=%q upgradeMode=%q args=%#v", j.State, j.UpgradeMode, j.Args)
	}
	if d.Spec.JobManager.Replicas != 1 {
		t.Errorf("jobManager.replicas default = %d, want 1", d.Spec.JobManager.Replicas)
	}
	if d.Spec.TaskManager.Replicas != nil {
		t.Errorf("taskManager.replicas should stay unset, got %d", *d.Spec.TaskManager.Replicas)
	}
	if d.Spec.EffectiveMode() != ModeNative || d.Spec.IsSession() {
		t.Errorf("mode %q session %v", d.Spec.EffectiveMode(), d.Spec.IsSession())
	}
	var jm JobManagerSpec
	if err := json.Unmarshal([]byte(`{"replicas":0}`), &jm); err != nil || jm.Replicas != 0 {
		t.Errorf("explicit replicas 0 decoded as %d (%v)", jm.Replicas, err)
	}
	var js JobSpec
	if err := json.Unmarshal([]byte(`{"state":"suspended","upgradeMode":"last-state","args":["a"]}`), &js); err != nil ||
		js.State != JobStateSuspended || js.UpgradeMode != UpgradeModeLastState || len(js.Args) != 1 {
		t.Errorf("explicit job fields decoded as %+v (%v)", js, err)
	}
}

func TestFlinkConfigurationFlatAndNested(t *testing.T) {
	tests := []struct {
		name, in string
		want     FlinkConfiguration
		err      string
	}{
		{"flat", `{"state.checkpoints.dir":"s3://b/c","parallelism.default":4}`, FlinkConfiguration{"state.checkpoints.dir": "s3://b/c", "parallelism.default": "4"}, ""},
		{"nested", `{"state":{"checkpoints":{"dir":"s3://b/c"}},"parallelism":{"default":4}}`, FlinkConfiguration{"state.checkpoints.dir": "s3://b/c", "parallelism.default": "4"}, ""},
		{"mixed", `{"high-availability":{"type":"kubernetes","storageDir":"file:///ha"},"taskmanager.numberOfTaskSlots":2}`, FlinkConfiguration{"high-availability.type": "kubernetes", "high-availability.storageDir": "file:///ha", "taskmanager.numberOfTaskSlots": "2"}, ""},
		{"list", `{"env.java.opts.all":["-Xss2m","-Dx=y"]}`, FlinkConfiguration{"env.java.opts.all": "-Xss2m;-Dx=y"}, ""},
		{"bool and float", `{"a":true,"b":1.5,"c":null}`, FlinkConfiguration{"a": "true", "b": "1.5", "c": "null"}, ""},
		{"empty", `{}`, FlinkConfiguration{}, ""},
		{"conflict", `{"a.b":"1","a":{"b":"2"}}`, nil, `flinkConfiguration key "a.b" is given twice (once flat, once nested); keep one`},
		{"not a map", `["a"]`, nil, "flinkConfiguration must be a map of config keys to values, got a list"},
		{"list of maps", `{"a":[{"b":1}]}`, nil, `flinkConfiguration key "a": a list item is a map; only lists of scalars are allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c FlinkConfiguration
			err := json.Unmarshal([]byte(tc.in), &c)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlinkVersion(t *testing.T) {
	if !FlinkV2_2.Known() || FlinkVersion("v3_0").Known() || FlinkV1_20.Major() != 1 || FlinkV2_0.Major() != 2 {
		t.Error("FlinkVersion helpers disagree with the enum")
	}
}
