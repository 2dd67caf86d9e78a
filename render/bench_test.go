package render

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// benchRepo generates the benchmark repository: `bases` bases, each shared
// by `perBase` overlays (entry points), each overlay with its own namespace
// and a patch.
func benchRepo(tb testing.TB, bases, perBase int) MapSource {
	src := MapSource{Files: map[string][]byte{}}
	for b := 0; b < bases; b++ {
		d := validDeployment(fmt.Sprintf("job-%d", b))
		set(d, "spec/flinkConfiguration/taskmanager.numberOfTaskSlots", "2")
		set(d, "spec/podTemplate", map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
			"name": "flink-main-container", "env": []any{map[string]any{"name": "BASE", "value": fmt.Sprint(b)}}}}}})
		src.Files[fmt.Sprintf("bases/b%d/kustomization.yaml", b)] = []byte("resources: [deployment.yaml]\nlabels: [{pairs: {team: data}}]\n")
		src.Files[fmt.Sprintf("bases/b%d/deployment.yaml", b)] = yamlDocs(tb, d)
		for o := 0; o < perBase; o++ {
			dir := fmt.Sprintf("overlays/b%d-o%d", b, o)
			src.Files[dir+"/kustomization.yaml"] = []byte(fmt.Sprintf(
				"namespace: ns-%d-%d\nresources: [../../bases/b%d]\npatches:\n- path: patch.yaml\n", b, o, b))
			src.Files[dir+"/patch.yaml"] = overlayPatch(b, o+1)
		}
	}
	return src
}

func overlayPatch(base, parallelism int) []byte {
	return []byte(fmt.Sprintf("apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: job-%d}\nspec:\n  job: {parallelism: %d}\n", base, parallelism))
}

var benchOpts = Options{EntryPoints: []string{"overlays/*"}, DefaultNamespace: "flink"}

// peakHeap samples the heap while fn runs and returns the largest value.
func peakHeap(fn func()) uint64 {
	var peak uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak {
				peak = ms.HeapAlloc
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	return peak
}

func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

func mustRender(b *testing.B, r *Renderer, src MapSource) *Result {
	res, err := r.Render(context.Background(), src, benchOpts)
	if err != nil {
		b.Fatal(err)
	}
	if !res.OK() || len(res.Resources) != 1000 {
		b.Fatalf("want 1000 valid resources, got %d and problems %v", len(res.Resources), problemLines(res.Problems))
	}
	return res
}

// BenchmarkRenderFull renders 1,000 entry points (10 bases × 100 overlays)
// from an empty cache.
func BenchmarkRenderFull(b *testing.B) {
	src := benchRepo(b, 10, 100)
	runtime.GC()
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := peakHeap(func() { mustRender(b, NewRenderer(), src) })
		if p > peak {
			peak = p
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(maxRSSMB(), "maxRSS-MB")
}

// BenchmarkRenderOneOverlayChanged re-renders after one overlay's patch changed.
func BenchmarkRenderOneOverlayChanged(b *testing.B) {
	src := benchRepo(b, 10, 100)
	r := NewRenderer()
	mustRender(b, r, src)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next := clone(src)
		next.Files["overlays/b3-o42/patch.yaml"] = overlayPatch(3, 100+i)
		res := mustRender(b, r, next)
		if res.Built != 1 {
			b.Fatalf("built %d entry points, want 1", res.Built)
		}
		src = next
	}
}

// BenchmarkRenderSharedBaseChanged re-renders after a base shared by 100
// overlays changed.
func BenchmarkRenderSharedBaseChanged(b *testing.B) {
	src := benchRepo(b, 10, 100)
	r := NewRenderer()
	mustRender(b, r, src)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next := clone(src)
		next.Files["bases/b5/kustomization.yaml"] = []byte(fmt.Sprintf("resources: [deployment.yaml]\nlabels: [{pairs: {team: data, rev: \"%d\"}}]\n", i))
		res := mustRender(b, r, next)
		if res.Built != 100 {
			b.Fatalf("built %d entry points, want 100", res.Built)
		}
		src = next
	}
}

// BenchmarkKustomizeCLI builds the same 1,000 entry points with the
// kustomize CLI, one process per entry point (what a GitOps tool shelling
// out would do). It needs the binary from scripts/build-kustomize.sh
// (KUSTOMIZE_BIN, or the cache path); otherwise it is skipped.
func BenchmarkKustomizeCLI(b *testing.B) {
	bin := os.Getenv("KUSTOMIZE_BIN")
	if bin == "" {
		cache := os.Getenv("FLINK_GITOPS_CACHE")
		if cache == "" {
			d, _ := os.UserCacheDir()
			cache = filepath.Join(d, "flink-gitops")
		}
		bin = filepath.Join(cache, "kustomize-v5.8.2", "bin", "kustomize")
	}
	if _, err := os.Stat(bin); err != nil {
		b.Skipf("kustomize CLI not built (run render/scripts/build-kustomize.sh): %v", err)
	}
	dir := b.TempDir()
	src := benchRepo(b, 10, 100)
	for p, c := range src.Files {
		writeFile(b, dir, p, c)
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "overlays", "*"))
	if len(entries) != 1000 {
		b.Fatalf("%d entry points", len(entries))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, e := range entries {
			out, err := exec.Command(bin, "build", e).CombinedOutput()
			if err != nil {
				b.Fatalf("kustomize build %s: %v\n%s", e, err, out)
			}
		}
	}
}

// BenchmarkRenderBudgets measures what the render budgets add to a full
// render of the benchmark repository: measuring every YAML input of every
// entry point (aliases expanded, depth, objects) as the precheck does —
// the kustomization, its patch, the base's kustomization and resource.
// Compare with BenchmarkRenderFull, which includes it.
func BenchmarkRenderBudgets(b *testing.B) {
	src := benchRepo(b, 10, 100)
	entries, _ := expandEntryPoints(newTree(src, DefaultMaxFileSize), benchOpts.EntryPoints)
	opts := benchOpts.withDefaults()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := newTree(src, DefaultMaxFileSize) // a fresh render: nothing measured yet
		for _, e := range entries {
			if ps, _, _ := precheck(t, e, opts); len(ps) > 0 {
				b.Fatal(ps)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(entries)), "ns/entrypoint")
}
