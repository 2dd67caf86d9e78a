package nodeagent

import (
	"testing"

	flinktb "github.com/flink-gitops/flink-gitops/tests/testbed/flink"
)

func TestVersionForImage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		image, want string
	}{
		{"flink:1.18", flinktb.Version118},
		{"flink:1.18.1-scala_2.12-java17", flinktb.Version118},
		{"flink:1.19", flinktb.Version119},
		{"docker.io/library/flink:1.20", flinktb.Version1},
		{"flink:1.20.5", flinktb.Version1},
		{"flink:2.0", flinktb.Version20},
		{"flink:2.1.3", flinktb.Version21},
		{"flink:2.2", flinktb.Version2},
		{"flink:2.2-java17", flinktb.Version2},
		{"flink:2", flinktb.Version2},
		{"flink:2.3", flinktb.Version23},
		{"registry:5000/flink:2.3.0", flinktb.Version23},
		// No such image: other minors, a tag that only starts like one, no tag.
		{"flink:1.17", ""},
		{"flink:2.4", ""},
		{"flink:1.180", ""},
		{"flink:2.10", ""},
		{"flink", ""},
		{"registry:5000/flink", ""},
	} {
		got, err := VersionForImage(tc.image)
		if tc.want == "" {
			if err == nil {
				t.Errorf("VersionForImage(%q) = %q, want an error", tc.image, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("VersionForImage(%q) = %q, %v; want %q", tc.image, got, err, tc.want)
		}
	}
}

func TestEveryVersionHasAnImage(t *testing.T) {
	t.Parallel()
	for _, v := range flinktb.AllVersions {
		got, err := VersionForImage("flink:" + flinktb.Minor(v))
		if err != nil || got != v {
			t.Errorf("flink:%s runs %q, %v; want %s", flinktb.Minor(v), got, err, v)
		}
	}
}
