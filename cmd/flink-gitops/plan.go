package main

import (
	"context"
	"fmt"
	"io"
)

// runPlan is filled by the render issue (#6).
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", "--repo DIR", "Renders a working copy and prints the resources and problems.", stderr)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	fmt.Fprintln(stderr, "plan: not implemented yet (render, issue #6)")
	return exitError
}
