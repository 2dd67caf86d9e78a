package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", "Prints the version, the source revision and the Go version.\n\nExit codes: 0.", stderr)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	rev, dirty := "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(stdout, "flink-gitops %s\nrevision %s%s\n%s %s/%s\n", version, rev, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
