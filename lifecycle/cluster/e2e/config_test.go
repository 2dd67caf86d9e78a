package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

// flinkLoad writes text as the configuration file of version into a fresh
// directory and returns what Flink's own GlobalConfiguration reads from it.
func flinkLoad(t *testing.T, version string, file, text string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	lib, err := flinktb.Classpath(ctx, version)
	if err != nil {
		t.Fatalf("flink %s runtime: %v", version, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs("testdata/LoadConfig.java")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "java", "-cp", filepath.Join(lib, "*"), src, dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("java LoadConfig: %v\n%s", err, stderr.String())
	}
	unesc := strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n")
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("unexpected LoadConfig line %q", line)
		}
		out[unesc.Replace(k)] = unesc.Replace(v)
	}
	return out
}

// TestRenderedConfigReadsBackInFlink: what RenderConfig writes, Flink 1.20
// and 2.2 read back as the same keys and values, awkward ones included.
func TestRenderedConfigReadsBackInFlink(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	common := map[string]string{
		"taskmanager.numberOfTaskSlots":       "2",
		"web.cancel.enable":                   "false",
		"jobmanager.memory.process.size":      "1536 mb",
		"env.java.opts.all":                   "-XX:+UseG1GC -Dfoo=bar",
		"metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
		"a.colon":                             "host: port",
		"a.url":                               "s3://bucket/path?x=1",
		"a.semicolon":                         "a;b;c",
		"a.map":                               "k1:v1,k2:v2",
		"a.duration":                          "5 min",
		"a.float":                             "0.5",
		"a.quote":                             `it's "quoted"`,
		"a.percent":                           "%d{yyyy}",
		"a.unicode":                           "Grüße",
		"a.dollar":                            "$(_POD_IP_ADDRESS)",
		"a.dash":                              "-1",
		"pipeline.name":                       "orders",
	}
	v2only := map[string]string{
		"a.version":   "1.10",
		"a.octal":     "0755",
		"a.yes":       "yes",
		"a.True":      "True",
		"a.null":      "null",
		"a.tilde":     "~",
		"a.hash":      "value # not a comment",
		"a.star":      "*alias",
		"a.brace":     "{not: a map}",
		"a.list":      "[1, 2]",
		"a.at":        "@at",
		"a.pipe":      "|pipe",
		"a.seq":       "- item",
		"a.multiline": "line one\nline two",
		"a.tab":       "tab\there",
		"a.space":     " padded ",
	}
	for _, tc := range []struct {
		version string
		fv      v1beta1.FlinkVersion
		conf    map[string]string
	}{
		{flinktb.Version1, v1beta1.FlinkV1_20, common},
		{flinktb.Version2, v1beta1.FlinkV2_2, merge(common, v2only)},
	} {
		t.Run(tc.version, func(t *testing.T) {
			text, err := cluster.RenderConfig(tc.fv, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			got := flinkLoad(t, tc.version, cluster.ConfigFileName(tc.fv), text)
			if diff := cmp.Diff(tc.conf, got); diff != "" {
				t.Errorf("Flink %s reads the rendered %s differently (-written +read):\n%s\n%s", tc.version, cluster.ConfigFileName(tc.fv), diff, text)
			}
		})
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// flinkProcessMemory returns the total process memory Flink derives for the
// JobManager and TaskManager from each configuration, in one JVM:
// result[i][component] is a byte count or "error ...".
func flinkProcessMemory(t *testing.T, version string, confs []map[string]string) []map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	lib, err := flinktb.Classpath(ctx, version)
	if err != nil {
		t.Fatalf("flink %s runtime: %v", version, err)
	}
	fv := v1beta1.FlinkV1_20
	if strings.HasPrefix(version, "2.") {
		fv = v1beta1.FlinkV2_2
	}
	src, err := filepath.Abs("testdata/ProcessMemory.java")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-cp", filepath.Join(lib, "*"), src}
	for i, conf := range confs {
		text, err := cluster.RenderConfig(fv, conf)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, cluster.ConfigFileName(fv)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dir)
	}
	cmd := exec.CommandContext(ctx, "java", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("java ProcessMemory: %v\n%s", err, stderr.String())
	}
	out := make([]map[string]string, len(confs))
	for i := range out {
		out[i] = map[string]string{}
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.SplitN(line, " ", 3)
		i, err := strconv.Atoi(f[0])
		if err != nil || len(f) != 3 || i >= len(out) {
			t.Fatalf("unexpected ProcessMemory line %q", line)
		}
		out[i][f[1]] = f[2]
	}
	return out
}

// TestProcessMemoryMatchesFlink: the container memory derived from a total
// Flink memory (flink.size plus metaspace and overhead) is what Flink's own
// memory model computes.
func TestProcessMemoryMatchesFlink(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	cases := []map[string]string{
		{"jobmanager.memory.process.size": "1600m", "taskmanager.memory.process.size": "1728m"},
		{"jobmanager.memory.flink.size": "1g", "taskmanager.memory.flink.size": "4g"},
		{"jobmanager.memory.flink.size": "16g", "taskmanager.memory.flink.size": "16g"},
		{"jobmanager.memory.flink.size": "2g", "jobmanager.memory.jvm-metaspace.size": "512m",
			"taskmanager.memory.flink.size": "8g", "taskmanager.memory.jvm-overhead.fraction": "0.2", "taskmanager.memory.jvm-overhead.max": "4g"},
		{"jobmanager.memory.heap.size": "1g", "taskmanager.memory.task.heap.size": "1g", "taskmanager.memory.managed.size": "512m"},
		{"jobmanager.memory.heap.size": "3g", "jobmanager.memory.off-heap.size": "256m",
			"taskmanager.memory.task.heap.size": "20g", "taskmanager.memory.managed.size": "10g", "taskmanager.memory.task.off-heap.size": "1g",
			"taskmanager.memory.network.max": "2g", "taskmanager.memory.network.fraction": "0.15"},
		{"jobmanager.memory.heap.size": "256m", "taskmanager.memory.task.heap.size": "128m", "taskmanager.memory.managed.size": "0"},
	}
	for _, version := range []string{flinktb.Version1, flinktb.Version2} {
		t.Run(version, func(t *testing.T) {
			results := flinkProcessMemory(t, version, cases)
			for i, conf := range cases {
				if len(results[i]) != 2 {
					t.Fatalf("%v: Flink printed %v, want both components", conf, results[i])
				}
				for comp, flink := range results[i] {
					ours, err := cluster.ProcessMemory(conf, comp)
					if err != nil {
						t.Errorf("%v: ProcessMemory(%s): %v", conf, comp, err)
						continue
					}
					if strconv.FormatInt(ours, 10) != flink {
						t.Errorf("%v: %s process memory %d, Flink %s says %s", conf, comp, ours, version, flink)
					}
				}
			}
		})
	}
}

// TestMemoryMinimumMatchesFlink: the smallest process size CheckProcessMemory
// names is one Flink's own memory model accepts, and 1 MiB less is one it
// rejects, for both components, default and tuned options, on 1.20 and 2.x.
func TestMemoryMinimumMatchesFlink(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	tunings := []map[string]string{
		{},
		{"jobmanager.memory.off-heap.size": "512m", "taskmanager.memory.managed.fraction": "0.1"},
		{"jobmanager.memory.jvm-metaspace.size": "128m", "taskmanager.memory.network.min": "128m", "taskmanager.memory.framework.off-heap.size": "256m"},
	}
	type probe struct {
		component, key string
		conf           map[string]string
		accept         bool
	}
	var probes []probe
	var confs []map[string]string
	for _, tune := range tunings {
		for _, c := range []struct{ component, key string }{
			{cluster.ComponentJobManager, "jobmanager.memory.process.size"},
			{cluster.ComponentTaskManager, "taskmanager.memory.process.size"},
		} {
			err := cluster.CheckProcessMemory(merge(tune, map[string]string{c.key: "64m"}), c.component, "f")
			_, min, ok := strings.Cut(fmt.Sprint(err), "give it at least ")
			if !ok {
				t.Fatalf("%s %v: no minimum named: %v", c.component, tune, err)
			}
			b, err := cluster.ParseFlinkMemory(min)
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range []struct {
				bytes  int64
				accept bool
			}{{b, true}, {b - 1<<20, false}} {
				// Both components get a size: the other one generously.
				conf := merge(tune, map[string]string{"jobmanager.memory.process.size": "4g", "taskmanager.memory.process.size": "4g"},
					map[string]string{c.key: cluster.FormatFlinkMemory(size.bytes)})
				probes = append(probes, probe{c.component, c.key, conf, size.accept})
				confs = append(confs, conf)
			}
		}
	}
	for _, version := range []string{flinktb.Version1, flinktb.Version2} {
		t.Run(version, func(t *testing.T) {
			results := flinkProcessMemory(t, version, confs)
			for i, p := range probes {
				got := results[i][p.component]
				rejected := strings.HasPrefix(got, "error")
				if rejected == p.accept {
					t.Errorf("%s %s=%s: Flink says %q, we say accept=%v", p.component, p.key, p.conf[p.key], got, p.accept)
				}
				if ours := cluster.CheckProcessMemory(p.conf, p.component, "f"); (ours == nil) != p.accept {
					t.Errorf("%s %s=%s: CheckProcessMemory %v, want accept=%v", p.component, p.key, p.conf[p.key], ours, p.accept)
				}
			}
		})
	}
}
