package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/daemon"
	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/render"
)

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "--config FILE [--repo DIR] [--set key=value ...]",
		"Loads the daemon configuration exactly as `run` would (defaults < file < FLINK_GITOPS_* env < flags)\n"+
			"and reports every problem at once, each with its key and the fix. With --repo, it also renders\n"+
			"the working copy's entry points with that configuration and checks every spec as the daemon\n"+
			"does (validation and the cluster object builder), printing problems and warnings.\n\n"+
			"Exit codes: 0 valid, 2 the config or a spec is invalid, 3 could not run (bad flag, unreadable file).\n\n"+
			"Keys and their environment variables:\n"+keyTable(), stderr)
	file := fs.String("config", "", "daemon config file (YAML)")
	repo := fs.String("repo", "", "also check the specs of this working copy (git.entryPoints of the config)")
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
	c, err := config.Load(config.Sources{File: *file, Environ: os.Environ(), Set: overrides()})
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		for _, p := range cerr.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stdout, "%d problem(s)\n", len(cerr.Problems))
		return exitInvalid
	case err != nil:
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	if *repo == "" {
		return exitOK
	}
	res, err := render.PlanDir(ctx, *repo, daemon.RenderOptions(c))
	if err != nil {
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return exitError
	}
	if err := res.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return exitError
	}
	if !res.OK() {
		return exitInvalid
	}
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
