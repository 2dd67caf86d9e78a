package main

import (
	"context"
	"fmt"
	"io"
)

// runDaemon is filled by the daemon issue (#9).
func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "--config FILE", "Runs the reconciler daemon.", stderr)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	fmt.Fprintln(stderr, "run: not implemented yet (the daemon, issue #9)")
	return exitError
}
