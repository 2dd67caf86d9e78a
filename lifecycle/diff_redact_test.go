package lifecycle

import (
	"strings"
	"testing"
)

// TestDiffRedactsSensitiveKeys: a change under a key Flink treats as
// sensitive says only that it changed; its values appear nowhere in the
// diff (and so not in plan output, PR comments or events).
func TestDiffRedactsSensitiveKeys(t *testing.T) {
	old, cur := spec(t, baseSpec), spec(t, baseSpec)
	old.FlinkConfiguration["s3.secret-key"] = "old-hunter2"
	cur.FlinkConfiguration["s3.secret-key"] = "new-hunter2"
	cur.FlinkConfiguration["security.ssl.rest.keystore-password"] = "added-hunter2"
	cur.FlinkConfiguration["taskmanager.numberOfTaskSlots"] = "4"
	d := CompareDeployments(old, cur)
	got := map[string][2]string{}
	for _, c := range d.Changes {
		got[c.Path] = [2]string{c.Old, c.New}
	}
	want := map[string][2]string{
		`spec.flinkConfiguration["s3.secret-key"]`:                       {"(redacted)", "changed (redacted)"},
		`spec.flinkConfiguration["security.ssl.rest.keystore-password"]`: {"<none>", "(redacted)"},
		`spec.flinkConfiguration["taskmanager.numberOfTaskSlots"]`:       {`"2"`, `"4"`},
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	if s := d.String(); strings.Contains(s, "hunter2") {
		t.Errorf("a secret value in the diff:\n%s", s)
	}
	if d.Type != DiffUpgrade {
		t.Errorf("diff type %v, want upgrade (a changed secret still upgrades)", d.Type)
	}
}
