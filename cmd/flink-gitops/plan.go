package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/render"
)

// runPlan renders a working copy with the daemon's render settings and
// prints the resources and problems. (The diff against a cluster comes
// with lifecycle.)
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", "--repo DIR [--config FILE] [--entry PATH ...]",
		"Renders a working copy (every configured Kustomize entry point, in-process, no network)\n"+
			"and prints the FlinkDeployment/FlinkSessionJob resources with their spec hashes, then\n"+
			"every problem with its entry point, file, field and fix.\n"+
			"Entry points and namespaces come from --config (git.entryPoints, kubernetes.*);\n"+
			"--entry, --namespace and --allow-namespace override them.", stderr)
	repo := fs.String("repo", ".", "working copy to render")
	file := fs.String("config", "", "daemon config file (YAML) for entry points, namespaces and Flink defaults")
	entries := fs.StringArray("entry", nil, "entry point directory or glob, relative to the repository root (repeatable)")
	namespace := fs.String("namespace", "", "default namespace for resources that name none")
	allowed := fs.StringArray("allow-namespace", nil, "namespace the repository may deploy into (repeatable; default: any)")
	otherKinds := fs.String("other-kinds", "ignore", "what to do with other kinds: ignore (warn) or error")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "plan: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	opts := render.Options{DefaultNamespace: config.Default().Kubernetes.DefaultNamespace}
	if *file != "" {
		c, err := config.Load(config.Sources{File: *file, Environ: os.Environ()})
		var cerr *config.Error
		if errors.As(err, &cerr) {
			for _, p := range cerr.Problems {
				fmt.Fprintln(stderr, p.String())
			}
			return exitError
		} else if err != nil {
			fmt.Fprintf(stderr, "plan: %v\n", err)
			return exitError
		}
		opts.EntryPoints = c.Git.EntryPoints
		opts.DefaultNamespace = c.Kubernetes.DefaultNamespace
		opts.AllowedNamespaces = c.Kubernetes.AllowedNamespaces
		opts.DefaultConfiguration = c.Flink.DefaultConfiguration
	}
	if len(*entries) > 0 {
		opts.EntryPoints = *entries
	}
	if *namespace != "" {
		opts.DefaultNamespace = *namespace
	}
	if len(*allowed) > 0 {
		opts.AllowedNamespaces = *allowed
	}
	switch render.OtherKinds(*otherKinds) {
	case render.OtherKindsIgnore, render.OtherKindsError:
		opts.OtherKinds = render.OtherKinds(*otherKinds)
	default:
		fmt.Fprintf(stderr, "plan: --other-kinds must be ignore or error, not %q\n", *otherKinds)
		return exitError
	}
	if len(opts.EntryPoints) == 0 {
		fmt.Fprintln(stderr, "plan: no entry points: give --entry PATH or --config FILE with git.entryPoints")
		return exitError
	}
	res, err := render.PlanDir(ctx, *repo, opts)
	if err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return exitError
	}
	if err := res.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return exitError
	}
	if !res.OK() {
		return exitFindings
	}
	return exitOK
}
