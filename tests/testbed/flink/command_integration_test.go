package flinktb

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCommand builds real commands (with the real BashJavaUtils) for each
// role of the image and checks the parts a node agent relies on.
func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the test bed; run make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "conf")
			if err := WriteConfig(conf, v, map[string]string{
				"jobmanager.memory.process.size":  "1024m",
				"taskmanager.memory.process.size": "1280m",
				"env.java.opts.taskmanager":       "-Dtm.marker=1",
			}); err != nil {
				t.Fatal(err)
			}
			jar, err := TestJobJar(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				args      []string
				main      string
				heap      string // -Xmx derived from the process size
				hasMarker bool
			}{
				{[]string{"jobmanager"}, MainSession, "-Xmx469762048", false},
				{[]string{"taskmanager", "-D", "taskmanager.numberOfTaskSlots=3"}, MainTaskManager, "-Xmx", true},
				{[]string{"standalone-job", "--job-classname", TestJobClass, "--fromSavepoint", "file:///sp"}, MainApplication, "-Xmx469762048", false},
			}
			for _, tt := range tests {
				work := filepath.Join(dir, tt.args[0])
				spec := ProcessSpec{Version: v, Args: tt.args, ConfDir: conf, LogDir: filepath.Join(dir, "log"),
					WorkDir: work, UserJars: []string{jar}}
				t0 := time.Now()
				cmd, err := Command(ctx, spec)
				if err != nil {
					t.Fatal(err)
				}
				first := time.Since(t0)
				argv := cmd.Args[1:]
				mainAt := slices.Index(argv, tt.main)
				if mainAt < 0 {
					t.Fatalf("%v: main class %s missing: %v", tt.args, tt.main, argv)
				}
				jvm, prog := argv[:mainAt], argv[mainAt+1:]
				if !slices.ContainsFunc(jvm, func(a string) bool { return strings.HasPrefix(a, tt.heap) }) {
					t.Errorf("%v: no %s in JVM args %v", tt.args, tt.heap, jvm)
				}
				if slices.Contains(jvm, "-Dtm.marker=1") != tt.hasMarker {
					t.Errorf("%v: env.java.opts.taskmanager applied = %v, want %v", tt.args, !tt.hasMarker, tt.hasMarker)
				}
				if !slices.Contains(jvm, "--add-opens=java.base/java.util=ALL-UNNAMED") {
					t.Errorf("%v: Java 17 flags missing", tt.args)
				}
				// BashJavaUtils' dynamic configs come first (jobmanager.sh,
				// taskmanager.sh) or last (standalone-job.sh).
				dyn := prog
				if tt.main == MainApplication {
					dyn = prog[len(prog)-2:]
				}
				if len(dyn) < 2 || dyn[0] != "-D" || !strings.Contains(dyn[1], ".memory.") {
					t.Errorf("%v: derived memory configs not where the scripts put them: %v", tt.args, prog)
				}
				if i := slices.Index(prog, "--configDir"); i < 0 || prog[i+1] != conf || !slices.Equal(prog[i+2:i+2+len(tt.args)-1], tt.args[1:]) {
					t.Errorf("%v: program args %v", tt.args, prog)
				}
				if !slices.Contains(cmd.Env, "FLINK_LIB_DIR="+filepath.Join(work, "lib")) || !slices.Contains(cmd.Env, "FLINK_CONF_DIR="+conf) {
					t.Errorf("%v: env lacks FLINK_LIB_DIR/FLINK_CONF_DIR: %v", tt.args, cmd.Env[len(cmd.Env)-5:])
				}
				if _, err := os.Stat(filepath.Join(work, "usrlib", filepath.Base(jar))); err != nil {
					t.Errorf("%v: usrlib: %v", tt.args, err)
				}
				if cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setpgid {
					t.Errorf("%v: not in its own process group", tt.args)
				}
				t0 = time.Now()
				again, err := Command(ctx, spec)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(again.Args, cmd.Args) {
					t.Errorf("%v: second command differs", tt.args)
				}
				t.Logf("%v: Command took %s, again (cached BashJavaUtils) %s", tt.args, first.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
			}
		})
	}
}
