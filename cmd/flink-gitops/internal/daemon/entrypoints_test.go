package daemon

import "testing"

func TestConfiguredLiterally(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns []string
		ep       string
		want     bool
	}{
		{[]string{"apps/clicks"}, "apps/clicks", true},
		{[]string{"apps/clicks/"}, "apps/clicks", true},
		{[]string{"./apps/clicks"}, "apps/clicks", true},
		{[]string{"apps/*"}, "apps/clicks", false}, // a glob: the directory going is the removal
		{[]string{"apps/other"}, "apps/clicks", false},
		{[]string{"."}, "", true},
		{nil, "apps/clicks", false},
	}
	for _, tc := range tests {
		if got := configuredLiterally(tc.patterns, tc.ep); got != tc.want {
			t.Errorf("configuredLiterally(%q, %q) = %v, want %v", tc.patterns, tc.ep, got, tc.want)
		}
	}
}
