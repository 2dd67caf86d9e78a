package flinktb

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestContainerArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		command, args []string
		want          []string
		wantErr       string
	}{
		{name: "standalone args pass through", args: []string{"jobmanager"}, want: []string{"jobmanager"}},
		{name: "explicit entrypoint dropped", command: []string{"/docker-entrypoint.sh"}, args: []string{"taskmanager"},
			want: []string{"taskmanager"}},
		{
			// What CmdJobManagerDecorator puts into the JobManager pod.
			name:    "native jobmanager",
			command: []string{"/docker-entrypoint.sh"},
			args:    []string{"bash", "-c", "kubernetes-jobmanager.sh kubernetes-session "},
			want:    []string{"kubernetes-jobmanager.sh", "kubernetes-session"},
		},
		{
			name: "script by path under FLINK_HOME",
			args: []string{"bash", "-c", "$FLINK_HOME/bin/kubernetes-jobmanager.sh kubernetes-application -D a=b"},
			want: []string{"kubernetes-jobmanager.sh", "kubernetes-application", "-D", "a=b"},
		},
		{
			// What CmdTaskManagerDecorator puts into a TaskManager pod:
			// dynamic properties single-quoted, then the pinned memory.
			name:    "native taskmanager",
			command: []string{"/docker-entrypoint.sh"},
			args: []string{"bash", "-c", `kubernetes-taskmanager.sh -Dtaskmanager.resource-id='c-taskmanager-1-1' ` +
				`-Dweird='it'\''s "quoted"' -D taskmanager.memory.task.heap.size=123b -D taskmanager.cpu.cores=1.0`},
			want: []string{"kubernetes-taskmanager.sh", "-Dtaskmanager.resource-id=c-taskmanager-1-1",
				`-Dweird=it's "quoted"`, "-D", "taskmanager.memory.task.heap.size=123b", "-D", "taskmanager.cpu.cores=1.0"},
		},
		{name: "double quotes and escapes", args: []string{"bash", "-c", `a "b c\"d" e\ f`}, want: []string{"a", `b c"d`, "e f"}},
		{name: "expansion is refused", args: []string{"bash", "-c", "a $HOME"}, wantErr: "not supported"},
		{name: "unterminated quote", args: []string{"bash", "-c", "a 'b"}, wantErr: "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ContainerArgs(tt.command, tt.args)
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
				t.Errorf("ContainerArgs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseArgsNative(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    Invocation
		wantErr string
	}{
		{
			name: "session",
			args: []string{"bash", "-c", "kubernetes-jobmanager.sh kubernetes-session -D x=y"},
			want: Invocation{Service: "kubernetes-session", MainClass: MainKubernetesSession,
				Args: []string{"-D", "x=y"}, DynamicProperties: []string{"x=y"}},
		},
		{
			name: "application",
			args: []string{"kubernetes-jobmanager.sh", "kubernetes-application"},
			want: Invocation{Service: "kubernetes-application", MainClass: MainKubernetesApplication, Args: []string{}},
		},
		{
			name: "taskmanager",
			args: []string{"bash", "-c", "kubernetes-taskmanager.sh -Dtaskmanager.resource-id='tm-1-1' -D taskmanager.cpu.cores=1.0"},
			want: Invocation{Service: "kubernetes-taskmanager", MainClass: MainKubernetesTaskManager,
				Args:              []string{"--configDir", "/conf", "-Dtaskmanager.resource-id=tm-1-1", "-D", "taskmanager.cpu.cores=1.0"},
				DynamicProperties: []string{"taskmanager.resource-id=tm-1-1", "taskmanager.cpu.cores=1.0"}},
		},
		{name: "jobmanager without target", args: []string{"kubernetes-jobmanager.sh"}, wantErr: "needs kubernetes-session"},
		{name: "jobmanager with another target", args: []string{"kubernetes-jobmanager.sh", "yarn-session"}, wantErr: "want kubernetes-session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
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

// The native TaskManager gets no derived dynamic configs (Flink put the
// memory into its args); the native JobManager gets them first, and the
// TaskManager-specific java options apply to the native TaskManager.
func TestJavaArgsNative(t *testing.T) {
	t.Parallel()
	res := Resources{JVMParams: []string{"-Xmx1g"}, DynamicConfigs: []string{"-D", "pinned=1"}}
	conf := map[string]string{"env.java.opts.taskmanager": "-Dtm=1", "env.java.opts.jobmanager": "-Djm=1"}
	spec := ProcessSpec{ConfDir: "/conf", LogDir: "/log"}

	tm, err := ParseArgs([]string{"kubernetes-taskmanager.sh", "-D", "a=b"}, "/conf")
	if err != nil {
		t.Fatal(err)
	}
	got := JavaArgs(tm, res, conf, spec, []string{"/lib/a.jar"}, "/l4j")
	i := slices.Index(got, MainKubernetesTaskManager)
	if i < 0 || !slices.Equal(got[i+1:], []string{"--configDir", "/conf", "-D", "a=b"}) {
		t.Errorf("taskmanager program args = %q", got[max(i, 0):])
	}
	if !slices.Contains(got, "-Dtm=1") || slices.Contains(got, "-Djm=1") {
		t.Errorf("taskmanager java options: %q", got)
	}

	jm, err := ParseArgs([]string{"kubernetes-jobmanager.sh", "kubernetes-session", "-D", "a=b"}, "/conf")
	if err != nil {
		t.Fatal(err)
	}
	got = JavaArgs(jm, res, conf, spec, []string{"/lib/a.jar"}, "/l4j")
	i = slices.Index(got, MainKubernetesSession)
	if i < 0 || !slices.Equal(got[i+1:], []string{"-D", "pinned=1", "-D", "a=b"}) {
		t.Errorf("jobmanager program args = %q", got[max(i, 0):])
	}
	if !slices.Contains(got, "-Djm=1") || !slices.Contains(got, "-Dlog.file=/log/flink-kubernetes-session.log") {
		t.Errorf("jobmanager java options: %q", got)
	}
}
