package flinktb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// The Flink versions the test bed runs.
const (
	// Version1 is the Flink 1.x release under test. flink-container, which has
	// the application-mode entry point, is published for 1.20.0 only; the build
	// uses that jar with the other 1.20.5 jars.
	Version1 = "1.20.5"
	// Version2 is the Flink 2.x release under test.
	Version2 = "2.2.1"
)

// Versions lists the Flink versions the test bed supports, oldest first.
var Versions = []string{Version1, Version2}

// TestJobClass is the entry class of the test job jar.
const TestJobClass = "io.flinkgitops.testjob.CounterJob"

// Build is what build-flink.sh produced for one Flink version.
type Build struct {
	Version string
	// LibDir holds the jars flink-dist would ship in lib/.
	LibDir string
	// TestJobJar is the test job built against Version.
	TestJobJar string
}

// Log4jConfig is the logging configuration the build installs next to LibDir;
// Command uses it when the config dir has no log4j-console.properties.
func (b Build) Log4jConfig() string {
	return filepath.Join(filepath.Dir(b.LibDir), "conf", "log4j-console.properties")
}

var (
	buildMu sync.Mutex
	builds  = map[string]Build{}
)

// Ensure runs build-flink.sh for version once per process (the script itself
// is idempotent and cheap when everything is cached) and returns its outputs.
func Ensure(ctx context.Context, version string) (Build, error) {
	if major(version) == 0 {
		return Build{}, fmt.Errorf("flink version %q: want 1.x or 2.x", version)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := builds[version]; ok {
		return b, nil
	}
	script := ScriptPath()
	cmd := exec.CommandContext(ctx, "bash", script, version)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Build{}, fmt.Errorf("build flink %s with %s: %w\n%s", version, script, err, lastLines(stderr.String(), 40))
	}
	b := Build{Version: version}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "FLINK_LIB":
			b.LibDir = v
		case "FLINK_TESTJOB":
			b.TestJobJar = v
		}
	}
	if b.LibDir == "" || b.TestJobJar == "" {
		return Build{}, fmt.Errorf("build flink %s: %s printed no FLINK_LIB/FLINK_TESTJOB lines:\n%s", version, script, stdout.String())
	}
	builds[version] = b
	return b, nil
}

// Classpath returns the directory holding the Flink runtime jars of version,
// building it with build-flink.sh when missing.
func Classpath(ctx context.Context, version string) (libDir string, err error) {
	b, err := Ensure(ctx, version)
	return b.LibDir, err
}

// TestJobJar returns the path of the test job jar built for version, building
// it with build-flink.sh when missing or when its sources changed.
func TestJobJar(ctx context.Context, version string) (string, error) {
	b, err := Ensure(ctx, version)
	return b.TestJobJar, err
}

// scriptRel is the build script's path inside the repository.
const scriptRel = "tests/scripts/build-flink.sh"

// ScriptPath is the build script: $FLINK_GITOPS_BUILD_FLINK if set, else
// tests/scripts/build-flink.sh in the source tree this package was built from,
// else (for binaries built with -trimpath) the first one found walking up from
// the working directory.
func ScriptPath() string {
	if p := os.Getenv("FLINK_GITOPS_BUILD_FLINK"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "build-flink.sh")
	if fileExists(src) {
		return src
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if p := filepath.Join(dir, scriptRel); fileExists(p) {
				return p
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return src
}

// major returns the major version number of a Flink version string (1 or 2),
// or 0 when it is neither.
func major(version string) int {
	switch {
	case strings.HasPrefix(version, "1."):
		return 1
	case strings.HasPrefix(version, "2."):
		return 2
	}
	return 0
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
