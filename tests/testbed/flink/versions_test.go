package flinktb

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestSelectVersions(t *testing.T) {
	t.Parallel()
	defaults := []string{Version118, Version23}
	for _, tc := range []struct {
		env     string
		want    []string
		wantErr bool
	}{
		{"", defaults, false},
		{"  ", defaults, false},
		{"all", AllVersions, false},
		{"1.19", []string{Version119}, false},
		{"2.0.2, 1.18", []string{Version20, Version118}, false},
		{"2.2 2.2.1", []string{Version2}, false},
		{"1.17", nil, true},
		{"2.3.1", nil, true},
		{"1.20,bogus", nil, true},
	} {
		got, err := selectVersions(tc.env, defaults)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("selectVersions(%q) = %v, %v; want %v (error %v)", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestAllVersionsOrdered(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i, v := range AllVersions {
		if major(v) == 0 || seen[Minor(v)] {
			t.Errorf("AllVersions[%d] = %q: not a 1.x/2.x version, or a second one of its minor", i, v)
		}
		seen[Minor(v)] = true
	}
	for _, v := range Versions {
		if !slices.Contains(AllVersions, v) {
			t.Errorf("Versions has %s, AllVersions does not", v)
		}
	}
	if AllVersions[0] != Version118 || AllVersions[len(AllVersions)-1] != Version23 {
		t.Errorf("AllVersions = %v, want oldest 1.18 first and newest 2.3 last", AllVersions)
	}
}

// TestScriptVersions: build-flink.sh's ALL_VERSIONS is AllVersions, and the
// versions it builds by default (make testbed) are the ones make test runs.
func TestScriptVersions(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(ScriptPath())
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && (k == "ALL_VERSIONS" || k == "DEFAULT_VERSIONS") {
			vars[k] = strings.Fields(strings.Trim(v, `"`))
		}
	}
	if !slices.Equal(vars["ALL_VERSIONS"], AllVersions) {
		t.Errorf("build-flink.sh ALL_VERSIONS = %v, want flinktb.AllVersions %v", vars["ALL_VERSIONS"], AllVersions)
	}
	if want := []string{Version118, Version1, Version2, Version23}; !slices.Equal(vars["DEFAULT_VERSIONS"], want) {
		t.Errorf("build-flink.sh DEFAULT_VERSIONS = %v, want the versions make test runs %v", vars["DEFAULT_VERSIONS"], want)
	}
}
