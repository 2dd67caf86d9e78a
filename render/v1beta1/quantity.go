package v1beta1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Quantity is a resource quantity exactly as the spec writes it. The
// operator reads a memory quantity as Flink's MemorySize first ("2048m" is
// 2048 MiB, "1500M" 1500 MiB) and only then as a Kubernetes quantity
// ("2Gi"), so the text must survive decoding: a parsed resource.Quantity
// would have turned "2048m" into 2.048 bytes.
type Quantity string

// UnmarshalJSON accepts a string or a number, as Kubernetes quantities do.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("a quantity must be a string or a number")
	}
	*q = Quantity(n.String())
	return nil
}

// ResourceRequirements is the operator's jobManager/taskManager.resources
// (Kubernetes ResourceRequirements) with the quantities kept verbatim.
type ResourceRequirements struct {
	// Limits of the main container; with requests they give Flink's limit factors.
	Limits map[corev1.ResourceName]Quantity `json:"limits,omitempty"`
	// Requests of the main container; cpu and memory go through Flink's configuration.
	Requests map[corev1.ResourceName]Quantity `json:"requests,omitempty"`
	// Claims are accepted for schema compatibility; the operator does not
	// apply them to the pods, and neither does flink-gitops (a warning says so).
	Claims []corev1.ResourceClaim `json:"claims,omitempty"`
}

// IsSet reports whether the requirements carry a request or a limit (an
// empty `resources: {}` does not hide the deprecated resource block, as in
// the operator).
func (r *ResourceRequirements) IsSet() bool {
	return r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0)
}

// RequestOrLimit returns the request of name, else its limit (Kubernetes
// defaults a missing request to the limit).
func (r *ResourceRequirements) RequestOrLimit(name corev1.ResourceName) (Quantity, bool) {
	if r == nil {
		return "", false
	}
	if q, ok := r.Requests[name]; ok {
		return q, true
	}
	q, ok := r.Limits[name]
	return q, ok
}

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
	tib = int64(1) << 40
)

// flinkMemoryPattern is Flink's MemorySize syntax: an integer and an optional
// unit, case-insensitive, all units binary.
var flinkMemoryPattern = regexp.MustCompile(`(?i)^\s*([0-9]+)\s*([a-z]*)\s*$`)

var flinkMemoryUnits = map[string]int64{
	"": 1, "b": 1, "bytes": 1,
	"k": kib, "kb": kib, "kibibytes": kib,
	"m": mib, "mb": mib, "mebibytes": mib,
	"g": gib, "gb": gib, "gibibytes": gib,
	"t": tib, "tb": tib, "tebibytes": tib,
}

// ParseFlinkMemory parses a size in Flink's MemorySize syntax ("2048m",
// "2 gb", "1073741824"), which is what Flink accepts for *.memory.* keys.
func ParseFlinkMemory(s string) (int64, error) {
	m := flinkMemoryPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a Flink memory size", s)
	}
	mult, ok := flinkMemoryUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (Flink knows b, k, m, g, t)", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// ParseMemory parses a spec's memory (resource.memory, resources.requests/
// limits.memory) the way the operator's ResourceConfigUtils does: Flink's
// MemorySize syntax first ("2g" is 2 GiB, "2048m" 2048 MiB), else a
// Kubernetes quantity after the operator's normalisation (blanks removed,
// upper case, a trailing B dropped, a trailing I read as i), so "2Gi",
// "2GB", "1.5g" and "1500M" all parse. The result is in bytes.
func ParseMemory(s string) (int64, error) {
	if b, err := ParseFlinkMemory(s); err == nil {
		return b, nil
	}
	q := strings.ToUpper(strings.Join(strings.Fields(s), ""))
	q = strings.TrimSuffix(q, "B")
	if strings.HasSuffix(q, "I") {
		q = strings.TrimSuffix(q, "I") + "i"
	}
	qty, err := resource.ParseQuantity(q)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a Flink memory size nor a Kubernetes quantity", s)
	}
	return QuantityBytes(qty)
}

// QuantityBytes returns a quantity as a whole number of bytes.
func QuantityBytes(q resource.Quantity) (int64, error) {
	r := new(big.Rat)
	if _, ok := r.SetString(q.AsDec().String()); !ok || !r.IsInt() || r.Sign() < 0 {
		return 0, fmt.Errorf("%s is not a whole, non-negative number of bytes", q.String())
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%s is too large", q.String())
	}
	return r.Num().Int64(), nil
}

// ParseCPU parses a cpu quantity ("1", "0.5", "500m") into cores.
func ParseCPU(s string) (float64, error) {
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a Kubernetes quantity", s)
	}
	return q.AsApproximateFloat64(), nil
}

// FormatFlinkMemory renders bytes as Flink's MemorySize.toString does: the
// largest unit that divides the size exactly, e.g. "2 gb", "1536 mb".
func FormatFlinkMemory(bytes int64) string {
	units := []struct {
		mult int64
		name string
	}{{tib, "tb"}, {gib, "gb"}, {mib, "mb"}, {kib, "kb"}}
	for _, u := range units {
		if bytes != 0 && bytes%u.mult == 0 {
			return fmt.Sprintf("%d %s", bytes/u.mult, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", bytes)
}
