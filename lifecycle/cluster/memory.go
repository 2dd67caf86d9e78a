package cluster

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// ParseFlinkMemory parses Flink's MemorySize syntax; see v1beta1.ParseFlinkMemory.
func ParseFlinkMemory(s string) (int64, error) { return v1beta1.ParseFlinkMemory(s) }

// ParseResourceMemory parses a spec's memory as the operator does; see
// v1beta1.ParseMemory.
func ParseResourceMemory(s string) (int64, error) { return v1beta1.ParseMemory(s) }

// FormatFlinkMemory renders bytes as Flink's MemorySize.toString does.
func FormatFlinkMemory(bytes int64) string { return v1beta1.FormatFlinkMemory(bytes) }

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

// memoryFits reports whether a process of the given size leaves Flink's
// memory model room to start, deriving the components from the process
// size as Flink does (ProcessMemoryUtils and the JobManager/TaskExecutor
// memory utils): JVM metaspace and overhead come off the top, then the
// JobManager needs more than its off-heap memory for a heap, and the
// TaskManager needs its framework, task off-heap, managed and network
// memory to fit into what is left. Only the defaults and the coarse options
// take part; fine-grained sizes (heap, task heap, flink.size) are checked by
// Flink itself.
func (r *memReader) memoryFits(m memoryModel, component string, process int64) bool {
	meta := r.sizeOr("jvm-metaspace.size", m.metaspace)
	lo := r.sizeOr("jvm-overhead.min", m.overheadMin)
	hi := r.sizeOr("jvm-overhead.max", m.overheadMax)
	overhead := max(lo, min(hi, multiply(process, r.fraction("jvm-overhead.fraction", m.fraction))))
	flink := process - meta - overhead
	if flink < 0 {
		return false
	}
	if component == ComponentJobManager {
		return flink > r.sizeOr("off-heap.size", 128*mib)
	}
	managed := multiply(flink, r.fraction("managed.fraction", 0.4))
	if r.set("managed.size") {
		managed = r.sizeOr("managed.size", 0)
	}
	network := max(r.sizeOr("network.min", 64*mib), min(r.sizeOr("network.max", math.MaxInt64), multiply(flink, r.fraction("network.fraction", 0.1))))
	fixed := r.sizeOr("framework.heap.size", 128*mib) + r.sizeOr("framework.off-heap.size", 128*mib) + r.sizeOr("task.off-heap.size", 0)
	return fixed+managed+network <= flink
}

// multiply is Flink's MemorySize.multiply with a float option: the product
// truncated to whole bytes.
func multiply(bytes int64, fraction float32) int64 {
	mult, ok := new(big.Rat).SetString(strconv.FormatFloat(float64(fraction), 'g', -1, 64))
	if !ok {
		return 0
	}
	p := new(big.Rat).Mul(new(big.Rat).SetInt64(bytes), mult)
	return new(big.Int).Quo(p.Num(), p.Denom()).Int64()
}

// CheckProcessMemory refuses a process size (the one the spec's resources or
// <c>.memory.process.size set) that Flink could not start a JobManager or
// TaskManager with, naming the smallest size (in MiB) it could. field names
// where the size was given.
func CheckProcessMemory(conf map[string]string, component, field string) error {
	m := jmMemory
	if component == ComponentTaskManager {
		m = tmMemory
	}
	r := memReader{conf: conf, prefix: m.prefix + ".memory."}
	if !r.set("process.size") || r.set("flink.size") || r.set("heap.size") || r.set("task.heap.size") {
		return nil
	}
	process, err := r.size("process.size", 0)
	if err != nil {
		return err
	}
	if r.memoryFits(m, component, process) || r.err != nil {
		return r.err
	}
	// The fit is monotonic in the process size: search the smallest MiB.
	lo, hi := int64(1), int64(1)<<20 // MiB
	if !r.memoryFits(m, component, hi*mib) {
		return fmt.Errorf("%s: %s is too small for Flink's %s memory model; check the *.memory.* options", field, FormatFlinkMemory(process), component)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if r.memoryFits(m, component, mid*mib) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	name := "JobManager"
	if component == ComponentTaskManager {
		name = "TaskManager"
	}
	return fmt.Errorf("%s: %s is below the smallest %s process Flink can start with the configured memory options (JVM metaspace, overhead, off-heap%s); give it at least %s",
		field, FormatFlinkMemory(process), name, map[bool]string{true: ", framework, managed and network memory"}[component == ComponentTaskManager], FormatFlinkMemory(lo*mib))
}
