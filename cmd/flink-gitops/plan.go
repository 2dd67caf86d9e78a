package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/daemon"
	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

// runPlan renders a working copy with the daemon's render settings and
// prints the resources and problems; with --kubeconfig it also reads the
// status ConfigMaps (read-only) and prints the action each resource would
// get.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", "--repo DIR [--config FILE] [--entry PATH ...]",
		"Renders a working copy (every configured Kustomize entry point, in-process, no network)\n"+
			"and prints the FlinkDeployment/FlinkSessionJob resources with their spec hashes, then\n"+
			"every problem with its entry point, file, field and fix.\n"+
			"Entry points and namespaces come from --config (git.entryPoints, kubernetes.*);\n"+
			"--entry, --namespace and --allow-namespace override them.\n"+
			"With --kubeconfig, the status ConfigMaps in the cluster are read (never written) and the\n"+
			"action each resource would get is printed with its spec diff: exit code 1 when any would change.", stderr)
	repo := fs.String("repo", ".", "working copy to render")
	file := fs.String("config", "", "daemon config file (YAML) for entry points, namespaces and Flink defaults")
	entries := fs.StringArray("entry", nil, "entry point directory or glob, relative to the repository root (repeatable)")
	namespace := fs.String("namespace", "", "default namespace for resources that name none")
	allowed := fs.StringArray("allow-namespace", nil, "namespace the repository may deploy into (repeatable; default: any)")
	otherKinds := fs.String("other-kinds", "ignore", "what to do with other kinds: ignore (warn) or error")
	kubeconfig := fs.String("kubeconfig", "", "diff against the status ConfigMaps of this cluster (read-only)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "plan: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	opts := render.Options{DefaultNamespace: config.Default().Kubernetes.DefaultNamespace}
	defaultMode := v1beta1.DeploymentMode(config.Default().Flink.DefaultMode)
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
		opts = daemon.RenderOptions(c)
		defaultMode = v1beta1.DeploymentMode(c.Flink.DefaultMode)
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
	code := exitOK
	if !res.OK() {
		code = exitFindings
	}
	if *kubeconfig != "" {
		changes, err := planAgainstCluster(ctx, stdout, *kubeconfig, res, opts, defaultMode)
		if err != nil {
			fmt.Fprintf(stderr, "plan: %v\n", err)
			return exitError
		}
		if changes {
			code = exitFindings
		}
	}
	return code
}

// planAgainstCluster prints the action per resource against the status
// ConfigMaps in the cluster and reports whether anything would change.
func planAgainstCluster(ctx context.Context, w io.Writer, kubeconfig string, res *render.Result, opts render.Options, defaultMode v1beta1.DeploymentMode) (bool, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return false, fmt.Errorf("kubeconfig: %w", err)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return false, err
	}
	store := &lifecycle.Store{Client: kc}
	recs := map[string]*lifecycle.Record{}
	all, err := store.List(ctx, "")
	if err != nil {
		return false, err
	}
	for _, r := range all {
		recs[lifecycle.Key(r.Kind, r.Namespace, r.Name)] = r
	}
	rows := lifecycle.PlanRender(res, recs, lifecycle.PlanOptions{FlinkDefaults: opts.DefaultConfiguration, DefaultMode: defaultMode,
		HasDir: func(ep string) bool { return dirExists(res, ep) }})
	fmt.Fprintln(w, "\nPlan against the cluster (status ConfigMaps, read-only):")
	changes := false
	for _, r := range rows {
		fmt.Fprintf(w, "  %-60s %s\n", strings.Replace(r.Key, "/", " ", 1), r.Action)
		for _, c := range r.Action.Diff.Changes {
			fmt.Fprintf(w, "      %s: %s -> %s\n", c.Path, c.Old, c.New)
		}
		for _, warn := range r.Action.Warnings {
			fmt.Fprintf(w, "      ! %s\n", warn)
		}
		if r.Action.Kind != lifecycle.ActionNone {
			changes = true
		}
	}
	return changes, nil
}

// dirExists reports whether an entry point still appears in the render.
func dirExists(res *render.Result, ep string) bool {
	for _, e := range res.EntryPoints {
		if e.EntryPoint == ep {
			return true
		}
	}
	return false
}
