package cluster

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

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

// ParseResourceMemory parses the memory of a spec's resource block the way
// the operator does: Flink's MemorySize syntax first ("2g" is 2 GiB), else a
// Kubernetes quantity after the operator's normalisation (upper case, a
// trailing B dropped, "GI" read as "Gi"), so "2Gi", "2GB" and "1.5g" all
// parse. The result is in bytes.
func ParseResourceMemory(s string) (int64, error) {
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
	return quantityBytes(qty)
}

// quantityBytes returns a quantity as a whole number of bytes.
func quantityBytes(q resource.Quantity) (int64, error) {
	r := new(big.Rat)
	if _, ok := r.SetString(q.AsDec().String()); !ok || !r.IsInt() || r.Sign() < 0 {
		return 0, fmt.Errorf("%s is not a whole, non-negative number of bytes", q.String())
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%s is too large", q.String())
	}
	return r.Num().Int64(), nil
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

// memoryModel holds the defaults of Flink's memory model for one component.
type memoryModel struct {
	prefix      string // "jobmanager" or "taskmanager"
	metaspace   int64
	overheadMin int64
	overheadMax int64
	fraction    float32
}

var (
	jmMemory = memoryModel{prefix: "jobmanager", metaspace: 256 * mib, overheadMin: 192 * mib, overheadMax: 1 * gib, fraction: 0.1}
	tmMemory = memoryModel{prefix: "taskmanager", metaspace: 256 * mib, overheadMin: 192 * mib, overheadMax: 1 * gib, fraction: 0.1}
)

// ProcessMemory returns the total process memory of the JobManager
// ("jobmanager") or TaskManager ("taskmanager") in bytes, from the effective
// Flink configuration, as Flink's memory model derives it: from
// <c>.memory.process.size; else from <c>.memory.flink.size; else, for the
// JobManager, from jobmanager.memory.heap.size plus off-heap, and for the
// TaskManager from taskmanager.memory.task.heap.size and
// taskmanager.memory.managed.size plus the framework, task off-heap and
// network memory; JVM metaspace and overhead are then added. This is the
// container's memory request, as Flink's Kubernetes integration sets it.
func ProcessMemory(conf map[string]string, component string) (int64, error) {
	m := jmMemory
	if component == ComponentTaskManager {
		m = tmMemory
	}
	r := memReader{conf: conf, prefix: m.prefix + ".memory."}
	if r.set("process.size") {
		return r.size("process.size", 0)
	}
	flink, err := r.totalFlink(component)
	if err != nil {
		return 0, err
	}
	meta := r.sizeOr("jvm-metaspace.size", m.metaspace)
	lo := r.sizeOr("jvm-overhead.min", m.overheadMin)
	hi := r.sizeOr("jvm-overhead.max", m.overheadMax)
	frac := r.fraction("jvm-overhead.fraction", m.fraction)
	if r.err != nil {
		return 0, r.err
	}
	base := flink + meta
	return base + max(lo, min(hi, inverseFraction(base, frac))), nil
}

// memReader reads one component's memory options, keeping the first error.
type memReader struct {
	conf   map[string]string
	prefix string
	err    error
}

func (r *memReader) set(k string) bool { return strings.TrimSpace(r.conf[r.prefix+k]) != "" }

func (r *memReader) size(k string, def int64) (int64, error) {
	key := r.prefix + k
	v := strings.TrimSpace(r.conf[key])
	if v == "" {
		return def, nil
	}
	b, err := ParseFlinkMemory(v)
	if err != nil {
		return 0, fmt.Errorf("flinkConfiguration %s: %w; write a size such as 2048m or 2g", key, err)
	}
	return b, nil
}

func (r *memReader) sizeOr(k string, def int64) int64 {
	b, err := r.size(k, def)
	if err != nil && r.err == nil {
		r.err = err
	}
	return b
}

func (r *memReader) fraction(k string, def float32) float32 {
	key := r.prefix + k
	v, ok := r.conf[key]
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 32)
	if err != nil || f < 0 || f >= 1 {
		if r.err == nil {
			r.err = fmt.Errorf("flinkConfiguration %s: %q is not a fraction in [0, 1)", key, v)
		}
		return def
	}
	return float32(f)
}

// totalFlink returns the total Flink memory of a component.
func (r *memReader) totalFlink(component string) (int64, error) {
	if r.set("flink.size") {
		return r.size("flink.size", 0)
	}
	if component == ComponentJobManager && r.set("heap.size") {
		heap := r.sizeOr("heap.size", 0)
		off := r.sizeOr("off-heap.size", 128*mib)
		return heap + off, r.err
	}
	if component == ComponentTaskManager && r.set("task.heap.size") && r.set("managed.size") {
		sum := r.sizeOr("task.heap.size", 0) + r.sizeOr("managed.size", 0) +
			r.sizeOr("task.off-heap.size", 0) + r.sizeOr("framework.heap.size", 128*mib) +
			r.sizeOr("framework.off-heap.size", 128*mib)
		lo := r.sizeOr("network.min", 64*mib)
		hi := r.sizeOr("network.max", math.MaxInt64)
		frac := r.fraction("network.fraction", 0.1)
		if r.err != nil {
			return 0, r.err
		}
		return sum + max(lo, min(hi, inverseFraction(sum, frac))), nil
	}
	spec, detail := "spec.jobManager.resource.memory", "jobmanager.memory.heap.size"
	if component == ComponentTaskManager {
		spec, detail = "spec.taskManager.resource.memory", "taskmanager.memory.task.heap.size with taskmanager.memory.managed.size"
	}
	return 0, fmt.Errorf("%s memory is not defined: set %s, or %sprocess.size, %sflink.size or %s in flinkConfiguration",
		component, spec, r.prefix, r.prefix, detail)
}

// inverseFraction is the part of a total that fraction makes up when base is
// the rest, computed as Flink's MemorySize.multiply does: the fraction is a
// float option, the multiplier a double taken at its decimal value, the
// product truncated to whole bytes.
func inverseFraction(base int64, fraction float32) int64 {
	f := float64(fraction)
	mult, ok := new(big.Rat).SetString(strconv.FormatFloat(f/(1-f), 'g', -1, 64))
	if !ok {
		return 0
	}
	p := new(big.Rat).Mul(new(big.Rat).SetInt64(base), mult)
	return new(big.Int).Quo(p.Num(), p.Denom()).Int64()
}
