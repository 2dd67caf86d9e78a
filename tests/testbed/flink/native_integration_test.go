package flinktb

import (
	"archive/zip"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCommandNative: the native entry classes are on each version's
// classpath, and the commands for the pods Flink's native mode builds carry
// the memory Flink put into a TaskManager's args (BashJavaUtils derives the
// JVM flags from them) and the derived settings for a JobManager.
func TestCommandNative(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			b, err := Ensure(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			jars, err := filepath.Glob(filepath.Join(b.LibDir, "flink-kubernetes-*.jar"))
			if err != nil || len(jars) != 1 {
				t.Fatalf("flink-kubernetes jars in %s: %v (err %v), want one", b.LibDir, jars, err)
			}
			zr, err := zip.OpenReader(jars[0])
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			want := map[string]bool{}
			for _, c := range []string{MainKubernetesSession, MainKubernetesApplication, MainKubernetesTaskManager,
				"org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"} {
				want[strings.ReplaceAll(c, ".", "/")+".class"] = false
			}
			for _, f := range zr.File {
				if _, ok := want[f.Name]; ok {
					want[f.Name] = true
				}
			}
			for c, found := range want {
				if !found {
					t.Errorf("%s not in %s", c, jars[0])
				}
			}

			dir := t.TempDir()
			conf := filepath.Join(dir, "conf")
			if err := WriteConfig(conf, v, map[string]string{"jobmanager.memory.process.size": "1024m"}); err != nil {
				t.Fatal(err)
			}
			// As CmdTaskManagerDecorator writes them for a 1280m TaskManager.
			tmArgs := "kubernetes-taskmanager.sh -Dtaskmanager.resource-id='c-taskmanager-1-1' " +
				"-D taskmanager.memory.network.min=87241524b -D taskmanager.cpu.cores=1.0 -D taskmanager.memory.task.off-heap.size=0b " +
				"-D taskmanager.memory.jvm-metaspace.size=268435456b -D external-resources=none -D taskmanager.memory.jvm-overhead.min=201326592b " +
				"-D taskmanager.memory.framework.off-heap.size=134217728b -D taskmanager.memory.network.max=87241524b " +
				"-D taskmanager.memory.framework.heap.size=134217728b -D taskmanager.memory.managed.size=348966098b " +
				"-D taskmanager.memory.task.heap.size=167772154b -D taskmanager.numberOfTaskSlots=2 -D taskmanager.memory.jvm-overhead.max=201326592b"
			for _, tt := range []struct {
				args []string
				main string
				heap string
			}{
				{[]string{"bash", "-c", "kubernetes-jobmanager.sh kubernetes-session"}, MainKubernetesSession, "-Xmx469762048"},
				// framework heap + task heap
				{[]string{"bash", "-c", tmArgs}, MainKubernetesTaskManager, "-Xmx301989882"},
			} {
				cmd, err := Command(ctx, ProcessSpec{Version: v, Args: tt.args, ConfDir: conf, LogDir: filepath.Join(dir, "log")})
				if err != nil {
					t.Fatal(err)
				}
				argv := cmd.Args[1:]
				at := slices.Index(argv, tt.main)
				if at < 0 {
					t.Fatalf("%s: main class missing: %q", tt.main, argv)
				}
				if !slices.Contains(argv[:at], tt.heap) {
					t.Errorf("%s: no %s in JVM args %q", tt.main, tt.heap, argv[:at])
				}
				if tt.main == MainKubernetesTaskManager && (argv[at+1] != "--configDir" || !slices.Contains(argv[at:], "-Dtaskmanager.resource-id=c-taskmanager-1-1")) {
					t.Errorf("taskmanager program args %q", argv[at+1:])
				}
			}
		})
	}
}
