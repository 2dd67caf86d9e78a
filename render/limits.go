package render

import (
	"bytes"
	"fmt"
	"io"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Default render budgets per entry point. A repository is untrusted input:
// every build is bounded in bytes read, YAML nodes (with aliases expanded),
// nesting depth, objects emitted and wall time, so that one hostile entry
// point costs at most a bounded amount of memory and time and is reported as
// a problem instead of taking the daemon down.
const (
	// DefaultMaxInputBytes is the most an entry point may read (8 MiB).
	DefaultMaxInputBytes = 8 << 20
	// DefaultMaxYAMLNodes is the most YAML nodes, aliases expanded, the
	// files of one entry point may hold (100,000; a FlinkDeployment has a
	// few hundred).
	DefaultMaxYAMLNodes = 100_000
	// DefaultMaxDepth is the deepest nesting of maps and lists allowed in a
	// YAML file (100; Kubernetes objects rarely go past 20).
	DefaultMaxDepth = 100
	// DefaultMaxObjects is the most objects one entry point may produce.
	DefaultMaxObjects = 1000
	// DefaultBuildTimeout bounds one entry point's Kustomize build.
	DefaultBuildTimeout = 15 * time.Second
	// maxCollectionEntries is the most entries one YAML map or list may
	// have: Kustomize's time grows with the square of a map's size (10,000
	// keys take about a second, 50,000 more than 15), so one wide map would
	// otherwise reach the time limit within the node budget.
	maxCollectionEntries = 10_000
)

// yamlStats is what measuring a YAML file found.
type yamlStats struct {
	nodes int // nodes with aliases expanded (saturating)
	depth int // deepest nesting, aliases expanded
	width int // entries of the largest map or list
	docs  int // documents that are not empty
}

// saturate caps node counts so that nested aliases cannot overflow.
const saturate = 1 << 40

// preScanFactor bounds the separators a file may hold before it is parsed
// at all: parsing materialises every node, so a file must not even be
// parsed when it could hold far more nodes than the budget allows.
const preScanFactor = 2

// measureYAML parses every document of b (without expanding aliases) and
// returns its size as a consumer that expands aliases would see it. It
// refuses, without parsing, input whose separators alone exceed the node
// budget. An error means the file is not YAML; the caller decides whether
// that matters (Kustomize reports syntax errors itself).
func measureYAML(b []byte, maxNodes int) (yamlStats, bool, error) {
	if n := separators(b); maxNodes > 0 && n > preScanFactor*maxNodes {
		return yamlStats{nodes: n}, true, nil
	}
	var st yamlStats
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return st, false, nil
		}
		if err != nil {
			return st, false, err
		}
		m := measurer{memo: map[*yaml.Node][2]int{}}
		nodes, depth := m.measure(&n)
		st.nodes = min(st.nodes+nodes, saturate)
		st.depth = max(st.depth, depth)
		st.width = max(st.width, m.width)
		if !emptyDoc(&n) {
			st.docs++
		}
	}
}

// separators counts the bytes that can start a new YAML node.
func separators(b []byte) int {
	n := 0
	for _, c := range b {
		switch c {
		case '\n', ',', ':', '[', '{', '-':
			n++
		}
	}
	return n
}

func emptyDoc(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return true
		}
		n = n.Content[0]
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// measurer computes expanded sizes with memoisation per node, so an alias
// bomb is measured in time linear in its text.
type measurer struct {
	memo  map[*yaml.Node][2]int
	width int
}

func (m *measurer) measure(n *yaml.Node) (nodes, depth int) {
	if n == nil {
		return 0, 0
	}
	if v, ok := m.memo[n]; ok {
		return v[0], v[1]
	}
	// A node that refers to itself (yaml.v3 refuses these, but be safe)
	// counts as huge.
	m.memo[n] = [2]int{saturate, saturate}
	if n.Kind == yaml.AliasNode {
		nodes, depth = m.measure(n.Alias)
	} else {
		nodes = 1
		for _, c := range n.Content {
			cn, cd := m.measure(c)
			nodes = min(nodes+cn, saturate)
			depth = max(depth, cd)
		}
		switch n.Kind {
		case yaml.MappingNode:
			depth++
			m.width = max(m.width, len(n.Content)/2)
		case yaml.SequenceNode:
			depth++
			m.width = max(m.width, len(n.Content))
		}
	}
	m.memo[n] = [2]int{nodes, depth}
	return nodes, depth
}

