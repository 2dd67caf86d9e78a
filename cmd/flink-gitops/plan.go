package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/flink-gitops/flink-gitops/cmd/flink-gitops/internal/daemon"
	"github.com/flink-gitops/flink-gitops/config"
	"github.com/flink-gitops/flink-gitops/lifecycle"
	"github.com/flink-gitops/flink-gitops/lifecycle/cluster"
	"github.com/flink-gitops/flink-gitops/render"
	"github.com/flink-gitops/flink-gitops/render/v1beta1"
)

const planHelp = `Renders a working copy (every configured Kustomize entry point, in-process, no network)
and checks every FlinkDeployment/FlinkSessionJob exactly as the daemon does before it applies
anything: validation, then the cluster object builder. Prints the resources, then every problem
with its entry point, file, field and fix, and every warning (fields and keys accepted but not
acted on).
Entry points and namespaces come from --config (git.entryPoints, kubernetes.*, flink.*);
--entry, --namespace and --allow-namespace override them.
With --kubeconfig, the status ConfigMaps in the cluster are read (never written) and the
action each resource would get is printed with its spec diff.

Output (-o):
  table    resources, problems, warnings (default)
  json     the same, for tools
  objects  the Kubernetes objects the daemon would apply for each FlinkDeployment, as
           multi-document YAML (like helm template), including the Flink configuration file
           the pods mount; the job id is chosen at deploy time and left out, and values
           under keys Flink treats as secret (password, token, …) print as ******

Exit codes:
  0  every spec is valid and nothing would change
  1  every spec is valid and something would change (without --kubeconfig every resource is new)
  2  a spec is invalid (or an entry point does not build)
  3  plan could not run (bad flag, unreadable repository or config, cluster unreachable)`

// runPlan renders a working copy with the daemon's render settings and
// prints the resources and problems; with --kubeconfig it also reads the
// status ConfigMaps (read-only) and prints the action each resource would
// get.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", "--repo DIR [--config FILE] [--entry PATH ...] [-o table|json|objects]", planHelp, stderr)
	repo := fs.String("repo", ".", "working copy to render")
	file := fs.String("config", "", "daemon config file (YAML) for entry points, namespaces and Flink defaults")
	entries := fs.StringArray("entry", nil, "entry point directory or glob, relative to the repository root (repeatable)")
	namespace := fs.String("namespace", "", "default namespace for resources that name none")
	allowed := fs.StringArray("allow-namespace", nil, "namespace the repository may deploy into (repeatable; default: any)")
	otherKinds := fs.String("other-kinds", "ignore", "what to do with other kinds: ignore (warn) or error")
	kubeconfig := fs.String("kubeconfig", "", "diff against the status ConfigMaps of this cluster (read-only)")
	output := fs.StringP("output", "o", "table", "output format: table, json or objects")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "plan: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	switch *output {
	case "table", "json", "objects":
	default:
		fmt.Fprintf(stderr, "plan: -o must be table, json or objects, not %q\n", *output)
		return exitError
	}
	c := config.Default()
	if *file != "" {
		loaded, err := config.Load(config.Sources{File: *file, Environ: os.Environ()})
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
		c = loaded
	}
	opts := daemon.RenderOptions(c)
	if *file == "" {
		// Without a config, any namespace goes and no entry point is known.
		opts.AllowedNamespaces, opts.EntryPoints = nil, nil
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
	var rows []lifecycle.Planned
	if *kubeconfig != "" {
		rows, err = planAgainstCluster(ctx, *kubeconfig, res, opts)
		if err != nil {
			fmt.Fprintf(stderr, "plan: %v\n", err)
			return exitError
		}
	}
	switch *output {
	case "json":
		err = writePlanJSON(stdout, res, rows)
	case "objects":
		err = writeObjects(stdout, res, opts)
	default:
		err = res.WriteText(stdout)
		if err == nil && rows != nil {
			err = writeActions(stdout, rows)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return exitError
	}
	return planExit(res, rows, *kubeconfig != "")
}

// planExit is plan's exit code: invalid beats changes beats nothing to do.
func planExit(res *render.Result, rows []lifecycle.Planned, againstCluster bool) int {
	if !res.OK() {
		return exitInvalid
	}
	if !againstCluster {
		if len(res.Resources) > 0 {
			return exitChanges // everything is new
		}
		return exitOK
	}
	for _, r := range rows {
		if r.Action.Kind != lifecycle.ActionNone {
			return exitChanges
		}
	}
	return exitOK
}

// planAgainstCluster plans each resource against the status ConfigMaps in
// the cluster.
func planAgainstCluster(ctx context.Context, kubeconfig string, res *render.Result, opts render.Options) ([]lifecycle.Planned, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	daemon.OwnTransport(rc)
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	store := &lifecycle.Store{Client: kc}
	recs := map[string]*lifecycle.Record{}
	all, err := store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		recs[lifecycle.Key(r.Kind, r.Namespace, r.Name)] = r
	}
	return lifecycle.PlanRender(res, recs, lifecycle.PlanOptions{FlinkDefaults: opts.DefaultConfiguration, DefaultMode: opts.DefaultMode,
		HasDir: func(ep string) bool { return dirExists(res, ep) }}), nil
}

