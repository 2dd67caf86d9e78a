package flinktb

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    Invocation
		wantErr string
	}{
		{
			name: "session jobmanager",
			args: []string{"jobmanager"},
			want: Invocation{Service: "standalonesession", MainClass: MainSession,
				Args: []string{"--configDir", "/conf", "--executionMode", "cluster"}},
		},
		{
			name: "jobmanager with host, web ui port and dynamic properties",
			args: []string{"jobmanager", "jm.example", "8082", "-D", "rest.port=9000", "-Dparallelism.default=2"},
			want: Invocation{Service: "standalonesession", MainClass: MainSession,
				Args: []string{"--configDir", "/conf", "--executionMode", "cluster", "-D", "rest.port=9000",
					"-Dparallelism.default=2", "--host", "jm.example", "--webui-port", "8082"},
				DynamicProperties: []string{"rest.port=9000", "parallelism.default=2"}},
		},
		{
			name: "jobmanager with dynamic properties only",
			args: []string{"jobmanager", "-D", "a=b"},
			want: Invocation{Service: "standalonesession", MainClass: MainSession,
				Args:              []string{"--configDir", "/conf", "--executionMode", "cluster", "-D", "a=b"},
				DynamicProperties: []string{"a=b"}},
		},
		{
			name: "taskmanager",
			args: []string{"taskmanager", "-D", "taskmanager.numberOfTaskSlots=4"},
			want: Invocation{Service: "taskexecutor", MainClass: MainTaskManager,
				Args:              []string{"--configDir", "/conf", "-D", "taskmanager.numberOfTaskSlots=4"},
				DynamicProperties: []string{"taskmanager.numberOfTaskSlots=4"}},
		},
		{
			name: "standalone-job from a savepoint with job args",
			args: []string{"standalone-job", "--job-classname", "a.B", "--fromSavepoint", "file:///sp/1",
				"--allowNonRestoredState", "--rate", "5"},
			want: Invocation{Service: "standalonejob", MainClass: MainApplication,
				Args: []string{"--configDir", "/conf", "--job-classname", "a.B", "--fromSavepoint", "file:///sp/1",
					"--allowNonRestoredState", "--rate", "5"}},
		},
		{name: "history server", args: []string{"history-server"}, wantErr: "not supported"},
		{name: "empty", args: nil, wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args, "/conf")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseArgs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJavaArgs(t *testing.T) {
	t.Parallel()
	inv, err := ParseArgs([]string{"taskmanager", "-D", "x=y"}, "/conf")
	if err != nil {
		t.Fatal(err)
	}
	res := Resources{JVMParams: []string{"-Xmx300m", "-Xms300m"}, DynamicConfigs: []string{"-D", "taskmanager.memory.task.heap.size=1b"}}
	conf := map[string]string{
		"env.java.opts.all":         "-Dall=1 -Dall=2",
		"env.java.opts.taskmanager": `"-Dtm=1"`,
		"env.java.opts.jobmanager":  "-Djm=1",
	}
	spec := ProcessSpec{ConfDir: "/conf", LogDir: "/log", JVMArgs: []string{"-Dextra=1"}}
	got := JavaArgs(inv, res, conf, spec, []string{"/lib/a.jar", "/lib/b.jar"}, "/conf/log4j-console.properties")

	var want []string
	want = append(want, "-Xmx300m", "-Xms300m", "-Dextra=1")
	want = append(want, Java17Opts...)
	want = append(want, "-Dall=1", "-Dall=2", "-Dtm=1",
		"-Dlog.file=/log/flink-taskexecutor.log",
		"-Dlog4j.configuration=file:/conf/log4j-console.properties",
		"-Dlog4j.configurationFile=file:/conf/log4j-console.properties",
		"-Dlogback.configurationFile=file:/conf/logback-console.xml",
		"-classpath", "/lib/a.jar:/lib/b.jar", MainTaskManager,
		"-D", "taskmanager.memory.task.heap.size=1b",
		"--configDir", "/conf", "-D", "x=y")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JavaArgs (-want +got):\n%s", diff)
	}
	if slices.Contains(got, "-Djm=1") {
		t.Errorf("TaskManager got the JobManager's java opts: %v", got)
	}

	// standalone-job.sh appends the derived configs after the container args.
	app, err := ParseArgs([]string{"standalone-job", "--job-classname", "a.B", "--x", "1"}, "/conf")
	if err != nil {
		t.Fatal(err)
	}
	got = JavaArgs(app, res, conf, spec, []string{"/lib/a.jar"}, "/l4j")
	tail := got[slices.Index(got, MainApplication)+1:]
	wantTail := []string{"--configDir", "/conf", "--job-classname", "a.B", "--x", "1", "-D", "taskmanager.memory.task.heap.size=1b"}
	if diff := cmp.Diff(wantTail, tail); diff != "" {
		t.Errorf("standalone-job program args (-want +got):\n%s", diff)
	}
}

func TestLayoutHome(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cached := filepath.Join(dir, "cache", "lib")
	jar := filepath.Join(dir, "job.jar")
	if err := os.MkdirAll(cached, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jar, []byte("jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	for range 2 { // idempotent
		lib, err := layoutHome(home, cached, []string{jar})
		if err != nil {
			t.Fatal(err)
		}
		if target, _ := os.Readlink(lib); lib != filepath.Join(home, "lib") || target != cached {
			t.Fatalf("lib %s -> %s, want %s -> %s", lib, target, filepath.Join(home, "lib"), cached)
		}
		if target, _ := os.Readlink(filepath.Join(home, "usrlib", "job.jar")); target != jar {
			t.Fatalf("usrlib/job.jar -> %q, want %s", target, jar)
		}
	}
	if _, err := layoutHome(home, cached, []string{filepath.Join(dir, "missing.jar")}); err == nil {
		t.Fatal("missing user jar: want an error")
	}
}
