package v1beta1

import (
	"encoding/json"
	"testing"
)

// TestParseMemoryAsTheOperator covers every form the operator's
// ResourceConfigUtils.parseResourceMemoryString accepts: Flink's MemorySize
// syntax first (binary units, case-insensitive, blanks allowed), then a
// Kubernetes quantity after upper-casing, dropping a trailing B and reading
// a trailing I as i.
func TestParseMemoryAsTheOperator(t *testing.T) {
	const mi, gi = int64(1) << 20, int64(1) << 30
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"2048m", 2048 * mi},           // Flink: m is MiB (a Kubernetes quantity would be 2.048 bytes)
		{"2048M", 2048 * mi},           // Flink units are case-insensitive
		{"1500M", 1500 * mi},           // Flink, not 1.5e9 bytes
		{"2g", 2 * gi},                 // Flink
		{"2G", 2 * gi},                 // Flink
		{"2gb", 2 * gi},                // Flink
		{"2GB", 2 * gi},                // Flink
		{"1024 mb", 1024 * mi},         // Flink with a blank
		{"1 gibibytes", gi},            // Flink's long unit
		{"2147483648", 2 * gi},         // bytes
		{"2147483648b", 2 * gi},        // bytes with a unit
		{"2Gi", 2 * gi},                // Kubernetes
		{"1536Mi", 1536 * mi},          // Kubernetes
		{"1.5Gi", 1536 * mi},           // Kubernetes, fractional
		{"1.5g", 1500000000},           // not Flink (fractional): Kubernetes 1.5G
		{"1.5GB", 1500000000},          // the trailing B dropped
		{"2GI", 2 * gi},                // a trailing I read as i
		{"1e9", 1000000000},            // Kubernetes exponent
		{" 2 Gi ", 2 * gi},             // blanks removed
		{"512Ki", 512 << 10},           // Kubernetes KiB
		{"2k", 2 << 10},                // Flink k is KiB
		{"1t", int64(1) << 40},         // Flink t is TiB
		{"100000000000", 100000000000}, // bytes
	} {
		got, err := ParseMemory(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "lots", "2 gigs", "-1Gi", "1.5", "2Gx", "0.5"} {
		if got, err := ParseMemory(bad); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseCPU(t *testing.T) {
	for in, want := range map[string]float64{"1": 1, "0.5": 0.5, "500m": 0.5, "2": 2, "1500m": 1.5, " 250m ": 0.25} {
		if got, err := ParseCPU(in); err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "one", "1 core"} {
		if _, err := ParseCPU(bad); err == nil {
			t.Errorf("ParseCPU(%q): want an error", bad)
		}
	}
}

// TestQuantityKeepsText: the spec's text survives decoding, numbers too.
func TestQuantityKeepsText(t *testing.T) {
	var r ResourceRequirements
	if err := json.Unmarshal([]byte(`{"requests":{"memory":"2048m","cpu":0.5},"limits":{"memory":2147483648}}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Requests["memory"] != "2048m" || r.Requests["cpu"] != "0.5" || r.Limits["memory"] != "2147483648" {
		t.Fatalf("decoded %+v", r)
	}
	if q, ok := r.RequestOrLimit("memory"); !ok || q != "2048m" {
		t.Errorf("RequestOrLimit(memory) = %q", q)
	}
	r.Requests = nil
	if q, ok := r.RequestOrLimit("memory"); !ok || q != "2147483648" {
		t.Errorf("RequestOrLimit falls back to the limit: %q", q)
	}
	if (&ResourceRequirements{}).IsSet() || (*ResourceRequirements)(nil).IsSet() {
		t.Error("empty requirements count as set")
	}
	if err := json.Unmarshal([]byte(`{"requests":{"memory":true}}`), &r); err == nil {
		t.Error("a boolean quantity decoded")
	}
}