// writeActions prints the action per resource.
func writeActions(w io.Writer, rows []lifecycle.Planned) error {
	var b strings.Builder
	fmt.Fprintln(&b, "\nPlan against the cluster (status ConfigMaps, read-only):")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-60s %s\n", strings.Replace(r.Key, "/", " ", 1), r.Action)
		for _, c := range r.Action.Diff.Changes {
			fmt.Fprintf(&b, "      %s: %s -> %s\n", c.Path, c.Old, c.New)
		}
		for _, warn := range r.Action.Warnings {
			fmt.Fprintf(&b, "      ! %s\n", warn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// planProblem is a render.Problem in plan's JSON output.
type planProblem struct {
	EntryPoint string `json:"entryPoint,omitempty"`
	File       string `json:"file,omitempty"`
	Resource   string `json:"resource,omitempty"`
	Field      string `json:"field,omitempty"`
	Message    string `json:"message"`
	Fix        string `json:"fix,omitempty"`
}

type planResource struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	EntryPoint string `json:"entryPoint"`
	File       string `json:"file,omitempty"`
	Hash       string `json:"hash"`
	// Action is set with --kubeconfig.
	Action string `json:"action,omitempty"`
}

// writePlanJSON prints the plan as one JSON document.
func writePlanJSON(w io.Writer, res *render.Result, rows []lifecycle.Planned) error {
	actions := map[string]string{}
	for _, r := range rows {
		actions[r.Key] = r.Action.String()
	}
	out := struct {
		Resources []planResource `json:"resources"`
		Invalid   []string       `json:"invalid"`
		Problems  []planProblem  `json:"problems"`
		Warnings  []planProblem  `json:"warnings"`
	}{Resources: []planResource{}, Invalid: []string{}}
	for _, r := range res.Resources {
		k := r.Key()
		out.Resources = append(out.Resources, planResource{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name, EntryPoint: r.EntryPoint,
			File: r.File, Hash: r.Hash, Action: actions[lifecycle.Key(k.Kind, k.Namespace, k.Name)]})
	}
	for _, k := range res.Invalid {
		out.Invalid = append(out.Invalid, k.String())
	}
	conv := func(ps []render.Problem) []planProblem {
		l := make([]planProblem, 0, len(ps))
		for _, p := range ps {
			l = append(l, planProblem{EntryPoint: p.EntryPoint, File: p.File, Resource: p.Resource, Field: p.Field, Message: p.Message, Fix: p.Fix})
		}
		return l
	}
	out.Problems, out.Warnings = conv(res.Problems), conv(res.Warnings)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeObjects prints the Kubernetes objects of every valid resource as
// multi-document YAML, each preceded by a comment naming its resource.
func writeObjects(w io.Writer, res *render.Result, opts render.Options) error {
	var b strings.Builder
	for _, r := range res.Resources {
		k := r.Key()
		if r.Snapshot != nil {
			fmt.Fprintf(&b, "# %s (%s): no Kubernetes objects; %s through Flink's REST API\n", k, r.File, render.SnapshotSummary(r.Snapshot))
			continue
		}
		if r.SessionJob != nil {
			fmt.Fprintf(&b, "# %s (%s): no Kubernetes objects; the job is submitted to session cluster %s through Flink's REST API\n",
				k, r.File, r.SessionJob.Spec.DeploymentName)
			continue
		}
		// Values under keys Flink treats as secret are printed as ******.
		redacted := r
		d := *r.Deployment
		d.Spec.FlinkConfiguration = v1beta1.RedactConfig(d.Spec.FlinkConfiguration)
		redacted.Deployment = &d
		objs, err := lifecycle.Objects(redacted, v1beta1.RedactConfig(opts.DefaultConfiguration), opts.DefaultMode, "")
		if err != nil {
			return fmt.Errorf("%s: %w", k, err) // cannot happen: render ran the same builder
		}
		list := objs.List()
		if len(list) == 0 {
			fmt.Fprintf(&b, "# %s (%s): suspended, no cluster objects\n", k, r.File)
			continue
		}
		for _, o := range list {
			y, err := objectYAML(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "---\n# %s (%s)\n%s", k, r.File, y)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// objectYAML renders an object as it would be applied: with its apiVersion
// and kind, without the empty status and creation timestamps apply leaves
// out.
func objectYAML(o cluster.Object) ([]byte, error) {
	b, err := json.Marshal(cluster.WithTypeMeta(o))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	for _, path := range [][]string{{"metadata"}, {"spec", "template", "metadata"}} {
		cur := m
		for _, p := range path {
			next, _ := cur[p].(map[string]any)
			cur = next
		}
		if cur != nil && cur["creationTimestamp"] == nil {
			delete(cur, "creationTimestamp")
		}
	}
	return yaml.Marshal(m)
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
