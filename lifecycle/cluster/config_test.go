package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

func ptr[T any](v T) *T { return &v }

func TestParseResourceMemory(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "2048m", want: 2048 * mib},
		{in: "2g", want: 2 * gib},
		{in: "2G", want: 2 * gib}, // Flink's units are binary and case-insensitive
		{in: "2 gb", want: 2 * gib},
		{in: "1024", want: 1024},
		{in: "512 mebibytes", want: 512 * mib},
		{in: "2Gi", want: 2 * gib},
		{in: "2GI", want: 2 * gib},
		{in: "2GiB", want: 2 * gib},
		{in: "1.5Gi", want: 1536 * mib},
		{in: "1.5g", want: 1_500_000_000}, // not Flink syntax: a Kubernetes quantity, decimal
		{in: "2gb ", want: 2 * gib},
		{in: "2gbx", wantErr: true},
		{in: "lots", wantErr: true},
		{in: "", wantErr: true},
		{in: "0.5", wantErr: true}, // half a byte
	}
	for _, tc := range cases {
		got, err := ParseResourceMemory(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseResourceMemory(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseResourceMemory(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestFormatFlinkMemory(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{
		2 * gib: "2 gb", 1536 * mib: "1536 mb", 1: "1 bytes", 0: "0 bytes",
		3 * kib: "3 kb", 5 * (int64(1) << 40): "5 tb", 1_500_000_000: "1500000000 bytes",
	} {
		if got := FormatFlinkMemory(in); got != want {
			t.Errorf("FormatFlinkMemory(%d) = %q, want %q", in, got, want)
		}
		if back, err := ParseFlinkMemory(FormatFlinkMemory(in)); err != nil || back != in {
			t.Errorf("ParseFlinkMemory(FormatFlinkMemory(%d)) = %d, %v", in, back, err)
		}
	}
}

func TestProcessMemory(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		conf    map[string]string
		comp    string
		want    int64
		wantErr string
	}{
		{name: "process size", conf: map[string]string{"jobmanager.memory.process.size": "1600m"}, comp: "jobmanager", want: 1600 * mib},
		{name: "process beats flink", conf: map[string]string{"taskmanager.memory.process.size": "4g", "taskmanager.memory.flink.size": "1g"}, comp: "taskmanager", want: 4 * gib},
		// 1g + 256m metaspace = 1280m; overhead 1280m/9 = 142.2m is below the 192m minimum.
		{name: "flink size, overhead at min", conf: map[string]string{"jobmanager.memory.flink.size": "1g"}, comp: "jobmanager", want: 1280*mib + 192*mib},
		// 4g + 256m = 4352m; overhead 4352m × 0.1f/(1-0.1f) = 483.6m, between
		// min and max. The value is what Flink 1.20's TaskExecutorProcessUtils
		// computes (the float fraction makes it 8 bytes more than 4352m/9).
		{name: "flink size, overhead by fraction", conf: map[string]string{"taskmanager.memory.flink.size": "4g"}, comp: "taskmanager", want: 5070447510},
		// 16g + 256m; overhead would be 1.8g, capped at 1g.
		{name: "flink size, overhead at max", conf: map[string]string{"taskmanager.memory.flink.size": "16g"}, comp: "taskmanager", want: 16*gib + 256*mib + gib},
		// Also checked against Flink 1.20 and 2.2 in the e2e tests.
		{name: "custom fraction and max", conf: map[string]string{
			"taskmanager.memory.flink.size":            "8g",
			"taskmanager.memory.jvm-overhead.fraction": "0.2", "taskmanager.memory.jvm-overhead.max": "4g",
		}, comp: "taskmanager", want: 11072962601},
		{name: "custom metaspace", conf: map[string]string{"jobmanager.memory.flink.size": "2g", "jobmanager.memory.jvm-metaspace.size": "512m"},
			comp: "jobmanager", want: 2982616182},
		// 1g heap + 128m off-heap + 256m metaspace + 192m overhead: Flink's classic 1600m.
		{name: "jobmanager heap", conf: map[string]string{"jobmanager.memory.heap.size": "1g"}, comp: "jobmanager", want: 1600 * mib},
		// Fine-grained TaskManager memory; the value is Flink's (see the e2e tests).
		{name: "taskmanager heap and managed", conf: map[string]string{"taskmanager.memory.task.heap.size": "1g", "taskmanager.memory.managed.size": "512m"},
			comp: "taskmanager", want: 2618074207},
		{name: "missing", conf: map[string]string{"taskmanager.memory.task.heap.size": "1g"}, comp: "taskmanager",
			wantErr: "set spec.taskManager.resource.memory, or taskmanager.memory.process.size, taskmanager.memory.flink.size or taskmanager.memory.task.heap.size with taskmanager.memory.managed.size"},
		{name: "bad size", conf: map[string]string{"jobmanager.memory.process.size": "2Gi"}, comp: "jobmanager",
			wantErr: "jobmanager.memory.process.size"},
		{name: "bad fraction", conf: map[string]string{"jobmanager.memory.flink.size": "1g", "jobmanager.memory.jvm-overhead.fraction": "1.5"}, comp: "jobmanager",
			wantErr: "not a fraction"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProcessMemory(tc.conf, tc.comp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ProcessMemory = %d (%s), want %d (%s)", got, FormatFlinkMemory(got), tc.want, FormatFlinkMemory(tc.want))
			}
		})
	}
}

func TestTaskManagerReplicasAndParallelism(t *testing.T) {
	t.Parallel()
	job := func(p int32) *v1beta1.JobSpec { return &v1beta1.JobSpec{Parallelism: p} }
	cases := []struct {
		name            string
		spec            v1beta1.FlinkDeploymentSpec
		conf            map[string]string
		replicas, paral int32
		wantErr         string
	}{
		{name: "one slot", spec: v1beta1.FlinkDeploymentSpec{Job: job(4)}, replicas: 4, paral: 4},
		{name: "rounds up", spec: v1beta1.FlinkDeploymentSpec{Job: job(5)}, conf: map[string]string{KeySlots: "2"}, replicas: 3, paral: 5},
		{name: "exact", spec: v1beta1.FlinkDeploymentSpec{Job: job(6)}, conf: map[string]string{KeySlots: "3"}, replicas: 2, paral: 6},
		{name: "more slots than parallelism", spec: v1beta1.FlinkDeploymentSpec{Job: job(2)}, conf: map[string]string{KeySlots: "8"}, replicas: 1, paral: 2},
		{name: "replicas win over parallelism", spec: v1beta1.FlinkDeploymentSpec{Job: job(100), TaskManager: &v1beta1.TaskManagerSpec{Replicas: ptr(int32(3))}},
			conf: map[string]string{KeySlots: "2"}, replicas: 3, paral: 6},
		{name: "parallelism overrides", spec: v1beta1.FlinkDeploymentSpec{Job: job(2)},
			conf: map[string]string{KeySlots: "2", KeyParallelismOver: "a1:3, b2:7"}, replicas: 4, paral: 7},
		{name: "session default", spec: v1beta1.FlinkDeploymentSpec{}, replicas: 1},
		{name: "session replicas", spec: v1beta1.FlinkDeploymentSpec{TaskManager: &v1beta1.TaskManagerSpec{Replicas: ptr(int32(5))}}, replicas: 5, paral: 5},
		{name: "zero parallelism", spec: v1beta1.FlinkDeploymentSpec{Job: job(0)}, wantErr: "spec.job.parallelism"},
		{name: "bad slots", spec: v1beta1.FlinkDeploymentSpec{Job: job(2)}, conf: map[string]string{KeySlots: "two"}, wantErr: KeySlots},
		{name: "bad overrides", spec: v1beta1.FlinkDeploymentSpec{Job: job(2)}, conf: map[string]string{KeyParallelismOver: "a1=3"}, wantErr: KeyParallelismOver},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TaskManagerReplicas(&tc.spec, tc.conf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.replicas {
				t.Errorf("TaskManagerReplicas = %d, want %d", got, tc.replicas)
			}
			p, err := Parallelism(&tc.spec, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			if p != tc.paral {
				t.Errorf("Parallelism = %d, want %d", p, tc.paral)
			}
		})
	}
}

func TestConfigFileName(t *testing.T) {
	t.Parallel()
	for v, want := range map[v1beta1.FlinkVersion]string{
		v1beta1.FlinkV1_17: "flink-conf.yaml", v1beta1.FlinkV1_20: "flink-conf.yaml",
		v1beta1.FlinkV2_0: "config.yaml", v1beta1.FlinkV2_2: "config.yaml",
	} {
		if got := ConfigFileName(v); got != want {
			t.Errorf("ConfigFileName(%s) = %q, want %q", v, got, want)
		}
	}
}

// awkward holds values a naive "key: value" writer would get wrong in YAML.
var awkward = map[string]string{
	"a.bool":          "true",
	"a.int":           "42",
	"a.negative":      "-7",
	"a.version":       "1.10",
	"a.octal":         "0755",
	"a.yes":           "yes",
	"a.on":            "On",
	"a.y":             "y",
	"a.null":          "null",
	"a.tilde":         "~",
	"a.empty":         "",
	"a.colon":         "host: port",
	"a.hash":          "value # not a comment",
	"a.leading.space": "  padded",
	"a.quote":         `it's "quoted"`,
	"a.star":          "*alias",
	"a.brace":         "{not: a map}",
	"a.list":          "[1, 2]",
	"a.semicolon":     "a;b;c",
	"a.map":           "k1:v1,k2:v2",
	"a.multiline":     "line one\nline two\n",
	"a.duration":      "5 min",
	"a.float":         "0.5",
	"a.True":          "True",
	"a.url":           "s3://bucket/path?x=1#frag",
	"a.percent":       "%d{yyyy}",
	"a.unicode":       "Grüße",
	"key with space":  "v",
	"a.dollar":        "$internal",
}

func TestRenderConfigV2RoundTrips(t *testing.T) {
	t.Parallel()
	text, err := RenderConfig(v1beta1.FlinkV2_2, awkward)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal([]byte(text), &back); err != nil {
		t.Fatalf("config.yaml does not parse: %v\n%s", err, text)
	}
	got := map[string]string{}
	for k, v := range back {
		got[k] = fmt.Sprint(v)
	}
	if diff := cmp.Diff(awkward, got); diff != "" {
		t.Errorf("config.yaml does not read back as written (-want +got):\n%s\n%s", diff, text)
	}
	// Integers and booleans stay plain; text that YAML would read otherwise is quoted.
	for _, line := range []string{"a.int: 42\n", "a.bool: true\n", `a.version: "1.10"` + "\n", `a.yes: "yes"` + "\n", `a.empty: ""` + "\n", "a.duration: 5 min\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("config.yaml lacks %q:\n%s", line, text)
		}
	}
}

func TestRenderConfigV1(t *testing.T) {
	t.Parallel()
	got, err := RenderConfig(v1beta1.FlinkV1_20, map[string]string{
		"taskmanager.numberOfTaskSlots": "2", "a.colon": "host: port", "a.url": "s3://b/p?x=1", "a.list": "a;b",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "a.colon: host: port\na.list: a;b\na.url: s3://b/p?x=1\ntaskmanager.numberOfTaskSlots: 2\n"
	if got != want {
		t.Errorf("flink-conf.yaml =\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []map[string]string{
		{"a.hash": "x # y"}, {"a.multi": "x\ny"}, {"a.empty": ""}, {"a.space": " x"}, {"bad: key": "x"}, {"": "x"},
	} {
		if _, err := RenderConfig(v1beta1.FlinkV1_20, bad); err == nil {
			t.Errorf("RenderConfig(v1_20, %q) succeeded; Flink 1.x would misread it", bad)
		}
	}
}

func TestFlinkConfigPrecedence(t *testing.T) {
	t.Parallel()
	spec := &v1beta1.FlinkDeploymentSpec{
		Mode: v1beta1.ModeStandalone, Image: "flink:2.2", FlinkVersion: v1beta1.FlinkV2_2,
		FlinkConfiguration: v1beta1.FlinkConfiguration{
			"rest.port":                                       "9000",    // spec beats the builder default
			"state.backend.type":                              "hashmap", // spec beats the daemon default
			"taskmanager.memory.process.size":                 "8g",      // loses to spec.taskManager.resource.memory
			"parallelism.default":                             "99",      // loses to spec.job.parallelism
			"kubernetes.operator.savepoint.history.max.count": "3",
		},
		JobManager:  &v1beta1.JobManagerSpec{Replicas: 1, Resource: &v1beta1.Resource{Memory: "1g", CPU: ptr(0.5)}},
		TaskManager: &v1beta1.TaskManagerSpec{Resource: &v1beta1.Resource{Memory: "2g"}},
		Job:         &v1beta1.JobSpec{JarURI: "local:///opt/flink/usrlib/j.jar", Parallelism: 3, UpgradeMode: v1beta1.UpgradeModeStateless, State: v1beta1.JobStateRunning},
	}
	conf, err := FlinkConfig(Input{
		Name: "n", Namespace: "ns", Spec: spec,
		FlinkDefaults: map[string]string{
			"state.backend.type":     "rocksdb",
			"blob.server.port":       "7000",  // daemon default beats the builder default
			"kubernetes.cluster-id":  "other", // nobody sets the identity keys
			"jobmanager.rpc.address": "elsewhere",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"rest.port": "9000", "state.backend.type": "hashmap", "blob.server.port": "7000",
		"taskmanager.memory.process.size": "2 gb", "jobmanager.memory.process.size": "1 gb",
		"kubernetes.jobmanager.cpu.amount": "0.5", "parallelism.default": "3",
		"kubernetes.cluster-id": "n", "kubernetes.namespace": "ns", "jobmanager.rpc.address": "n",
		"jobmanager.rpc.port": "6123", "taskmanager.rpc.port": "6122", "web.cancel.enable": "false",
		"pipeline.name": "n", "pipeline.jars": "local:///opt/flink/usrlib/j.jar",
		"pipeline.classpaths":                                       "file:///opt/flink/usrlib/j.jar",
		"execution.shutdown-on-application-finish":                  "false",
		"execution.submit-failed-job-on-application-error":          "true",
		"execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
	}
	if diff := cmp.Diff(want, conf); diff != "" {
		t.Errorf("FlinkConfig (-want +got):\n%s", diff)
	}
}

func TestFlinkConfigLegacyCPUAndLimitFactors(t *testing.T) {
	t.Parallel()
	in := inputFor(t, "app-v2_2.spec.yaml")
	in.Spec.FlinkVersion = v1beta1.FlinkV1_16
	conf, err := FlinkConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"kubernetes.jobmanager.cpu.amount": "0.5", "kubernetes.jobmanager.cpu": "0.5",
		"kubernetes.jobmanager.cpu.limit-factor": "2", "kubernetes.jobmanager.memory.limit-factor": "1",
		"kubernetes.taskmanager.cpu": "4", "high-availability.cluster-id": "clicks",
		"execution.checkpointing.interval": "5 min",
	} {
		if conf[k] != want {
			t.Errorf("%s = %q, want %q", k, conf[k], want)
		}
	}
}
