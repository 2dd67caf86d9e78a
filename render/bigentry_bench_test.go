package render

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// bigEntryRepo is one entry point listing n FlinkDeployments, one file each.
func bigEntryRepo(tb testing.TB, n int) MapSource {
	src := MapSource{Files: map[string][]byte{}}
	var files []string
	for i := 0; i < n; i++ {
		f := fmt.Sprintf("d%d.yaml", i)
		files = append(files, f)
		src.Files["big/"+f] = yamlDocs(tb, validDeployment(fmt.Sprintf("job-%d", i)))
	}
	src.Files["big/kustomization.yaml"] = []byte("resources: [" + strings.Join(files, ", ") + "]\n")
	return src
}

// BenchmarkRenderBigEntryPoint renders one entry point of n resources from
// an empty cache: the time should grow linearly with n.
func BenchmarkRenderBigEntryPoint(b *testing.B) {
	for _, n := range []int{500, 1000, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src := bigEntryRepo(b, n)
			opts := Options{EntryPoints: []string{"big"}, DefaultNamespace: "flink", MaxObjects: 10 * n, MaxInputBytes: 1 << 30, MaxYAMLNodes: 1 << 30}
			for i := 0; i < b.N; i++ {
				res, err := NewRenderer().Render(context.Background(), src, opts)
				if err != nil {
					b.Fatal(err)
				}
				if !res.OK() || len(res.Resources) != n {
					b.Fatalf("want %d valid resources, got %d and problems %v", n, len(res.Resources), problemLines(res.Problems)[:1])
				}
			}
		})
	}
}
