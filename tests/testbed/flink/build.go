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
	"slices"
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

// The other Flink versions the test bed builds: the newest patch release of
// each minor that Maven Central serves (flink-runtime, flink-clients), with
// the nearest flink-container and flink-kubernetes that it serves (see
// build-flink.sh).
const (
	// Version118 is Flink 1.18, the oldest the test bed runs. Its REST API
	// already triggers checkpoints (1.17+); it reads flink-conf.yaml only.
	Version118 = "1.18.1"
	// Version119 is Flink 1.19, the first to read config.yaml too (preferred
	// when present). No flink-container 1.19.x is published: it runs
	// 1.18.0's application entry point (1.20.0's needs a 1.20 API).
	Version119 = "1.19.3"
	// Version20 is Flink 2.0, the first to read config.yaml only.
	Version20 = "2.0.2"
	// Version21 is Flink 2.1.
	Version21 = "2.1.3"
	// Version23 is Flink 2.3, the newest the test bed runs.
	Version23 = "2.3.0"
)

// Versions lists the two Flink versions most test-bed tests run (1.20 and
// 2.2), oldest first; make matrix runs them on both.
var Versions = []string{Version1, Version2}

// AllVersions lists every Flink version the test bed builds and runs, oldest
// first: the version contract suite runs on each (make test-matrix).
var AllVersions = []string{Version118, Version119, Version1, Version20, Version21, Version2, Version23}

// Minor returns the "major.minor" part of a Flink version ("1.18.1" → "1.18").
func Minor(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

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

// VersionsEnv selects the Flink versions of the version contract suite:
// "all" (make test-matrix) or a list of versions or minors ("1.19 2.0.2"),
// separated by spaces or commas. Unset, a suite runs its defaults.
const VersionsEnv = "FLINK_GITOPS_VERSIONS"

// ContractVersions returns the Flink versions a version contract test runs
// on: those $FLINK_GITOPS_VERSIONS selects, else defaults (make test's:
// the oldest and the newest, plus what that suite ran before). An entry
// the test bed does not build is an error, so a typo cannot pass by running
// nothing.
func ContractVersions(defaults ...string) ([]string, error) {
	return selectVersions(os.Getenv(VersionsEnv), defaults)
}

// selectVersions is ContractVersions without the environment.
func selectVersions(env string, defaults []string) ([]string, error) {
	env = strings.TrimSpace(env)
	if env == "" {
		return defaults, nil
	}
	if env == "all" {
		return AllVersions, nil
	}
	var out []string
	for _, f := range strings.FieldsFunc(env, func(r rune) bool { return r == ',' || r == ' ' }) {
		found := ""
		for _, v := range AllVersions {
			if f == v || f == Minor(v) {
				found = v
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s=%q: the test bed has no Flink %q (it has %s, or say all)", VersionsEnv, env, f, strings.Join(AllVersions, ", "))
		}
		if !slices.Contains(out, found) {
			out = append(out, found)
		}
	}
	return out, nil
}
