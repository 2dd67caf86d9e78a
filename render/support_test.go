package render

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the support table in README.md")

const (
	tableStart = "<!-- support-table: generated from render/support.go; go test ./render -run TestREADMESupportTable -update-readme rewrites it -->\n"
	tableEnd   = "<!-- end support-table -->"
)

// TestREADMESupportTable keeps the README's honoured/warned/refused table
// equal to the table in code.
func TestREADMESupportTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, tableStart), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no support table between %q and %q", strings.TrimSpace(tableStart), tableEnd)
	}
	want := SupportTable()
	if got := readme[i+len(tableStart) : j]; got != want {
		if *updateREADME {
			if err := os.WriteFile("../README.md", []byte(readme[:i+len(tableStart)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's support table is out of date; run go test ./render -run TestREADMESupportTable -update-readme")
	}
}

// TestSupportRules: every rule is well formed, and every key the reconciler
// reads is classified as honoured.
func TestSupportRules(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range append(append([]Rule{}, FieldRules...), KeyRules...) {
		if seen[r.Name] {
			t.Errorf("%s is classified twice", r.Name)
		}
		seen[r.Name] = true
		switch r.Support {
		case Honoured, Warned, Refused:
		default:
			t.Errorf("%s: support %q", r.Name, r.Support)
		}
		if r.Support == Warned && r.Note == "" {
			t.Errorf("%s is warned without saying why", r.Name)
		}
	}
	for _, k := range []string{
		"kubernetes.operator.periodic.savepoint.interval", "kubernetes.operator.savepoint.history.max.count",
		"kubernetes.operator.job.upgrade.last-state-fallback.enabled", "kubernetes.operator.deployment.rollback.enabled",
		"flink-gitops.ha.keep-on-deletion", "flink-gitops.jar.sha256",
	} {
		if r, ok := keyRule(k); !ok || r.Support != Honoured {
			t.Errorf("%s is read by the reconciler but not classified as honoured", k)
		}
	}
	if r, ok := keyRule("job.autoscaler.metrics.window"); !ok || r.Support != Warned {
		t.Error("autoscaler keys must be warned")
	}
}
