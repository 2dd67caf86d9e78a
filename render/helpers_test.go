package render

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t testing.TB, dir, p string, b []byte) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPanicSite(t *testing.T) {
	stack := "goroutine 1 [running]:\nruntime/debug.Stack()\n\t/go/src/runtime/debug/stack.go:26\nsigs.k8s.io/kustomize/api/krusty.(*Kustomizer).Run(...)\n\t/mod/krusty/kustomizer.go:88 +0x1f\nmain.main()\n"
	if got := panicSite([]byte(stack)); got != "/mod/krusty/kustomizer.go:88 +0x1f" {
		t.Fatalf("panicSite = %q", got)
	}
	if got := panicSite([]byte("nothing")); got != "unknown" {
		t.Fatalf("panicSite = %q", got)
	}
}
