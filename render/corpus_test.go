package render

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
//	-- repeat path N --  the body N times, {{i}} replaced by the repetition's index
//	-- deep path N --    the body, then a flow map nested N levels deep
//	-- want --           the expected problem lines (Problem.String), then "valid: N"
//
// {{loopback}} anywhere is replaced by the URL of a server on 127.0.0.1
// that records every request: no case may make it receive one.
type corpusCase struct {
	opts   Options
	src    MapSource
	want   string
	header []byte // everything before the want section, kept by -update
}

func parseCorpus(t *testing.T, data []byte, loopback string) corpusCase {
	orig := data
	data = bytes.ReplaceAll(data, []byte("{{loopback}}"), []byte(loopback))
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
				case "maxObjects":
					c.opts.MaxObjects, _ = strconv.Atoi(v)
				case "artifactSchemes":
					c.opts.Artifacts.AllowedSchemes = strings.Split(v, ",")
				case "artifactDir":
					c.opts.Artifacts.FileDirectory = v
				case "allowPrivate":
					c.opts.Artifacts.AllowPrivateHosts = v == "true"
				case "buildTimeout":
					c.opts.BuildTimeout, _ = time.ParseDuration(v)
				case "":
				default:
					t.Fatalf("unknown option %q", k)
				}
			}
		case name == "want":
			c.want = strings.ReplaceAll(body.String(), loopback, "{{loopback}}")
		case fields[0] == "link":
			c.src.Links[fields[1]] = strings.TrimSpace(body.String())
		case fields[0] == "huge":
			n, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatal(err)
			}
			c.src.Files[fields[1]] = bytes.Repeat([]byte("# padding\n"), n/10)
		case fields[0] == "repeat":
			n, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			for i := 0; i < n; i++ {
				b.WriteString(strings.ReplaceAll(body.String(), "{{i}}", strconv.Itoa(i)))
			}
			c.src.Files[fields[1]] = b.Bytes()
		case fields[0] == "deep":
			n, err := strconv.Atoi(fields[2])
			if err != nil {
				t.Fatal(err)
			}
			c.src.Files[fields[1]] = []byte(strings.TrimSuffix(body.String(), "\n") + strings.Repeat("{a: ", n) + "1" + strings.Repeat("}", n) + "\n")
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
				c.header = orig[:bytes.Index(orig, []byte("-- want --\n"))]
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

// TestCorpus renders every malformed or hostile repository of
// testdata/corpus and compares the problems with the exact expected lines.
// Each case must finish within 20 s and keep the process's peak resident
// memory (VmHWM, reset before each case through /proc/self/clear_refs)
// within 256 MiB; a loopback server must receive no request from any case.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("the corpus has %d cases, want at least 100", len(files))
	}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		t.Errorf("the render fetched %s over the network", r.URL)
		fmt.Fprint(w, "secret: from-the-metadata-server\n")
	}))
	defer srv.Close()
	var peak int64
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCorpus(t, data, srv.URL)
			resetPeakRSS(t)
			start := time.Now()
			got := strings.ReplaceAll(c.got(t), srv.URL, "{{loopback}}")
			took := time.Since(start)
			rss := peakRSS(t)
			peak = max(peak, rss)
			if took > 20*time.Second {
				t.Errorf("took %s, want at most 20s", took)
			}
			if rss > 256<<20 {
				t.Errorf("peak RSS %d MiB, want at most 256 MiB", rss>>20)
			}
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
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the loopback server received %d requests, want none", n)
	}
	t.Logf("peak RSS over the corpus: %d MiB", peak>>20)
}

// resetPeakRSS returns memory to the OS and resets the kernel's peak RSS
// mark of this process, so peakRSS measures what follows.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// peakRSS returns VmHWM, the peak resident set size since resetPeakRSS.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