// measured is what measuring one YAML input found; the tree keeps it per
// file for the whole render, so a base shared by many entry points is
// parsed once.
type measured struct {
	st   yamlStats
	pre  bool  // refused by the separator pre-scan, not parsed
	size int64 // bytes
}

func measure(data []byte, maxNodes int) measured {
	st, pre, err := measureYAML(data, maxNodes)
	if err != nil && !pre {
		st = yamlStats{} // not YAML: Kustomize reports it when it parses it
	}
	return measured{st: st, pre: pre, size: int64(len(data))}
}

// budget tracks one entry point's use of its limits during the precheck.
type budget struct {
	opts    Options
	bytes   int64
	nodes   int
	objects int
	// charged holds the files already charged: a file read twice is
	// charged once for bytes and nodes, but its objects count every time
	// it is included.
	charged map[string]bool
}

func newBudget(opts Options) *budget {
	return &budget{opts: opts, charged: map[string]bool{}}
}

// yamlProblem checks one measured YAML input (a file, key being its path,
// or inline YAML of a kustomization, key "") against the limits and charges
// it to the entry point; it returns what is wrong, if anything: too deep,
// too many nodes with aliases expanded, or the entry point's budget used
// up. what names the input in messages.
func (b *budget) yamlProblem(what string, m measured, key string) (string, string) {
	st := m.st
	if m.pre {
		return fmt.Sprintf("%s could hold about %d YAML nodes, over the limit of %d per entry point", what, st.nodes, b.opts.MaxYAMLNodes),
			"split the file, or raise render.maxYAMLNodes in the daemon config"
	}
	if st.depth > b.opts.MaxDepth {
		return fmt.Sprintf("%s nests maps and lists %d levels deep, over the limit of %d", what, st.depth, b.opts.MaxDepth),
			"flatten the file, or raise render.maxDepth in the daemon config"
	}
	if st.width > maxCollectionEntries {
		return fmt.Sprintf("%s has a map or list of %d entries, over the limit of %d", what, st.width, maxCollectionEntries),
			"split the map or list (e.g. one ConfigMap per group of keys)"
	}
	if key == "" || !b.charged[key] {
		if key != "" {
			b.charged[key] = true
		}
		b.bytes += m.size
		b.nodes = min(b.nodes+st.nodes, saturate)
	}
	if st.nodes > b.opts.MaxYAMLNodes {
		return fmt.Sprintf("%s expands to %s YAML nodes (YAML aliases expanded), over the limit of %d per entry point", what, countString(st.nodes), b.opts.MaxYAMLNodes),
			"remove the aliases that multiply the document, or split it; raise render.maxYAMLNodes in the daemon config only for trusted repositories"
	}
	if b.nodes > b.opts.MaxYAMLNodes {
		return fmt.Sprintf("the entry point's YAML holds more than %d YAML nodes (aliases expanded) in total; %s goes over it", b.opts.MaxYAMLNodes, what),
			"split the entry point, or raise render.maxYAMLNodes in the daemon config"
	}
	if b.bytes > b.opts.MaxInputBytes {
		return fmt.Sprintf("the entry point reads more than %d bytes in total; %s goes over it", b.opts.MaxInputBytes, what),
			"split the entry point, or raise render.maxInputBytes in the daemon config"
	}
	return "", ""
}

// addObjects counts objects a resource file contributes.
func (b *budget) addObjects(n int) bool {
	b.objects += n
	return b.objects <= b.opts.MaxObjects
}

func countString(n int) string {
	if n >= saturate {
		return "more than 10^12"
	}
	return fmt.Sprint(n)
}
