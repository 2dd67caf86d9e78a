package render

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/corpus")

// corpusCase is one file of testdata/corpus: a small repository and the
// exact problems rendering it must report. Sections:
//
//	-- options --        key=value lines: entry (repeatable), otherKinds, allow, namespace
//	-- path --           a file's contents
//	-- link path --      a symlink; the body is its target
//	-- huge path N --    a file of N bytes
//	-- want --           the expected problem lines (Problem.String), then "valid: N"
type corpusCase struct {
	opts   Options
	src    MapSource
	want   string
	header []byte // everything before the want section, kept by -update
}

func parseCorpus(t *testing.T, data []byte) corpusCase {
	c := corpusCase{src: MapSource{Files: map[string][]byte{}, Links: map[string]string{}}, opts: Options{DefaultNamespace: "flink"}}
	var name string
	var body bytes.Buffer
	flush := func() {
		fields := strings.Fields(name)
		switch {
		case name == "":
		case name == "options":
			sc := bufio.NewScanner(bytes.NewReader(body.Bytes()))
			for sc.Scan() {
				k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
				switch k {
				case "entry":
					c.opts.EntryPoints = append(c.opts.EntryPoints, v)
				case "otherKinds":
					c.opts.OtherKinds = OtherKinds(v)
				case "allow":
					c.opts.AllowedNamespaces = append(c.opts.AllowedNamespaces, v)
				case "namespace":
					c.opts.DefaultNamespace = v
				case "":
				default:
					t.Fatalf("unknown option %q", k)
				}
			}
		case name == "want":
			c.want = body.String()
		case fields[0] == "link":
			c.src.Links[fields[1]] = strings.TrimSpace(body.String())
		case fields[0] == "huge":
			n, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatal(err)
			}
			c.src.Files[fields[1]] = bytes.Repeat([]byte("# padding\n"), n/10)
		default:
			c.src.Files[name] = append([]byte(nil), body.Bytes()...)
		}
		body.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") {
			flush()
			name = strings.TrimSuffix(strings.TrimPrefix(trimmed, "-- "), " --")
			if name == "want" {
				c.header = []byte(data[:bytes.Index(data, []byte(line))])
			}
			continue
		}
		body.WriteString(line)
	}
	flush()
	if len(c.opts.EntryPoints) == 0 {
		c.opts.EntryPoints = []string{"app"}
	}
	return c
}

func (c corpusCase) got(t *testing.T) string {
	res, err := NewRenderer().Render(context.Background(), c.src, c.opts)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range res.Problems {
		b.WriteString(p.String() + "\n")
	}
	fmt.Fprintf(&b, "valid: %d\n", len(res.Resources))
	return b.String()
}

// TestCorpus renders every malformed repository of testdata/corpus and
// compares the problems with the exact expected lines.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("the corpus has %d cases, want at least 40", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCorpus(t, data)
			got := c.got(t)
			if *update {
				if c.header == nil {
					c.header = data
				}
				out := append(append([]byte(nil), c.header...), []byte("-- want --\n"+got)...)
				if err := os.WriteFile(f, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(got, "valid: ") && strings.Contains(c.want, "valid: ") == false {
				t.Errorf("want section missing")
			}
		})
	}
}
