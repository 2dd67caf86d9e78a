package render

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// holdGate takes the build gate as a stuck build would and returns the
// release; the test releases it at the end.
func holdGate(t *testing.T, exclusive bool) func() {
	t.Helper()
	_, release, err := gate.acquire(context.Background(), exclusive)
	if err != nil {
		t.Fatal(err)
	}
	return func() { release(false) }
}

// TestStuckBuildDoesNotBlockRenders: a default-schema build that never
// returns (as an abandoned one may) holds the gate shared; other renders —
// the watched branch's and a pull request's, each with its own Renderer —
// still build.
func TestStuckBuildDoesNotBlockRenders(t *testing.T) {
	// Make sure the schema is clean, so the renders below share the gate.
	if res, err := NewRenderer().Render(context.Background(), validSource(t, "warmup"), Options{EntryPoints: []string{"app"}, DefaultNamespace: "flink"}); err != nil || !res.OK() {
		t.Fatalf("warm-up render: %v %v", err, res.Problems)
	}
	release := holdGate(t, false)
	defer release()
	for _, name := range []string{"main", "pr"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := NewRenderer().Render(ctx, validSource(t, name), Options{EntryPoints: []string{"app"}, DefaultNamespace: "flink"})
		cancel()
		if err != nil || !res.OK() || len(res.Resources) != 1 {
			t.Fatalf("%s render beside a stuck build: err=%v problems=%v", name, err, res.Problems)
		}
	}
}

// TestBuildWaitIsBounded: a build that needs the gate alone (its own
// OpenAPI schema) while a stuck build holds it gives up at its time limit
// and is reported, instead of waiting forever.
func TestBuildWaitIsBounded(t *testing.T) {
	release := holdGate(t, false)
	defer release()
	src := validSource(t, "custom")
	src.Files["app/kustomization.yaml"] = []byte("resources: [r.yaml]\nopenapi:\n  version: v1.21.2\n")
	start := time.Now()
	res, err := NewRenderer().Render(context.Background(), src, Options{EntryPoints: []string{"app"}, DefaultNamespace: "flink", BuildTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "time limit") {
		t.Fatalf("problems = %v, want one time-limit problem", res.Problems)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the render took %s", took)
	}
}

// TestCancelStopsRender: a cancelled context ends a render at once with
// the context's error, even while a build is in progress (the build is
// abandoned).
func TestCancelStopsRender(t *testing.T) {
	release := holdGate(t, true) // the build cannot start: it is "in progress"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := NewRenderer().Render(ctx, validSource(t, "cancel"), Options{EntryPoints: []string{"app"}, DefaultNamespace: "flink", BuildTimeout: time.Hour})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the render did not end after cancel")
	}
	release()
}

func validSource(t *testing.T, name string) MapSource {
	return MapSource{Files: map[string][]byte{
		"app/kustomization.yaml": []byte("resources: [r.yaml]\n"),
		"app/r.yaml":             yamlDocs(t, validDeployment(name)),
	}}
}

// TestMeasureYAML checks the measured sizes of small shapes exactly.
func TestMeasureYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                 string
		nodes, depth, docs int
	}{
		{"a: b\n", 4, 1, 1},                 // document, map, key, value
		{"[a, [b, [c]]]\n", 7, 3, 1},        // document, three sequences, three scalars
		{"a: &x [1, 2]\nb: *x\n", 10, 2, 1}, // the alias counts as its target
		{"---\n---\na: 1\n", 6, 1, 1},       // empty documents cost nodes but declare no object
		{"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", 1 + 1 + (1 + 3) + (1 + 7) + (1 + 15), 4, 1},
	}
	for _, tc := range tests {
		st, pre, err := measureYAML([]byte(tc.in), 1000)
		if err != nil || pre {
			t.Fatalf("%q: pre=%v err=%v", tc.in, pre, err)
		}
		if st.nodes != tc.nodes || st.depth != tc.depth || st.docs != tc.docs {
			t.Errorf("%q: got nodes=%d depth=%d docs=%d, want %d %d %d", tc.in, st.nodes, st.depth, st.docs, tc.nodes, tc.depth, tc.docs)
		}
	}
}

// bombSeeds are the hostile YAML shapes the fuzz targets start from.
func bombSeeds() []string {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 1, "a"; i < 9; i++ {
		name := string(rune('a' + i))
		laughs += fmt.Sprintf("%s: &%s [%s]\n", name, name, strings.TrimSuffix(strings.Repeat("*"+prev+", ", 9), ", "))
		prev = name
	}
	merge := "x0: &x0 {a: 1, b: 2}\n"
	for i := 1; i < 10; i++ {
		merge += fmt.Sprintf("x%d: &x%d {<<: [*x%d, *x%d], k%d: [*x%d, *x%d]}\n", i, i, i-1, i-1, i, i-1, i-1)
	}
	return []string{
		laughs,
		merge,
		strings.Repeat("[", 3000) + strings.Repeat("]", 3000),
		strings.Repeat("{a: ", 3000) + "1" + strings.Repeat("}", 3000),
		strings.Repeat("- ", 2000) + "x\n",
		"a: &a {b: *a}\n",
		strings.Repeat("---\n", 1000),
		strings.Repeat("a,", 50000),
	}
}

// FuzzMeasureYAML feeds arbitrary YAML to the decoder's budget check. It
// must not panic, must finish quickly, and whatever it accepts under a
// small budget must decode (aliases expanded) without exceeding it.
func FuzzMeasureYAML(f *testing.F) {
	for _, s := range bombSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const budget = 5000
		st, pre, err := measureYAML(data, budget)
		if pre || err != nil || st.nodes > budget || st.depth > 100 {
			return // refused: nothing else reads it
		}
		// Accepted: expanding it must stay within the measured size.
		var v any
		if yaml.Unmarshal(data, &v) == nil {
			if n := countValues(v); n > st.nodes {
				t.Fatalf("decoded %d values, measured %d nodes", n, st.nodes)
			}
		}
	})
}

// countValues counts the values of a decoded document (a lower bound of its
// nodes: keys are counted with their values).
func countValues(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case map[string]any:
		n := 1
		for _, e := range x {
			n += 1 + countValues(e)
		}
		return n
	case map[any]any:
		n := 1
		for _, e := range x {
			n += 1 + countValues(e)
		}
		return n
	case []any:
		n := 1
		for _, e := range x {
			n += countValues(e)
		}
		return n
	}
	return 1
}
