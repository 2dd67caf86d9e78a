package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flink-gitops/flink-gitops/config"
)

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "--config FILE [--set key=value ...]",
		"Loads the daemon configuration exactly as `run` would (defaults < file < FLINK_GITOPS_* env < flags)\n"+
			"and reports every problem at once, each with its key and the fix.\n\n"+
			"Keys and their environment variables:\n"+keyTable(), stderr)
	file := fs.String("config", "", "daemon config file (YAML)")
	overrides := config.BindFlags(fs.FlagSet)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "validate: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	if *file == "" {
		fmt.Fprintln(stderr, "validate: --config FILE is required")
		return exitError
	}
	_, err := config.Load(config.Sources{File: *file, Environ: os.Environ(), Set: overrides()})
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		for _, p := range cerr.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stdout, "%d problem(s)\n", len(cerr.Problems))
		return exitFindings
	case err != nil:
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	return exitOK
}

func keyTable() string {
	var b strings.Builder
	for _, k := range config.Keys() {
		env := config.EnvName(k)
		if k == "flink.defaultConfiguration" {
			env = "(file or --set only)"
		}
		fmt.Fprintf(&b, "  %-38s %s\n", k, env)
	}
	return strings.TrimRight(b.String(), "\n")
}
