package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func snapshotObj(name string, spec map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "flink.apache.org/v1beta1",
		"kind":       "FlinkStateSnapshot",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}
}

func ref(kind, name string) map[string]any { return map[string]any{"kind": kind, "name": name} }

// TestSnapshotValidation: a FlinkStateSnapshot renders when it asks for
// something the daemon does; everything else is a problem with field and fix.
func TestSnapshotValidation(t *testing.T) {
	app, session, job := validDeployment("app"), validSessionCluster("session"), validSessionJob("job", "session")
	old, oldSession, oldJob := validDeployment("old"), validSessionCluster("oldsession"), validSessionJob("oldjob", "oldsession")
	for _, d := range []map[string]any{old, oldSession} {
		set(d, "spec/flinkVersion", "v1_16")
		set(d, "spec/image", "flink:1.16")
	}
	cases := []struct {
		name string
		spec map[string]any
		want string // "" = valid; else a substring of the only problem
	}{
		{"savepoint of an application", map[string]any{"jobReference": ref("FlinkDeployment", "app"), "savepoint": map[string]any{}}, ""},
		{"savepoint of a session job", map[string]any{"jobReference": ref("FlinkSessionJob", "job"), "savepoint": map[string]any{"path": "file:///sp", "formatType": "NATIVE", "disposeOnDelete": false}, "backoffLimit": 2}, ""},
		{"existing savepoint without job", map[string]any{"savepoint": map[string]any{"path": "s3://b/sp-1", "alreadyExists": true}}, ""},
		{"existing savepoint without path", map[string]any{"savepoint": map[string]any{"alreadyExists": true}}, "spec.savepoint.path: alreadyExists is true but no path"},
		{"checkpoint of an application", map[string]any{"jobReference": ref("FlinkDeployment", "app"), "checkpoint": map[string]any{}}, ""},
		{"checkpoint of a session job", map[string]any{"jobReference": ref("FlinkSessionJob", "job"), "checkpoint": map[string]any{}, "backoffLimit": 1}, ""},
		{"checkpoint on Flink 1.16", map[string]any{"jobReference": ref("FlinkDeployment", "old"), "checkpoint": map[string]any{}},
			"spec.checkpoint: FlinkDeployment flink/old runs Flink v1_16, which cannot trigger checkpoints"},
		{"checkpoint of a session job on Flink 1.16", map[string]any{"jobReference": ref("FlinkSessionJob", "oldjob"), "checkpoint": map[string]any{}},
			"spec.checkpoint: FlinkSessionJob flink/oldjob runs Flink v1_16"},
		{"savepoint on Flink 1.16", map[string]any{"jobReference": ref("FlinkDeployment", "old"), "savepoint": map[string]any{}}, ""},
		{"checkpoint without job", map[string]any{"checkpoint": map[string]any{}}, "spec.jobReference: the snapshot names no job"},
		{"checkpoint of a session cluster", map[string]any{"jobReference": ref("FlinkDeployment", "session"), "checkpoint": map[string]any{}}, "no job to take a checkpoint of"},
		{"both", map[string]any{"jobReference": ref("FlinkDeployment", "app"), "checkpoint": map[string]any{}, "savepoint": map[string]any{}}, "not both"},
		{"neither", map[string]any{"jobReference": ref("FlinkDeployment", "app")}, "spec.savepoint: the snapshot sets neither"},
		{"no job", map[string]any{"savepoint": map[string]any{}}, "spec.jobReference: the snapshot names no job"},
		{"bad kind", map[string]any{"jobReference": ref("Deployment", "app"), "savepoint": map[string]any{}}, "spec.jobReference.kind"},
		{"no name", map[string]any{"jobReference": ref("FlinkDeployment", ""), "savepoint": map[string]any{}}, "spec.jobReference.name"},
		{"bad format", map[string]any{"jobReference": ref("FlinkDeployment", "app"), "savepoint": map[string]any{"formatType": "UNKNOWN"}}, "spec.savepoint.formatType"},
		{"bad backoff", map[string]any{"jobReference": ref("FlinkDeployment", "app"), "savepoint": map[string]any{}, "backoffLimit": -2}, "spec.backoffLimit"},
		{"unknown field", map[string]any{"jobReference": ref("FlinkDeployment", "app"), "savepoint": map[string]any{"pathh": "x"}}, "spec.savepoint.pathh"},
		{"undeclared job", map[string]any{"jobReference": ref("FlinkDeployment", "nope"), "savepoint": map[string]any{}}, "FlinkDeployment flink/nope is not declared in the repository"},
		{"session cluster", map[string]any{"jobReference": ref("FlinkDeployment", "session"), "savepoint": map[string]any{}}, "is a session cluster"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := snapshotObj("snap", c.spec)
			res := renderFiles(t, map[string]string{"app/kustomization.yaml": "resources:\n- r.yaml\n", "app/r.yaml": string(yamlDocs(t, app, session, job, old, oldSession, oldJob, snap))},
				Options{DefaultNamespace: "flink"})
			got := problemLines(res.Problems)
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("problems: %v", got)
				}
				r, ok := res.Lookup(Key{"FlinkStateSnapshot", "flink", "snap"})
				if !ok || r.Snapshot == nil || r.Hash == "" {
					t.Fatalf("snapshot not rendered: %+v", res.Resources)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], c.want) || !strings.Contains(got[0], "app/r.yaml: FlinkStateSnapshot flink/snap") || !strings.Contains(got[0], "(fix: ") {
				t.Fatalf("problems %v, want one with %q", got, c.want)
			}
			if d := cmp.Diff([]Key{{"FlinkStateSnapshot", "flink", "snap"}}, res.Invalid); d != "" {
				t.Fatalf("invalid (-want +got):\n%s", d)
			}
		})
	}
}
