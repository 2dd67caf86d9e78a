package main

import (
	"context"
	"fmt"
	"io"
)

// runStatus is filled by the daemon issue (#9).
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "--repo URL", "Prints the status table from the status branch.", stderr)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	fmt.Fprintln(stderr, "status: not implemented yet (the daemon, issue #9)")
	return exitError
}
